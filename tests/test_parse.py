"""parse_feed on real feeds (feed-rs fixtures, feedparser cases) and on hostile input."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.dedupe.exact import canonical_url
from monitor.errors import ParseError
from monitor.models import Entry
from monitor.parse import MAX_ENTRIES, html_to_text, linkless_url, parse_feed

DATA = Path(__file__).parent / "data" / "feeds"
FEED_RS = sorted(p for p in (DATA / "feed-rs").iterdir() if not p.name.endswith(".serde.json"))
FEED_URL = "https://example.org/feeds/feed.xml"


def _expected(path: Path) -> dict[str, object] | None:
    serde = path.with_name(path.stem + ".serde.json")
    return json.loads(serde.read_text("utf-8")) if serde.exists() else None


def _iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


@pytest.mark.parametrize("path", [p for p in FEED_RS if _expected(p)], ids=lambda p: p.name)
def test_feed_rs_fixture_matches_expected_links_titles_and_dates(path: Path) -> None:
    expected = _expected(path)
    assert expected is not None
    # Entries without a link fall back to an http(s) id, else to the feed URL plus an
    # identity fragment (kept, with no page to fetch).
    want = expected["entries"]  # type: ignore[index]
    entries = parse_feed(path.read_bytes(), url=FEED_URL)
    assert len(entries) == len(want)
    for entry, exp in zip(entries, want, strict=True):
        assert entry.url.startswith(("http://", "https://"))
        if not (exp["links"] or exp["id"].startswith("http")):
            assert entry.url.startswith(FEED_URL + "#monitor-entry-")
            assert not entry.has_page
            continue
        assert entry.has_page
        link = exp["links"][0]["href"] if exp["links"] else exp["id"]
        # feed-rs lower-cases hosts and adds a root slash; we keep the link as the feed gave it
        assert entry.url.lower().rstrip("/").endswith(link.lstrip("./").lower().rstrip("/"))
        title = (exp.get("title") or {}).get("content")
        assert entry.title == html_to_text(title)
        published = _iso(exp.get("published")) or _iso(exp.get("updated"))
        if published is not None:  # feedparser also reads some dates feed-rs gives up on
            assert entry.published_at == published
        if entry.published_at is not None:
            assert entry.published_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("rss_0.91_spec_1.xml", "rss 0.91"),
        ("rss_1.0_debian.xml", "rss 1.0"),
        ("rss_2.0_bbc.xml", "rss 2.0"),
        ("atom_example_2.xml", "atom"),
        ("jsonfeed_spec_1.json", "json feed 1.0"),
        ("jsonfeed_elastic_1.1.json", "json feed 1.1"),
    ],
    ids=lambda v: str(v),
)
def test_every_format_yields_entries(name: str, kind: str) -> None:
    assert parse_feed((DATA / "feed-rs" / name).read_bytes(), url=FEED_URL), kind


def test_rss_entry_fields_are_plain_text_with_language_and_author() -> None:
    entries = parse_feed((DATA / "feed-rs" / "rss_2.0_relurl_1.xml").read_bytes(), url=FEED_URL)
    first = entries[0]
    assert first.url == "https://insanity.industries/post/pareto-optimal-compression/"
    assert first.guid == first.url
    assert first.author == "Jonas Große Sundrup"  # "email (Name)" -> Name
    assert first.language == "en"
    assert first.published_at == datetime(2021, 3, 2, 22, 39, 15, tzinfo=UTC)


def test_atom_relative_ids_stay_ids_and_are_not_turned_into_links() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><id>t3_abc</id><title>has a link</title><link href="/a/1"/></entry>
    <entry><id>t3_nolink</id><title>no link, id is no URL</title></entry>
    <entry><id>http://x.example/abs</id><title>no link, id is a URL</title></entry></feed>"""
    entries = parse_feed(body, url=FEED_URL)
    assert [(e.guid, e.url, e.has_page) for e in entries] == [
        ("t3_abc", "https://example.org/a/1", True),
        ("t3_nolink", linkless_url(FEED_URL, "t3_nolink"), False),
        ("http://x.example/abs", "http://x.example/abs", True),
    ]
    # Its identity survives canonicalisation, so two link-less entries are not twins.
    assert "#monitor-entry-" in canonical_url(entries[1].url)
    assert canonical_url(entries[1].url) != canonical_url(linkless_url(FEED_URL, "t3_other"))


