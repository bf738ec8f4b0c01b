"""Digest building and rendering: golden files, ordering, filters, security, layout. No network."""

from __future__ import annotations

import os
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chromium_check
import pytest

from monitor.digest import (
    DigestInput,
    RenderedDigest,
    build_digest,
    make_environment,
    render_digest,
    safe_url,
)
from monitor.digest.summary import split_sentences, summarise
from monitor.digest.text import clean_text, md_escape, text_width, wrap_text
from monitor.models import DuplicateOf, Item, SourceHealth, TopicTag

TEMPLATES = Path(__file__).parents[1] / "templates"
GOLDEN = Path(__file__).parent / "data" / "golden"
UPDATE_GOLDEN = os.environ.get("MONITOR_UPDATE_GOLDEN") == "1"

WINDOW_START = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
GENERATED = datetime(2026, 11, 22, 0, 4, 31, tzinfo=UTC)

# --- article texts -------------------------------------------------------------------------
# English texts are excerpts of the seed corpus (real articles, see DESIGN §1); the Russian
# and Vietnamese texts are written in the style of TASS and VietnamPlus wire copy.

MFA_TEXT = """3 February 202014:15

Foreign Minister Sergey Lavrov's opening remarks during talks with ASEAN Secretary-General Lim Jock Hoi, Moscow, February 3, 2020

  • de-DE1 en-GB1 es-ES1 ru-RU1 fr-FR1

Mr Secretary-General,

We are glad to welcome you and your delegation to Moscow. I hope your stay will be beneficial and pleasant, as was mine in Jakarta in 2017 when we opened Russia's permanent mission to ASEAN. ASEAN is one of the most influential, authoritative and successful regional organisations.  It is the core of many multilateral associations in the Asia-Pacific Region.

Relations with ASEAN are a priority in Russian foreign policy. We consider ASEAN to be our reliable partner in building an open and well-balanced system of equitable and indivisible security.
"""  # noqa: E501

VNA_TEXT = """ date 2020-02-03 Moscow (VNA) – ASEAN Secretary General Lim Jock Hoi and Russian Foreign Minister Sergey Lavrov held talks in Moscow on February 3.

Vietnamese Ambassador to Russia and Chairman of the ASEAN Moscow Committee Ngo Duc Manh also attended the talks.

Lavrov described ASEAN as one of the most influential and successful regional organisations, and affirmed ASEAN's core role in the Asia-Pacific.

He stressed that ASEAN is one of the important priorities of Russia's external policy.
"""  # noqa: E501

NEWS_TEXT = """ASEAN Secretary General to visit Russia and hold talks with Lavrov

Secretary General of the Association of Southeast Asian Nations (ASEAN) Lim Jock Hoi will hold talks with Russian Foreign Minister Sergei Lavrov during a working visit to Moscow February 2-4, the Russian Foreign Ministry said.

The development of relations with ASEAN is among the priorities of Russian foreign policy in the Asian direction, the Russian Foreign Ministry emphasized.
"""  # noqa: E501

SECURITY_TEXT = """In addition, in the field of counteracting new challenges and threats, the Russian competent departments provide assistance to ASEAN law enforcement agencies and special services in training personnel, and conduct refresher courses for them in the fight against terrorism and extremism.
The Russian Foreign Ministry recalled the development of trade, economic and investment relations of Russia with the "top ten" with an emphasis on high-tech and innovative component.
"""  # noqa: E501

TRADE_TEXT = """"In 2018, trade with ASEAN countries grew by 6.8% and reached $ 19.6 billion. The Russian economy received $ 1.4 billion of direct investment from ASEAN countries (cumulative volume – $ 4.3 billion), a similar amount Russia has invested in the region (cumulative volume of $ 3.9 billion). Joint projects are being carried out in the field of energy, agriculture, support for small and medium enterprises, and environmental protection", – the Russian Foreign Ministry said.
"""  # noqa: E501

TASS_EN_TEXT = """VIENTIANE, July 25. /TASS/. On July 26 and 27, Foreign Minister Sergey Lavrov will attend annual ministerial events held by the Association of Southeast Asian Nations (ASEAN) in Vientiane. He will take part in foreign ministers' meetings in the Russia-ASEAN format, as well as within the East Asia Summit (EAS) and the ASEAN Regional Forum (ARF).
Photo: TASS
"""  # noqa: E501

TASS_RU_TEXT = """ВЬЕНТЬЯН, 26 июля. /ТАСС/. Министр иностранных дел России Сергей Лавров принял участие в министерской встрече Россия – АСЕАН во Вьентьяне. Стороны обсудили выполнение Комплексного плана действий по развитию стратегического партнерства и сотрудничество в сфере безопасности. Особое внимание уделено противодействию терроризму и транснациональной преступности.
Фото: ТАСС
Лавров также провел двусторонние встречи с министрами иностранных дел Лаоса и Вьетнама.
"""  # noqa: E501

VI_TEXT = """Viêng Chăn (TTXVN) - Ngày 26/7, Bộ trưởng Ngoại giao Nga Sergei Lavrov đã tham dự Hội nghị Bộ trưởng Ngoại giao ASEAN - Nga tại thủ đô Viêng Chăn của Lào. Tại hội nghị, các bên đánh giá cao kết quả hợp tác trong khuôn khổ quan hệ Đối tác chiến lược ASEAN - Nga. Hai bên nhất trí tăng cường hợp tác trong các lĩnh vực an ninh, chống khủng bố, kinh tế và giáo dục.
Ảnh: TTXVN
"""  # noqa: E501

