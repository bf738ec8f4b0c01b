"""Tests for topic and facet tagging (monitor.tag): matching, rules, errors, quality floor."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from monitor.errors import ConfigError
from monitor.models import TopicTag
from monitor.tag import (
    Taxonomy,
    explain_scores,
    explain_tag,
    normalise_text,
    parse_taxonomy,
    score_article,
    tag_article,
)
from tests.topics_data import load_labelled, load_news, shared_dir

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "config" / "topics.toml"
LABELLED = ROOT / "tests" / "data" / "topics" / "labelled.jsonl"

EXPECTED_IDS = (
    "diplomacy",
    "regional-architecture",
    "counter-terrorism",
    "arms-control",
    "ict-security",
    "trade-investment",
    "energy",
    "digital-tech",
    "science-education",
    "health",
    "disaster-response",
    "environment",
    "agriculture-food",
    "eurasian-integration",
    "maritime-security",
    "culture-tourism",
)

# A small rule file for matching behaviour, independent of the shipped taxonomy's tuning.
SMALL = """
[settings]
threshold = 4
min_terms = 1

[sets]
cooperation = ["cooperation", "сотрудничеств*"]

[topics.people]
terms.ru = [{ term = "Лавров*", weight = 2 }, { term = "министр* иностранн* дел", weight = 3 }]
terms.en = [{ term = "foreign minister", weight = 3 }]
terms.vi = [{ term = "Bộ trưởng Ngoại giao", weight = 3 }]
terms.id = [{ term = "kerja sama", weight = 3 }, { term = "kerjasama", weight = 3 },
            { term = "pertemuan", weight = 3 }]

[topics.guarded]
terms.en = [{ term = "summit", weight = 3 }]
all = [["ASEAN", "АСЕАН"]]
none = ["G20"]

