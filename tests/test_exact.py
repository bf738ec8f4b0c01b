"""Exact dedupe keys: canonical URLs and text fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.dedupe.exact import canonical_url, normalise_text, text_fingerprint

DATA = Path(__file__).parent / "data"

CANONICAL = [
    ("https://example.com/a/?utm_source=rss&utm_medium=feed&id=7", "https://example.com/a?id=7"),
    (
        "https://example.com/a?fbclid=x&gclid=y&yclid=z&mc_cid=1&mc_eid=2&_ga=3",
        "https://example.com/a",
    ),
    (
        "https://example.com/a?igshid=1&ref=tw&ref_src=twsrc&cmpid=c&ito=1&at_medium=RSS",
        "https://example.com/a",
    ),
    ("https://example.com/?p=123&utm_campaign=x", "https://example.com/?p=123"),
    ("https://example.com/a?b=2&a=1&b=1", "https://example.com/a?a=1&b=1&b=2"),
    ("HTTPS://Example.COM:443/Path", "https://example.com/Path"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("http://example.com:8080/a", "http://example.com:8080/a"),
    ("https://user:pw@example.com/a", "https://example.com/a"),
    ("https://example.com/a#section-2", "https://example.com/a"),
    ("https://example.com/a/b/", "https://example.com/a/b"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com/a/./b/../c", "https://example.com/a/c"),
    ("https://example.com/%7euser/caf%c3%a9", "https://example.com/~user/caf%C3%A9"),
    ("https://example.com/café", "https://example.com/caf%C3%A9"),
    ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),
    ("https://example.com/s?q=a+b", "https://example.com/s?q=a%20b"),
    ("https://bücher.example/ä", "https://xn--bcher-kva.example/%C3%A4"),
    ("https://www.example.com/a", "https://example.com/a"),
    ("https://example.com./a", "https://example.com/a"),
    ("mailto:press@example.com", "mailto:press@example.com"),
    ("not a url", "not a url"),
    ("http://example.com:99999/", "http://example.com:99999/"),
]


@pytest.mark.parametrize(("url", "want"), CANONICAL, ids=[c[0] for c in CANONICAL])
def test_canonical_url(url: str, want: str) -> None:
    assert canonical_url(url) == want


# Each group: variants of one article that must share a key.
TWINS = {
    "amp-path": [
        "https://www.theguardian.com/world/2020/feb/03/lavrov-asean",
        "https://amp.theguardian.com/world/2020/feb/03/lavrov-asean",
        "https://www.theguardian.com/world/2020/feb/03/lavrov-asean/amp",
        "https://www.theguardian.com/amp/world/2020/feb/03/lavrov-asean/",
    ],
    "amp-query": [
        "https://en.vietnamplus.vn/lavrov-visit-post1.vnp",
        "https://en.vietnamplus.vn/lavrov-visit-post1.vnp?amp=1",
        "https://en.vietnamplus.vn/lavrov-visit-post1.vnp?amp",
        "https://en.vietnamplus.vn/lavrov-visit-post1.vnp?outputType=amp&utm_source=x",
    ],
    "amp-html": [
        "https://example.com/news/2020/story.html",
        "https://example.com/news/2020/story.amp.html",
    ],
    "mobile": [
        "https://tass.com/politics/1120000",
        "https://m.tass.com/politics/1120000",
        "https://mobile.tass.com/politics/1120000/",
        "https://www.tass.com/politics/1120000?utm_source=google.com",
    ],
}


@pytest.mark.parametrize("group", list(TWINS), ids=list(TWINS))
def test_amp_and_mobile_twins_share_a_key(group: str) -> None:
    keys = {canonical_url(url) for url in TWINS[group]}
    assert len(keys) == 1


def test_different_articles_keep_different_keys() -> None:
    urls = [
        "https://example.com/news?id=1",
        "https://example.com/news?id=2",
        "https://example.com/news/1",
        "https://example.com/News/1",
        "https://other.example.com/news/1",
        "https://m.example.com/news/1x",
        "https://amp.dev/",
    ]
    assert len({canonical_url(u) for u in urls}) == len(urls)


def _real_urls() -> list[str]:
    expected = json.loads((DATA / "pages" / "expected.json").read_text("utf-8"))
    urls = [str(v["url"]) for v in expected.values()]
    return urls + [url for group in TWINS.values() for url in group] + [c[0] for c in CANONICAL]


@pytest.mark.parametrize("url", _real_urls())
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Lavrov’s “talks” with ASEAN", 'lavrov\'s "talks" with asean'),
        ("ASEAN–Russia   summit\n\n2024", "ASEAN-Russia summit 2024"),
        ("Ｆｕｌｌｗｉｄｔｈ ＡＳＥＡＮ", "fullwidth asean"),
        ("soft\u00adhyphen zero\u200bwidth", "softhyphen zerowidth"),
        ("MOSCOW (VNA) – ASEAN", "Moscow VNA ASEAN"),
        ("Việt Nam", "VIỆT NAM"),
    ],
    ids=[
        "curly-quotes",
        "dashes-and-spaces",
        "fullwidth",
        "format-chars",
        "punctuation",
        "vietnamese-case",
    ],
)
def test_normalised_texts_match(a: str, b: str) -> None:
    assert normalise_text(a) == normalise_text(b)
    assert text_fingerprint(a) == text_fingerprint(b)


def test_normalise_text_keeps_words_apart_and_letters() -> None:
    assert normalise_text("end.Next «Лавров» Việt") == "end next лавров việt"


def test_different_texts_differ() -> None:
    assert text_fingerprint("Lavrov met Lim Jock Hoi") != text_fingerprint(
        "Lavrov met Lim Jock Hoi today"
    )


@pytest.mark.parametrize(
    "text", ["", "   \n\t", "…!?"], ids=["empty", "whitespace", "punctuation-only"]
)
def test_fingerprint_of_empty_text_is_empty(text: str) -> None:
    assert text_fingerprint(text) == ""


def test_fingerprint_is_sha256_hex() -> None:
    fingerprint = text_fingerprint("ASEAN")
    assert len(fingerprint) == 64
    assert int(fingerprint, 16) >= 0
