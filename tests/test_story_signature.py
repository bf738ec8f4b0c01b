"""Story layer: the event signature (grouping, partner, kind of gathering, venue or number)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.dedupe.story import (
    SIGNATURE_BONUS,
    STORY_THRESHOLD,
    StoryIndex,
    extract_features,
    features_from_json,
    features_to_json,
    story_similarity,
)

AT = datetime(2031, 8, 22, 12, tzinfo=UTC)

# One invented summit reported in three languages, with few words in common.
SUMMIT_EN = (
    "BRICS leaders gather in Johannesburg",
    "Cyril Ramaphosa opened the summit of the BRICS group in Johannesburg on Tuesday, with Lula, "
    "Modi and Xi Jinping discussing trade in national currencies and new members.",
)
SUMMIT_RU = (
    "Саммит БРИКС открылся в Йоханнесбурге",
    "Сергей Лавров представляет Россию; главы государств обсуждают расчеты в национальных "
    "валютах и расширение состава, сообщает ТАСС.",
)
SUMMIT_VI = (
    "Khai mạc Hội nghị thượng đỉnh BRICS tại Johannesburg",
    "Thủ tướng Phạm Minh Chính dự với tư cách khách mời của nước chủ nhà Nam Phi, theo TTXVN.",
)


def _features(pair: tuple[str, str], language: str, at: datetime = AT):  # type: ignore[no-untyped-def]
    return extract_features(pair[0], pair[1], at, language)


def test_reports_of_one_summit_in_other_languages_share_its_signature() -> None:
    en, ru, vi = _features(SUMMIT_EN, "en"), _features(SUMMIT_RU, "ru"), _features(SUMMIT_VI, "vi")
    assert en.signature == ru.signature == vi.signature == ("kind:summit", "org:BRICS")
    for other in (ru, vi):
        result = story_similarity(en, other)
        assert "same event signature: summit of BRICS in Johannesburg (+0.15)" in result.reasons
        assert result.score >= STORY_THRESHOLD
        # Without the signature's part the pair would not reach the threshold.
        assert result.score - SIGNATURE_BONUS < STORY_THRESHOLD


def test_the_signature_needs_the_venue_or_the_number() -> None:
    """The same grouping and kind of gathering elsewhere is no evidence of one event."""
    en = _features(SUMMIT_EN, "en")
    other = _features(("Саммит БРИКС открылся в Казани", SUMMIT_RU[1].replace("два", "три")), "ru")
    assert other.signature == en.signature
    result = story_similarity(en, other)
    assert not any(r.startswith("same event signature") for r in result.reasons)
    assert result.score < STORY_THRESHOLD


def test_a_grouping_s_meetings_with_two_partners_have_two_signatures() -> None:
    """ASEAN's summits with India and with Japan, in one city on the same days."""
    india = _features(
        (
            "ASEAN-India Summit opens in Jakarta",
            "Leaders met in Jakarta for the ASEAN-India Summit on maritime cooperation.",
        ),
        "en",
    )
    japan = _features(
        (
            "KTT ASEAN-Jepang dibuka di Jakarta",
            "Para pemimpin bertemu di Jakarta untuk KTT ASEAN-Jepang.",
        ),
        "id",
    )
    assert india.signature == ("kind:summit", "org:ASEAN", "with:India")
    assert japan.signature == ("kind:summit", "org:ASEAN", "with:Japan")
    result = story_similarity(india, japan)
    assert not any(r.startswith("same event signature") for r in result.reasons)


def test_a_bilateral_on_the_sidelines_is_another_kind_of_gathering() -> None:
    talks = _features(
        (
            "Modi and Xi hold talks on the sidelines of the BRICS summit in Johannesburg",
            "The two leaders held talks in Johannesburg on the border.",
        ),
        "en",
    )
    assert talks.signature[0] == "kind:bilateral"
    result = story_similarity(talks, _features(SUMMIT_EN, "en"))
    assert not any(r.startswith("same event signature") for r in result.reasons)


def test_the_signature_survives_the_store_and_is_absent_from_older_rows() -> None:
    en = _features(SUMMIT_EN, "en")
    assert features_from_json(features_to_json(en)) == en
    stored = features_to_json(en).replace(',"signature":["kind:summit","org:BRICS"]', "")
    assert "signature" not in stored
    assert features_from_json(stored).signature == ()


def test_explain_names_the_signature_that_linked_two_reports() -> None:
    index = StoryIndex()
    first = index.assign("en", _features(SUMMIT_EN, "en"), AT)
    later = AT + timedelta(days=1)
    match = index.assign("ru", _features(SUMMIT_RU, "ru", later), later)
    assert match.story_id == first.story_id
    assert "same event signature: summit of BRICS in Johannesburg" in match.explain()


def test_a_vietnamese_conference_naming_two_people_is_not_their_meeting() -> None:
    """ "Hội nghị" (conference) is not "hội đàm" (talks): one syllable is not a word of meeting."""
    summit = extract_features(
        "Thủ tướng Phạm Minh Chính dự Hội nghị thượng đỉnh BRICS",
        "Tổng thống Nam Phi Cyril Ramaphosa đón các nhà lãnh đạo tại Johannesburg.",
        AT,
        "vi",
    )
    talks = extract_features(
        "Thủ tướng Phạm Minh Chính hội đàm với Tổng thống Cyril Ramaphosa",
        "Hai nhà lãnh đạo hội đàm tại Johannesburg.",
        AT,
        "vi",
    )
    assert summit.pair == ()
    assert talks.pair == ("Pham Minh Chinh", "Ramaphosa")