def test_reddit_atom_keeps_its_raw_ids() -> None:
    entries = parse_feed((DATA / "feed-rs" / "atom_example_reddit.xml").read_bytes(), url=FEED_URL)
    assert entries[0].guid == "t3_glvkc5"


def test_json_feed_fields() -> None:
    entries = parse_feed(
        (DATA / "feed.json").read_bytes(), url="https://feeds.npr.org/1019/feed.json"
    )
    assert len(entries) == 25
    first = entries[0]
    assert first.guid == "1050315385"
    assert first.author == "Manoush Zomorodi"
    assert first.published_at == datetime(2021, 10, 29, 14, 26, tzinfo=UTC)
    assert first.updated_at == datetime(2021, 10, 29, 15, 59, tzinfo=UTC)


def test_json_feed_is_sniffed_by_content_type_too() -> None:
    body = b'  {"version": "https://jsonfeed.org/version/1.1", "title": "t", "language": "vi",'
    body += b' "items": [{"id": "1", "url": "/a", "content_html": "<p>Xin&nbsp;ch\xc3\xa0o</p>"}]}'
    entries = parse_feed(body, url=FEED_URL, headers={"Content-Type": "application/feed+json"})
    assert entries == [
        Entry(url="https://example.org/a", guid="1", summary="Xin chào", language="vi")
    ]


def test_json_that_is_not_a_json_feed_is_not_a_feed() -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(b'{"data": []}', url=FEED_URL)
    assert info.value.error_class == "not_a_feed"


# feedparser's own test cases: (file, expected (url, title) pairs or the error class)
LINKLESS = "(the feed URL with a #monitor-entry- fragment)"
FEEDPARSER_CASES = [
    ("illformed_rss_item_link_corrupted_ampersands.xml", [("http://link/get?a=1&b=2", None)]),
    ("illformed_always_strip_doctype.xml", []),
    ("illformed_aaa_illformed.xml", []),
    ("illformed_undeclared_namespace.xml", []),
    ("illformed_rss_empty_document.xml", "parse"),
    ("illformed_rss_incomplete_cdata.xml", [(LINKLESS, None)]),
    ("wellformed_rss_item_link.xml", [("http://example.com/", None)]),
    ("wellformed_rss_item_guid_isPermaLink_map_link.xml", [("http://guid.example.com/", None)]),
    ("wellformed_rss_item_guid_not_permalink_not_url.xml", [(LINKLESS, None)]),
    (
        "wellformed_atom10_entry_link_alternate_map_link_3.xml",
        [("http://www.example.com/alternate", None)],
    ),
    (
        "wellformed_base_http_item_link_base_content_location.xml",
        [("http://example.com/relative/uri", None)],
    ),
]


@pytest.mark.parametrize(("name", "want"), FEEDPARSER_CASES, ids=[c[0] for c in FEEDPARSER_CASES])
def test_feedparser_cases(name: str, want: list[tuple[str, str | None]] | str) -> None:
    body = (DATA / "feedparser" / name).read_bytes()
    url = "http://example.com/" if "content_location" in name else FEED_URL
    if isinstance(want, str):
        with pytest.raises(ParseError) as info:
            parse_feed(body, url=url)
        assert info.value.error_class == want
    else:  # an entry without a link is kept, with no page to fetch
        got = [
            (LINKLESS if e.url.startswith(url + "#monitor-entry-") else e.url, e.title)
            for e in parse_feed(body, url=url)
        ]
        assert got == want


def test_summary_html_becomes_plain_text() -> None:
    body = (DATA / "feedparser" / "wellformed_rss_item_description_code_br.xml").read_bytes()
    assert parse_feed(body, url=FEED_URL)[0].summary == "<br />"


def test_bozo_feed_with_entries_returns_them() -> None:
    body = (DATA / "feed-rs" / "rss_2.0_bbc.xml").read_bytes().replace(b"</rss>", b"")
    body = body.replace(b"<title>", b"<title>Tom & Jerry ", 1)  # a bare ampersand: not XML
    entries = parse_feed(body, url=FEED_URL)
    assert [e.url for e in entries] == ["http://www.bbc.co.uk/programmes/m000sjxt"]