INTERN_TEXT = """The ASEAN Secretariat welcomed twelve young professionals from the ten member states to its six-month internship programme in Jakarta. The interns will work with the political-security, economic and socio-cultural community departments.
"""  # noqa: E501

SEED_TEXT_004 = """BALI, 21 February 2019 – Upon the elevation of the ASEAN-Russia partnership to strategic level at the 3rd ASEAN-Russia Summit, Russia reaffirmed its commitment to further deepen and substantiate cooperation with ASEAN."""  # noqa: E501

SEED_TITLES = {
    "003_24ad2f7826d9acd6.txt": (
        "Press release on Foreign Minister Sergey Lavrov's upcoming visit to take part "
        "in ASEAN ministerial meetings"
    ),
    "004_77ff1506fea45f61.txt": "ASEAN, Russia commit to deepen cooperation",
}
TOPIC_ORDER = ("russia-asean", "security", "economy", "energy", "agriculture", "environment")
TOPIC_LABELS = {
    "russia-asean": "Russia–ASEAN relations",
    "security": "Security & counter-terrorism",
    "economy": "Trade & economy",
    "energy": "Energy",
    "agriculture": "Agriculture and food security",
    "environment": "Environment and climate",
}
TOPIC_SHORT = {"russia-asean": "Russia–ASEAN", "security": "Security", "economy": "Trade"}


def _tag(topic: str, score: float, *evidence: tuple[str, str, int]) -> TopicTag:
    return TopicTag(id=topic, score=score, threshold=2.0, evidence=tuple(evidence))


def _item(
    item_id: int,
    source: str,
    title: str,
    url: str,
    text: str,
    *,
    published: datetime | None,
    priority: int = 5,
    language: str = "en",
    story: int | None = None,
    topics: tuple[TopicTag, ...] = (),
    status: str = "new",
    duplicate_of: DuplicateOf | None = None,
    fetched: datetime | None = None,
) -> Item:
    return Item(
        id=item_id,
        source=source,
        url=url,
        canonical_url=url,
        guid=None,
        title=title,
        published_at=published,
        fetched_at=fetched or (published or WINDOW_START) + timedelta(minutes=20),
        language=language,
        status=status,  # type: ignore[arg-type]
        extraction="full_text",
        text=text,
        summary=None,
        text_chars=len(text),
        duplicate_of=duplicate_of,
        story_id=story,
        topics=topics,
        source_priority=priority,
    )


def _at(hour: int, minute: int = 0, day: int = 21) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


RU_ASEAN = _tag("russia-asean", 7.5, ("ASEAN", "en", 9), ("Lavrov", "en", 3))
SECURITY = _tag("security", 2.4, ("terrorism", "en", 1), ("extremism", "en", 1))


def sample_items() -> tuple[list[Item], list[Item], dict[int, list[Item]]]:
    """New items, suppressed items and story members for the golden digest."""
    mfa = _item(
        11,
        "Russian MFA",
        "Foreign Minister Sergey Lavrov's opening remarks during talks with ASEAN "
        "Secretary-General Lim Jock Hoi, Moscow, February 3, 2020",
        "https://mid.ru/en/foreign_policy/news/1423722/",
        MFA_TEXT,
        published=_at(8, 15),
        priority=1,
        story=101,
        topics=(RU_ASEAN, SECURITY),
    )
    vna = _item(
        12,
        "VNA",
        "ASEAN Secretary General, Russian FM hold talks in Moscow",
        "https://en.vietnamplus.vn/asean-secretary-general-russian-fm-hold-talks-in-moscow/167840.vnp",
        VNA_TEXT,
        published=_at(9, 2),
        priority=2,
        story=101,
        topics=(_tag("russia-asean", 6.0, ("ASEAN", "en", 14), ("Lavrov", "en", 2)),),
    )
    news = _item(
        13,
        "Eurasia News",
        "ASEAN Secretary General to visit Russia and hold talks with Lavrov",
        "https://example-news.ru/en/asean-secretary-general-to-visit-russia?utm_source=rss",
        NEWS_TEXT,
        published=_at(6, 40),
        priority=4,
        story=101,
        topics=(_tag("russia-asean", 5.1, ("ASEAN", "en", 4), ("Lavrov", "en", 1)),),
    )
    earlier = _item(
        9,
        "ASEAN Secretariat",
        "Secretary-General of ASEAN to visit Moscow",
        "https://asean.org/secretary-general-of-asean-to-visit-moscow/",
        NEWS_TEXT,
        published=_at(3, 0, day=20),
        priority=1,
        story=101,
    )
    vi = _item(
        21,
        "VietnamPlus (vi)",
        "Ngoại trưởng Nga Sergei Lavrov dự Hội nghị Bộ trưởng ASEAN - Nga tại Viêng Chăn",
        "https://www.vietnamplus.vn/ngoai-truong-nga-du-hoi-nghi-bo-truong-asean-nga-post968812.vnp",
        VI_TEXT,
        published=_at(11, 30),
        priority=2,
        language="vi",
        story=102,
        topics=(
            _tag("russia-asean", 4.2, ("ASEAN", "vi", 3), ("Nga", "vi", 3)),
            _tag("security", 2.2, ("chống khủng bố", "vi", 1)),
        ),
    )
    ru = _item(
        22,
        "TASS (ru)",
        "Лавров во Вьентьяне обсудил с коллегами из АСЕАН стратегическое партнерство",
        "https://tass.ru/politika/21452001",
        TASS_RU_TEXT,
        published=_at(10, 5),
        priority=3,
        language="ru",
        story=102,
        topics=(_tag("russia-asean", 5.5, ("АСЕАН", "ru", 2), ("Лавров*", "ru", 2)),),
    )
    tass_en = _item(
        23,
        "TASS",
        "Lavrov arrives in Vientiane for ASEAN ministerial meetings",
        "https://tass.com/politics/1821455",
        TASS_EN_TEXT,
        published=_at(4, 10),
        priority=3,
        story=102,
        topics=(RU_ASEAN,),
    )
    security = _item(
        31,
        "TASS",
        "Russia to keep training ASEAN law enforcement officers in counter-terrorism",
        "https://tass.com/politics/1821502",
        SECURITY_TEXT,
        published=_at(13, 45),
        priority=3,
        topics=(SECURITY,),
    )
    trade = _item(
        41,
        "VietnamPlus (en)",
        "Russia–ASEAN trade up 6.8 percent, Russian Foreign Ministry says",
        "https://en.vietnamplus.vn/russia-asean-trade-up/167901.vnp",
        TRADE_TEXT,
        published=_at(15, 20),
        priority=2,
        # Five topics, as a list of cooperation areas gives: the digest shows the 3 strongest.
        topics=(
            _tag(
                "environment", 2.0, ("environmental protection", "en", 1), ("environment", "en", 1)
            ),
            _tag("energy", 2.5, ("energy", "en", 1), ("joint projects ~ energy", "en", 1)),
            _tag("agriculture", 2.2, ("agriculture", "en", 1), ("farm", "en", 1)),
            _tag("economy", 3.3, ("trade", "en", 2), ("investment", "en", 2), ("billion", "en", 3)),
            _tag("russia-asean", 2.1, ("ASEAN", "en", 2), ("Russian", "en", 2)),
        ),
    )
    intern = _item(
        51,
        "ASEAN Secretariat",
        "ASEAN Secretariat welcomes new batch of interns",
        "https://asean.org/asean-secretariat-welcomes-new-batch-of-interns/",
        INTERN_TEXT,
        published=None,
        fetched=_at(16, 0),
        priority=1,
    )
    known = _item(
        61,
        "ASEAN Secretariat",
        "ASEAN, Russia commit to deepen cooperation",
        "https://asean.org/asean-russia-commit-to-deepen-cooperation/",
        SEED_TEXT_004,
        published=_at(5, 0),
        priority=1,
        status="known",
        duplicate_of=DuplicateOf("seed", "004_77ff1506fea45f61.txt", 0.97, "minhash"),
    )
    reprint = _item(
        62,
        "VietnamPlus (en)",
        "ASEAN Secretary General, Russian FM hold talks in Moscow",
        "https://en.vietnamplus.vn/asean-sg-russian-fm-hold-talks/167845.vnp",
        VNA_TEXT,
        published=_at(9, 30),
        priority=2,
        status="duplicate",
        duplicate_of=DuplicateOf("item", vna.url, 1.0, "text_hash"),
    )
    new = [mfa, vna, news, vi, ru, tass_en, security, trade, intern]
    stories = {101: [earlier, mfa, vna, news], 102: [vi, ru, tass_en]}
    return new, [known, reprint], stories


