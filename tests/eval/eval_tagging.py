"""Score the topic tagger against a labelled set: P/R/F1 per topic and per language. Reads files.

Usage (from the repo root):
    .venv/bin/python tests/eval/eval_tagging.py [--set news|labelled] [--split NAME]
        [--errors N] [--rules PATH] [--labels PATH] [--shared DIR]

Two labelled sets live in tests/data/topics/ (GUIDELINE.md):
- `news` (news.jsonl, the default): real news texts in en, ru, vi and id, labelled under
  guideline version 2 (a passing mention or a list line does not count), split
  train / dev / test1 / test2. Rules are tuned on train, dev and test1 (the first test
  split, scored three times and then folded into the tuning data); test2 (a fresh batch
  collected and labelled before the tagger ran on it) is only reported.
- `labelled` (labelled.jsonl): the first set, guideline version 1 (list lines counted),
  train / test; its texts are read from ../shared (or --shared DIR) by tests/topics_data.py.

For each split: a table per topic (P, R, F1, support), one per language (micro P/R/F1 and
macro F1 over the topics that occur in it), the macro average over the topics that occur in
the split and the micro average over all decisions. `--errors N` lists the false positives
and negatives of the tuning splits with their evidence, for tuning; never those of test2
(nor of the labelled set's test split).
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
from tests.topics_data import (  # noqa: E402
    LABELLED,
    NEWS,
    LabelledItem,
    load_labelled,
    load_news,
)

TUNING_SPLITS = ("train", "dev", "test1", "train2")
REPORT_SPLITS = ("test", "test2")  # never tuned on: no errors are listed for them


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int  # gold positives
    predicted: int = 0


def _prf(tp: int, fp: int, fn: int) -> Scores:
    # An empty class (no gold, no prediction) is perfect, not undefined.
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, tp + fn, tp + fp)


def predict(taxonomy: Taxonomy, item: LabelledItem) -> dict[str, TopicScore]:
    scores, _ = score_article(taxonomy, title=item.title, text=item.text, language=item.lang)
    return {s.id: s for s in scores}


@dataclass(frozen=True)
class Report:
    per_topic: dict[str, Scores]
    macro: Scores  # over the topics with at least one gold positive
    micro: Scores  # over every (item, topic) decision
    per_language: dict[str, tuple[Scores, float]]  # lang -> (micro, macro F1)
    errors: list[tuple[str, str, str, TopicScore | None]]  # kind, item id, topic, score
    items: int


def _counts(
    taxonomy: Taxonomy, items: Iterable[LabelledItem]
) -> tuple[dict[str, dict[str, list[int]]], list[tuple[str, str, str, TopicScore | None]], int]:
    """lang -> topic -> [tp, fp, fn]; the errors; the number of items."""
    counts: dict[str, dict[str, list[int]]] = {}
    errors: list[tuple[str, str, str, TopicScore | None]] = []
    n = 0
    for item in items:
        n += 1
        gold = set(item.topics)
        found = predict(taxonomy, item)
        tagged = {t for t, s in found.items() if s.status == "tagged"}
        by_topic = counts.setdefault(item.lang, {t: [0, 0, 0] for t in taxonomy.topic_ids})
        for topic in taxonomy.topic_ids:
            if topic in gold and topic in tagged:
                by_topic[topic][0] += 1
            elif topic in tagged:
                by_topic[topic][1] += 1
                errors.append(("FP", item.id, topic, found[topic]))
            elif topic in gold:
                by_topic[topic][2] += 1
                errors.append(("FN", item.id, topic, found.get(topic)))
    return counts, errors, n


def _average(per_topic: dict[str, Scores]) -> Scores:
    occurring = [s for s in per_topic.values() if s.support]
    if not occurring:
        return Scores(1.0, 1.0, 1.0, 0)
    n = len(occurring)
    return Scores(
        sum(s.precision for s in occurring) / n,
        sum(s.recall for s in occurring) / n,
        sum(s.f1 for s in occurring) / n,
        sum(s.support for s in occurring),
        sum(s.predicted for s in occurring),
    )


def _sum(tables: Iterable[dict[str, list[int]]], topics: Iterable[str]) -> dict[str, list[int]]:
    total = {t: [0, 0, 0] for t in topics}
    for table in tables:
        for topic, (tp, fp, fn) in table.items():
            total[topic][0] += tp
            total[topic][1] += fp
            total[topic][2] += fn
    return total


def _micro(table: dict[str, list[int]]) -> Scores:
    return _prf(*(sum(c[i] for c in table.values()) for i in range(3)))


def evaluate(taxonomy: Taxonomy, items: Iterable[LabelledItem]) -> Report:
    """Per-topic, macro, micro and per-language scores, and the errors."""
    counts, errors, n = _counts(taxonomy, items)
    total = _sum(counts.values(), taxonomy.topic_ids)
    per_topic = {t: _prf(*c) for t, c in total.items()}
    per_language = {
        lang: (_micro(table), _average({t: _prf(*c) for t, c in table.items()}).f1)
        for lang, table in sorted(counts.items())
    }
    return Report(per_topic, _average(per_topic), _micro(total), per_language, errors, n)


def macro_f1(taxonomy: Taxonomy, items: Iterable[LabelledItem]) -> float:
    """The macro F1 over the topics that occur (used by the floor tests)."""
    return evaluate(taxonomy, items).macro.f1


def _table(title: str, report: Report) -> str:
    lines = [
        f"## {title} ({report.items} items)",
        "",
        "| topic | P | R | F1 | support | tagged |",
        "|---|---|---|---|---|---|",
    ]
    for topic, s in report.per_topic.items():
        if s.support or s.predicted:
            lines.append(
                f"| {topic} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} | {s.support} "
                f"| {s.predicted} |"
            )
    m, u = report.macro, report.micro
    lines.append(
        f"| **macro** (topics that occur) | **{m.precision:.2f}** | **{m.recall:.2f}** "
        f"| **{m.f1:.2f}** | {m.support} | |"
    )
    lines.append(
        f"| **micro** | **{u.precision:.2f}** | **{u.recall:.2f}** | **{u.f1:.2f}** "
        f"| {u.support} | {u.predicted} |"
    )
    lines += ["", "| language | P (micro) | R (micro) | F1 (micro) | F1 (macro) | support |"]
    lines.append("|---|---|---|---|---|---|")
    for lang, (s, macro) in report.per_language.items():
        lines.append(
            f"| {lang} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} | {macro:.2f} "
            f"| {s.support} |"
        )
    return "\n".join(lines)


def _errors(report: Report, limit: int, split: str) -> list[str]:
    lines = [f"### {split} errors (first {limit} of {len(report.errors)})"]
    for kind, item_id, topic, found in report.errors[:limit]:
        if found is None:
            lines.append(f"- {kind} {item_id} {topic}: no term matched")
            continue
        evidence = ", ".join(
            f"{t}×{c}({lang}{f', {p} passing' if p else ''})"
            for (t, lang, c), p in zip(
                found.evidence, found.passing or (0,) * len(found.evidence), strict=True
            )
        )
        lines.append(
            f"- {kind} {item_id} {topic}: {found.status} score {found.score:g}/"
            f"{found.threshold:g}: {evidence}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["news", "labelled"], default=None)
    parser.add_argument("--labels", type=Path, default=None, help="the labelled file")
    parser.add_argument("--rules", type=Path, default=ROOT / "config/topics.toml")
    parser.add_argument(
        "--split", default="all", help="a split name, tune (train+dev+test1), train+dev or all"
    )
    parser.add_argument("--errors", type=int, default=0, help="tuning-split errors to list")
    parser.add_argument(
        "--shared", type=Path, default=None, help="labelled set: where the texts are"
    )
    args = parser.parse_args(argv)

    which = args.set or ("news" if NEWS.exists() else "labelled")
    taxonomy = parse_taxonomy(args.rules.read_text(encoding="utf-8"), file=str(args.rules))
    if which == "news":
        items = load_news(args.labels or NEWS)
    else:
        items = load_labelled(args.shared, labels=args.labels or LABELLED)
    present = list(dict.fromkeys(sorted({i.split for i in items}, key=_split_order)))
    splits = present if args.split == "all" else [args.split]
    for split in splits:
        wanted = _splits(split)
        chosen = [i for i in items if i.split in wanted]
        report = evaluate(taxonomy, chosen)
        print(_table(f"{which}: {split} split", report))
        print()
        if args.errors and not wanted & set(REPORT_SPLITS):
            print("\n".join(_errors(report, args.errors, split)))
            print()
    return 0


def _splits(name: str) -> set[str]:
    """The splits a --split name covers: "tune" is every tuning split, "a+b" a union."""
    if name == "tune":
        return set(TUNING_SPLITS)
    return set(name.split("+"))


def _split_order(split: str) -> tuple[int, str]:
    order = {"train": 0, "dev": 1, "test": 2, "test1": 2, "train2": 3, "test2": 4}
    return (order.get(split, 3), split)


if __name__ == "__main__":
    raise SystemExit(main())