CHALLENGE = b"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"></head><body><div class="main-wrapper">
<noscript>Enable JavaScript and cookies to continue</noscript>
<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"></script>
</div></body></html>"""
PAGE = b"""<?xml version="1.0"?>\n<!-- a CMS -->\n<html><head><title>News</title>
<link rel="alternate" type="application/rss+xml" href="https://example.org/news/feed/">
</head><body><p>Hello</p></body></html>"""


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (CHALLENGE, "bot-protection challenge"),
        (PAGE, "advertises a feed at https://example.org/news/feed/"),
        (b"  <HTML><body>plain page</body></HTML>", "got an HTML page"),
        (b"<p>garbage first</p><html><body>x</body></html>", "got an HTML page"),
    ],
    ids=["cloudflare-challenge", "page-with-feed-link", "html", "html-after-junk"],
)
def test_html_instead_of_a_feed_is_not_a_feed(body: bytes, detail: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body, url=FEED_URL, headers={"content-type": "text/html"})
    assert info.value.error_class == "not_a_feed"
    assert detail in info.value.detail


def test_real_html_page_is_not_a_feed() -> None:
    page = (Path(__file__).parent / "data" / "pages" / "dw.com.colonial.html").read_bytes()
    with pytest.raises(ParseError, match="HTML page") as info:
        parse_feed(page, url=FEED_URL)
    assert info.value.error_class == "not_a_feed"


def test_xml_that_is_not_a_feed_is_not_a_feed() -> None:
    with pytest.raises(ParseError, match="<catalog>") as info:
        parse_feed((DATA / "feed-rs" / "xml_sample_1.xml").read_bytes(), url=FEED_URL)
    assert info.value.error_class == "not_a_feed"


@pytest.mark.parametrize(
    "body", [b"\x00\x01\x02garbage", b"\xff\xfe<<<", b"   "], ids=["binary", "bad-bom", "blank"]
)
def test_garbage_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body, url=FEED_URL)
    assert info.value.error_class == "parse"


def test_valid_feed_with_zero_entries_is_empty() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    assert parse_feed(body, url=FEED_URL) == []


def test_truncated_real_feed_without_items_is_empty_not_an_error() -> None:
    """Reuters' feed cut off by a server error: a recognisable RSS channel, no items yet."""
    body = (DATA / "feed-rs" / "rss_2.0_invalid_1.xml").read_bytes()
    assert parse_feed(body, url="https://www.reuters.com/rss") == []


def _rss(items: str, doctype: str = "") -> bytes:
    head = '<?xml version="1.0"?>\n' + doctype
    return (head + f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>').encode()


XXE = _rss(
    "<item><title>&xxe;</title><link>http://example.com/a</link></item>",
    '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
)
LAUGHS = _rss(
    "<item><title>&lol9;</title><link>http://example.com/a</link></item>",
    '<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n",
)


@pytest.mark.parametrize("body", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_xml_entity_attacks_are_inert(body: bytes) -> None:
    started = time.perf_counter()
    entries = parse_feed(body, url=FEED_URL)
    assert time.perf_counter() - started < 2
    assert [e.url for e in entries] == ["http://example.com/a"]
    title = entries[0].title or ""
    assert "root:" not in title
    assert len(title) < 100


def test_repeated_guids_yield_one_entry() -> None:
    item = "<item><guid>https://example.com/same</guid><title>again</title></item>"
    assert len(parse_feed(_rss(item * 10_000), url=FEED_URL)) == 1


def test_entries_are_capped() -> None:
    items = "".join(f"<item><link>https://example.com/{i}</link></item>" for i in range(600))
    entries = parse_feed(_rss(items), url=FEED_URL)
    assert len(entries) == MAX_ENTRIES
    assert entries[0].url == "https://example.com/0"


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "data:text/html,hi", "mailto:a@example.com", "ftp://example.com/x"],
)
def test_non_http_links_are_dropped(link: str) -> None:
    items = f"<item><guid isPermaLink='false'>x1</guid><link>{link}</link></item>"
    items += "<item><link>https://example.com/ok</link></item>"
    hostile, ok = parse_feed(_rss(items), url=FEED_URL)
    assert ok.url == "https://example.com/ok"
    # The entry stays, its link does not: it has the feed's URL and no page to fetch.
    assert hostile.url == linkless_url(FEED_URL, "x1")
    assert not hostile.has_page