[topics.near-only]
terms.en = [{ term = "energy", weight = 1 }]
near = [{ terms = ["energy", "@cooperation"], within = 3, weight = 3 }]
"""


@pytest.fixture(scope="module")
def shipped() -> Taxonomy:
    return parse_taxonomy(RULES.read_text(encoding="utf-8"), file=str(RULES))


@pytest.fixture(scope="module")
def small() -> Taxonomy:
    return parse_taxonomy(SMALL, file="small.toml")


def _tagged(
    taxonomy: Taxonomy, text: str, language: str | None = None, title: str = ""
) -> set[str]:
    tags = tag_article(taxonomy, title=title, text=text, language=language)
    return {t.id for t in tags.topics}


def _evidence(taxonomy: Taxonomy, topic: str, text: str, language: str | None) -> dict[str, int]:
    scores, _ = score_article(taxonomy, title="", text=text, language=language)
    found = {s.id: s for s in scores}
    return {term: count for term, _, count in found[topic].evidence} if topic in found else {}


def test_shipped_taxonomy_parses_with_exactly_the_16_ids_in_order(shipped: Taxonomy) -> None:
    assert shipped.topic_ids == EXPECTED_IDS


def test_every_shipped_topic_has_a_short_chip_label(shipped: Taxonomy) -> None:
    shorts = [t.short for t in shipped.topics]
    assert all(0 < len(s) <= 20 for s in shorts), shorts
    assert len(set(shorts)) == len(shorts)
    assert all(len(t.label) >= len(t.short) for t in shipped.topics)


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("Лавров", True),
        ("Лаврова", True),
        ("Лаврову", True),
        ("Лавровым", True),
        ("ЛАВРОВ", True),
        ("Лавровишневый", False),  # more letters than a word ending
        ("Длавров", False),  # must start at a word start
    ],
    ids=["nom", "gen", "dat", "instr", "upper", "too-long", "inside-word"],
)
def test_wildcard_matches_word_endings_only(small: Taxonomy, text: str, matches: bool) -> None:
    assert ("Лавров*" in _evidence(small, "people", f"Сказал {text} сегодня.", "ru")) is matches


@pytest.mark.parametrize(
    "text",
    ["министра иностранных дел", "министр иностранных дел", "Министром Иностранных Дел"],
    ids=["gen", "nom", "case"],
)
def test_wildcards_inside_a_phrase(small: Taxonomy, text: str) -> None:
    assert _evidence(small, "people", f"Встреча с {text} России.", "ru") == {
        "министр* иностранн* дел": 1
    }


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("kerja sama ekonomi", "kerja sama"),
        ("kerjasama ekonomi", "kerjasama"),
        ("kerja-sama ekonomi", "kerja sama"),
        ("kerja\nsama ekonomi", "kerja sama"),
        ("dalam pertemuan itu", "pertemuan"),
    ],
    ids=["two-words", "one-word", "hyphen", "line-break", "pertemuan"],
)
def test_indonesian_spellings(small: Taxonomy, text: str, term: str) -> None:
    assert term in _evidence(small, "people", text, "id")


def test_indonesian_term_does_not_match_inside_a_longer_word(small: Taxonomy) -> None:
    assert _evidence(small, "people", "keduanya dipertemukan di Jakarta", "id") == {}
    assert _evidence(small, "people", "pertemuanan", "id") == {}


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("pertemuannya berlangsung di Jakarta", "pertemuan"),
        ("Kerja samanya diperluas", "kerja sama"),
        ("pertemuanlah yang penting", "pertemuan"),
        ("kerjasamapun berlanjut", "kerjasama"),
    ],
    ids=["nya", "nya-phrase", "lah", "pun"],
)
def test_indonesian_enclitics_attach_to_a_term(small: Taxonomy, text: str, term: str) -> None:
    """The Indonesian morphology rule: -nya, -lah, -kah, -pun do not change the word."""
    assert _evidence(small, "people", text, "id") == {term: 1}
    assert _evidence(small, "people", text, "en") == {}  # only Indonesian terms get it


@pytest.mark.parametrize(
    "text",
    [
        "Bộ trưởng Ngoại giao Bùi Thanh Sơn",
        "Bo truong Ngoai giao Bui Thanh Son",
        "BỘ TRƯỞNG NGOẠI GIAO",
        "Bộ trưởng\nNgoại giao",
        "Bo\u0323 tru\u031bo\u031b\u0309ng Ngoa\u0323i giao",  # decomposed diacritics
    ],
    ids=["diacritics", "plain", "upper", "line-break", "decomposed"],
)
def test_vietnamese_with_or_without_diacritics(small: Taxonomy, text: str) -> None:
    assert _evidence(small, "people", text, "vi") == {"Bộ trưởng Ngoại giao": 1}


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Đà Nẵng", "da nang"),
        ("Ёлка и йод", "елка и йод"),
        ("Russia–ASEAN  talks", "russia asean talks"),
        ("Ministers' Meeting", "ministers meeting"),
        ("one\r\n\ttwo\u00a0three", "one two three"),
        ("2,5 tỉ USD; 2,5 tỷ USD", "2,5 ti usd; 2,5 ti usd"),
        ("kỹ thuật số, kĩ thuật số, Hoa Kỳ", "ki thuat so, ki thuat so, hoa ki"),
        ("quý, quí, thủy sản, thuỷ sản", "qui, qui, thuy san, thuy san"),
    ],
    ids=[
        "vietnamese-d",
        "russian-yo-keeps-y",
        "en-dash",
        "apostrophe",
        "whitespace",
        "vietnamese-ti-ty",
        "vietnamese-ki-ky",
        "vietnamese-qui-quy-and-tone-placement",
    ],
)
def test_normalise_text(raw: str, folded: str) -> None:
    assert normalise_text(raw) == folded


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("The Foreign Minister said", 1),
        ("the FOREIGN MINISTER said", 1),
        ("the foreign\nminister said", 1),
        ("the foreign   \n\n  minister said", 1),
        ("the foreign ministers said", 0),
        ("a foreign minister-designate", 1),
    ],
    ids=["title-case", "upper", "line-break", "blank-line", "plural-is-another-word", "hyphen"],
)
def test_case_and_phrases_across_line_breaks(small: Taxonomy, text: str, count: int) -> None:
    assert _evidence(small, "people", text, "en").get("foreign minister", 0) == count


def test_language_limits_terms_to_that_language(small: Taxonomy) -> None:
    text = "Лавров and the foreign minister met"
    assert set(_evidence(small, "people", text, "en")) == {"foreign minister"}
    assert set(_evidence(small, "people", text, None)) == {"Лавров*", "foreign minister"}


@pytest.mark.parametrize(
    ("text", "tagged"),
    [
        ("The ASEAN summit opened. The summit ended.", True),
        ("Саммит АСЕАН: the summit opened, the summit ended.", True),
        ("The summit opened. The summit ended.", False),  # `all` group missing
        ("The ASEAN summit and the G20 summit.", False),  # `none` term vetoes
    ],
    ids=["all-met", "all-met-other-script", "all-missing", "none-vetoes"],
)
def test_all_and_none_groups(small: Taxonomy, text: str, tagged: bool) -> None:
    assert ("guarded" in _tagged(small, text, "en")) is tagged


@pytest.mark.parametrize(
    ("text", "tagged"),
    [
        ("energy cooperation grows", True),
        ("cooperation in energy", True),
        ("cooperation on sport, music, film and, later, energy", False),
        ("energy prices rose", False),
    ],
    ids=["adjacent", "within", "too-far", "no-partner"],
)
def test_proximity_rule(small: Taxonomy, text: str, tagged: bool) -> None:
    assert ("near-only" in _tagged(small, text, "en")) is tagged


def test_a_single_weak_mention_stays_below_threshold(shipped: Taxonomy) -> None:
    text = (
        "The former energy minister, now a football club owner, said the team would win the "
        "cup. Fans celebrated in the streets until late at night."
    )
    assert _tagged(shipped, text, "en") == set()
    scores, _ = score_article(shipped, title="", text=text, language="en")
    assert [s.status for s in scores if s.id == "energy"] == ["below"]


def test_one_term_repeated_in_the_text_is_not_enough(shipped: Taxonomy) -> None:
    text = "The theatre commands. " * 5
    assert "culture-tourism" not in _tagged(shipped, text, "en")


SEED_003 = ROOT / "config" / "corpus" / "003_24ad2f7826d9acd6.txt"
SEED_004 = ROOT / "config" / "corpus" / "004_77ff1506fea45f61.txt"


def _paragraph(path: Path, starts: str) -> str:
    """One paragraph of a real seed article."""
    return next(p for p in path.read_text(encoding="utf-8").splitlines() if p.startswith(starts))


LIST_AREAS = ("energy", "environment", "health", "maritime-security", "disaster-response")
LIST_AREAS += ("agriculture-food", "science-education", "trade-investment")


def test_a_list_of_areas_is_a_passing_mention(shipped: Taxonomy) -> None:
    """GUIDELINE v2: "cooperation in trade, energy, culture and education" alone gives
    none of the four topics. Two real list lines from the seeds."""
    eas = _paragraph(SEED_003, "The East Asia Summit is a forum")
    assert "The priority areas of industry-specific cooperation include the economy, energy" in eas
    assert _tagged(shipped, eas, "en").isdisjoint(LIST_AREAS)
    arsom = _paragraph(SEED_004, "BALI, 21 February 2019")
    assert "in the areas of, among others, science and technology, energy" in arsom
    tagged = _tagged(shipped, arsom, "en")
    assert tagged.isdisjoint({*LIST_AREAS, "digital-tech", "counter-terrorism"}), tagged
    # The evidence is still kept, marked as passing, for explain.
    scores, _ = score_article(shipped, title="", text=eas, language="en")
    energy = next(s for s in scores if s.id == "energy")
    assert energy.status == "below"
    assert energy.passing == tuple(n for _, _, n in energy.evidence)
    assert "'energy' ×1 (en, +0.5, 1 passing)" in explain_scores([energy])[0]


def test_a_substantive_paragraph_tags(shipped: Taxonomy) -> None:
    """A paragraph about counter-terrorism work (a working group, its meetings, training
    courses) tags it, also without the title's help."""
    paragraph = _paragraph(SEED_003, "The ASEAN-Russia Joint Working Group on Counter-Terrorism")
    assert "counter-terrorism" in _tagged(shipped, paragraph, "en")
    scores, _ = score_article(shipped, title="", text=paragraph, language="en")
    found = next(s for s in scores if s.id == "counter-terrorism")
    # The working group's meetings are topical; the closing enumeration ("terrorism
    # and extremism, including online, fighting drug trafficking and crimes ...") is not.
    assert found.status == "tagged"
    assert sum(found.passing) <= sum(n for _, _, n in found.evidence) / 2


def test_one_background_line_in_a_long_text_is_passing(shipped: Taxonomy) -> None:
    """The same counter-terrorism words as one line far from each other are background."""
    filler = " ".join(["The delegations then moved on to the other items on the agenda."] * 8)
    lines = ["Terrorism was also mentioned.", "Extremism too.", "And terrorism again."]
    text = filler + " " + " ".join(f"{line} {filler}" for line in lines)
    assert "counter-terrorism" not in _tagged(shipped, text, "en")
    scores, _ = score_article(shipped, title="", text=text, language="en")
    found = next(s for s in scores if s.id == "counter-terrorism")
    assert sum(found.passing) == sum(n for _, _, n in found.evidence) > 0