HEALTH = (
    SourceHealth(
        name="Russian MFA (news)",
        url="https://mid.ru/en/foreign_policy/news/",
        status="failing",
        last_success_at=datetime(2026, 11, 20, 3, 10, tzinfo=UTC),
        consecutive_failures=6,
        last_error_class="not_a_feed",
        last_error="HTML challenge page where a feed was expected",
        next_check_at=datetime(2026, 11, 22, 1, 0, tzinfo=UTC),
    ),
    SourceHealth(
        name="TASS (ru)",
        url="https://tass.ru/rss/v2.xml",
        status="failing",
        last_success_at=None,
        consecutive_failures=2,
        last_error_class="timeout",
        last_error="no complete response within 60 s",
        next_check_at=datetime(2026, 11, 22, 0, 30, tzinfo=UTC),
    ),
)


def sample_input(**changes: object) -> DigestInput:
    new, suppressed, stories = sample_items()
    inp = DigestInput(
        name="daily",
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        timezone="Asia/Jakarta",
        generated_at=GENERATED,
        items=new,
        suppressed=suppressed,
        stories=stories,
        seed_titles=SEED_TITLES,
        story_seed_refs={102: ("003_24ad2f7826d9acd6.txt",)},
        health=HEALTH,
        topic_order=TOPIC_ORDER,
        topic_labels=TOPIC_LABELS,
        topic_short=TOPIC_SHORT,
    )
    return replace(inp, **changes)  # type: ignore[arg-type]


def render(inp: DigestInput | None = None, templates_dir: Path | None = None) -> RenderedDigest:
    env = make_environment(templates_dir, TEMPLATES)
    return render_digest(build_digest(inp or sample_input()), env)


_GENERATED_LINE = re.compile(r"Generated at [^(<\n]*\(")


def normalise(body: str) -> str:
    """Blank the generated-at time: the one part of a re-render allowed to differ."""
    return _GENERATED_LINE.sub("Generated at <generated> (", body)


def _formats(rendered: RenderedDigest) -> dict[str, str]:
    return {"md": rendered.markdown, "html": rendered.html, "txt": rendered.text}


# --- golden files --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["md", "html", "txt"])
def test_digest_matches_golden_file(fmt: str) -> None:
    """The sample window renders exactly as reviewed (MONITOR_UPDATE_GOLDEN=1 rewrites)."""
    body = normalise(_formats(render())[fmt])
    golden = GOLDEN / f"digest_daily.{fmt}"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(body, encoding="utf-8")
    assert golden.exists(), f"{golden} missing: run with MONITOR_UPDATE_GOLDEN=1 and review"
    assert body == golden.read_text(encoding="utf-8")