def test_a_dateline_is_not_the_venue_when_the_head_names_another_place() -> None:
    """ "JAKARTA –" is where the outlet is; the summit is in Kazan."""
    from_jakarta = extract_features(
        "",
        "Bisnis.com, JAKARTA – Menteri Luar Negeri tiba di Kazan untuk menghadiri KTT BRICS.",
        AT,
        "id",
    )
    other = extract_features(
        "",
        "JAKARTA – Presiden menghadiri KTT BRICS di Johannesburg bersama para pemimpin.",
        AT,
        "id",
    )
    assert from_jakarta.places == ("Jakarta", "Kazan")
    assert from_jakarta.dateline == ("Jakarta",)
    assert from_jakarta.signature == other.signature == ("kind:summit", "org:BRICS")
    result = story_similarity(from_jakarta, other)
    assert not any(r.startswith("same event signature") for r in result.reasons)
    kazan = extract_features("BRICS summit opens", "KAZAN, 22 Oct – Leaders met.", AT, "en")
    assert kazan.dateline == ("Kazan",)  # the only place named: kept as the venue
    assert "same event signature: summit of BRICS in Kazan (+0.15)" in (
        story_similarity(from_jakarta, kazan).reasons
    )


def test_the_partner_is_read_on_either_side_of_the_dash() -> None:
    """ "ASEAN-Russia", "Russia-ASEAN", "Россия – АСЕАН" and "ASEAN-Nga" are one partner."""
    heads = (
        "ASEAN-Russia summit opens in Sochi",
        "Russia-ASEAN summit opens in Sochi",
        "В Сочи открылся саммит Россия – АСЕАН",
        "Khai mạc Hội nghị cấp cao ASEAN-Nga",
    )
    signatures = {extract_features(head, "", AT, None).signature for head in heads}
    assert signatures == {("kind:summit", "org:ASEAN", "with:Russia")}


def test_xi_alone_names_xi_jinping_but_a_roman_eleven_does_not() -> None:
    """ "Biden and Xi meet" is the report of their meeting; "XI саммит" is the 11th summit."""
    talks = extract_features("Biden and Xi meet in Lima", "They held talks.", AT, "en")
    assert talks.pair == ("Biden", "Xi Jinping")
    assert "Xi Jinping" not in extract_features("XI саммит БРИКС", "", AT, "ru").entities


def test_another_gathering_of_the_same_kind_counts_against() -> None:
    """ASEAN's own summit and the East Asia Summit of the same week in one city."""
    asean = extract_features(
        "ASEAN Summit opens in Kuala Lumpur",
        "Leaders of the member states opened the ASEAN Summit in Kuala Lumpur.",
        AT,
        "en",
    )
    eas = extract_features(
        "East Asia Summit held in Kuala Lumpur",
        "Leaders of ASEAN and its partners met at the East Asia Summit in Kuala Lumpur.",
        AT,
        "en",
    )
    assert asean.signature == ("kind:summit", "org:ASEAN")
    assert eas.signature == ("kind:summit", "org:ASEAN", "org:East Asia Summit")
    result = story_similarity(asean, eas)
    assert (
        "other gatherings of one kind: summit of ASEAN vs summit of ASEAN, East Asia Summit (x0.8)"
        in result.reasons
    )
    assert not any(r.startswith("same event signature") for r in result.reasons)


def test_names_inside_japanese_text_are_the_gazetteer_s() -> None:
    """The set's Japanese report of the Tokyo ASEAN-Japan summit (train) names ASEAN in Latin
    letters inside a run of kana and kanji, and Japan, Tokyo and Kishida in kanji: the names
    an English report of the summit shares with it, enough to link the two."""
    japanese = extract_features(
        "日本とASEAN特別首脳会議 きょう開幕",
        "日本とASEAN=東南アジア諸国連合の特別首脳会議が、16日から東京で開かれます。"
        "岸田総理大臣としては、国際情勢が厳しさを増す中、経済や安全保障など、幅広い分野での"
        "連携を強化し、地域の平和と安定につなげていきたい考えです。",
        datetime(2023, 12, 16, 12, tzinfo=UTC),
        "ja",
    )
    english = extract_features(
        "",
        "TOKYO – Asean is the linchpin of a free and open Indo-Pacific, and hence an important "
        "partner for Japan to overcome the world’s compound crises, said Japanese Prime "
        "Minister Fumio Kishida on Dec 17. Speaking to the media after a special summit to "
        "mark the golden jubilee of Japan-Asean relations, he said their spirit as “trusted "
        "partners” has been forged over the last 50 years and will be the foundation of their "
        "cooperation going forward.",
        datetime(2023, 12, 17, 12, tzinfo=UTC),
        "en",
    )
    assert {"ASEAN", "Japan", "Tokyo", "Kishida"} <= set(japanese.entities)
    assert "Tokyo" in japanese.places
    assert story_similarity(japanese, english).score >= STORY_THRESHOLD
