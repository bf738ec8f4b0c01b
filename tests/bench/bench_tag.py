"""Benchmark topic tagging: documents/s on real texts, x1 vs x10 rules, cost vs length. Reads files.

Usage (from the repo root):
    .venv/bin/python tests/bench/bench_tag.py [--set news|labelled] [--rules PATH]
        [--rounds N] [--shared DIR] [--clock wall|cpu]

Texts are a labelled set: `news` (tests/data/topics/news.jsonl, real news texts in en, ru,
vi and id, the default when present) or `labelled` (real articles from ../shared/corpus and
the seeds, which tests/topics_data.py reads from ../shared or --shared DIR). One process,
one core. "x10 rules" adds synthetic topics until the taxonomy has ten times as many terms,
drawn from the words of the same texts (so some of them do match) plus wildcard stems.
Timings use time.perf_counter (`--clock cpu`: time.process_time, this process's CPU time,
which a machine shared with other work disturbs less); each figure is the best of
`--rounds` runs.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.tag import Taxonomy, normalise_text, parse_taxonomy, tag_article  # noqa: E402
from monitor.tagging.engine import find_terms  # noqa: E402
from tests.topics_data import LABELLED, NEWS, load_labelled, load_news  # noqa: E402

Doc = tuple[str, str, str]  # title, text, language


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def _best(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = _clock()
        run()
        best = min(best, _clock() - start)
    return best


def _tag_all(taxonomy: Taxonomy, docs: list[Doc]) -> None:
    for title, text, lang in docs:
        tag_article(taxonomy, title=title, text=text, language=lang)


def _written(taxonomy: Taxonomy) -> int:
    """Terms as written in the rule file (the affixed forms a language rule adds not counted)."""
    return sum(1 for term in taxonomy.terms if term.base < 0)


def synthetic_rules(base: str, taxonomy: Taxonomy, words: list[str], factor: int) -> str:
    """The base rule file plus synthetic topics, `factor` times the base's term count in all.

    Terms are drawn from `words`: single words, two-word phrases and 5-letter wildcard stems.
    """
    rng = random.Random(20240701)
    extra = _written(taxonomy) * (factor - 1)
    per_topic = 60
    blocks = []
    for n in range(extra // per_topic + 1):
        terms: list[str] = []
        seen: set[str] = set()
        while len(terms) < per_topic:
            kind = rng.random()
            if kind < 0.6:
                term = rng.choice(words)
            elif kind < 0.8:
                term = f"{rng.choice(words)} {rng.choice(words)}"
            else:
                term = rng.choice(words)[:5] + "*"
            if term in seen:
                continue
            seen.add(term)
            terms.append(f'{{ term = "{term}", weight = {rng.choice([1, 2, 3])} }}')
        blocks.append(f"[topics.synthetic-{n}]\nterms.any = [{', '.join(terms)}]\n")
    return base + "\n" + "\n".join(blocks)


def pseudo_words(count: int, seed: int = 7) -> list[str]:
    """Pronounceable words that are not in the texts: rules about other subjects."""
    rng = random.Random(seed)
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    out: set[str] = set()
    while len(out) < count:
        syllables = rng.randint(2, 4)
        out.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(out)


def _matches(taxonomy: Taxonomy, docs: list[Doc]) -> int:
    """Term occurrences found in the texts (the per-match work the tagger does)."""
    return sum(
        len(hits)
        for title, text, _ in docs
        for part in (title, text)
        for hits in find_terms(taxonomy, normalise_text(part), None).values()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["news", "labelled"], default=None)
    parser.add_argument("--rules", type=Path, default=ROOT / "config/topics.toml")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--shared", type=Path, default=None, help="where the texts are (default: ../shared)"
    )
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]

    which = args.set or ("news" if NEWS.exists() else "labelled")
    items = load_news() if which == "news" else load_labelled(args.shared, labels=LABELLED)
    docs: list[Doc] = [(i.title, i.text, i.lang) for i in items]
    chars = sum(len(t) + len(x) for t, x, _ in docs)
    base_text = args.rules.read_text(encoding="utf-8")
    start = time.perf_counter()
    x1 = parse_taxonomy(base_text, file=str(args.rules))
    compile_x1 = time.perf_counter() - start
    vocabulary = sorted(
        {w for _, text, _ in docs for w in re.findall(r"[^\W\d_]{4,}", text.lower())}
    )
    variants: list[tuple[str, str]] = [
        ("x10, other subjects", synthetic_rules(base_text, x1, pseudo_words(20_000), 10)),
        ("x10, same vocabulary", synthetic_rules(base_text, x1, vocabulary, 10)),
    ]
    taxonomies: list[tuple[str, Taxonomy, float]] = [("x1 (default)", x1, compile_x1)]
    for name, text in variants:
        start = time.perf_counter()
        taxonomies.append((name, parse_taxonomy(text, file=name), time.perf_counter() - start))

    print(
        f"texts ({which}): {len(docs)} real articles, {chars:,} characters "
        f"(median {statistics.median(len(x) for _, x, _ in docs):.0f} chars); clock: {args.clock}"
    )
    print()
    print("| rules | topics | terms | matches/doc | compile (s) | docs/s | MB/s | µs/doc |")
    print("|---|---|---|---|---|---|---|---|")
    for name, tax, compile_s in taxonomies:
        seconds = _best(args.rounds, partial(_tag_all, tax, docs))
        matches = _matches(tax, docs) / len(docs)
        print(
            f"| {name} | {len(tax.topics)} | {_written(tax)} | {matches:,.0f} | "
            f"{compile_s:.2f} | {len(docs) / seconds:,.0f} | {chars / seconds / 1e6:.2f} | "
            f"{seconds / len(docs) * 1e6:,.0f} |"
        )
    print()

    print("Cost vs text length: the first seed article repeated to each length (µs per doc;")
    print("in brackets µs per 1,000 characters):")
    print()
    print("| length (chars) | " + " | ".join(name for name, _, _ in taxonomies) + " |")
    print("|---|" + "---|" * len(taxonomies))
    seed = docs[0][1]
    for length in (1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000):
        text = (seed + "\n") * (length // len(seed) + 1)
        sample = [("", text[:length], "en")] * 10
        cells = []
        for _, tax, _ in taxonomies:
            per_doc = _best(args.rounds, partial(_tag_all, tax, sample)) / len(sample)
            cells.append(f"{per_doc * 1e6:,.0f} ({per_doc * 1e6 / (length / 1000):,.0f})")
        print(f"| {length:,} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
