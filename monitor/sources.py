"""Sources file and OPML text <-> list[Source], with validation. No I/O."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from monitor.durations import format_duration, parse_duration
from monitor.errors import ConfigError, Problem
from monitor.models import Source, SourceKind

KINDS: tuple[SourceKind, ...] = ("feed", "sitemap", "page")
SOURCE_KEYS = ("name", "url", "kind", "interval", "language", "priority", "selector")
DEFAULT_INTERVAL = "30m"
MIN_INTERVAL = timedelta(minutes=1)  # `[poll] min_interval` can lower it (local tests)


def parse_sources(text: str, *, file: str, min_interval: timedelta = MIN_INTERVAL) -> list[Source]:
    """Parse a sources TOML file; raise ConfigError listing every problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(file, "(syntax)", str(exc))]) from exc
    problems: list[Problem] = []
    for key in data:
        if key != "sources":
            problems.append(Problem(file, key, "unknown key (expected [[sources]] tables)"))
    raw = data.get("sources", [])
    if not isinstance(raw, list):
        problems.append(Problem(file, "sources", "must be an array of tables: [[sources]]"))
        raw = []
    sources: list[Source] = []
    for index, entry in enumerate(raw):
        where = f"sources[{index}]"
        if not isinstance(entry, dict):
            problems.append(Problem(file, where, "must be a table"))
            continue
        source = _parse_source(cast(dict[str, Any], entry), where, file, problems, min_interval)
        if source is not None:
            sources.append(source)
    problems.extend(_duplicate_names(sources, file))
    if problems:
        raise ConfigError(problems)
    return sources


def _parse_source(
    entry: dict[str, Any],
    where: str,
    file: str,
    problems: list[Problem],
    min_interval: timedelta = MIN_INTERVAL,
) -> Source | None:
    start = len(problems)
    label = f"{where} ({entry['name']})" if isinstance(entry.get("name"), str) else where
    for key in entry:
        if key not in SOURCE_KEYS:
            problems.append(
                Problem(file, f"{label}.{key}", f"unknown key (known: {', '.join(SOURCE_KEYS)})")
            )
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(file, f"{label}.name", "required: a non-empty string"))
    url = entry.get("url")
    if not isinstance(url, str) or not is_http_url(url):
        problems.append(Problem(file, f"{label}.url", f"required: an http(s) URL, got {url!r}"))
    kind = entry.get("kind", "feed")
    if kind not in KINDS:
        problems.append(Problem(file, f"{label}.kind", f"must be one of {KINDS}, got {kind!r}"))
    interval_text = entry.get("interval", DEFAULT_INTERVAL)
    interval = None
    try:
        if not isinstance(interval_text, str):
            raise ValueError(f"{interval_text!r} is not a duration string like '30m'")
        interval = parse_duration(interval_text)
        if interval < min_interval:
            raise ValueError(
                f"{interval_text!r} is shorter than the minimum of "
                f"{format_duration(min_interval)} ([poll] min_interval)"
            )
    except ValueError as exc:
        problems.append(Problem(file, f"{label}.interval", str(exc)))
    language = entry.get("language")
    if language is not None and (not isinstance(language, str) or not language.isalpha()):
        problems.append(Problem(file, f"{label}.language", "must be a language code like 'en'"))
    priority = entry.get("priority", 5)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 9:
        problems.append(Problem(file, f"{label}.priority", "must be an integer from 1 to 9"))
    selector = entry.get("selector")
    if selector is not None and (not isinstance(selector, str) or kind != "page"):
        problems.append(
            Problem(file, f"{label}.selector", "a CSS selector string, only for kind = 'page'")
        )
    if len(problems) > start or interval is None:
        return None
    return Source(
        name=cast(str, name).strip(),
        url=cast(str, url),
        kind=cast(SourceKind, kind),
        interval=interval,
        language=cast("str | None", language),
        priority=cast(int, priority),
        selector=cast("str | None", selector),
    )


def _duplicate_names(sources: Sequence[Source], file: str) -> Iterable[Problem]:
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            yield Problem(file, f"sources ({source.name})", "duplicate source name")
        seen.add(source.name)


def interleave_hosts(urls: Sequence[str]) -> list[int]:
    """The positions of `urls` dealt round-robin over their hosts: each host's in their
    order, hosts in the order they first appear.

    A poll starts its sources in this order, so the sources in flight at once spread over
    the hosts: in the listed order, a run of feeds from one site filled the
    `parallel_sources` slots with polls waiting for that site's `per_host` connections
    while the connections to other sites stayed idle (issue 14).
    """
    hosts: dict[str, list[int]] = {}
    for position, url in enumerate(urls):
        hosts.setdefault((urlsplit(url).hostname or "").lower(), []).append(position)
    if len(hosts) < 2:
        return list(range(len(urls)))
    queues = list(hosts.values())
    return [q[turn] for turn in range(max(map(len, queues))) for q in queues if turn < len(q)]


def is_http_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def render_sources(sources: Iterable[Source]) -> str:
    """Sources as TOML text, the inverse of parse_sources."""
    blocks = []
    for s in sources:
        lines = ["[[sources]]", f"name = {_toml_str(s.name)}", f"url = {_toml_str(s.url)}"]
        lines.append(f"kind = {_toml_str(s.kind)}")
        lines.append(f"interval = {_toml_str(format_duration(s.interval))}")
        if s.language:
            lines.append(f"language = {_toml_str(s.language)}")
        lines.append(f"priority = {s.priority}")
        if s.selector:
            lines.append(f"selector = {_toml_str(s.selector)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def parse_opml(body: bytes, *, file: str) -> list[Source]:
    """OPML outlines with an xmlUrl become feed sources (nested folders are flattened)."""
    from lxml import etree  # OPML only: loading the sources file never needs it

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError([Problem(file, "(xml)", f"not valid OPML: {exc}")]) from exc
    problems: list[Problem] = []
    sources: list[Source] = []
    for index, outline in enumerate(root.iter("outline")):
        url = outline.get("xmlUrl")
        if url is None:
            continue  # a folder
        name = (outline.get("title") or outline.get("text") or url).strip()
        if not is_http_url(url):
            problems.append(Problem(file, f"outline[{index}] ({name})", f"bad xmlUrl {url!r}"))
            continue
        language = outline.get("language")
        sources.append(Source(name=name, url=url.strip(), language=language if language else None))
    unique: dict[str, Source] = {}
    for source in sources:
        unique.setdefault(source.name, source)
    if problems:
        raise ConfigError(problems)
    return list(unique.values())


def render_opml(sources: Iterable[Source], *, title: str = "monitor sources") -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{_xml_text(title)}</title></head>",
        "  <body>",
    ]
    for s in sources:
        attrs = f'text={quoteattr(s.name)} title={quoteattr(s.name)} type="rss"'
        attrs += f" xmlUrl={quoteattr(s.url)}"
        if s.language:
            attrs += f" language={quoteattr(s.language)}"
        lines.append(f"    <outline {attrs}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
