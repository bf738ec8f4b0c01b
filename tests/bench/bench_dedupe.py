"""Benchmark near-duplicate + story assignment per item at 1k and 100k stored items; reads corpus.

Usage: .venv/bin/python tests/bench/bench_dedupe.py [CORPUS_DIR] [--items 100000]

Items are real texts (scrapinghub benchmark bodies and SemEval sample texts) with variations:
a random slice of 60-100 % of the text with 20 % of its words replaced by words drawn from the
whole pool, so that variants of one text are related but not duplicates. They arrive at a
steady ~140 items per simulated day. Per item we time what the pipeline does: shingle + sign,
`NearIndex.query` + `add`, `extract_features`, `StoryIndex.assign`. Both indexes evict by
their retention window once a simulated day, as the daemon does: 30 days for stories, and
`--near-retention-days` (default 90) for near-duplicates; `--near-retention-days 0` keeps
every item in the near index (the worst case for its memory). Reported: the median per-item
cost measured over 500 items once 1k and once 100k items are stored, their ratio (target
<= 2), and the process RSS at 100k (target <= 250 MB). `--jitter-hours H` dates each item up
to H hours before it arrives, so items arrive out of publication order as they do from many
feeds, and the story index decides late items in their place and re-decides what follows.
`--clock cpu` times each item by the process's CPU time instead of the wall clock, for a shared
machine whose load changes between the 1k and the 100k sample.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from monitor.dedupe.near import NearIndex, sign_text  # noqa: E402
from monitor.dedupe.story import StoryIndex, extract_features  # noqa: E402

T0 = datetime(2023, 1, 1, tzinfo=UTC)
PER_DAY = 140
RETENTION = timedelta(days=30)
SAMPLE = 500


def status(field: str) -> int:
    """A /proc/self/status field in kB (Linux), 0 where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def load_pool(corpus: Path) -> list[str]:
    bench = json.loads((corpus / "article-extraction-benchmark" / "ground-truth.json").read_text())
    pool = [v["articleBody"] for v in bench.values() if len(v.get("articleBody", "")) > 400]
    for name in ("training_set.csv", "testing_set.csv"):
        path = corpus / "semeval2022-task8-hfl-sample" / name
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                pool.extend(t for t in (row["text1"], row["text2"]) if len(t) > 400)
    return sorted(set(pool))


def variant(text: str, vocab: list[str], rng: random.Random) -> tuple[str, str]:
    words = text.split()
    keep = max(40, int(len(words) * rng.uniform(0.6, 1.0)))
    start = rng.randrange(0, max(1, len(words) - keep + 1))
    chunk = words[start : start + keep]
    out = [rng.choice(vocab) if rng.random() < 0.2 else w for w in chunk]
    return " ".join(out[:12]), " ".join(out[12:])


class Pipeline:
    def __init__(
        self, near_retention: timedelta | None, jitter: float = 0.0, clock: str = "wall"
    ) -> None:
        self.clock = time.process_time if clock == "cpu" else time.perf_counter
        self.near_retention = near_retention
        self.jitter = jitter
        self.rng = random.Random(3)
        self.moves = 0
        self.near = NearIndex()
        self.story = StoryIndex()
        self.count = 0
        self.last_evict_day = -1

    def process(self, title: str, text: str, at: datetime, source: str) -> float:
        start = self.clock()
        key = f"https://example.org/{self.count}"
        sig, size = sign_text(f"{title}\n{text}")
        self.near.query(sig, source=source, size=size)
        self.near.add(key, sig, kind="item", ref=key, source=source, at=at, size=size)
        published = at - timedelta(hours=self.rng.uniform(0, self.jitter)) if self.jitter else at
        features = extract_features(title, text, published, None)
        self.story.assign(key, features, at)
        self.moves += len(self.story.take_moves())
        elapsed = self.clock() - start
        self.count += 1
        day = (at - T0).days
        if day != self.last_evict_day:  # the daemon's daily retention sweep (not timed)
            self.story.evict_before(at - RETENTION)
            if self.near_retention is not None:
                self.near.evict_before(at - self.near_retention)
            self.last_evict_day = day
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--near-retention-days", type=int, default=90)
    parser.add_argument("--jitter-hours", type=float, default=0.0)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    rng = random.Random(7)
    pool = load_pool(Path(args.corpus))
    vocab = sorted({w for text in pool[:500] for w in text.split() if w.isalpha()})
    print(f"pool: {len(pool)} real texts, vocabulary {len(vocab)} words")
    rss0 = status("VmRSS")
    days = args.near_retention_days
    pipe = Pipeline(timedelta(days=days) if days > 0 else None, args.jitter_hours, args.clock)
    kept = f"{days} days" if days > 0 else "none (keep all)"
    print(f"clock: {args.clock}; near-duplicate retention: {kept}")
    sources = [f"source-{i}" for i in range(12)]
    medians: dict[int, float] = {}
    checkpoints = sorted({1_000, args.items})
    fill_start = time.perf_counter()
    i = 0
    for target in checkpoints:
        while pipe.count < target:
            title, text = variant(rng.choice(pool), vocab, rng)
            at = T0 + timedelta(days=i / PER_DAY)
            pipe.process(title, text, at, sources[i % len(sources)])
            i += 1
            if pipe.count % 10_000 == 0:
                print(f"  {pipe.count} items stored, {time.perf_counter() - fill_start:.0f} s")
        gc.collect()
        times = []
        for _ in range(SAMPLE):  # measured items are stored too, as in real use
            title, text = variant(rng.choice(pool), vocab, rng)
            at = T0 + timedelta(days=i / PER_DAY)
            times.append(pipe.process(title, text, at, sources[i % len(sources)]))
            i += 1
        medians[target] = statistics.median(times)
        print(
            f"{target:>7} stored: median {medians[target] * 1000:.2f} ms/item "
            f"(p90 {sorted(times)[int(0.9 * len(times))] * 1000:.2f} ms); near index "
            f"{len(pipe.near)}, story index {len(pipe.story)}; RSS {status('VmRSS') / 1024:.0f} MB"
        )
    small, large = medians[checkpoints[0]], medians[checkpoints[-1]]
    print(f"\nratio {checkpoints[-1]} / {checkpoints[0]}: {large / small:.2f} (target <= 2)")
    if args.jitter_hours:
        print(f"items moved to another story by a later arrival: {pipe.moves}")
    rss, peak = status("VmRSS") / 1024, status("VmHWM") / 1024
    print(
        f"RSS at {pipe.count} items: {rss:.0f} MB (peak {peak:.0f} MB; before indexing, with the "
        f"text pool loaded: {rss0 / 1024:.0f} MB; target <= 250 MB)"
    )


if __name__ == "__main__":
    main()
