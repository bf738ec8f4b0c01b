"""Sources file and OPML parsing, validation and round trips."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.errors import ConfigError
from monitor.sources import (
    interleave_hosts,
    parse_opml,
    parse_sources,
    render_opml,
    render_sources,
)

GOOD = """
[[sources]]
name = "ASEAN Secretariat"
url = "https://asean.org/feed/"
interval = "30m"
language = "en"
priority = 1

[[sources]]
name = "MFA"
url = "https://mid.ru/en/foreign_policy/news/"
kind = "page"
selector = "a.news-title"
interval = "2h"
"""


def test_sources_parse_with_defaults() -> None:
    asean, mfa = parse_sources(GOOD, file="s.toml")
    assert (asean.kind, asean.interval, asean.priority, asean.language) == (
        "feed",
        timedelta(minutes=30),
        1,
        "en",
    )
    assert (mfa.kind, mfa.selector, mfa.interval, mfa.priority) == (
        "page",
        "a.news-title",
        timedelta(hours=2),
        5,
    )


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        ('name = "A"\nurl = "https://a.org/"\nkind = "rss"', "sources[0] (A).kind", "must be one"),
        ('name = "A"\nurl = "javascript:alert(1)"', "sources[0] (A).url", "http(s) URL"),
        ('url = "https://a.org/"', "sources[0].name", "required"),
        ('name = "A"\nurl = "https://a.org/"\npriority = 0', "sources[0] (A).priority", "1 to 9"),
        ('name = "A"\nurl = "https://a.org/"\ninterval = "5s"', "sources[0] (A).interval", "1m"),
        ('name = "A"\nurl = "https://a.org/"\nselector = "a"', "sources[0] (A).selector", "page"),
        ('name = "A"\nurl = "https://a.org/"\nfeed = "x"', "sources[0] (A).feed", "unknown key"),
    ],
    ids=["kind", "scheme", "name", "priority", "interval", "selector-kind", "unknown-key"],
)
def test_bad_source_entries_are_named(body: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_sources("[[sources]]\n" + body + "\n", file="s.toml")
    [problem] = info.value.problems
    assert (problem.file, problem.key) == ("s.toml", key)
    assert reason in problem.reason


def test_duplicate_names_and_several_problems_are_all_listed() -> None:
    text = GOOD + '\n[[sources]]\nname = "MFA"\nurl = "https://x.org/"\n[[sources]]\nname = 3\n'
    with pytest.raises(ConfigError) as info:
        parse_sources(text, file="s.toml")
    reasons = [p.reason for p in info.value.problems]
    assert "duplicate source name" in reasons
    assert len(info.value.problems) >= 3  # duplicate, bad name, missing url


def test_render_sources_round_trips() -> None:
    parsed = parse_sources(GOOD, file="s.toml")
    assert parse_sources(render_sources(parsed), file="again.toml") == parsed


def test_opml_import_flattens_folders_and_export_round_trips() -> None:
    opml = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>feeds</title></head><body>
  <outline text="ASEAN">
    <outline text="ASEAN Secretariat" type="rss" xmlUrl="https://asean.org/feed/"/>
    <outline title="TASS &amp; co" text="TASS" type="rss" xmlUrl="https://tass.com/rss/v2.xml"/>
  </outline>
  <outline text="no feed here" htmlUrl="https://example.org/"/>
</body></opml>"""
    found = parse_opml(opml, file="in.opml")
    assert [(s.name, s.url) for s in found] == [
        ("ASEAN Secretariat", "https://asean.org/feed/"),
        ("TASS & co", "https://tass.com/rss/v2.xml"),
    ]
    again = parse_opml(render_opml(found).encode(), file="out.opml")
    assert [(s.name, s.url) for s in again] == [(s.name, s.url) for s in found]


def test_opml_with_a_bad_url_or_bad_xml_is_rejected() -> None:
    with pytest.raises(ConfigError, match="bad xmlUrl"):
        parse_opml(
            b'<opml><body><outline text="x" xmlUrl="file:///etc/passwd"/></body></opml>',
            file="x.opml",
        )
    with pytest.raises(ConfigError, match="not valid OPML"):
        parse_opml(b"<opml><body>", file="x.opml")


def test_opml_external_entities_are_refused() -> None:
    attack = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>
<opml><body><outline text="&xxe;" xmlUrl="https://a.org/feed"/></body></opml>"""
    with pytest.raises(ConfigError, match="external entity"):
        parse_opml(attack, file="x.opml")


@pytest.mark.parametrize(
    ("urls", "expected"),
    [
        ([], []),
        (["http://a/1", "http://a/2", "http://a/3"], [0, 1, 2]),
        (
            ["http://a/1", "http://a/2", "http://a/3", "http://b/1", "https://B:8443/2"],
            [0, 3, 1, 4, 2],
        ),
        (["http://b/1", "http://a/1", "http://b/2", "http://c/1"], [0, 1, 3, 2]),
    ],
    ids=["none", "one-host-keeps-its-order", "runs-of-one-site-dealt-out", "first-seen-first"],
)
def test_sources_are_dealt_round_robin_over_their_hosts(
    urls: list[str], expected: list[int]
) -> None:
    assert interleave_hosts(urls) == expected