def test_subject_counts_stories_and_new_items() -> None:
    assert render().subject == "[monitor] daily — 5 stories, 9 new — 22 Nov 2026"


# --- determinism ---------------------------------------------------------------------------


def test_rerender_differs_only_in_the_generated_at_line() -> None:
    first = _formats(render())
    later = _formats(render(sample_input(generated_at=GENERATED + timedelta(days=30))))
    for fmt, body in first.items():
        changed = [
            (a, b)
            for a, b in zip(body.splitlines(), later[fmt].splitlines(), strict=True)
            if a != b
        ]
        assert len(changed) == 1, fmt
        assert "Generated at" in changed[0][0]
        assert normalise(body) == normalise(later[fmt])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_input_renders_identically(seed: int) -> None:
    rng = random.Random(seed)
    new, suppressed, stories = sample_items()
    rng.shuffle(new)
    rng.shuffle(suppressed)
    shuffled_stories = {}
    for key in rng.sample(sorted(stories), len(stories)):
        members = list(stories[key])
        rng.shuffle(members)
        shuffled_stories[key] = members
    health = list(HEALTH)
    rng.shuffle(health)
    shuffled = sample_input(
        items=new, suppressed=suppressed, stories=shuffled_stories, health=health
    )
    assert _formats(render(shuffled)) == _formats(render())


def test_build_digest_is_repeatable_and_leaves_input_alone() -> None:
    inp = sample_input()
    before = repr(inp)
    assert build_digest(inp) == build_digest(inp)
    assert repr(inp) == before


# --- content and ordering ------------------------------------------------------------------


def test_sections_follow_configured_topic_order_then_other() -> None:
    model = build_digest(sample_input())
    assert [s.id for s in model.sections] == ["russia-asean", "security", "economy", "other"]
    assert [s.label for s in model.sections][-1] == "Other"
    reordered = build_digest(sample_input(topic_order=("economy", "security", "russia-asean")))
    # A story sits under its strongest topic whatever the order: story 101 (russia-asean
    # 3.75 × threshold, security 1.2 ×) stays under russia-asean, now the last section.
    assert [s.id for s in reordered.sections] == ["economy", "security", "russia-asean", "other"]
    assert [st.source for st in reordered.sections[2].stories] == [
        "Russian MFA",
        "VietnamPlus (vi)",
    ]


def test_story_headline_comes_from_the_best_priority_source() -> None:
    model = build_digest(sample_input())
    first = model.sections[0].stories[0]
    assert first.source == "Russian MFA"
    assert first.item_count == 3
    # The window's other reports, best source first, each with its own title; the report
    # first seen before the window is earlier coverage (a follow-up), not "also covered by".
    assert [c.source.text for c in first.also] == ["VNA", "Eurasia News"]
    assert all(c.title for c in first.also)
    assert [(c.source.text, c.date) for c in first.earlier] == [
        ("ASEAN Secretariat", "20 Nov 2026")
    ]


def test_headline_ties_go_to_the_earliest_then_the_lowest_id() -> None:
    a = _item(
        5, "A", "Later", "https://a.example/1", MFA_TEXT, published=_at(9), priority=2, story=7
    )
    b = _item(
        6, "B", "Earlier", "https://b.example/1", VNA_TEXT, published=_at(8), priority=2, story=7
    )
    c = _item(
        4, "C", "Same time", "https://c.example/1", NEWS_TEXT, published=_at(8), priority=2, story=7
    )
    for items in ([a, b], [b, a]):
        model = build_digest(sample_input(items=items, stories={}))
        assert model.sections[0].stories[0].headline.text == "Earlier"
    model = build_digest(sample_input(items=[a, b, c], stories={}))
    assert model.sections[0].stories[0].headline.text == "Same time"


def test_follow_up_of_a_seed_is_shown_in_every_format() -> None:
    rendered = render()
    title = "Press release on Foreign Minister Sergey Lavrov's upcoming visit"
    for body in (rendered.markdown, rendered.text.replace("\n    ", " ")):
        assert f"Follow-up to: “{title}" in body
    assert "Follow-up to: “" + title in rendered.html
    assert rendered.markdown.count("Follow-up to:") == 1


def test_missing_story_tags_and_seeds_leave_no_empty_lines() -> None:
    new, _, _ = sample_items()
    bare = [replace(i, story_id=None, topics=()) for i in new]
    rendered = render(sample_input(items=bare, stories={}, story_seed_refs={}))
    for body in _formats(rendered).values():
        for marker in ("Also covered by", "Follow-up to", "Tags:", "Why:"):
            assert marker not in body
    assert [s.id for s in build_digest(sample_input(items=bare)).sections] == ["other"]


def test_summary_is_two_or_three_lead_sentences_without_boilerplate() -> None:
    model = build_digest(sample_input())
    stories = {s.source: s for section in model.sections for s in section.stories}
    vi = stories["VietnamPlus (vi)"].summary
    assert vi.startswith("Ngày 26/7, Bộ trưởng Ngoại giao Nga")  # dateline "(TTXVN) -" gone
    assert "Ảnh" not in vi
    assert stories["Russian MFA"].summary.startswith("We are glad to welcome you")


def test_suppressed_lines_say_what_they_duplicate() -> None:
    model = build_digest(sample_input())
    known, reprint = model.suppressed
    assert known.relation == "known: copy of seed"
    assert known.target is not None
    assert "004_77ff1506fea45f61.txt" in known.target.text
    assert (known.method, known.similarity) == ("minhash", "0.97")
    assert reprint.relation == "duplicate of"
    assert reprint.target is not None
    assert reprint.target.url is not None
    assert reprint.target.url.endswith("/167840.vnp")
    md = render().markdown
    assert "## Suppressed: 2 known or duplicate items" in md
    assert "(text_hash, 1.00)" in md