def test_evidence_lists_every_matched_term_with_language_and_count(shipped: Taxonomy) -> None:
    text = (
        "Лавров провел переговоры. Лаврову вручили письмо; Лаврова встретил министр "
        "иностранных дел Вьетнама. Визит продлится два дня."
    )
    tags = tag_article(shipped, title="", text=text, language="ru")
    diplomacy = next(t for t in tags.topics if t.id == "diplomacy")
    evidence = {(term, lang): count for term, lang, count in diplomacy.evidence}
    assert evidence[("лавров*", "ru")] == 3
    assert evidence[("министр* иностранн* дел", "ru")] == 1
    assert evidence[("визит*", "ru")] == 1
    assert diplomacy.score >= diplomacy.threshold
    line = explain_tag(shipped, diplomacy)
    assert line.startswith("diplomacy: score ")
    assert "matched 'лавров*' ×3 (ru, weight 2)" in line


def test_title_weighs_more_than_text(shipped: Taxonomy) -> None:
    text = "Officials said little else."
    title = "Counter-terrorism drill held"
    assert "counter-terrorism" not in _tagged(shipped, f"{title}. {text}", "en")
    assert "counter-terrorism" in _tagged(shipped, text, "en", title=title)


def test_topics_are_ranked_by_score_relative_to_threshold(shipped: Taxonomy) -> None:
    seed = (ROOT / "config" / "corpus" / "003_24ad2f7826d9acd6.txt").read_text()
    tags = tag_article(shipped, title="", text=seed, language="en")
    keys = [(-t.score / t.threshold, -t.score, t.id) for t in tags.topics]
    assert keys == sorted(keys)
    assert len({t.threshold for t in tags.topics}) >= 2  # so rank differs from raw score
    assert len(tags.topics) >= 3


def test_explain_scores_says_why_a_candidate_was_not_tagged(shipped: Taxonomy) -> None:
    scores, _ = score_article(shipped, title="", text="Oil, oil and more oil.", language="en")
    lines = explain_scores(scores)
    assert lines == [
        "energy: score 6 ≥ threshold 5 but too few distinct terms (not tagged): 'oil' ×3 (en, +6)"
    ]


@pytest.mark.parametrize(
    ("seed", "kind", "value"),
    [
        ("000_51428d13349f6c0f.txt", "officials", "Lim Jock Hoi"),
        ("000_51428d13349f6c0f.txt", "officials", "Sergey Lavrov"),
        ("000_51428d13349f6c0f.txt", "organisations", "ASEAN"),
        ("000_51428d13349f6c0f.txt", "organisations", "Eurasian Economic Commission"),
        ("000_51428d13349f6c0f.txt", "countries", "Russia"),
        ("002_3b70ce0ad9d51632.txt", "countries", "Vietnam"),
        ("002_3b70ce0ad9d51632.txt", "organisations", "SCO"),
        ("002_3b70ce0ad9d51632.txt", "organisations", "ASEAN Regional Forum"),
        ("003_24ad2f7826d9acd6.txt", "countries", "Laos"),
        ("003_24ad2f7826d9acd6.txt", "organisations", "East Asia Summit"),
        ("003_24ad2f7826d9acd6.txt", "officials", "Vladimir Putin"),
        ("004_77ff1506fea45f61.txt", "countries", "Indonesia"),
        ("004_77ff1506fea45f61.txt", "officials", "Igor Morgulov"),
    ],
    ids=lambda v: str(v).split("_")[0],
)
def test_facets_on_the_real_seeds(shipped: Taxonomy, seed: str, kind: str, value: str) -> None:
    text = (ROOT / "config" / "corpus" / seed).read_text(encoding="utf-8")
    facets = tag_article(shipped, title="", text=text, language="en").facets
    assert set(facets) == {"countries", "organisations", "officials"}
    assert value in facets[kind]


def test_facets_are_absent_when_not_mentioned(shipped: Taxonomy) -> None:
    facets = tag_article(shipped, title="", text="A cat was found.", language="en").facets
    assert facets == {"countries": (), "organisations": (), "officials": ()}


@pytest.mark.parametrize(
    ("text", "russia"),
    [
        # "Vietnam's exports to the Russian market" (a rice report).
        ("Xuất khẩu gạo của Việt Nam sang thị trường Nga tăng mạnh", True),
        ("Bộ trưởng Ngoại giao Nga Sergey Lavrov hội đàm với Bộ trưởng Bùi Thanh Sơn", True),
        # Nga folds with ngã "crossroads": "an accident at the crossroads" is not Russia.
        ("Một vụ tai nạn giao thông xảy ra tại ngã tư", False),
    ],
    ids=["market", "minister", "crossroads"],
)
def test_vietnamese_russia_is_matched_in_context(
    shipped: Taxonomy, text: str, russia: bool
) -> None:
    for variant in (text, _strip_diacritics(text)):
        facets = tag_article(shipped, title="", text=variant, language="vi").facets
        assert ("Russia" in facets["countries"]) is russia


def test_russian_facet_aliases(shipped: Taxonomy) -> None:
    text = "Сергей Лавров и генсек АСЕАН Лим Чжок Хой обсудили отношения России и Вьетнама."
    facets = tag_article(shipped, title="", text=text, language="ru").facets
    assert facets["officials"] == ("Sergey Lavrov", "Lim Jock Hoi")
    assert facets["organisations"] == ("ASEAN",)
    assert set(facets["countries"]) == {"Vietnam", "Russia"}


BROKEN = """
[settings]
languages = ["en", "ru"]
colour = "red"

[topics.Bad_Id]
terms.en = ["fine"]

[topics.diplomacy]
threshold = "high"
label = "Diplomacy"
terms.ru = ["визит", "", "*ов", { term = "министр", weight = -1 }, "визит"]
terms.de = ["Besuch"]
terms.en = [{ term = "summit", weight = 9, extra = 1 }]
near = [{ terms = ["a*b", "@missing"], within = 0 }]
all = [[]]
sorting = true

[topics.energy]
threshold = 4
short = "Energy, oil, gas and electricity"
terms.en = [{ term = "oil", weight = 4 }]

[topics.diplomacy]
terms.en = ["talks"]

[facets.people.Lavrov]
en = ["Lavrov"]
"""


