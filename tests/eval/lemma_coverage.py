"""simplemma on the labelled news texts: dictionary coverage and speed per language. Reads files.

Usage (from the repo root):
    .venv/bin/python tests/eval/lemma_coverage.py [--labels PATH]

For each language of tests/data/topics/news.jsonl: whether simplemma has a dictionary for
it, the share of word tokens its dictionary knows, and how fast it lemmatises the texts on
one core (a first pass, then a second pass with its cache warm), next to the tagger's own
speed on the same texts. Then, for ru and id, how well the rule terms' morphology (a `*`
word ending; Indonesian enclitics) covers inflection: for each one-word term that matched a
word in the texts, every form simplemma's dictionary lists for that word's lemma, and the
share of them that the topic's one-word terms match (with forms they miss).
docs/tagging.md ("Morphology") reports the figures and what the tagger does per language.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import simplemma

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.tag import Taxonomy, normalise_text, parse_taxonomy, tag_article  # noqa: E402
from monitor.tagging.normalise import TermPattern  # noqa: E402
from tests.topics_data import NEWS, load_news  # noqa: E402

_WORD = re.compile(r"[^\W\d_]+")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=NEWS)
    parser.add_argument("--rules", type=Path, default=ROOT / "config/topics.toml")
    args = parser.parse_args(argv)
    items = [i for i in load_news(args.labels) if i.split != "test2"]  # never the fresh split
    taxonomy = parse_taxonomy(args.rules.read_text(encoding="utf-8"), file=str(args.rules))
    print(
        "| language | texts | tokens | simplemma | tokens known | lemmatise docs/s (cold, warm) "
        "| tag docs/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for lang in sorted({i.lang for i in items}):
        docs = [i for i in items if i.lang == lang]
        tokens = [_WORD.findall(f"{i.title} {i.text}") for i in docs]
        count = sum(len(t) for t in tokens)
        start = time.perf_counter()
        for i in docs:
            tag_article(taxonomy, title=i.title, text=i.text, language=lang)
        tag_rate = len(docs) / (time.perf_counter() - start)
        try:
            simplemma.lemmatize("test", lang=lang)
        except ValueError:
            print(f"| {lang} | {len(docs)} | {count:,} | no dictionary | – | – | {tag_rate:,.0f} |")
            continue
        known = sum(simplemma.is_known(w, lang=lang) for t in tokens for w in t)
        rates = []
        for _ in range(2):
            start = time.perf_counter()
            for t in tokens:
                for w in t:
                    simplemma.lemmatize(w, lang=lang)
            rates.append(len(docs) / (time.perf_counter() - start))
        print(
            f"| {lang} | {len(docs)} | {count:,} | yes | {known / count:.1%} "
            f"| {rates[0]:,.0f}, {rates[1]:,.0f} | {tag_rate:,.0f} |"
        )
    for lang in ("ru", "id"):
        print()
        print("\n".join(_term_coverage(taxonomy, [i for i in items if i.lang == lang], lang)))
    return 0


def _matches(pattern: TermPattern, word: str) -> bool:
    if not word.startswith(pattern.prefix):
        return False
    if pattern.rest is None:
        return word == pattern.prefix
    tail = pattern.rest.match(word, len(pattern.prefix))
    return tail is not None and tail.end() == len(word)


def _term_coverage(taxonomy: Taxonomy, docs: list[object], lang: str) -> list[str]:
    """The share of the dictionary forms of matched lemmas that the topic's terms match."""
    from simplemma.strategies.dictionaries.dictionary_factory import DefaultDictionaryFactory

    words = {
        w
        for item in docs
        for w in _WORD.findall(normalise_text(f"{item.title} {item.text}"))  # type: ignore[attr-defined]
    }
    terms = [
        t
        for t in taxonomy.terms
        if t.lang == lang and t.role == "weighted" and " " not in t.pattern.prefix
    ]
    # A term's affixed forms (`Term.base`) are entries of their own with the same text.
    hits: dict[str, set[str]] = {}
    for t in terms:
        hits.setdefault(t.text, set()).update(w for w in words if _matches(t.pattern, w))
    lemmas = {
        w: str(simplemma.lemmatize(w, lang=lang)).casefold() for ws in hits.values() for w in ws
    }
    wanted = set(lemmas.values())
    forms: dict[str, set[str]] = {}
    dictionary = DefaultDictionaryFactory().get_dictionary(lang)
    for form, lemma in dictionary.items():
        key = str(lemma).casefold()
        if key in wanted:
            forms.setdefault(key, set()).add(normalise_text(str(form)))
    # Per topic: every form of a lemma that one of its terms matched in the texts, and
    # whether any one-word term of that topic matches the form.
    pairs = {(t.owner, lemmas[w]) for t in terms for w in hits[t.text]}
    total = covered = 0
    missed: list[str] = []
    for owner, lemma in sorted(pairs):
        own = [t for t in terms if t.owner == owner]
        family = {f for f in forms.get(lemma, {lemma}) if " " not in f}
        ok = {f for f in family if any(_matches(t.pattern, f) for t in own)}
        total += len(family)
        covered += len(ok)
        missed += [f"{lemma} → {f}" for f in sorted(family - ok)[:2]]
    share = covered / total if total else 1.0
    return [
        f"{lang}: {len([ws for ws in hits.values() if ws])} one-word terms matched words of "
        f"{len(wanted)} lemmas; each topic's one-word terms match {covered:,} of the "
        f"{total:,} dictionary forms of its matched lemmas ({share:.1%}). "
        f"Missed, e.g.: {'; '.join(missed[:14])}"
    ]


if __name__ == "__main__":
    raise SystemExit(main())