def test_failing_sources_are_listed_with_error_class_and_last_success() -> None:
    rendered = render()
    for body in (rendered.markdown, rendered.text, rendered.html):
        assert "not_a_feed" in body
        assert "20 Nov 2026 10:10" in body  # last success, in Asia/Jakarta
        assert "last success: never" in body
    assert "No source failed" in render(sample_input(health=())).markdown


def test_min_score_leaves_out_items_without_a_strong_enough_topic() -> None:
    model = build_digest(sample_input(min_score=5.0))
    shown = {s.source for section in model.sections for s in section.stories}
    assert shown == {"Russian MFA", "TASS"}  # the Vietnamese lead of story 102 scores 4.2
    assert model.counts.new_items == 5
    assert model.counts.filtered_out == 4
    chips = [c.id for c in model.sections[0].stories[0].tags]
    assert chips == ["russia-asean"]  # the security tag scores under 5


def test_topics_filter_keeps_only_those_topics() -> None:
    model = build_digest(sample_input(topics=("economy",)))
    assert [s.id for s in model.sections] == ["economy"]
    assert model.counts.filtered_out == 8
    assert "1 more new" not in render(sample_input(topics=("economy",))).markdown
    assert "8 more new items" in render(sample_input(topics=("economy",))).markdown


def test_an_empty_window_renders_a_no_news_body_with_source_health() -> None:
    rendered = render(sample_input(items=[], suppressed=[], stories={}))
    assert rendered.subject == "[monitor] daily — 0 stories, 0 new — 22 Nov 2026"
    for body in _formats(rendered).values():
        assert "No new items in this window." in body
        assert "Russian MFA (news)" in body  # silence is not mistaken for "no news"
    assert "Other" not in rendered.markdown


def test_known_and_baseline_items_never_reach_the_main_body() -> None:
    new, suppressed, _ = sample_items()
    baseline = replace(new[0], id=999, baseline=True, title="Baseline item", story_id=None)
    model = build_digest(sample_input(items=[*new, baseline, *suppressed]))
    titles = {s.headline.text for section in model.sections for s in section.stories}
    assert "Baseline item" not in titles
    assert "ASEAN, Russia commit to deepen cooperation" not in titles
    assert model.counts.new_items == 9


def test_naive_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_digest(sample_input(window_start=datetime(2026, 11, 21)))


# --- tags: few, ranked, short (issue 13) -----------------------------------------------------

# score / threshold: b 3.0, e 2.5, f 1.6, a 1.5, c 1.4, d 1.0. By raw score e (10) and a (9)
# would lead; by strength b, e and f do.
_RANKED = {"a": (9.0, 6.0), "b": (6.0, 2.0), "c": (7.0, 5.0), "d": (5.0, 5.0), "e": (10.0, 4.0)}
_RANKED |= {"f": (8.0, 5.0)}


def _crowded(extra: int = 9, term_chars: int = 12) -> DigestInput:
    """One item with 6 + `extra` tags, like the real first item that carried 15 chips."""
    scores = dict(_RANKED) | {f"weak-{i}": (5.0 + i / 10, 5.0) for i in range(extra)}
    tags = tuple(
        TopicTag(
            topic,
            score,
            threshold,
            tuple((f"{topic} " + "w" * term_chars + f" {n}", "en", 4 - n) for n in range(3)),
        )
        for topic, (score, threshold) in scores.items()
    )
    item = _item(
        80,
        "ASEAN Secretariat",
        "ASEAN and Russia discuss fifteen areas of cooperation",
        "https://asean.org/crowded/",
        TRADE_TEXT,
        published=_at(12),
        priority=1,
        topics=tags,
    )
    order = tuple(sorted(scores))
    return sample_input(
        items=[item],
        suppressed=[],
        stories={},
        health=(),
        topic_order=order,
        topic_labels={t: f"Topic {t.upper()}, its long descriptive name" for t in order},
        topic_short={t: t.upper() for t in order},
    )


def test_a_story_shows_its_three_strongest_topics_in_rank_order() -> None:
    model = build_digest(_crowded())
    [section] = model.sections
    assert section.id == "b"  # the story sits under its strongest topic
    [story] = section.stories
    assert [c.id for c in story.tags] == ["b", "e", "f"]
    assert [c.label for c in story.tags] == ["B", "E", "F"]
    assert story.tags[0].name == "Topic B, its long descriptive name"


def test_every_format_shows_at_most_three_ranked_topics() -> None:
    rendered = render(_crowded())
    [md_line] = [x for x in rendered.markdown.splitlines() if x.startswith("Tags:")]
    chips = [part.split("**")[1] for part in md_line.removeprefix("Tags: ").split(" · ")]
    assert chips == ["B", "E", "F"]
    assert re.findall(r'<span class="chip"[^>]*>([^<]*)</span>', rendered.html) == ["B", "E", "F"]
    text = " ".join(rendered.text.split())
    tags = text[text.index("Tags: ") :]
    assert re.findall(r"(?:Tags: | · )([A-Z]) \(", tags) == ["B", "E", "F"]
    for body in (rendered.markdown, rendered.html, rendered.text):
        assert "WEAK-" not in body.split("Source health")[0].split("SOURCE HEALTH")[0]
        assert "A (" not in body
        assert ">A<" not in body


