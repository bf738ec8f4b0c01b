"""Seed parsing: titles, dates and boilerplate removal on the five shipped seed files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.dedupe.seeds import parse_seed

CORPUS = Path(__file__).resolve().parents[1] / "config" / "corpus"

EXPECTED = [
    (
        "000_51428d13349f6c0f.txt",
        "ASEAN Secretary General to visit Russia and hold talks with Lavrov",
        None,  # "February 2-4" carries no year: no date is derived
    ),
    (
        "001_81123ee9e5c26968.txt",
        "Foreign Minister Sergey Lavrov’s opening remarks during talks with ASEAN "
        "Secretary-General Lim Jock Hoi, Moscow, February 3, 2020",
        datetime(2020, 2, 3, tzinfo=UTC),  # from the glued "3 February 202014:15"
    ),
    (
        "002_3b70ce0ad9d51632.txt",
        "ASEAN Secretary General Lim Jock Hoi and Russian Foreign Minister Sergey Lavrov "
        "held talks in Moscow on February 3",
        datetime(2020, 2, 3, tzinfo=UTC),  # from " date 2020-02-03"
    ),
    (
        "003_24ad2f7826d9acd6.txt",
        "Press release on Foreign Minister Sergey Lavrov’s upcoming visit to take part in "
        "ASEAN ministerial meetings",
        None,  # the text names event dates only, no publication date
    ),
    (
        "004_77ff1506fea45f61.txt",
        "ASEAN, Russia commit to deepen cooperation",
        datetime(2019, 2, 21, tzinfo=UTC),  # from "21 Feb 2019"
    ),
]


def _seed(name: str):  # type: ignore[no-untyped-def]
    return parse_seed(name, (CORPUS / name).read_text(encoding="utf-8"))


def test_all_five_seeds_are_shipped_under_their_original_names() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.txt")) == [name for name, _, _ in EXPECTED]


@pytest.mark.parametrize(("name", "title", "published"), EXPECTED, ids=[e[0][:3] for e in EXPECTED])
def test_seed_title_and_date_are_derived(name: str, title: str, published: datetime | None) -> None:
    seed = _seed(name)
    assert seed.name == name
    assert seed.title == title
    assert seed.published_at == published
    assert seed.language == "en"


@pytest.mark.parametrize(
    ("name", "absent"),
    [
        ("001_81123ee9e5c26968.txt", "de-DE1 en-GB1"),
        ("001_81123ee9e5c26968.txt", "Additional materials"),
        ("001_81123ee9e5c26968.txt", "Council of Europe"),
        ("001_81123ee9e5c26968.txt", "Advanced settings"),
        ("001_81123ee9e5c26968.txt", "202014:15"),
        ("002_3b70ce0ad9d51632.txt", "date 2020-02-03"),
        ("004_77ff1506fea45f61.txt", "Travel Page"),
        ("004_77ff1506fea45f61.txt", "Source:"),
    ],
    ids=[
        "switcher",
        "additional",
        "footer-links",
        "settings",
        "glued-date",
        "date-label",
        "travel",
        "source",
    ],
)
def test_boilerplate_is_removed_from_the_body(name: str, absent: str) -> None:
    assert absent not in _seed(name).text


@pytest.mark.parametrize(
    ("name", "present"),
    [
        ("001_81123ee9e5c26968.txt", "We are glad to welcome you and your delegation to Moscow."),
        ("002_3b70ce0ad9d51632.txt", "Moscow (VNA) – ASEAN Secretary General Lim Jock Hoi"),
        ("004_77ff1506fea45f61.txt", "The 16th ASEAN-Russia Senior Officials’ Meeting (ARSOM)"),
    ],
    ids=["001-body", "002-lead", "004-body"],
)
def test_the_article_body_is_kept(name: str, present: str) -> None:
    assert present in _seed(name).text


def test_the_headline_repeated_above_the_body_is_dropped() -> None:
    seed = _seed("004_77ff1506fea45f61.txt")
    assert seed.text.count("ASEAN, Russia commit to deepen cooperation") == 0


def test_an_empty_file_gives_an_empty_seed() -> None:
    seed = parse_seed("x.txt", "")
    assert (seed.title, seed.text, seed.published_at, seed.language) == ("", "", None, None)
