"""simplemma on the labelled news texts: dictionary coverage and speed per language. Reads files.

Usage (from the repo root):
    .venv/bin/python tests/eval/lemma_coverage.py [--labels PATH]

For each language of tests/data/topics/news.jsonl: whether simplemma has a dictionary for
it, the share of word tokens its dictionary knows, and how fast it lemmatises the texts on
one core (a first pass, then a second pass with its cache warm), next to the tagger's own
speed on the same texts. docs/tagging.md ("Morphology") reports the figures and what the
tagger does per language as a result.
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

from monitor.tag import parse_taxonomy, tag_article  # noqa: E402
from tests.topics_data import NEWS, load_news  # noqa: E402

_WORD = re.compile(r"[^\W\d_]+")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=NEWS)
    parser.add_argument("--rules", type=Path, default=ROOT / "config/topics.toml")
    args = parser.parse_args(argv)
    items = load_news(args.labels)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