def test_the_legend_spells_out_the_short_labels_shown() -> None:
    rendered = render(_crowded())
    assert "- **B**: Topic B, its long descriptive name" in rendered.markdown
    assert "<strong>E</strong>: Topic E, its long descriptive name" in rendered.html
    assert "- F: Topic F, its long descriptive name" in rendered.text
    assert "Topic A, its long" not in rendered.markdown  # only the chips shown are explained
    plain = render(sample_input(topic_short={}))
    assert "## Topics" not in plain.markdown  # no short labels: nothing to spell out


@pytest.mark.parametrize("term_chars", [5, 30, 70], ids=["short", "long", "very-long"])
def test_why_has_two_terms_per_topic_and_about_160_characters(term_chars: int) -> None:
    model = build_digest(_crowded(term_chars=term_chars))
    story = model.sections[0].stories[0]
    assert all(len(c.terms) <= 2 for c in story.tags)
    assert all(c.terms for c in story.tags)  # every topic shown says why
    why = "; ".join(f"{c.label} — {', '.join(c.terms)}" for c in story.tags)
    assert len(why) <= 170, why
    html = render(_crowded(term_chars=term_chars)).html
    [evidence] = re.findall(r'<p class="evidence"[^>]*>([^<]*)</p>', html)
    assert len(evidence) <= 180, evidence
    # Strongest evidence first: the stored order, not re-sorted.
    assert story.tags[0].terms[0].startswith("b w")


def test_why_shows_terms_without_rule_syntax() -> None:
    tag = TopicTag(
        "diplomacy",
        9.0,
        6.0,
        (("лавров*", "ru", 3), ("energy… ~ cooperation… (within 20 words)", "any", 2)),
    )
    new, _, _ = sample_items()
    item = replace(new[0], story_id=None, topics=(tag,))
    model = build_digest(sample_input(items=[item], stories={}))
    assert model.sections[0].stories[0].tags[0].terms == ("лавров ×3", "energy ~ cooperation ×2")


def test_a_story_with_four_topics_over_the_min_score_shows_three() -> None:
    model = build_digest(replace(_crowded(extra=0), min_score=7.0))
    # Over 7: a (9), c (7), e (10), f (8); b scores 6. Ranked: e 2.5, f 1.6, a 1.5, c 1.4.
    assert [c.id for c in model.sections[0].stories[0].tags] == ["e", "f", "a"]


# --- security ------------------------------------------------------------------------------


def _hostile(title: str, url: str = "https://evil.example/a") -> DigestInput:
    item = _item(77, "Evil Feed", title, url, "Body. " + title, published=_at(12), priority=9)
    return sample_input(items=[item], suppressed=[], stories={}, health=())


def test_script_title_shows_as_text() -> None:
    rendered = render(_hostile("<script>alert('x')</script> ASEAN"))
    assert "<script" not in rendered.html
    # css-inline re-serialises text nodes: < and > stay escaped, quotes need not be.
    assert "&lt;script&gt;alert('x')&lt;/script&gt; ASEAN</a></h3>" in rendered.html
    assert "\\<script\\>alert('x')\\</script\\> ASEAN" in rendered.markdown
    assert "<script>alert('x')</script> ASEAN" in rendered.text  # plain text is inert


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "//evil.example/x",
    ],
    ids=["javascript", "mixed-case", "leading-space", "data", "vbscript", "file", "scheme-less"],
)
def test_non_http_links_are_not_emitted(url: str) -> None:
    rendered = render(_hostile("Harmless title", url))
    assert 'href="' not in rendered.html.split("Harmless title")[0].rsplit("<h3", 1)[-1]
    assert "Harmless title" in rendered.html
    for body in _formats(rendered).values():
        assert url.strip() not in body
    assert "### Harmless title\n" in rendered.markdown


def test_markdown_cannot_be_injected_through_a_title() -> None:
    md = render(
        _hostile("[click](https://evil.example) <img src=x onerror=alert(1)> **bold** # h")
    ).markdown
    assert "\\[click\\](https://evil.example)" in md
    assert "\\<img src=x onerror=alert(1)\\>" in md
    assert "\\*\\*bold\\*\\* \\# h" in md


def test_link_urls_cannot_break_out_of_attributes_or_markdown() -> None:
    rendered = render(_hostile("Quote", 'https://evil.example/a"onmouseover="alert(1)" (x)'))
    assert '"onmouseover' not in rendered.html
    assert "https://evil.example/a%22onmouseover=%22alert%281%29%22%20%28x%29" in rendered.markdown


def test_bidi_and_control_characters_are_neutralised() -> None:
    title = "Invoice\u202egpj.exe \u2066isolate\u2069 \u200fmark \x1b[31mred\x1b[0m\x00 end"
    rendered = render(_hostile(title))
    for body in (*_formats(rendered).values(), rendered.subject):
        for ch in ("\u202e", "\u2066", "\u2069", "\u200f", "\x1b", "\x00"):
            assert ch not in body
    assert "Invoicegpj.exe isolate mark [31mred [0m end" in rendered.text


def test_a_one_megabyte_title_is_truncated() -> None:
    rendered = render(_hostile("ASEAN " * 200_000))
    assert len(rendered.html) < 60_000
    headline = build_digest(_hostile("ASEAN " * 200_000)).sections[0].stories[0].headline.text
    assert len(headline) <= 300
    assert headline.endswith("…")


@pytest.mark.parametrize("name", ["daily\r\nBcc: victim@example.org", "daily\nX: y", "d\u2028x"])
def test_line_breaks_never_reach_the_subject(name: str) -> None:
    rendered = render(replace(_hostile("Title\r\nBcc: victim@example.org"), name=name))
    assert "\r" not in rendered.subject
    assert "\n" not in rendered.subject
    assert "\u2028" not in rendered.subject


