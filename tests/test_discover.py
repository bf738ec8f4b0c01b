"""parse_sitemap and discover_links on real sitemaps and pages."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.discover import MAX_SITEMAP_BYTES, discover_links, parse_sitemap
from monitor.errors import ParseError

DATA = Path(__file__).parent / "data"
SITEMAPS = DATA / "sitemaps"
PAGES = DATA / "pages"


def test_urlset_with_lastmod() -> None:
    entries, children = parse_sitemap(
        (SITEMAPS / "sitemap.xml").read_bytes(), url="https://www.sitemaps.org/sitemap.xml"
    )
    assert children == []
    assert len(entries) == 84
    assert entries[1].url == "https://www.sitemaps.org/protocol.html"
    assert entries[1].updated_at == datetime(2016, 11, 21, tzinfo=UTC)


def test_hreflang_sitemap_lists_each_location_once() -> None:
    entries, _ = parse_sitemap(
        (SITEMAPS / "sitemap-hreflang.xml").read_bytes(), url="http://www.example.com/"
    )
    assert [e.url for e in entries] == [
        "http://www.example.com/english/page.html",
        "http://www.example.com/deutsch/page.html",
        "http://www.example.com/schweiz-deutsch/page.html",
    ]


def test_sitemap_index_gives_child_sitemaps() -> None:
    entries, children = parse_sitemap(
        (SITEMAPS / "sitemap2.xml").read_bytes(), url="http://www.example.com/"
    )
    assert entries == []
    assert children == [
        "http://www.example.com/sitemap1.xml.gz",
        "http://www.example.com/sitemap2.xml.gz",  # from CDATA
    ]


def test_news_sitemap_gives_titles_dates_and_languages() -> None:
    entries, _ = parse_sitemap(
        (SITEMAPS / "news-sitemap.xml").read_bytes(),
        url="https://en.vietnamplus.vn/sitemap-news.xml",
    )
    assert [(e.url, e.title, e.published_at, e.language) for e in entries] == [
        (
            "https://en.vietnamplus.vn/vietnam-russia-talks-on-asean-cooperation-post123456.vnp",
            "Vietnam, Russia discuss ASEAN cooperation in Vientiane",
            datetime(2024, 7, 27, 1, 30, tzinfo=UTC),
            "en",
        ),
        (
            "https://en.vietnamplus.vn/relative/story-with-a-long-slug-987654",
            "Bộ trưởng Ngoại giao Nga thăm Lào",
            datetime(2024, 7, 26, tzinfo=UTC),
            "vi",
        ),
    ]


def test_gzipped_sitemap_is_decompressed() -> None:
    body = gzip.compress((SITEMAPS / "sitemap.xml").read_bytes())
    entries, _ = parse_sitemap(body, url="https://www.sitemaps.org/sitemap.xml.gz")
    assert len(entries) == 84


def test_gzip_bomb_is_cut() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_SITEMAP_BYTES + 1), compresslevel=9)
    assert len(bomb) < 200_000
    with pytest.raises(ParseError) as info:
        parse_sitemap(bomb, url="https://example.com/sitemap.xml.gz")
    assert info.value.error_class == "too_large"


def test_plain_text_sitemap() -> None:
    body = b"https://example.com/a\nhttps://example.com/b\n\nhttps://example.com/a\n"
    entries, _ = parse_sitemap(body, url="https://example.com/sitemap.txt")
    assert [e.url for e in entries] == ["https://example.com/a", "https://example.com/b"]


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        ((PAGES / "listing.html").read_bytes(), "not_a_feed"),
        ((DATA / "feeds" / "feed2.rss").read_bytes(), "not_a_feed"),
        (b"\x1f\x8bnot really gzip", "parse"),
        (b"", "parse"),
    ],
    ids=["html-page", "rss-feed", "corrupt-gzip", "empty"],
)
def test_non_sitemaps_are_errors(body: bytes, error_class: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_sitemap(body, url="https://example.com/sitemap.xml")
    assert info.value.error_class == error_class


def test_sitemap_entities_are_not_expanded() -> None:
    body = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://example.com/&xxe;</loc></url><url><loc>https://example.com/&c;</loc></url>
<url><loc>https://example.com/fine</loc></url></urlset>"""
    entries, _ = parse_sitemap(body, url="https://example.com/sitemap.xml")
    urls = [e.url for e in entries]
    assert "https://example.com/fine" in urls
    assert not any("root:" in u or "aaaaaaaaaa" in u for u in urls)


LISTING_URL = "https://www.example.gov/en/press_service/news/"


def test_listing_page_discovery_without_selector() -> None:
    entries = discover_links((PAGES / "listing.html").read_bytes(), url=LISTING_URL)
    assert [(e.url, e.title) for e in entries] == [
        (
            "https://www.example.gov/en/press_service/news/1960046/",
            "Foreign Minister Sergey Lavrov's talks with ASEAN Secretary-General",
        ),
        (
            "https://www.example.gov/en/press_service/news/1960112/?utm_source=list",
            "Press release on the ASEAN-Russia Senior Officials' Meeting",
        ),
        (
            "https://example.gov/en/press_service/statements/russia-asean-strategic-partnership-anniversary",
            "Statement on the anniversary of the Russia-ASEAN strategic partnership",
        ),
    ]


def test_listing_page_discovery_with_selector() -> None:
    body = (PAGES / "listing.html").read_bytes()
    entries = discover_links(body, url=LISTING_URL, selector="aside")
    assert [e.url for e in entries] == [
        "https://othersite.example.org/world/2020/02/03/lavrov-asean-talks-moscow",
        "https://www.example.gov/en/tag/asean/",
        "https://www.example.gov/en/search/?q=asean",
    ]
    entries = discover_links(body, url=LISTING_URL, selector="article h2 a")
    assert len(entries) == 3


def test_real_page_discovery_finds_related_articles_not_language_editions() -> None:
    body = (PAGES / "dw.com.colonial.html").read_bytes()
    url = "https://www.dw.com/en/germany-confronts-its-colonial-past/a-52054000"
    urls = [e.url for e in discover_links(body, url=url)]
    assert (
        "https://www.dw.com/en/berlin-libya-conference-a-first-step-toward-peace/a-52051027" in urls
    )
    assert not any(u.startswith(("https://www.dw.com/sq/", "https://www.dw.com/ru/")) for u in urls)
    assert len(urls) == len(set(urls))


def test_real_page_with_selector() -> None:
    body = (PAGES / "dw.com.colonial.html").read_bytes()
    entries = discover_links(body, url="https://www.dw.com/en/x/a-1", selector="div.news")
    assert [e.url.rsplit("/", 1)[-1] for e in entries] == ["a-52051027", "a-51649786", "a-51193125"]
    assert entries[0].title is not None
    assert entries[0].title.startswith("Berlin Libya conference: A first step toward peace?")


def test_invalid_selector_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="invalid CSS selector"):
        discover_links(
            b"<html><body><a href='/x'>x</a></body></html>", url=LISTING_URL, selector="a["
        )


@pytest.mark.parametrize(
    "body", [b"", b"   ", b"\x00\xff\xfe", b"<html>"], ids=["empty", "blank", "binary", "bare"]
)
def test_discovery_on_junk_is_empty(body: bytes) -> None:
    assert discover_links(body, url=LISTING_URL) == []