def test_a_broken_rule_file_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_taxonomy(
            BROKEN.replace("[topics.diplomacy]\nterms.en", "[topics.x]\nterms.en"),
            file="topics.toml",
        )
    problems = {(p.key, p.reason.split(" (")[0].split(":")[0]) for p in caught.value.problems}
    assert {p.file for p in caught.value.problems} == {"topics.toml"}
    keys = {key for key, _ in problems}
    expected = {
        "settings.colour",  # unknown key
        "topics.Bad_Id",  # bad id
        "topics.diplomacy.threshold",  # threshold not a number
        "topics.diplomacy.terms.ru[1]",  # empty term
        "topics.diplomacy.terms.ru[2]",  # bad wildcard
        "topics.diplomacy.terms.ru[3].weight",  # bad weight
        "topics.diplomacy.terms.ru[4]",  # duplicate term
        "topics.diplomacy.terms.de",  # unknown language
        "topics.diplomacy.terms.en[0]",  # unknown key in a term table
        "topics.diplomacy.near[0].within",
        "topics.diplomacy.near[0].terms[0]",  # bad wildcard
        "topics.diplomacy.near[0].terms[1]",  # unknown set
        "topics.diplomacy.all[0]",  # empty group
        "topics.diplomacy.sorting",  # unknown key
        "topics.energy.terms.en[0]",  # weight not below threshold
        "topics.energy.short",  # a chip label longer than 20 characters
        "facets.people",  # unknown facet kind
    }
    assert expected <= keys, expected - keys
    assert ("topics.diplomacy.terms.ru[1]", "empty term") in problems
    assert any("duplicate term" in r for k, r in problems if k.endswith("ru[4]"))


def test_a_duplicate_topic_id_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_taxonomy(BROKEN, file="topics.toml")
    keys = {(p.key, p.reason.split(" (")[0]) for p in caught.value.problems}
    assert ("topics.diplomacy", "duplicate id") in keys
    assert "duplicate id (line 23)" in str(caught.value)


def test_invalid_toml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_taxonomy("[topics.x\nterms = 1", file="t.toml")


def _load_eval() -> ModuleType:
    path = ROOT / "tests" / "eval" / "eval_tagging.py"
    spec = importlib.util.spec_from_file_location("eval_tagging", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


# --- real news texts (news.jsonl, train and dev splits), per language -------------------------


@pytest.fixture(scope="module")
def news() -> dict[str, Any]:
    return {i.id: i for i in load_news()}


def _tags_of(taxonomy: Taxonomy, item: Any) -> dict[str, TopicTag]:
    found = tag_article(taxonomy, title=item.title, text=item.text, language=item.lang)
    return {t.id: t for t in found.topics}


def test_russian_inflected_forms_in_a_real_report(shipped: Taxonomy, news: dict[str, Any]) -> None:
    """ "Отряд кораблей Тихоокеанского флота прибыл во Вьетнам" (news-ru-118): genitive
    plural and genitive singular forms match the rules' word-ending wildcards."""
    item = news["news-ru-118"]
    assert item.split == "train"
    assert _evidence(shipped, "maritime-security", item.title, "ru") == {
        "тихоокеанск* флот*": 1,  # Тихоокеанского флота
        "отряд* корабл*": 1,  # Отряд кораблей (a naval detachment, fifth round)
    }
    tags = _tags_of(shipped, item)
    assert set(tags) == {"maritime-security"}
    assert {"фрегат*", "корвет*"} <= {term for term, _, _ in tags["maritime-security"].evidence}


def test_russian_case_forms_of_a_multiword_name(shipped: Taxonomy, news: dict[str, Any]) -> None:
    """ "... сотрудничества Евразийского экономического союза с государствами АСЕАН"
    (news-ru-012): the genitive of the union's name is evidence for eurasian-integration."""
    item = news["news-ru-012"]
    sentence = next(s for s in item.text.split(". ") if "Евразийского экономического союза" in s)
    found = _evidence(shipped, "eurasian-integration", sentence, "ru")
    assert found["евразийск* экономическ* союз*"] == 1
    assert "eurasian-integration" in _tags_of(shipped, item)


def test_indonesian_affixed_forms_in_real_reports(shipped: Taxonomy, news: dict[str, Any]) -> None:
    """me- and ter- forms: "menugaskan Perum Bulog untuk mengimpor 2 juta ton beras"
    (news-id-040), "empat terduga teroris" (news-id-024)."""
    rice, terror = news["news-id-040"], news["news-id-024"]
    assert "mengimpor 2 juta ton beras" in rice.text
    assert _evidence(shipped, "trade-investment", "untuk mengimpor 2 juta ton beras", "id") == {
        "mengimpor": 1
    }
    assert set(_tags_of(shipped, rice)) == {"agriculture-food", "trade-investment"}
    assert "terduga teroris" in terror.text
    assert set(_tags_of(shipped, terror)) == {"counter-terrorism"}


def _strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@pytest.mark.parametrize("item_id", ["news-vi-014", "news-vi-035", "news-vi-050"])
def test_vietnamese_with_and_without_diacritics(
    shipped: Taxonomy, news: dict[str, Any], item_id: str
) -> None:
    """Real Vietnamese reports (a storm, a ransomware attack, fish exports) tag the same
    topics with the same evidence when typed without diacritics."""
    item = news[item_id]
    plain = replace(item, title=_strip_diacritics(item.title), text=_strip_diacritics(item.text))
    assert plain.text != item.text
    with_marks, without = _tags_of(shipped, item), _tags_of(shipped, plain)
    assert set(with_marks) == set(item.topics)
    assert with_marks == without


# --- who meets whom: a meeting rule over facets (issue 13) -----------------------------------

MEETINGS = """
[settings]
threshold = 5
min_terms = 1
lead_words = 40

[sets]
meeting = ["met", "talks", "визит*"]
leaders = ["foreign minister", "президент*"]

[topics.diplomacy]
terms.en = [{ term = "embassy", weight = 1 }]

[[topics.diplomacy.near]]
terms = ["@meeting", ["@leaders", "$officials"], "$countries", "$countries"]
within = 15
weight = 3
scope = "lead"

[facets.countries.Russia]
en = ["Russia", "Russian"]
ru = ["Росси*", "российск*"]

[facets.countries.Vietnam]
en = ["Vietnam", "Vietnamese"]
ru = ["Вьетнам*"]

[facets.officials."Sergey Lavrov"]
en = ["Lavrov"]
"""

RULE = "meeting… ~ leaders… ~ country ~ country (title or lead, within 15 words)"


def _meeting_rule(text: str, title: str = "") -> tuple[str, int, float] | None:
    taxonomy = parse_taxonomy(MEETINGS, file="meetings.toml")
    scores, _ = score_article(taxonomy, title=title, text=text, language=None)
    for s in scores:
        for (term, _, count), gain in zip(s.evidence, s.contributions, strict=True):
            if term == RULE:
                return s.status, count, gain
    return None


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("Russian Foreign Minister Sergey Lavrov met his Vietnamese counterpart in Hanoi.", True),
        # A named official (a facet value) instead of a title.
        ("Lavrov met the Vietnamese delegation in Moscow, Russia.", True),
        # Two mentions of one country are one country, not a pair.
        ("Russian Foreign Minister Sergey Lavrov met Russian students.", False),
        # No meeting, visit or talks.
        ("Russian Foreign Minister Sergey Lavrov praised Vietnamese rice.", False),
        # Same sentence after the lead: background, not what the text reports.
        ("Rice prices rose. " * 14 + "Russia's foreign minister met Vietnamese officials.", False),
    ],
    ids=["title-and-pair", "named-official", "one-country-twice", "no-meeting", "after-lead"],
)
def test_a_meeting_rule_needs_an_official_and_two_countries_in_the_lead(
    text: str, fires: bool
) -> None:
    found = _meeting_rule(text)
    assert (found is not None) is fires
    if found is not None:
        assert found[1:] == (1, 4.5)  # one lead occurrence: weight 3 x lead_weight 1.5


