"""extract_page on real article pages, detect_language on real texts, build_text."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.extract import MAX_HTML_BYTES, build_text, detect_language, extract_page
from monitor.models import Page

PAGES = Path(__file__).parent / "data" / "pages"
EXPECTED: dict[str, dict[str, object]] = json.loads((PAGES / "expected.json").read_text("utf-8"))
BENCHMARK = sorted(k for k, v in EXPECTED.items() if "articleBody" in v)
SNIPPETS = sorted(k for k, v in EXPECTED.items() if "with" in v)
LANGUAGES = json.loads((PAGES / "languages.json").read_text("utf-8"))


def _tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def _extract(name: str) -> Page:
    page = extract_page((PAGES / name).read_bytes(), url=str(EXPECTED[name]["url"]))
    assert page is not None
    return page


@pytest.mark.parametrize("name", BENCHMARK)
def test_benchmark_page_text_matches_ground_truth(name: str) -> None:
    """Most of the ground-truth article body is found, and little else (boilerplate)."""
    got, want = _tokens(_extract(name).text), _tokens(str(EXPECTED[name]["articleBody"]))
    overlap = sum((got & want).values())
    assert overlap / sum(want.values()) >= 0.85  # recall
    assert overlap / sum(got.values()) >= 0.75  # precision: menus, footers, teasers stay out


@pytest.mark.parametrize("name", SNIPPETS)
def test_trafilatura_eval_snippets_present_and_boilerplate_absent(name: str) -> None:
    text = _extract(name).text
    for snippet in EXPECTED[name]["with"]:  # type: ignore[attr-defined]
        assert snippet in text
    for snippet in EXPECTED[name]["without"]:  # type: ignore[attr-defined]
        assert snippet not in text


def test_page_metadata() -> None:
    page = _extract("chron.com.esper-vietnam.html")
    assert page.title == "Esper accuses China of intimidating smaller Asian nations"
    assert page.published_at is not None
    assert page.published_at.tzinfo is UTC
    assert page.published_at.date() == datetime(2019, 11, 20).date()
    assert page.canonical_url is not None
    assert page.canonical_url.startswith("https://www.chron.com/news/world/article/Esper-says")
    assert page.language is None  # the page declares none; detect_language decides


@pytest.mark.parametrize(
    ("name", "language"),
    [("kabarislamia.com.jangan-membenci.html", "id"), ("wday.ru.model.html", "ru")],
    ids=["id-ID", "ru"],
)
def test_declared_language_of_real_pages(name: str, language: str) -> None:
    assert _extract(name).language == language


@pytest.mark.parametrize(
    ("html", "canonical", "language"),
    [
        (
            '<html lang="vi-VN"><head><link rel="Canonical" href="/bai-viet/1.html"></head>',
            "https://example.vn/bai-viet/1.html",
            "vi",
        ),
        (
            '<html><head><meta property="og:url" content="https://example.vn/og">'
            '<meta http-equiv="Content-Language" content="ru"></head>',
            "https://example.vn/og",
            "ru",
        ),
        (
            '<html><head><link rel="canonical" href="javascript:alert(1)"></head>',
            None,
            None,
        ),
    ],
    ids=["link-canonical-relative", "og-url-and-meta-language", "non-http-canonical"],
)
def test_canonical_and_declared_language(
    html: str, canonical: str | None, language: str | None
) -> None:
    article = "<p>" + "Bộ trưởng Ngoại giao Nga thăm Việt Nam và hội đàm về hợp tác. " * 20 + "</p>"
    page = extract_page(
        f"{html}<body><article>{article}</article></body></html>", url="https://example.vn/x"
    )
    assert page is not None
    assert (page.canonical_url, page.language) == (canonical, language)


@pytest.mark.parametrize(
    "html",
    [
        b"",
        b"   ",
        b"\x00\x01\x02\xff" * 1000,
        b"<html><body></body></html>",
        "<" * 100_000,
        b"<div>" * 50_000,
        b"<html><body><p>" + b"\xc3\x28" * 5000 + b"</p></body></html>",
    ],
    ids=["empty", "blank", "binary", "no-text", "angles", "deep-nesting", "bad-utf8"],
)
def test_hostile_input_returns_none_or_page_never_raises(html: bytes | str) -> None:
    result = extract_page(html, url="https://example.com/x")
    assert result is None or result.text


def test_huge_page_is_cut_to_the_cap() -> None:
    """A 20 MB page: its bulky scripts go, the article stays, text beyond the cap is ignored."""
    article = (PAGES / "chron.com.esper-vietnam.html").read_bytes()
    script = b"<script>var junk = '" + b"x" * 12_000_000 + b"';</script>"
    late = b"<p>" + b"Unreachable sentence beyond the cap. " * 250_000 + b"</p>"
    huge = article.replace(b"</head>", script + b"</head>", 1).replace(
        b"</body>", late + b"</body>"
    )
    assert len(huge) > 20_000_000 > MAX_HTML_BYTES
    page = extract_page(huge, url=str(EXPECTED["chron.com.esper-vietnam.html"]["url"]))
    assert page is not None
    assert "coast guard" in page.text
    assert "Unreachable sentence" not in page.text


@pytest.mark.parametrize("sample", LANGUAGES, ids=[s["id"] for s in LANGUAGES])
def test_language_of_real_texts(sample: dict[str, str]) -> None:
    assert detect_language(sample["text"]) == sample["lang"]
    assert (
        detect_language(sample["text"], hint="en" if sample["lang"] != "en" else "ru")
        == sample["lang"]
    )


def test_language_of_extracted_pages() -> None:
    assert detect_language(_extract("wday.ru.model.html").text) == "ru"
    assert detect_language(_extract("kabarislamia.com.jangan-membenci.html").text) == "id"


@pytest.mark.parametrize(
    ("text", "hint", "want"),
    [
        ("ASEAN", "vi", "vi"),
        ("Lavrov", None, None),
        ("", "ru", "ru"),
        ("Menteri Luar Negeri Rusia bertemu Sekretaris Jenderal ASEAN", "ms", "ms"),
        ("Menteri Luar Negeri Rusia bertemu Sekretaris Jenderal ASEAN", "id", "id"),
        ("Министр иностранных дел России Сергей Лавров провёл переговоры", "en", "ru"),
    ],
    ids=[
        "short-uses-hint",
        "short-no-hint",
        "empty",
        "close-call-ms",
        "close-call-id",
        "clear-beats-hint",
    ],
)
def test_language_hint_decides_short_or_ambiguous_text(
    text: str, hint: str | None, want: str | None
) -> None:
    assert detect_language(text, hint) == want


@pytest.mark.parametrize(
    ("page", "summary", "want"),
    [
        (Page(text="Full article text."), "Feed summary", ("Full article text.", "full_text")),
        (Page(text="   "), "Feed summary", ("Feed summary", "summary_only")),
        (None, "Feed summary", ("Feed summary", "summary_only")),
        (None, "  ", ("", "failed")),
        (None, None, ("", "failed")),
    ],
    ids=["page", "empty-page", "no-page", "blank-summary", "nothing"],
)
def test_build_text(page: Page | None, summary: str | None, want: tuple[str, str]) -> None:
    assert build_text(page, summary) == want
