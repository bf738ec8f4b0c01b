"""The meeting pair of a report, read past a dateline, on real reports of the development
set's train split."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.dedupe.story import (
    StoryFeatures,
    extract_features,
)

DATA = Path(__file__).resolve().parent / "data" / "stories" / "recurring.jsonl"


def _train(*ids: str) -> dict[str, dict[str, str]]:
    with DATA.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    out = {r["id"]: r for r in rows if r["id"] in ids}
    assert all(out[i]["split"] == "train" for i in ids)
    return out


def _features(row: dict[str, str]) -> StoryFeatures:
    at = datetime.fromisoformat(row["published_at"]).replace(hour=12, tzinfo=UTC)
    return extract_features(row["title"], row["text"], at, row["language"])


@pytest.mark.parametrize(
    ("key", "pair"),
    [
        ("russia-china-leaders-meeting-11", ("Putin", "Xi Jinping")),
        ("india-china-leaders-meeting-3", ("Modi", "Xi Jinping")),
    ],
    ids=["ria-novosti", "tass"],
)
def test_the_pair_is_read_in_the_first_sentence_after_a_dateline_ending_in_a_full_stop(
    key: str, pair: tuple[str, ...]
) -> None:
    """ "МОСКВА, 2 сен - РИА Новости." and "KAZAN, October 22. /TASS/." are datelines, not
    the lead's first sentence: the meeting is named in the sentence after them."""
    assert _features(_train(key)[key]).pair == pair
