"""Evaluate the near-duplicate layer on web-style copies of real articles; reads corpus files.

Usage: .venv/bin/python tests/eval/eval_near.py [CORPUS_DIR]   (default: ../shared/corpus)

Originals: the article bodies of the scrapinghub extraction benchmark (English news) plus
SemEval-2022 sample texts in several languages (>= 1,500 characters). Each original is copied
the way the web copies: boilerplate added, boilerplate (first and last paragraph) removed, a
teaser (first 25 % of the words), a truncation (first 60 %), light copy-editing, paragraphs
reordered, and boilerplate plus copy-editing. Recall: the copy finds its original. False
positives: a query matching any *other* original, and unrelated SemEval pairs (gold >= 3.5).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from monitor.dedupe.near import (  # noqa: E402
    CONTAINMENT_THRESHOLD,
    JACCARD_THRESHOLD,
    NearIndex,
    sign_text,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HEADER = [
    "Home › News › World",
    "Subscribe | Sign in | Newsletter",
    "Share on Facebook Share on Twitter Share on Telegram Email",
]
FOOTER = [
    "Related articles: Markets rally as oil prices fall; Election results by region",
    "Tags: politics, economy, world",
    "© 2024 Example Media Group. All rights reserved. Terms of use | Privacy policy | Cookies",
]
EDITS = {"said": "stated", "says": "states", "also": "further", "and": "&", "the": "the",
         "percent": "%", "however": "but", "told": "informed", "would": "will"}  # fmt: skip


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


def add_boilerplate(text: str, rng: random.Random) -> str:
    return "\n".join([*HEADER, text, *FOOTER])


def drop_boilerplate(text: str, rng: random.Random) -> str:
    paras = paragraphs(text)
    return "\n".join(paras[1:-1]) if len(paras) > 3 else " ".join(text.split()[10:-10])


def teaser(text: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(words[: len(words) // 4]) + " … Read more"


def truncated(text: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(words[: len(words) * 3 // 5])


def copy_edit(text: str, rng: random.Random) -> str:
    """Light editing: some words swapped for synonyms, ~3 % of words dropped, quotes changed."""
    out = []
    for word in text.replace("“", '"').replace("”", '"').split(" "):
        key = word.lower().strip(".,")
        if key in EDITS and rng.random() < 0.5:
            word = word.replace(key, EDITS[key])
        if rng.random() < 0.03:
            continue
        out.append(word)
    return " ".join(out)


def reorder(text: str, rng: random.Random) -> str:
    paras = paragraphs(text)
    if len(paras) < 3:
        sentences = text.split(". ")
        rng.shuffle(sentences)
        return ". ".join(sentences)
    rng.shuffle(paras)
    return "\n".join(paras)


def boilerplate_and_edit(text: str, rng: random.Random) -> str:
    return add_boilerplate(copy_edit(text, rng), rng)


TRANSFORMS: dict[str, Callable[[str, random.Random], str]] = {
    "boilerplate-added": add_boilerplate,
    "boilerplate-removed": drop_boilerplate,
    "teaser-25%": teaser,
    "truncated-60%": truncated,
    "copy-edited": copy_edit,
    "paragraphs-reordered": reorder,
    "boilerplate+edited": boilerplate_and_edit,
}


def load_originals(corpus: Path, rng: random.Random) -> list[tuple[str, str]]:
    bench = json.loads((corpus / "article-extraction-benchmark" / "ground-truth.json").read_text())
    texts = [
        (f"aeb:{key}", value["articleBody"])
        for key, value in sorted(bench.items())
        if len(value.get("articleBody", "")) >= 1500
    ]
    seen: set[str] = set()
    sem: list[tuple[str, str]] = []
    with (corpus / "semeval2022-task8-hfl-sample" / "training_set.csv").open(
        encoding="utf-8"
    ) as fh:
        for row in csv.DictReader(fh):
            for side in ("1", "2"):
                text = row[f"text{side}"]
                if len(text) >= 1500 and text[:200] not in seen:
                    seen.add(text[:200])
                    sem.append((f"semeval:{row[f'lang{side}']}:{len(sem)}", text))
    rng.shuffle(sem)
    return texts + sem[:300]


def unrelated_pairs(corpus: Path) -> list[tuple[str, str]]:
    pairs = []
    with (corpus / "semeval2022-task8-hfl-sample" / "testing_set.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if float(row["Overall"]) >= 3.5:
                pairs.append((row["text1"], row["text2"]))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    args = parser.parse_args()
    corpus = Path(args.corpus)
    rng = random.Random(20240801)
    originals = load_originals(corpus, rng)
    index = NearIndex()
    for key, text in originals:
        sig, size = sign_text(text)
        index.add(key, sig, kind="item", ref=key, source="origin", at=T0, size=size)
    print(
        f"originals indexed: {len(index)} of {len(originals)} "
        f"(thresholds: Jaccard {JACCARD_THRESHOLD}, containment {CONTAINMENT_THRESHOLD})"
    )
    hits: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    methods: Counter[tuple[str, str]] = Counter()
    scores: dict[str, list[float]] = {name: [] for name in TRANSFORMS}
    for name, transform in TRANSFORMS.items():
        for key, text in originals:
            sig, size = sign_text(transform(text, rng))
            match = index.query(sig, source="copier", size=size)
            if match is None:
                continue
            if match.ref == key:
                hits[name] += 1
                scores[name].append(match.similarity)
                methods[(name, match.method)] += 1
            else:
                wrong[name] += 1
    n = len(originals)
    print(f"\n{'transformation':22} {'recall':>7} {'wrong':>6} {'min':>5} {'p10':>5}  method")
    for name in TRANSFORMS:
        used = ", ".join(f"{m.split('-')[1]} {c}" for (t, m), c in methods.items() if t == name)
        got = sorted(scores[name]) or [float("nan")]
        low, p10 = got[0], got[len(got) // 10]
        print(f"{name:22} {hits[name] / n:7.3f} {wrong[name]:6d} {low:5.2f} {p10:5.2f}  {used}")
    total = sum(hits.values()) / (n * len(TRANSFORMS))
    print(f"{'all':22} {total:7.3f} {sum(wrong.values()):6d}")

    # Unrelated originals against each other: every ordered pair is a chance to be wrong.
    false_hits = 0
    for key, text in originals:
        sig, size = sign_text(text)
        match = index.query(sig, source="copier", size=size, exclude=key)
        false_hits += match is not None
    pairs = n * (n - 1)
    print(
        f"\noriginal vs other originals: {false_hits} queries matched something else "
        f"({pairs} ordered pairs; FPR per pair {false_hits / pairs:.2e})"
    )
    unrelated = unrelated_pairs(corpus)
    fp = 0
    for a, b in unrelated:
        pair_index = NearIndex()
        sig, size = sign_text(a)
        pair_index.add("a", sig, kind="item", ref="a", source="s1", at=T0, size=size)
        sig, size = sign_text(b)
        fp += pair_index.query(sig, source="s2", size=size) is not None
    print(
        f"SemEval unrelated pairs (gold >= 3.5): {fp} of {len(unrelated)} matched "
        f"(FPR {fp / max(1, len(unrelated)):.4f})"
    )


if __name__ == "__main__":
    main()