# --- HTML email ----------------------------------------------------------------------------


def test_html_email_has_no_scripts_links_or_external_assets() -> None:
    html = render().html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "<img" not in html.lower()
    for attr, value in re.findall(r'\s(href|src)="([^"]*)"', html):
        assert value.startswith(("https://", "http://")), (attr, value)


def test_html_styles_are_inlined_and_only_media_rules_stay_in_the_head() -> None:
    html = render().html
    assert 'class="story" style="' in html
    assert 'class="chip" style="' in html
    style_blocks = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(style_blocks) == 1
    assert "@media (prefers-color-scheme: dark)" in style_blocks[0]
    assert "@media (max-width: 480px)" in style_blocks[0]
    outside_media = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", style_blocks[0])
    assert "{" not in outside_media  # plain rules were all inlined
    assert '<meta name="color-scheme" content="light dark">' in html
    assert 'role="presentation"' in html


def test_html_marks_language_and_direction_of_foreign_text() -> None:
    html = render().html
    assert '<p class="summary" lang="vi" dir="auto"' in html
    assert 'lang="ru"' not in html  # the Russian item is not a lead
    assert "Лавров" in render(sample_input(items=[sample_items()[0][4]])).html


# --- plain text ----------------------------------------------------------------------------


def _link_list(text: str) -> list[tuple[str, str]]:
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(r"^\[(\d+)\] (https?://\S+)$", text, re.MULTILINE)
    ]


def test_text_lines_fit_72_columns_except_listed_urls() -> None:
    for inp in (sample_input(), _hostile("東京" * 200), _hostile("x" * 500 + " " + "y" * 90)):
        text = render(inp).text
        for line in text.splitlines():
            if re.fullmatch(r"\[\d+\] https?://\S+", line):
                continue
            assert text_width(line) <= 72, line


def test_text_lists_every_link_once_and_refers_to_it() -> None:
    text = render().text
    links = _link_list(text)
    numbers = [int(n) for n, _ in links]
    assert numbers == list(range(1, len(links) + 1))
    assert len({url for _, url in links}) == len(links)
    body = text.split("\nLINKS\n")[0]
    for n in numbers:
        assert f"[{n}]" in body
    assert ("1", "https://mid.ru/en/foreign_policy/news/1423722/") in links


# --- templates -----------------------------------------------------------------------------


def test_templates_dir_overrides_single_templates(tmp_path: Path) -> None:
    (tmp_path / "_story.md.j2").write_text("STORY {{ story.headline.text|md }}\n\n")
    (tmp_path / "_story.html.j2").write_text("<tr><td>{{ story.headline.text }}</td></tr>")
    rendered = render(_hostile("<b>bold</b>"), templates_dir=tmp_path)
    assert "STORY \\<b\\>bold\\</b\\>" in rendered.markdown
    assert "## Source health" in rendered.markdown  # the rest falls back to the defaults
    assert re.search(r"<td[^>]*>&lt;b&gt;bold&lt;/b&gt;</td>", rendered.html)  # autoescaped


def test_default_templates_dir_has_every_template() -> None:
    env = make_environment(None, TEMPLATES)
    for name in ("digest.md.j2", "digest.html.j2", "digest.txt.j2", "digest.css"):
        assert env.get_template(name) is not None


# --- helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://asean.org/feed/", "https://asean.org/feed/"),
        ("HTTP://Example.org/a b", "http://example.org/a%20b"),
        ("https://пример.рф/путь", "https://xn--e1afmkfd.xn--p1ai/%D0%BF%D1%83%D1%82%D1%8C"),
        ("https://x.example/\u202egnp", "https://x.example/%E2%80%AEgnp"),
        ("https://user:pw@bank.example/", None),
        ("javascript:alert(1)", None),
        ("mailto:a@b.c", None),
        ("https://", None),
        ("https://x.example/" + "a" * 3000, None),
        ("https://x.example/\nSet-Cookie: a", None),
        (None, None),
    ],
    ids=[
        "plain",
        "case-space",
        "idn",
        "bidi",
        "userinfo",
        "js",
        "mailto",
        "no-host",
        "long",
        "newline",
        "none",
    ],
)
def test_safe_url(url: str | None, expected: str | None) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Lavrov met Mr. Lim in Moscow. They discussed the U.S. role in Asia. It rained.",
            [
                "Lavrov met Mr. Lim in Moscow.",
                "They discussed the U.S. role in Asia.",
                "It rained.",
            ],
        ),
        (
            "Глава МИД С. Лавров прибыл в Москву. Встреча прошла в 2020 г. в МИД России. Итоги?",
            [
                "Глава МИД С. Лавров прибыл в Москву.",
                "Встреча прошла в 2020 г. в МИД России.",
                "Итоги?",
            ],
        ),
        (
            "Hai bên nhất trí tăng cường hợp tác. Đây là chuyến thăm thứ hai.\nẢnh: TTXVN",
            ["Hai bên nhất trí tăng cường hợp tác.", "Đây là chuyến thăm thứ hai.", "Ảnh: TTXVN"],
        ),
        (
            "Trade grew by 6.8% to $19.6 billion. Good.",
            ["Trade grew by 6.8% to $19.6 billion.", "Good."],
        ),
    ],
    ids=["english", "russian", "vietnamese", "decimals"],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_summary_skips_datelines_captions_and_short_lines() -> None:
    text = (
        "21 Feb 2019\nSource: ASEAN Secretariat\nPhoto: VNA\n"
        "MOSCOW, July 26. /TASS/. Russia and ASEAN agreed to expand cooperation on "
        "counter-terrorism and cyber security at talks in Moscow. The sides also discussed "
        "trade, which grew by 6.8% last year to $19.6 billion. A third sentence follows here "
        "to complete the picture of the talks. A fourth sentence should not appear in it."
    )
    summary = summarise(text, "Russia and ASEAN agree")
    assert summary.startswith("Russia and ASEAN agreed to expand cooperation")
    assert "A third sentence" in summary
    assert "fourth" not in summary