def test_a_meeting_rule_in_the_title_counts_as_a_title_occurrence() -> None:
    assert _meeting_rule("", title="Lavrov holds talks with Vietnam's foreign minister") is None
    found = _meeting_rule("", title="Russia's Lavrov holds talks with Vietnam's foreign minister")
    assert found == ("tagged", 1, 6.0)  # weight 3 x title_weight 2


@pytest.mark.parametrize(
    ("item_id", "sentence"),
    [
        # "President of Indonesia Prabowo Subianto flew to Moscow for talks in the Kremlin."
        ("news-ru-016", "президент Индонезии Правобо Субианто прилетел в Москву на переговоры"),
        # "Lavrov meets with ASEAN foreign ministers" (the title and the lead).
        ("news-en-093", "Russian Foreign Minister Sergey Lavrov has held a meeting with"),
        # "During his visit to the Russian Federation, ASEAN Secretary-General Le Luong Minh
        # met Russian Foreign Minister Sergei Lavrov."
        ("news-vi-054", "Tổng thư ký ASEAN Lê Lương Minh đã có cuộc gặp với Bộ trưởng"),
        # "President Joko Widodo confirmed Indonesia's readiness to host the 43rd ASEAN Summit."
        ("news-id-018", "kesiapan Indonesia sebagai tuan rumah Konferensi Tingkat Tinggi"),
    ],
    ids=["ru", "en", "vi", "id"],
)
def test_who_meets_whom_in_real_leads_is_evidence_for_diplomacy(
    shipped: Taxonomy, news: dict[str, Any], item_id: str, sentence: str
) -> None:
    """The shipped meeting rule finds real reports' meetings in every language, also in
    Vietnamese typed without diacritics; those reports are labelled diplomacy."""
    item = news[item_id]
    assert item.split in {"train", "dev"}
    assert "diplomacy" in item.topics
    assert sentence in item.title + " " + " ".join(item.text.split())
    variants = [item]
    if item.lang == "vi":
        variants.append(
            replace(item, title=_strip_diacritics(item.title), text=_strip_diacritics(item.text))
        )
    for variant in variants:
        scores, _ = score_article(
            shipped, title=variant.title, text=variant.text, language=variant.lang
        )
        diplomacy = next(s for s in scores if s.id == "diplomacy")
        rules = [t for t, _, _ in diplomacy.evidence if "(title or lead, within" in t]
        assert rules, diplomacy.evidence
        assert diplomacy.status == "tagged"


def test_a_meeting_rule_file_with_bad_facet_parts_is_rejected() -> None:
    broken = MEETINGS.replace('"$countries", "$countries"]', '"$people", "$countries"]')
    broken = broken.replace('scope = "lead"', 'scope = "body"')
    broken = broken.replace('["@meeting",', '["$countries",')
    with pytest.raises(ConfigError) as caught:
        parse_taxonomy(broken, file="meetings.toml")
    reasons = {(p.key, p.reason.split(" (")[0]) for p in caught.value.problems}
    assert ("topics.diplomacy.near[0].terms[0]", "the first part must be terms, not a facet") in (
        reasons
    )
    assert any(k == "topics.diplomacy.near[0].terms[2]" and "$people" in r for k, r in reasons)
    assert any(k == "topics.diplomacy.near[0].scope" for k, _ in reasons)


def test_vietnamese_i_and_y_spellings_match_the_same_term(
    shipped: Taxonomy, news: dict[str, Any]
) -> None:
    """ "... giá trị trên 2,5 tỉ USD" (news-vi-013, rice exports): the report writes tỉ, the
    rule says tỷ usd ("billion USD"); both spellings are in use and are the same word."""
    item = news["news-vi-013"]
    sentence = "xuất khẩu gạo đạt 4,9 triệu tấn, tăng 7,6% và giá trị trên 2,5 tỉ USD"
    assert sentence in item.text
    with_i = _evidence(shipped, "trade-investment", sentence, "vi")
    with_y = _evidence(shipped, "trade-investment", sentence.replace("tỉ", "tỷ"), "vi")
    assert with_i["tỷ usd"] == 1
    assert with_i == with_y


def test_goods_in_an_enumeration_are_a_passing_mention() -> None:
    """Farm goods named in a dense list of exports are passing, whatever the other items'
    topics (guideline: "...and agricultural products as one item in a list of exports");
    the same goods in sentences of their own are topical."""
    rules = """
[topics.farm]
threshold = 5
terms.en = [{ term = "seafood", weight = 2 }, { term = "wheat", weight = 2 },
            { term = "fertiliser", weight = 2 }]
"""
    taxonomy = parse_taxonomy(rules, file="t.toml")
    listed = "Vietnam exports textiles, shoes, seafood, phones, wheat, fertiliser and steel."
    scores, _ = score_article(taxonomy, title="", text=listed, language="en")
    assert scores[0].passing == (1, 1, 1)
    assert scores[0].status == "below"
    prose = "Seafood sales rose. Wheat imports doubled. Fertiliser prices fell."
    assert _tagged(taxonomy, prose, "en") == {"farm"}


def test_a_core_term_used_twice_is_two_pieces_of_evidence() -> None:
    """A topic-specific term (weight >= core_weight) used topically twice is density; a
    weaker term repeated stays one piece of evidence."""
    rules = """
[topics.trade]
threshold = 5
terms.en = [{ term = "free trade zone", weight = 3 }, { term = "exports", weight = 2 }]
"""
    taxonomy = parse_taxonomy(rules, file="t.toml")
    text = "Indonesia will sign a free trade zone deal. The free trade zone opens in May."
    assert _tagged(taxonomy, text, "en") == {"trade"}
    weak = "Exports rose in May, and exports of coal rose too, officials said of exports."
    scores, _ = score_article(taxonomy, title="", text=weak, language="en")
    assert [(s.status, s.score) for s in scores] == [("below", 6.0)]


