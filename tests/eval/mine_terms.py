"""Propose candidate evidence terms per topic and language from the train split. Reads files.

Usage (from the repo root):
    .venv/bin/python tests/eval/mine_terms.py [--lang ru] [--topic energy] [--top 20]
        [--labels PATH] [--rules PATH] [--splits train]

For each language and topic, words and phrases (1-2 words; 1-3 syllables for Vietnamese) are
grouped by lemma (simplemma for ru, id and en; Vietnamese has no inflection, so its folded
syllables are the key) and ranked by how many of the topic's train texts use them against
how many of the other train texts of that language do. Each line shows the lemma, the
positive and negative document counts, whether a rule of that topic already matches it
("covered") and the surface forms seen, with a wildcard stem for the forms. It only
proposes: a person decides which ones are evidence a reader would accept and writes them
into config/topics.toml. Only train texts are read unless --splits says otherwise (never
test).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import simplemma

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.tag import Taxonomy, normalise_text, parse_taxonomy, score_article  # noqa: E402
from tests.topics_data import NEWS, LabelledItem, load_news  # noqa: E402

LEMMATISED = {"ru", "id", "en"}  # simplemma has dictionaries for these; not for vi
_WORD = re.compile(r"[^\W\d_]{2,}")


def _lemma(word: str, lang: str) -> str:
    if lang not in LEMMATISED:
        return word
    return str(simplemma.lemmatize(word, lang=lang)).casefold()


def grams(text: str, lang: str) -> dict[tuple[str, ...], str]:
    """Lemma n-gram -> one surface form, for one text."""
    words = _WORD.findall(normalise_text(text))
    lemmas = [_lemma(w, lang) for w in words]
    longest = 3 if lang == "vi" else 2
    out: dict[tuple[str, ...], str] = {}
    for n in range(1, longest + 1):
        for i in range(len(words) - n + 1):
            out.setdefault(tuple(lemmas[i : i + n]), " ".join(words[i : i + n]))
    return out


def stem(forms: list[str]) -> str:
    """The longest common prefix of the forms, as a wildcard term when the forms differ."""
    if len(set(forms)) == 1:
        return forms[0]
    prefix = forms[0]
    for form in forms[1:]:
        while not form.startswith(prefix):
            prefix = prefix[:-1]
    return prefix + "*" if len(prefix.split(" ")[-1]) >= 3 else "(no common stem)"


def covered(taxonomy: Taxonomy, topic: str, form: str, lang: str) -> bool:
    scores, _ = score_article(taxonomy, title="", text=form, language=lang)
    return any(s.id == topic for s in scores)


def mine(
    taxonomy: Taxonomy, items: list[LabelledItem], lang: str, topic: str, top: int
) -> list[str]:
    docs = [i for i in items if i.lang == lang]
    positives = [i for i in docs if topic in i.topics]
    if len(positives) < 2:
        return []
    df_pos: Counter[tuple[str, ...]] = Counter()
    df_neg: Counter[tuple[str, ...]] = Counter()
    forms: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for item in docs:
        found = grams(f"{item.title}\n{item.text}", lang)
        (df_pos if topic in item.topics else df_neg).update(found.keys())
        for key, form in found.items():
            forms[key][form] += 1
    n_pos, n_neg = len(positives), max(1, len(docs) - len(positives))
    ranked = []
    for key, a in df_pos.items():
        b = df_neg.get(key, 0)
        if a < 2 or a / (a + b) < 0.5:
            continue
        # Smoothed log-odds of appearing in a positive vs a negative text, times coverage.
        odds = math.log((a + 0.5) / (n_pos - a + 0.5)) - math.log((b + 0.5) / (n_neg - b + 0.5))
        ranked.append((odds * a / n_pos, key, a, b))
    ranked.sort(reverse=True)
    lines = [f"## {lang} {topic}: {n_pos} positive, {n_neg} other train texts"]
    for _score, key, a, b in ranked[:top]:
        seen = [f for f, _ in forms[key].most_common(6)]
        done = "covered" if covered(taxonomy, topic, seen[0], lang) else "NEW"
        lines.append(
            f"- {' '.join(key)}: {a}/{n_pos} pos, {b}/{n_neg} neg, {done}; "
            f"forms {', '.join(seen)}; term {stem(seen)}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=NEWS)
    parser.add_argument("--rules", type=Path, default=ROOT / "config/topics.toml")
    parser.add_argument("--lang", action="append", help="languages (default: all)")
    parser.add_argument("--topic", action="append", help="topics (default: all)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--splits", default="train", help="comma-separated; never test2")
    args = parser.parse_args(argv)
    splits = set(args.splits.split(","))
    if splits & {"test", "test2"}:
        parser.error("the test2 split is for reporting only")
    taxonomy = parse_taxonomy(args.rules.read_text(encoding="utf-8"), file=str(args.rules))
    items = [i for i in load_news(args.labels) if i.split in splits]
    langs = args.lang or sorted({i.lang for i in items})
    topics = args.topic or list(taxonomy.topic_ids)
    for lang in langs:
        for topic in topics:
            lines = mine(taxonomy, items, lang, topic, args.top)
            if lines:
                print("\n".join(lines), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