def test_summary_is_capped_for_text_without_full_stops() -> None:
    summary = summarise("word " * 5000)
    assert 0 < len(summary) <= 301
    assert summary.endswith("…")


def test_clean_text_and_markdown_escape() -> None:
    assert clean_text("  a\r\n\tb\u202e c  ") == "a b c"
    assert clean_text("x" * 1000, 10) == "xxxxxxxxx…"
    assert md_escape("1. item") == "1\\. item"
    assert md_escape("- item") == "\\- item"
    assert md_escape("seed_file_004 _emph_") == "seed_file_004 \\_emph\\_"
    assert md_escape("&amp; & x") == "\\&amp; & x"


def test_wrap_text_counts_wide_characters_as_two_columns() -> None:
    wrapped = wrap_text("東京 " * 40, 20, "* ", "  ")
    assert all(text_width(line) <= 20 for line in wrapped.splitlines())
    assert wrapped.startswith("* 東京")
    assert wrap_text("a" * 30, 10).splitlines() == ["a" * 10] * 3


def test_digest_core_does_no_io_and_reads_no_clock() -> None:
    package = Path(__file__).parents[1] / "monitor" / "digest"
    forbidden = re.compile(
        r"^\s*(?:import|from)\s+(?:httpx|sqlalchemy|smtplib|socket|apscheduler|os|subprocess)\b"
        r"|datetime\.now|date\.today|time\.time|os\.environ|open\(",
        re.MULTILINE,
    )
    for module in sorted(package.glob("*.py")):
        assert not forbidden.search(module.read_text(encoding="utf-8")), module.name


# --- browser layout ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_check.find_chromium()
    if binary is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    return binary


def test_html_fits_narrow_and_wide_screens(chromium: str) -> None:
    """No horizontal scrolling at 320, 375 and 800 px, even with hostile long titles."""
    # The shipped taxonomy's labels are long ("Regional architecture: EAS, ARF, ADMM-Plus,
    # SOM/ARSOM, ASEAN centrality"): a tag chip must wrap, not push the page wider.
    long_labels = {
        topic: label + ": EAS, ARF, ADMM-Plus, SOM/ARSOM, ASEAN centrality, Greater Eurasia"
        for topic, label in TOPIC_LABELS.items()
    }
    for inp in (
        sample_input(),
        sample_input(topic_labels=long_labels),
        _hostile("Ｗ" * 150 + " " + "x" * 400, "https://e.example/" + "p" * 900),
    ):
        widths = chromium_check.measure_widths(chromium, render(inp).html, (320, 375, 800))
        assert sorted(widths) == [320, 375, 800]
        for width, (scroll, inner) in widths.items():
            assert inner == width
            assert scroll <= inner, (width, scroll)


def test_width_check_detects_overflow(chromium: str) -> None:
    """The layout check can fail: a fixed 900 px table overflows a phone."""
    page = '<table width="900"><tr><td>wide</td></tr></table>'
    widths = chromium_check.measure_widths(chromium, page, (375,))
    assert widths[375][0] > 375


def test_first_story_headline_and_summary_fit_the_first_screen_of_a_phone(chromium: str) -> None:
    """At 375 px the first story's headline and summary end within the first 900 px, also
    when its item carries 15 topics with long names (issue 13), and nothing overflows."""
    long_labels = {
        t: f"{label}: EAS, ARF, ADMM-Plus, SOM/ARSOM" for t, label in TOPIC_LABELS.items()
    }
    for inp in (sample_input(), sample_input(topic_labels=long_labels, topic_short={}), _crowded()):
        layout = chromium_check.measure_layout(chromium, render(inp).html, (375, 800))
        assert sorted(layout) == [375, 800]
        for width, m in layout.items():
            assert m.scroll <= m.inner == width, (width, m)
            assert 0 < m.headline_bottom < m.summary_bottom, (width, m)
        assert layout[375].summary_bottom <= 900, layout[375]


def test_first_screen_check_can_fail(chromium: str) -> None:
    """The check sees a summary pushed below the first screen by a tall masthead."""
    page = (
        '<div style="height:1200px">masthead</div><h3 class="headline">Headline</h3>'
        '<p class="summary">Summary</p>'
    )
    layout = chromium_check.measure_layout(chromium, page, (375,))
    assert layout[375].headline_bottom > 1200
    assert layout[375].summary_bottom > 900


def test_every_report_of_a_large_story_is_listed_with_its_own_title() -> None:
    """A summit covered by 20 outlets in the window: the headline and 19 "also covered by"
    entries, each with its own title; no report is folded into "and N more"."""
    reports = [
        _item(
            500 + n,
            f"Outlet {n}",
            f"Leaders gather for the summit, report {n}",
            f"https://outlet{n}.example/summit",
            "Leaders of the bloc met in the capital for their annual summit.",
            published=_at(3 + n // 4, n % 4 * 10),
            story=900,
        )
        for n in range(20)
    ]
    rendered = render(sample_input(items=reports, suppressed=[], stories={900: reports}))
    for output in (rendered.markdown, rendered.html, rendered.text):
        flat = " ".join(output.split())  # the text form wraps its lines
        for n in range(20):
            assert f"Leaders gather for the summit, report {n}" in flat
        assert not re.search(r"and \d+ more", flat)