def test_later_mentions_of_the_main_subject_are_not_background() -> None:
    """A topic named in the lead keeps counting further on; the same far mention without
    it in the lead is background (passing)."""
    rules = '[topics.oil]\nthreshold = 5\nterms.en = [{ term = "oil", weight = 2 }]\n'
    taxonomy = parse_taxonomy(rules, file="t.toml")
    filler = " ".join(["The ministers then discussed the next meeting."] * 8)
    for lead, passing in (("Oil output rose in May.", 0), ("Output rose in May.", 1)):
        scores, _ = score_article(taxonomy, title="", text=f"{lead} {filler} Oil.", language="en")
        assert scores[0].passing == (passing,)


def test_labelled_set_is_big_enough_and_split() -> None:
    items = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    assert len(items) >= 150
    assert sum(i["split"] == "test" for i in items) >= len(items) / 3
    assert {i["lang"] for i in items} >= {"en", "ru"}
    assert all(set(i["topics"]) <= set(EXPECTED_IDS) for i in items)


# labelled.jsonl follows guideline version 1, which also counted a topic named as one item of a
# list of areas; version 2 (and the tagger) calls that a passing mention, so its recall on those
# items drops by design (test split macro F1 0.80 -> 0.70 when the tagger learnt to tell them
# apart). news.jsonl, labelled under version 2, has its own floor. This one guards regressions.
TEST_SPLIT_MACRO_F1_FLOOR = 0.65


def test_news_set_is_big_enough_real_and_split() -> None:
    items = load_news()
    langs = [i.lang for i in items]
    assert len(items) >= 400
    assert (langs.count("ru"), langs.count("vi"), langs.count("id")) >= (120, 60, 60)
    assert {i.split for i in items} == {"train", "dev", "test1", "train2", "test2"}
    assert all(set(i.topics) <= set(EXPECTED_IDS) for i in items)
    assert len({i.url for i in items}) == len(items)


def test_the_fresh_test_split_is_big_enough_and_in_each_language() -> None:
    fresh = [i for i in load_news() if i.split == "test2"]
    langs = [i.lang for i in fresh]
    assert len(fresh) >= 120
    assert (langs.count("vi"), langs.count("id"), langs.count("ru")) >= (40, 30, 30)


# Measured on the news.jsonl test2 split (the fresh batch, never tuned on) after tuning on
# train, dev, test1 and train2 (docs/tagging.md, fifth round: macro-F1 0.917, micro P 0.942;
# micro-F1 ru 0.881, vi 0.879, id 0.986; lowest topic with at least 5 positives 0.833); the
# floors are the targets, and a regression below one fails.
NEWS_TEST_MACRO_F1_FLOOR = 0.90
NEWS_TEST_MICRO_PRECISION_FLOOR = 0.90
NEWS_TEST_LANGUAGE_F1_FLOORS = {"ru": 0.85, "vi": 0.85, "id": 0.85}
NEWS_TEST_TOPIC_F1_FLOOR = 0.75  # every topic with at least 5 test2 positives


def test_news_test_split_stays_above_the_floors(shipped: Taxonomy) -> None:
    module = _load_eval()
    report = module.evaluate(shipped, [i for i in load_news() if i.split == "test2"])
    assert report.macro.f1 >= NEWS_TEST_MACRO_F1_FLOOR
    assert report.micro.precision >= NEWS_TEST_MICRO_PRECISION_FLOOR
    for lang, floor in NEWS_TEST_LANGUAGE_F1_FLOORS.items():
        assert report.per_language[lang][0].f1 >= floor, lang
    for topic, scores in report.per_topic.items():
        if scores.support >= 5:
            assert scores.f1 >= NEWS_TEST_TOPIC_F1_FLOOR, topic


def test_macro_f1_on_the_test_split_stays_above_the_floor(shipped: Taxonomy) -> None:
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared (beside the repo root) is missing: the labelled texts live there")
    module = _load_eval()
    items = [i for i in load_labelled(shared) if i.split == "test"]
    assert module.macro_f1(shipped, items) >= TEST_SPLIT_MACRO_F1_FLOOR


FORBIDDEN = {"os", "httpx", "sqlalchemy", "smtplib", "socket", "time", "datetime", "pathlib"}


