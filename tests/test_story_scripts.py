"""Names, places and gatherings across scripts and languages (Arabic script, Devanagari,
Japanese; places left behind, a city inside an organisation's name), on real reports of the
development set's train split."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.dedupe.story import (
    STORY_THRESHOLD,
    extract_features,
    story_similarity,
)
from tests.test_story_pair import _features, _train

AT = datetime(2031, 10, 23, 12, tzinfo=UTC)


def test_names_in_arabic_script_are_read() -> None:
    """An Urdu report of Modi and Xi in Kazan ("شی جن پھنگ", "نریندرا مودی", "کازان",
    "برکس", "ملاقات") names what an English report of the meeting names."""
    rows = _train("india-china-leaders-meeting-7", "india-china-leaders-meeting-8")
    urdu = _features(rows["india-china-leaders-meeting-7"])
    other = _features(rows["india-china-leaders-meeting-8"])
    assert {"Xi Jinping", "Modi", "Kazan", "BRICS"} <= set(urdu.entities)
    assert urdu.pair == ("Modi", "Xi Jinping")
    assert urdu.signature == ("kind:bilateral", "org:BRICS")
    assert story_similarity(urdu, other).score >= STORY_THRESHOLD


def test_a_devanagari_word_is_one_word_with_its_vowel_signs() -> None:
    """Hindi's vowel signs and virama are marks: "ब्रिक्स" (BRICS) and "कज़ान" (Kazan) are
    read as words, as the gazetteer writes them."""
    features = extract_features(
        "कज़ान में ब्रिक्स शिखर सम्मेलन से इतर मोदी और शी जिनपिंग की मुलाकात",
        "प्रधानमंत्री नरेंद्र मोदी ने कज़ान में राष्ट्रपति शी जिनपिंग से मुलाकात की।",
        datetime(2031, 10, 23, 12, tzinfo=UTC),
        "hi",
    )
    assert {"BRICS", "Kazan", "Modi", "Xi Jinping"} <= set(features.entities)
    assert features.pair == ("Modi", "Xi Jinping")


def test_a_japanese_summit_has_the_signature_of_the_english_reports() -> None:
    """ "日本とASEAN特別首脳会議": the summit word and the partner inside unspaced text give the
    signature of "ASEAN-Japan Commemorative Summit" in English."""
    rows = _train("asean-japan-summit-5", "asean-japan-summit-6")
    japanese = _features(rows["asean-japan-summit-5"])
    english = _features(rows["asean-japan-summit-6"])
    assert japanese.signature == ("kind:summit", "org:ASEAN", "with:Japan")
    assert japanese.signature == english.signature
    reasons = story_similarity(japanese, english).reasons
    assert "same event signature: summit of ASEAN–Japan in Tokyo (+0.15)" in reasons


def test_the_place_a_delegation_leaves_is_not_the_venue() -> None:
    """ "Chủ tịch nước Lương Cường sáng nay rời Hà Nội, lên đường tham dự Tuần lễ cấp cao APEC"
    (left Hanoi for APEC week): Hanoi is not a place of the event, so the report is not set
    apart from one of the Gyeongju meetings as held in another city."""
    rows = _train("apec-leaders-meeting-12", "apec-leaders-meeting-18")
    departure = _features(rows["apec-leaders-meeting-12"])
    summit = _features(rows["apec-leaders-meeting-18"])
    assert "Hanoi" not in departure.places
    assert "Gyeongju" in summit.places
    result = story_similarity(departure, summit)
    assert not any(r.startswith("different places") for r in result.reasons)
    assert result.score >= STORY_THRESHOLD
    # A city the head also names as the venue stays a place of it.
    left = extract_features("Modi left Kazan after the BRICS summit in Kazan", "", AT, "en")
    assert left.places == ("Kazan",)


def test_a_common_word_and_an_organisation_s_name_are_not_cities() -> None:
    """Russian "ряд" (a number of) is not Riyadh; "саммит Шанхайской организации
    сотрудничества" and Bulgarian "Шанхайската организация за сътрудничество" name the SCO,
    whose summit was in Tianjin, not the city of Shanghai."""
    rows = _train("russia-china-leaders-meeting-11", "india-china-leaders-meeting-10")
    russian = _features(rows["russia-china-leaders-meeting-11"])
    bulgarian = _features(rows["india-china-leaders-meeting-10"])
    assert russian.places == ("Moscow", "Tianjin")
    assert "Riyadh" not in russian.entities
    assert bulgarian.places == ("Tianjin",)
    assert "SCO" in russian.entities
    assert "SCO" in bulgarian.entities


def test_an_abbreviated_partner_next_to_the_grouping_is_read() -> None:
    """Indonesian "KTT ASEAN- AS" (Amerika Serikat) and English "U.S.-ASEAN Special Summit" name
    the partner that Russian "саммита США - АСЕАН" names: one signature in three languages."""
    rows = _train("asean-us-summit-9", "asean-us-summit-5", "asean-us-summit-14")
    indonesian = _features(rows["asean-us-summit-9"])
    english = _features(rows["asean-us-summit-5"])
    russian = _features(rows["asean-us-summit-14"])
    wanted = ("kind:summit", "org:ASEAN", "with:United States")
    assert indonesian.signature == english.signature == russian.signature == wanted
    reasons = story_similarity(indonesian, russian).reasons
    assert "same event signature: summit of ASEAN–United States in Washington (+0.15)" in reasons


def test_a_preview_eight_days_before_the_reports_of_the_event_can_join_it() -> None:
    """The guideline counts previews published up to eight days before a meeting: "Chủ tịch nước
    Lương Cường sẽ dự Tuần lễ cấp cao APEC" (24 October) and a report of the Gyeongju leaders'
    meeting on 1 November are compared, not refused for their dates; nine days still are."""
    rows = _train("apec-leaders-meeting-11", "apec-leaders-meeting-18")
    preview = _features(rows["apec-leaders-meeting-11"])
    report = _features(rows["apec-leaders-meeting-18"])
    result = story_similarity(preview, report)
    assert not any("days apart" in r for r in result.reasons)
    assert result.score >= STORY_THRESHOLD
    assert report.published_at is not None
    later = replace(report, published_at=report.published_at + timedelta(days=1))
    assert "published 9 days apart" in story_similarity(preview, later).reasons[0]
