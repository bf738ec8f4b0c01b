"""Benchmark: build and render a 1,000-item digest in all three formats (reads the corpus).

Run: .venv/bin/python tests/bench/bench_digest.py [--items N] [--runs R] [--corpus DIR]
Texts come from ../shared/corpus (SemEval-2022 multilingual news sample) and the seed corpus;
target (DESIGN §6): 1,000 items render in <= 1 s. Prints the median of R runs in ms.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.digest import DigestInput, build_digest, make_environment, render_digest  # noqa: E402
from monitor.models import DuplicateOf, Item, SourceHealth, TopicTag  # noqa: E402

SHARED = ROOT.parent / "shared"
TOPICS = ("russia-asean", "security", "economy", "energy", "education", "health")
SOURCES = (
    ("ASEAN Secretariat", 1, "https://asean.org/"),
    ("Russian MFA", 1, "https://mid.ru/en/"),
    ("VNA", 2, "https://en.vietnamplus.vn/"),
    ("VietnamPlus (vi)", 2, "https://www.vietnamplus.vn/"),
    ("TASS", 3, "https://tass.com/"),
    ("TASS (ru)", 3, "https://tass.ru/"),
    ("Bernama", 3, "https://www.bernama.com/en/"),
    ("Antara", 3, "https://en.antaranews.com/"),
)


def load_texts(corpus: Path) -> list[tuple[str, str]]:
    """(language, text) pairs: SemEval news texts when present, else the seed corpus."""
    texts: list[tuple[str, str]] = []
    sample = corpus / "semeval2022-task8-hfl-sample" / "training_set.csv"
    if sample.exists():
        csv.field_size_limit(1 << 30)
        with sample.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                for lang, text in ((row["lang1"], row["text1"]), (row["lang2"], row["text2"])):
                    if text and len(text) > 200:
                        texts.append((lang, text))
    for seed in sorted((SHARED / "seeds").glob("*.txt")):
        texts.append(("en", seed.read_text(encoding="utf-8")))
    if not texts:
        raise SystemExit(f"no texts found under {corpus}")
    return texts


def make_input(texts: list[tuple[str, str]], count: int) -> DigestInput:
    rng = random.Random(20261122)
    start = datetime(2026, 11, 21, tzinfo=UTC)
    items: list[Item] = []
    for n in range(count):
        lang, text = texts[n % len(texts)]
        source, priority, base = SOURCES[rng.randrange(len(SOURCES))]
        first_line = text.strip().split("\n", 1)[0]
        title = " ".join(first_line.split()[: rng.randint(6, 16)])
        tags = tuple(
            TopicTag(t, round(rng.uniform(2, 9), 2), 2.0, ((f"term{t}", lang, rng.randint(1, 5)),))
            for t in rng.sample(TOPICS, rng.randint(0, 3))
        )
        published = start + timedelta(minutes=rng.randrange(24 * 60))
        items.append(
            Item(
                id=n + 1,
                source=source,
                url=f"{base}news/{n + 1}",
                canonical_url=f"{base}news/{n + 1}",
                guid=None,
                title=title,
                published_at=published,
                fetched_at=published + timedelta(minutes=15),
                language=lang,
                status="new",
                extraction="full_text",
                text=text,
                summary=None,
                text_chars=len(text),
                story_id=(n // 3) if n % 2 == 0 else None,  # about a third of items share a story
                topics=tags,
                source_priority=priority,
            )
        )
    stories: dict[int, list[Item]] = {}
    for item in items:
        if item.story_id is not None:
            stories.setdefault(item.story_id, []).append(item)
    suppressed = [
        Item(
            id=100_000 + n,
            source="VNA",
            url=f"https://en.vietnamplus.vn/reprint/{n}",
            canonical_url=f"https://en.vietnamplus.vn/reprint/{n}",
            guid=None,
            title=f"Reprint {n}",
            published_at=start,
            fetched_at=start + timedelta(hours=1),
            language="en",
            status="duplicate",
            extraction="full_text",
            text="",
            summary=None,
            text_chars=0,
            duplicate_of=DuplicateOf("item", items[n].url, 0.96, "minhash"),
        )
        for n in range(count // 20)
    ]
    health = [
        SourceHealth(
            "Russian MFA",
            "https://mid.ru/en/",
            "failing",
            None,
            4,
            "not_a_feed",
            "challenge page",
            None,
        ),
    ]
    return DigestInput(
        name="daily",
        window_start=start,
        window_end=start + timedelta(days=1),
        timezone="Asia/Jakarta",
        generated_at=start + timedelta(days=1, minutes=2),
        items=items,
        suppressed=suppressed,
        stories=stories,
        health=health,
        topic_order=TOPICS,
        topic_labels={t: t.replace("-", " ").title() for t in TOPICS},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    args = parser.parse_args()

    texts = load_texts(args.corpus)
    inp = make_input(texts, args.items)
    env = make_environment(None, ROOT / "templates")
    render_digest(build_digest(inp), env)  # warm-up: template compilation, zoneinfo

    build_ms: list[float] = []
    total_ms: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        model = build_digest(inp)
        t1 = time.perf_counter()
        rendered = render_digest(model, env)
        t2 = time.perf_counter()
        build_ms.append((t1 - t0) * 1000)
        total_ms.append((t2 - t0) * 1000)
    sizes = (len(rendered.markdown), len(rendered.html), len(rendered.text))
    print(f"texts: {len(texts)} from {args.corpus}; items: {args.items}; runs: {args.runs}")
    print(f"stories: {model.counts.stories}; output chars md/html/txt: {sizes}")
    print(f"build_digest median: {statistics.median(build_ms):.0f} ms")
    print(
        f"build + render (md, html, txt) median: {statistics.median(total_ms):.0f} ms "
        f"(min {min(total_ms):.0f}, max {max(total_ms):.0f}); target <= 1000 ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