@pytest.mark.parametrize(
    "module",
    ["tag.py", "tagging/engine.py", "tagging/rules.py", "tagging/normalise.py"],
)
def test_tagging_modules_are_pure(module: str) -> None:
    tree = ast.parse((ROOT / "monitor" / module).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    assert "open(" not in (ROOT / "monitor" / module).read_text(encoding="utf-8")


# --- Russian inflection rule: a word written without `*` that ends in a consonant ----------

# A one-topic rule file ("words") whose terms each tag alone: for matching rules per language.
WORDS = """
[settings]
threshold = 4
min_terms = 1

[topics.words]
"""

INFLECTED = (
    WORDS
    + """terms.ru = [{ term = "мид", weight = 3 }, { term = "газ", weight = 3 },
            { term = "рис", weight = 3 }, { term = "риса", weight = 3 },
            { term = "главы МИД", weight = 3 }]
"""
)


@pytest.mark.parametrize(
    ("sentence", "term", "matches"),
    [
        # news.jsonl news-ru-005 (dev): the genitive of the abbreviation
        ("У главы российского МИДа в Джакарте напряжённый график.", "мид", True),
        ("Россия поставляет газом богатые регионы.", "газ", True),
        ("Газеты писали об этом.", "газ", False),  # газета is not an ending of газ
        ("Цены на риск выросли.", "рис", False),  # nor риск
        ("По словам главы МИДа, визит состоится.", "главы МИД", True),  # last word of a phrase
    ],
    ids=["abbreviation-genitive", "instrumental", "not-gazeta", "not-risk", "phrase"],
)
def test_russian_words_ending_in_a_consonant_take_noun_endings(
    sentence: str, term: str, matches: bool
) -> None:
    taxonomy = parse_taxonomy(INFLECTED, file="inflected.toml")
    assert (term in _evidence(taxonomy, "words", sentence, "ru")) is matches


def test_a_form_listed_by_hand_is_the_evidence_rather_than_the_inflected_stem() -> None:
    taxonomy = parse_taxonomy(INFLECTED, file="inflected.toml")
    # news-ru-114 (test1): "риса" is written in the rules; "рис" would also match it now
    text = "Вьетнам экспортировал 6,3 млн. т риса. Экспортная цена на рис снизилась."
    assert _evidence(taxonomy, "words", text, "ru") == {"риса": 1, "рис": 1}


def test_tuning_covers_train_dev_and_test1_and_never_lists_test2_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = _load_eval()
    assert module._splits("tune") == {"train", "dev", "test1", "train2"}
    assert module._splits("train+dev") == {"train", "dev"}
    module.main(["--split", "test2", "--errors", "5"])
    fresh = capsys.readouterr().out
    assert "test2 split (138 items)" in fresh
    assert "errors" not in fresh
    module.main(["--split", "tune", "--errors", "5"])
    assert "### tune errors" in capsys.readouterr().out


# --- Indonesian affixes and Vietnamese joined syllables (fourth round) ----------------------

AFFIXED = (
    WORDS
    + """terms.id = [{ term = "ekspor", weight = 3 }, { term = "wisata", weight = 3 },
            { term = "magnitudo", weight = 3 }, { term = "bencana", weight = 3 },
            { term = "kerja sama", weight = 3 }, { term = "ekonomi", weight = 3 },
            { term = "bom", weight = 3 }, { term = "kesehatan", weight = 3 },
            { term = "impor", weight = 3 }, { term = "mengimpor", weight = 3 }]
terms.vi = [{ term = "Hà Nội", weight = 3 }, { term = "Bộ trưởng Ngoại giao", weight = 3 }]
"""
)


@pytest.fixture(scope="module")
def affixed() -> Taxonomy:
    return parse_taxonomy(AFFIXED, file="affixed.toml")


@pytest.mark.parametrize(
    ("sentence", "term"),
    [
        # the sentences are from news.jsonl tuning texts (news-id-001, -007, -030, -028, -021, -002)
        ("Sebaliknya, Rusia mengekspor gandum dan potasium ke Indonesia.", "ekspor"),
        ("banyaknya warga Rusia yang datang hanya karena merasa nyaman untuk berwisata", "wisata"),
        ("Gempa bumi bermagnitudo 6,1 memporak-porandakan Kabupaten Malang", "magnitudo"),
        ("Kepala Pusat Data, Informasi, dan Komunikasi Kebencanaan BNPB", "bencana"),
        ("berkomitmen untuk terbuka dalam bekerja sama dengan siapapun", "kerja sama"),
        ("masih melihat situasi dan kondisi perekonomian dunia", "ekonomi"),
        ("gandum yang diekspor ke Indonesia", "ekspor"),
        ("para pengekspor kopi", "ekspor"),
        ("pengeboman di Surabaya", "bom"),
        ("perekonomiannya tumbuh", "ekonomi"),  # an affixed form takes an enclitic too
    ],
    ids=["meN", "ber", "ber-number", "ke-an", "be-head", "per-an", "di", "peN", "penge-an", "nya"],
)
def test_indonesian_affixed_forms_count_for_the_term_as_written(
    affixed: Taxonomy, sentence: str, term: str
) -> None:
    """The Indonesian affix rule: meN-/di-/ter- (-kan/-i), ber-, peN-, peN-/per-/ke-...-an of
    the form written; the evidence names the term as written."""
    assert _evidence(affixed, "words", sentence, "id") == {term: 1}
    assert _evidence(affixed, "words", sentence, "en") == {}  # only Indonesian terms get it


def test_indonesian_affix_rule_never_reduces_a_term_to_its_root(affixed: Taxonomy) -> None:
    # "kesehatan" (health) does not match "sehat" (healthy) nor a longer unrelated word
    assert _evidence(affixed, "words", "warga hidup sehat", "id") == {}
    assert _evidence(affixed, "words", "ekspornya naik, bukan eksportir", "id") == {"ekspor": 1}


def test_an_affixed_form_listed_by_hand_is_the_evidence(affixed: Taxonomy) -> None:
    # news-id-040: "mengimpor" is written in the rules, and "impor" would also match it now
    text = "menugaskan Perum Bulog untuk mengimpor 2 juta ton beras; impor itu"
    assert _evidence(affixed, "words", text, "id") == {"mengimpor": 1, "impor": 1}


def test_affixed_forms_are_one_piece_of_evidence_with_their_term(affixed: Taxonomy) -> None:
    scores, _ = score_article(
        affixed, title="", text="Rusia mengekspor gandum. Gandum diekspor lagi.", language="id"
    )
    assert [(s.evidence, s.score) for s in scores] == [((("ekspor", "id", 2),), 9.0)]


@pytest.mark.parametrize(
    "sentence",
    [
        "Ngoại trưởng Nga Sergei Lavrov sẽ thăm Hà Nội trước thềm Hội nghị G20.",  # news-vi-029
        "Ngoai truong Nga Sergei Lavrov se tham Ha Noi truoc them Hoi nghi G20.",
        "Ngoại trưởng Nga Sergei Lavrov sẽ thăm Hanoi trước thềm Hội nghị G20.",
        "Ngoai truong Nga Sergei Lavrov se tham HaNoi truoc them Hoi nghi G20.",
        "Ngoại trưởng Nga Sergei Lavrov sẽ thăm Hà-Nội trước thềm Hội nghị G20.",
    ],
    ids=["diacritics", "plain", "joined", "joined-plain", "hyphen"],
)
def test_vietnamese_syllables_with_and_without_diacritics_spaces_or_hyphens(
    affixed: Taxonomy, sentence: str
) -> None:
    assert _evidence(affixed, "words", sentence, "vi") == {"Hà Nội": 1}


def test_vietnamese_long_terms_are_not_joined(affixed: Taxonomy) -> None:
    # four syllables: written together they are not a spelling in use
    assert _evidence(affixed, "words", "Botruongngoaigiao", "vi") == {}


def test_a_not_phrase_hides_the_topic_terms_inside_it(
    shipped: Taxonomy, news: dict[str, Any]
) -> None:
    """news-en-215 (train2): "crude palm oil" is food; energy's "crude" and "oil" inside it
    are no evidence, and the palm oil still counts for agriculture-food."""
    item = news["news-en-215"]
    sentence = "direct trade with Indonesia in wheat commodities and crude palm oil (CPO)"
    assert sentence in item.text
    assert _evidence(shipped, "energy", sentence, "en") == {}
    assert "palm oil" in _evidence(shipped, "agriculture-food", sentence, "en")
    assert _evidence(shipped, "energy", "crude oil and palm oil exports", "en") == {
        "crude": 1,
        "oil": 1,
    }
    assert "energy" not in _tags_of(shipped, item)


def test_a_broken_not_phrase_is_reported() -> None:
    rules = '[topics.energy]\nterms.en = [{ term = "oil", weight = 2 }]\nnot = ["palm oil", ""]\n'
    with pytest.raises(ConfigError) as error:
        parse_taxonomy(rules, file="bad.toml")
    assert "topics.energy.not[1]" in str(error.value)


def test_folding_in_one_pass_equals_the_table_applied_to_every_character() -> None:
    """normalise_text replaces only the characters its table changes (for speed); on every
    real text that is the table applied to every character, and the i/y rule as written."""
    import re

    from monitor.tagging import normalise

    vi_y = re.compile(r"\b(qu|[hklmstv])y\b")
    for item in load_news():
        raw = item.title + "\n" + item.text
        folded = unicodedata.normalize("NFKC", raw).casefold().translate(normalise._TABLE)
        expected = " ".join(vi_y.sub(r"\1i", folded).split())
        assert normalise_text(raw) == expected, item.id


# --- fifth round: more specific terms win ties, degrees, recall vocabulary per language -----


def test_of_two_terms_matching_the_same_words_the_longer_spelling_wins() -> None:
    """news-en-047 (test1): "farmers" is evidence for `farmer*` (weight 2), not for `farm*`
    (weight 1), although both match the same word."""
    rules = WORDS + (
        'terms.en = [{ term = "farm*", weight = 1 }, { term = "farmer*", weight = 2 }]'
    )
    taxonomy = parse_taxonomy(rules, file="farm.toml")
    sentence = "They said, ‘The farmers can’t handle it.’"
    assert _evidence(taxonomy, "words", sentence, "en") == {"farmer*": 1}
    assert _evidence(taxonomy, "words", "farm products", "en") == {"farm*": 1}


def test_the_shipped_rules_count_farmers_for_the_heavier_term(
    shipped: Taxonomy, news: dict[str, Any]
) -> None:
    item = news["news-en-047"]
    assert "The farmers can’t handle it." in item.text
    found = _evidence(shipped, "agriculture-food", "The farmers can’t handle it.", "en")
    assert found == {"farmer*": 1}


def test_an_academic_degree_is_no_evidence_for_science(
    shipped: Taxonomy, news: dict[str, Any]
) -> None:
    """news-ru-073 (train): "доктор наук" (Doctor of Sciences) in a person's title is a
    `not` phrase of science-education; the article is about nuclear energy."""
    item = news["news-ru-073"]
    sentence = "директор Вьетнамского института атомной энергии, доктор наук Чан Чи Тхань"
    assert sentence in item.text
    assert _evidence(shipped, "science-education", sentence, "ru") == {}
    assert _evidence(shipped, "science-education", "развитие фундаментальной науки", "ru") == {
        "наук*": 1
    }
    assert set(_tags_of(shipped, item)) == {"energy"}


@pytest.mark.parametrize(
    ("item_id", "topic", "sentence", "evidence"),
    [
        # dative of a word written without `*` (the consonant rule): террор -> террору
        (
            "news-ru-110",
            "counter-terrorism",
            "Открывается встреча Регионального форума АСЕАН по противодействию террору",
            {"террор": 1},
        ),
        (
            "news-ru-087",
            "culture-tourism",
            "Россия возобновила прямые полеты на Бали впервые с 2020 года.",
            {"прям* полет*": 1},
        ),
        (
            "news-ru-051",
            "maritime-security",
            "Несмотря на это, одно филиппинское судно протаранило катер УБО.",
            {"судн*": 1, "протаранил*": 1, "катер*": 1},
        ),
    ],
    ids=["terror-dative", "direct-flights-plural", "vessel-rammed-boat"],
)
def test_russian_inflected_forms_of_the_fifth_round_terms(
    shipped: Taxonomy,
    news: dict[str, Any],
    item_id: str,
    topic: str,
    sentence: str,
    evidence: dict[str, int],
) -> None:
    item = news[item_id]
    assert item.split != "test2"
    assert sentence in item.title + item.text
    assert _evidence(shipped, topic, sentence, "ru") == evidence
    assert topic in _tags_of(shipped, item)


# news-vi-129 (train2): a paragraph on fishermen whose boat was nearly sunk, and its lead,
# which names the fishermen once
VI_PARAGRAPH = (
    "Như tin đã đưa, tối 21/5, Tàu cá QNg 90917 TS cùng 15 ngư dân hành trình từ Hoàng Sa về "
    "Quảng Ngãi đã bị tàu có sơn chữ China quyết liệt cản đường, uy hiếp và suýt bị đâm chìm "
    "trên biển. Những ngư dân đã may mắn thoát nạn nhưng con tàu trở về với nhiều vết thương "
    "trên thân tàu, thiệt hại hàng trăm triệu đồng."
)
VI_PASSING = (
    "Nếu chúng ta không có giải pháp, Trung Quốc ắt sẽ được đằng chân lân đằng đầu và còn gây "
    "ra nhiều rắc rối, nguy hiểm cho bà con ngư dân ta."
)


@pytest.mark.parametrize("plain", [False, True], ids=["diacritics", "plain"])
def test_vietnamese_fishermen_paragraph_tags_and_a_passing_line_does_not(
    shipped: Taxonomy, news: dict[str, Any], plain: bool
) -> None:
    item = news["news-vi-129"]
    assert VI_PARAGRAPH in item.text
    assert VI_PASSING in item.text
    paragraph = _strip_diacritics(VI_PARAGRAPH) if plain else VI_PARAGRAPH
    passing = _strip_diacritics(VI_PASSING) if plain else VI_PASSING
    assert _evidence(shipped, "maritime-security", paragraph, "vi") == {
        "ngư dân": 2,
        "tàu cá": 1,
        "hoàng sa": 1,
        "đâm chìm": 1,
    }
    assert "maritime-security" in _tagged(shipped, paragraph, "vi")
    assert _evidence(shipped, "maritime-security", passing, "vi") == {"ngư dân": 1}
    assert "maritime-security" not in _tagged(shipped, passing, "vi")


@pytest.mark.parametrize(
    "sentence",
    [
        # news-vi-004 (test1)
        "2 tháng gần đây, khách Nga đến Nha Trang – Khánh Hòa đã bắt đầu tăng trở lại.",
        "2 thang gan day, khach Nga den Nha Trang - Khanh Hoa da bat dau tang tro lai.",
    ],
    ids=["diacritics", "plain"],
)
def test_vietnamese_russian_visitors_with_and_without_diacritics(
    shipped: Taxonomy, sentence: str
) -> None:
    assert _evidence(shipped, "culture-tourism", sentence, "vi") == {"khách nga": 1}


def test_a_word_is_evidence_for_one_term_of_a_topic_only(
    shipped: Taxonomy, news: dict[str, Any]
) -> None:
    """news-vi-006 (test1), a tourism report: "dịch Covid-19" is one mention of the pandemic
    as background; `dịch covid` and `COVID 19` overlap on "Covid", so only the first counts."""
    item = news["news-vi-006"]
    sentence = "Nhưng do ảnh hưởng dịch Covid-19 và bất ổn chính trị nên các chuyến bay từ Nga"
    assert sentence in item.text
    assert _evidence(shipped, "health", sentence, "vi") == {"dịch covid": 1}
    assert "health" not in _tags_of(shipped, item)
    # news-ru-038 (train): "вице-премьер-министр" is one official, not two
    assert _evidence(shipped, "diplomacy", "первый вице-премьер-министр России", "ru") == {
        "вице премьер*": 1
    }
