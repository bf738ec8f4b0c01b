"""The meeting pair of a report (past a dateline, without the inviter) and summits of other
groupings, on real reports of the development set's train split."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.dedupe.story import (
    GROUPING_PENALTY,
    STORY_THRESHOLD,
    StoryFeatures,
    extract_features,
    story_similarity,
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


@pytest.mark.parametrize(
    "key",
    ["apec-leaders-meeting-2", "apec-leaders-meeting-11"],
    ids=["theo-loi-moi", "nhan-loi-moi"],
)
def test_the_host_who_invited_is_not_half_of_a_meeting_pair(key: str) -> None:
    """A president's trip "theo lời mời của Tổng thống Mỹ Joe Biden" (at the invitation of)
    with "song phương" (bilateral) activities is not the report of a meeting with Biden."""
    row = _train(key)[key]
    features = _features(row)
    assert len(features.people) == 2  # both are named; only the inviter is left out
    assert features.pair == ()


def test_a_summit_of_apec_and_the_leaders_of_asean_are_two_series() -> None:
    """A Vietnamese report of the president's APEC week and one of ASEAN's leaders welcomed
    in Kuala Lumpur two days later share the words of Vietnamese official travel, not the
    event: the head of one names APEC's summit, the other's head names ASEAN and not APEC."""
    rows = _train("apec-leaders-meeting-11", "asean-summit-18")
    apec = _features(rows["apec-leaders-meeting-11"])
    asean = _features(rows["asean-summit-18"])
    assert apec.groupings == ("APEC",)
    assert asean.groupings == ("ASEAN",)
    assert asean.signature == ()  # it names no kind of gathering in its head
    for a, b in ((apec, asean), (asean, apec)):
        result = story_similarity(a, b)
        assert result.score < STORY_THRESHOLD
        assert "gatherings of other groupings: " in result.reasons[0]
        assert f"(x{GROUPING_PENALTY})" in result.reasons[0]


def test_reports_naming_the_same_grouping_are_not_two_series() -> None:
    """Two reports of ASEAN's Kuala Lumpur summit: one head names its summit, the other
    ASEAN's leaders; no penalty."""
    rows = _train("asean-summit-18", "asean-summit-15")
    result = story_similarity(
        _features(rows["asean-summit-15"]), _features(rows["asean-summit-18"])
    )
    assert not any("other groupings" in r for r in result.reasons)


def test_a_meeting_during_a_visit_is_left_to_the_score() -> None:
    """ "Blinken Akhirnya Bertemu Xi Jinping" (Blinken finally meets Xi) on his June 2023
    Beijing visit, against a report of his arrival whose lead does not name Xi: its head names
    no grouping and no meeting of its own, so the pair does not veto; the score links them."""
    rows = _train("us-secstate-china-visit-14", "us-secstate-china-visit-8")
    meeting = _features(rows["us-secstate-china-visit-14"])
    visit = _features(rows["us-secstate-china-visit-8"])
    assert "Xi Jinping" not in visit.people
    assert meeting.pair == ("Blinken", "Xi Jinping")
    assert visit.groupings == ()
    assert visit.pair == ()
    result = story_similarity(meeting, visit)
    assert not any("one reports the meeting" in r for r in result.reasons)
    assert result.score >= STORY_THRESHOLD
