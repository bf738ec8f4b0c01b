"""Token-level precision/recall/F1 and speed of extract_page, fast vs full mode.

Runs over the article-extraction-benchmark pages (ground-truth `articleBody`). Not a pytest
module. Usage: python tests/eval/eval_extraction.py [--corpus DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from monitor.extract import extract_page

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"


@dataclass
class Score:
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    empty: int = 0
    seconds: float = 0.0
    pages: int = 0


def tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def score_page(predicted: str, truth: str) -> tuple[float, float, float]:
    """Bag-of-tokens precision, recall and F1 (an empty prediction scores 0, 0, 0)."""
    got, want = tokens(predicted), tokens(truth)
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    precision, recall = overlap / sum(got.values()), overlap / sum(want.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def evaluate(pages: list[tuple[str, bytes, str]], *, fast: bool) -> Score:
    score = Score(pages=len(pages))
    for url, html, truth in pages:
        started = time.perf_counter()
        page = extract_page(html, url=url, fast=fast)
        score.seconds += time.perf_counter() - started
        if page is None:
            score.empty += 1
        p, r, f = score_page(page.text if page else "", truth)
        score.precision += p / len(pages)
        score.recall += r / len(pages)
        score.f1 += f / len(pages)
    return score


def load(corpus: Path, limit: int | None) -> list[tuple[str, bytes, str]]:
    root = corpus / "article-extraction-benchmark"
    truth = json.loads((root / "ground-truth.json").read_text("utf-8"))
    pages = []
    for key in sorted(truth)[:limit]:
        html = gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes())
        pages.append((truth[key]["url"], html, truth[key]["articleBody"]))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="shared corpus dir")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N pages")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternate the modes this often; best time counts"
    )
    args = parser.parse_args()
    pages = load(args.corpus, args.limit)
    extract_page(pages[0][1], url=pages[0][0])  # warm-up: imports, caches
    print(f"{len(pages)} pages from {args.corpus / 'article-extraction-benchmark'}")
    print(f"{'mode':<6} {'precision':>9} {'recall':>7} {'F1':>7} {'empty':>6} {'pages/s':>8}")
    # Alternating rounds even out warm-up and cache effects; the scores do not change.
    best: dict[bool, Score] = {}
    for _ in range(max(1, args.rounds)):
        for fast in (True, False):
            s = evaluate(pages, fast=fast)
            if fast not in best or s.seconds < best[fast].seconds:
                best[fast] = s
    for fast, s in best.items():
        mode = "fast" if fast else "full"
        rate = s.pages / s.seconds if s.seconds else 0.0
        print(
            f"{mode:<6} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>7.3f} {s.empty:>6} {rate:>8.1f}"
        )


if __name__ == "__main__":
    main()
