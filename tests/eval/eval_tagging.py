"""Score the topic tagger against the labelled set: per-topic and macro P/R/F1. Reads files.

Usage (from the repo root):
    .venv/bin/python tests/eval/eval_tagging.py [--labels PATH] [--rules PATH] [--split test]
        [--errors N] [--shared DIR]

The labelled set holds references and labels only; the texts are read from ../shared (beside
the repo root, or --shared DIR) by tests/topics_data.py and checked against their hashes.
Prints a table per split (train and test unless --split narrows it) and, for tuning, the
false positives and false negatives of the train split with their evidence. Never tune on the
test split: run with --split test only to report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.tag import Taxonomy, TopicScore, parse_taxonomy, score_article  # noqa: E402
from tests.topics_data import LABELLED, LabelledItem, load_labelled  # noqa: E402


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int


def _prf(tp: int, fp: int, fn: int) -> Scores:
    # An empty class (no gold, no prediction) is perfect, not undefined.
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, tp + fn)


def predict(taxonomy: Taxonomy, item: LabelledItem) -> dict[str, TopicScore]:
    scores, _ = score_article(taxonomy, title=item.title, text=item.text, language=item.lang)
    return {s.id: s for s in scores}


def evaluate(
    taxonomy: Taxonomy, items: Iterable[LabelledItem]
) -> tuple[dict[str, Scores], Scores, list[tuple[str, str, str, TopicScore | None]]]:
    """Per-topic scores, the macro average, and the errors (kind, item id, topic, score)."""
    counts = {t: [0, 0, 0] for t in taxonomy.topic_ids}
    errors: list[tuple[str, str, str, TopicScore | None]] = []
    for item in items:
        gold = set(item.topics)
        found = predict(taxonomy, item)
        tagged = {t for t, s in found.items() if s.status == "tagged"}
        for topic in taxonomy.topic_ids:
            if topic in gold and topic in tagged:
                counts[topic][0] += 1
            elif topic in tagged:
                counts[topic][1] += 1
                errors.append(("FP", item.id, topic, found[topic]))
            elif topic in gold:
                counts[topic][2] += 1
                errors.append(("FN", item.id, topic, found.get(topic)))
    per_topic = {t: _prf(*c) for t, c in counts.items()}
    n = len(per_topic)
    macro = Scores(
        sum(s.precision for s in per_topic.values()) / n,
        sum(s.recall for s in per_topic.values()) / n,
        sum(s.f1 for s in per_topic.values()) / n,
        sum(s.support for s in per_topic.values()),
    )
    return per_topic, macro, errors


def macro_f1(taxonomy: Taxonomy, items: Iterable[LabelledItem]) -> float:
    """The macro F1 over the taxonomy's topics (used by the floor test)."""
    return evaluate(taxonomy, items)[1].f1


def _table(title: str, per_topic: dict[str, Scores], macro: Scores, n_items: int) -> str:
    lines = [
        f"## {title} ({n_items} items)",
        "",
        "| topic | P | R | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for topic, s in per_topic.items():
        lines.append(f"| {topic} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} | {s.support} |")
    lines.append(
        f"| **macro** | **{macro.precision:.2f}** | **{macro.recall:.2f}** | **{macro.f1:.2f}** "
        f"| {macro.support} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELLED)
    parser.add_argument("--rules", type=Path, default=ROOT / "config/topics.toml")
    parser.add_argument("--split", choices=["train", "test", "all"], default="all")
    parser.add_argument("--errors", type=int, default=40, help="train errors to list (0: none)")
    parser.add_argument(
        "--shared", type=Path, default=None, help="where the texts are (default: ../shared)"
    )
    args = parser.parse_args(argv)

    taxonomy = parse_taxonomy(args.rules.read_text(encoding="utf-8"), file=str(args.rules))
    items = load_labelled(args.shared, labels=args.labels)
    splits = ["train", "test"] if args.split == "all" else [args.split]
    for split in splits:
        chosen = [i for i in items if i.split == split]
        per_topic, macro, errors = evaluate(taxonomy, chosen)
        print(_table(f"{split} split", per_topic, macro, len(chosen)))
        print()
        if split == "train" and args.errors:
            print(f"### train errors (first {args.errors} of {len(errors)})")
            for kind, item_id, topic, found in errors[: args.errors]:
                if found is None:
                    print(f"- {kind} {item_id} {topic}: no term matched")
                    continue
                evidence = ", ".join(f"{t}×{c}({lang})" for t, lang, c in found.evidence[:6])
                print(
                    f"- {kind} {item_id} {topic}: {found.status} score {found.score:g}/"
                    f"{found.threshold:g}: {evidence}"
                )
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
