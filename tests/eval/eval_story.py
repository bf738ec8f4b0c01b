"""Evaluate the story layer on the SemEval-2022 Task 8 sample; reads the CSVs, prints figures.

Usage: .venv/bin/python tests/eval/eval_story.py [CORPUS_DIR]   (default: ../shared/corpus)

Gold `Overall` runs from 1 (same story) to 4 (unrelated). We report Pearson r between our
similarity and the gold score with the sign flipped (higher is better, as in the task, whose
best system reached ~0.82 on its full test set), per language pair and overall, and the
precision / recall of our same-story decision against gold <= 1.5. The training split is
where thresholds were chosen; the testing split (minus pairs also in training) is held out.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from monitor.dedupe.story import (  # noqa: E402
    STORY_THRESHOLD,
    StoryFeatures,
    extract_features,
    story_similarity,
)

SAMPLE = "semeval2022-task8-hfl-sample"
MOJIBAKE = ("Ã", "Ä", "Å", "Ð")


def repair(text: str) -> str:
    """Undo UTF-8 read as cp1252 where the sample has it (its Turkish texts); else unchanged."""
    if not any(m in text for m in MOJIBAKE):
        return text
    fixed = text.replace("1⁄4", "¼").replace("1⁄2", "½").replace("3⁄4", "¾")
    try:
        return fixed.encode("cp1252", errors="replace").decode("utf-8", errors="replace")
    except UnicodeError:
        return text


def features(text: str, lang: str) -> StoryFeatures:
    text = repair(text).strip()
    title, _, body = text.partition("\n")
    return extract_features(title.strip(), body.strip(), None, lang)


def load(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def pearson(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 3:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else float("nan")


def score_rows(rows: list[dict[str, str]]) -> list[tuple[str, float, float]]:
    """(language pair, our score, gold) per row."""
    out = []
    for row in rows:
        a = features(row["text1"], row["lang1"])
        b = features(row["text2"], row["lang2"])
        out.append(
            (f"{row['lang1']}-{row['lang2']}", story_similarity(a, b).score, float(row["Overall"]))
        )
    return out


def report(name: str, scored: list[tuple[str, float, float]], threshold: float) -> None:
    print(f"\n== {name}: {len(scored)} pairs, threshold {threshold:.2f}")
    by_pair: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for pair, s, g in scored:
        by_pair[pair].append((s, g))
    print(f"{'pair':8} {'n':>4} {'pearson':>8} {'P':>6} {'R':>6}")
    for pair in sorted(by_pair, key=lambda p: -len(by_pair[p])):
        vals = by_pair[pair]
        r = pearson([s for s, _ in vals], [-g for _, g in vals])
        p, rec, _ = pr(vals, threshold)
        print(f"{pair:8} {len(vals):4d} {r:8.3f} {p:6.2f} {rec:6.2f}")
    xs = [s for _, s, _ in scored]
    ys = [-g for _, _, g in scored]
    p, rec, f1 = pr([(s, g) for _, s, g in scored], threshold)
    print(f"{'overall':8} {len(scored):4d} {pearson(xs, ys):8.3f} {p:6.2f} {rec:6.2f}  F1 {f1:.2f}")


def pr(vals: list[tuple[float, float]], threshold: float) -> tuple[float, float, float]:
    tp = sum(1 for s, g in vals if s >= threshold and g <= 1.5)
    fp = sum(1 for s, g in vals if s >= threshold and g > 1.5)
    fn = sum(1 for s, g in vals if s < threshold and g <= 1.5)
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if tp else 0.0
    return p, r, f1


def sweep(scored: list[tuple[str, float, float]]) -> None:
    vals = [(s, g) for _, s, g in scored]
    print(f"{'threshold':>9} {'P':>6} {'R':>6} {'F1':>6}   (gold <= 1.5 is same story)")
    for t in [x / 100 for x in range(10, 62, 4)]:
        p, r, f1 = pr(vals, t)
        print(f"{t:9.2f} {p:6.2f} {r:6.2f} {f1:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    args = parser.parse_args()
    base = Path(args.corpus) / SAMPLE
    train = load(base / "training_set.csv")
    test = load(base / "testing_set.csv")
    train_ids = {row["pair_id"] for row in train}
    held_out = [row for row in test if row["pair_id"] not in train_ids]
    scored_train = score_rows(train)
    scored_test = score_rows(held_out)
    print("threshold sweep on the training split (where the threshold is chosen):")
    sweep(scored_train)
    print("\nthreshold sweep on the held-out test split (for information only):")
    sweep(scored_test)
    report("training split", scored_train, STORY_THRESHOLD)
    report("test split, held out", scored_test, STORY_THRESHOLD)
    report("both splits (unique pairs)", scored_train + scored_test, STORY_THRESHOLD)


if __name__ == "__main__":
    main()
