"""Feed bytes -> entries: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed by hand. No I/O."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from monitor.dedupe.exact import ENTRY_FRAGMENT
from monitor.errors import ParseError
from monitor.models import Entry

MAX_ENTRIES = 500  # per feed; a feed listing more is truncated, in feed order

_JSON_FEED_PREFIX = "https://jsonfeed.org/version/"
_JSON_TYPES = ("application/feed+json", "application/json")
# A DOCTYPE with an internal subset: `<!DOCTYPE name ... [ ... ]>`.
_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.IGNORECASE | re.DOTALL)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
# What bot-protection interstitials (Cloudflare, DDoS-Guard, Sucuri, ...) put in their pages.
_CHALLENGE_MARKERS = (
    b"just a moment...",
    b"cf-browser-verification",
    b"challenge-platform",
    b"_cf_chl",
    b"cf-chl-",
    b"attention required! | cloudflare",
    b"ddos-guard",
    b"checking your browser",
    b"enable javascript and cookies to continue",
    b"sucuri website firewall",
    b"captcha",
)
_FEED_LINK = re.compile(
    rb"<link\b[^>]*\btype=[\"']?application/(?:rss|atom|feed)\+(?:xml|json)[^>]*>", re.IGNORECASE
)
_HREF = re.compile(rb"\bhref=(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE)
_EMAIL_AND_NAME = re.compile(r"^\s*[^\s@()]+@[^\s@()]+\s*\((.+)\)\s*$")  # RSS: "a@b.c (Name)"
_ID_ELEMENT = re.compile(
    rb"<(?:[\w.-]+:)?(?:id|guid)\b[^>]*>\s*(?:<!\[CDATA\[)?([^<\]]*?)(?:\]\]>)?\s*</",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_ROOT = re.compile(
    rb"(?:\s+|<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)*<([A-Za-z_][\w:.-]*)",
    re.DOTALL | re.IGNORECASE,
)


def strip_entity_declarations(body: bytes) -> bytes:
    """Remove a DOCTYPE whose internal subset declares entities (XXE, billion laughs).

    Feeds and sitemaps never need their own entities; references to them are then simply
    undefined, which the parsers treat as text or as a recoverable error.
    """
    match = _DOCTYPE_SUBSET.search(body)
    if match is None or not _ENTITY_DECL.search(match.group(0)):
        return body
    return body[: match.start()] + body[match.end() :]


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> list[Entry]:
    """Parse RSS, Atom or JSON Feed bytes fetched from `url` into entries.

    Raises:
        ParseError: `not_a_feed` for HTML (a web page or a bot challenge) or other non-feed
            documents; `parse` for garbage that yields nothing.
    """
    lowered = {key.lower(): value for key, value in (headers or {}).items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError(url, "empty response body, not a feed", error_class="parse")
    if head.startswith(b"{") or (content_type in _JSON_TYPES and not head.startswith(b"<")):
        return _parse_json_feed(body, url=url)
    if _starts_as_html(head):
        raise ParseError(url, _html_detail(body), error_class="not_a_feed")

    response_headers = {**lowered, "content-location": url}
    import feedparser  # only a changed feed needs it: a warm poll never does (issue 14)

    parsed = feedparser.parse(strip_entity_declarations(body), response_headers=response_headers)
    entries = parsed.get("entries", [])
    if not entries:
        if parsed.get("version"):
            return []  # a real feed that is empty right now
        if b"<html" in head[:4096].lower() or b"<body" in head[:4096].lower():
            raise ParseError(url, _html_detail(body), error_class="not_a_feed")
        problem = parsed.get("bozo_exception")
        # Bozo reasons that say nothing about the document itself (missing or conflicting
        # headers).
        soft = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
        if problem is not None and not isinstance(problem, soft):
            raise ParseError(url, f"unparseable feed: {problem}", error_class="parse")
        root = _root_name(head)
        raise ParseError(
            url, f"an XML document <{root}> that is not RSS or Atom", error_class="not_a_feed"
        )
    feed_language = language_code(parsed.get("feed", {}).get("language"))
    raw_ids = _raw_ids(body, url)
    return _unique(_feedparser_entry(entry, url, feed_language, raw_ids) for entry in entries)


def _starts_as_html(head: bytes) -> bool:
    return _root_name(head[:4096]).lower() in ("html", "head", "body")


def looks_like_challenge(body: bytes) -> bool:
    """A bot-protection interstitial (Cloudflare, DDoS-Guard, ...) rather than content."""
    sample = body[:65536].lower()
    return any(marker in sample for marker in _CHALLENGE_MARKERS)


def _html_detail(body: bytes) -> str:
    if looks_like_challenge(body):
        return "got an HTML page (looks like a bot-protection challenge), not a feed"
    advertised = _advertised_feed(body[:65536])
    if advertised:
        return f"got an HTML page, not a feed; the page advertises a feed at {advertised}"
    return "got an HTML page, not a feed; check the source URL"


def _advertised_feed(sample: bytes) -> str | None:
    link = _FEED_LINK.search(sample)
    if link is None:
        return None
    href = _HREF.search(link.group(0))
    if href is None:
        return None
    raw = next(group for group in href.groups() if group is not None)
    return unescape(raw.decode("utf-8", "replace")).strip() or None


def _root_name(head: bytes) -> str:
    """The name of the first element, after the XML declaration, comments and DOCTYPE."""
    match = _ROOT.match(head)
    return match.group(1).decode("ascii", "replace") if match else "?"


def _raw_ids(body: bytes, base: str) -> dict[str, str]:
    """Entry ids as written in the document, keyed by what feedparser turns them into.

    feedparser resolves an id against the base URL (and copies it into `link` when the entry
    has none), so `t3_abc` comes back as `https://host/feed/t3_abc`: map it back.
    """
    ids: dict[str, str] = {}
    for match in _ID_ELEMENT.finditer(body):
        raw = unescape(match.group(1).decode("utf-8", "replace")).strip()
        if raw:
            ids[raw] = raw
            if not _SCHEME.match(raw):
                ids.setdefault(urljoin(base, raw), raw)
    return ids


def linkless_url(base: str, guid: str | None, *parts: object) -> str:
    """The URL of an entry without an http(s) link of its own: the feed's URL with a
    `#monitor-entry-<hash>` fragment, the hash of its id (or of what it says). Such an entry is
    kept, like every entry the feed yields; its text is what the feed carries."""
    key = guid or "\x00".join(str(p) for p in parts)
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:16]
    return f"{base.split('#', 1)[0]}#{ENTRY_FRAGMENT}{digest}"


def _feedparser_entry(
    entry: Any, base: str, feed_language: str | None, raw_ids: Mapping[str, str]
) -> Entry | None:
    resolved = _clean(dict.get(entry, "id"))
    guid = raw_ids.get(resolved, resolved) if resolved else None
    relative_id = guid is not None and not _SCHEME.match(guid)
    link = entry.get("link")
    if relative_id and link == resolved:
        link = None  # feedparser copied a relative (non-URL) id into the link
    link = absolute_http_url(link, base)
    if link is None and guid and not relative_id:
        link = absolute_http_url(guid, base)
    summary = entry.get("summary")
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value")
    title = html_to_text(entry.get("title"))
    summary = html_to_text(summary)
    has_page = link is not None
    if link is None:
        link = linkless_url(base, guid, title, summary, sorted(entry.items(), key=str))
    language = None
    for key in ("title_detail", "summary_detail"):
        language = language or language_code((entry.get(key) or {}).get("language"))
    # dict.get: feedparser's own lookup of `updated_parsed` falls back to `published_parsed`.
    published = _struct_time(dict.get(entry, "published_parsed"))
    updated = _struct_time(dict.get(entry, "updated_parsed"))
    return Entry(
        url=link,
        guid=guid,
        title=title,
        summary=summary,
        has_page=has_page,
        # Atom requires <updated> and makes <published> optional: the best date we have.
        published_at=published or updated,
        updated_at=updated,
        author=_feed_author(entry),
        language=language or feed_language,
    )


def _feed_author(entry: Any) -> str | None:
    raw = html_to_text(entry.get("author"))
    if raw is None:
        return html_to_text((entry.get("author_detail") or {}).get("name"))
    match = _EMAIL_AND_NAME.match(raw)
    return match.group(1).strip() if match else raw


def _parse_json_feed(body: bytes, *, url: str) -> list[Entry]:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(url, f"invalid JSON: {exc}", error_class="parse") from exc
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or not version.startswith(_JSON_FEED_PREFIX):
        raise ParseError(url, "got JSON that is not a JSON Feed", error_class="not_a_feed")
    items = data.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "JSON Feed without an `items` list", error_class="parse")
    feed_language = language_code(data.get("language"))
    feed_author = _json_author(data)
    return _unique(
        _json_entry(item, url, feed_language, feed_author)
        for item in items
        if isinstance(item, dict)
    )


def _json_entry(
    item: dict[str, Any], base: str, feed_language: str | None, feed_author: str | None
) -> Entry | None:
    raw_id = item.get("id")
    guid = _clean(str(raw_id)) if isinstance(raw_id, str | int) else None
    link = absolute_http_url(_str(item.get("url")), base)
    if link is None and guid and guid.lower().startswith("http"):
        link = absolute_http_url(guid, base)
    summary = _str(item.get("summary")) or _str(item.get("content_text"))
    summary = html_to_text(summary or _str(item.get("content_html")))
    title = html_to_text(_str(item.get("title")))
    has_page = link is not None
    if link is None:
        link = linkless_url(base, guid, title, summary, sorted(item.items(), key=str))
    published = iso_datetime(item.get("date_published"))
    updated = iso_datetime(item.get("date_modified"))
    return Entry(
        url=link,
        guid=guid,
        title=title,
        summary=summary,
        has_page=has_page,
        published_at=published or updated,
        updated_at=updated,
        author=_json_author(item) or feed_author,
        language=language_code(item.get("language")) or feed_language,
    )


def _json_author(obj: dict[str, Any]) -> str | None:
    authors = obj.get("authors")  # JSON Feed 1.1
    candidates = authors if isinstance(authors, list) else [obj.get("author")]  # 1.0
    names = [_str(a.get("name")) for a in candidates if isinstance(a, dict)]
    return html_to_text(", ".join(name for name in names if name)) or None


def _unique(entries: Iterable[Entry | None]) -> list[Entry]:
    """Drop missing entries and repeated GUIDs or links, keeping the first; cap the count."""
    seen: set[str] = set()
    result: list[Entry] = []
    for entry in entries:
        if entry is None:
            continue
        keys = {"url:" + entry.url} | ({"guid:" + entry.guid} if entry.guid else set())
        if keys & seen:
            continue
        seen |= keys
        result.append(entry)
        if len(result) >= MAX_ENTRIES:
            break
    return result


def absolute_http_url(value: object, base: str) -> str | None:
    """`value` made absolute against `base`; None unless that is an http(s) URL with a host."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        absolute = urljoin(base, value.strip())
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return absolute


def _struct_time(value: object) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except ValueError:
        return None


def iso_datetime(value: object) -> datetime | None:
    """An RFC 3339 / W3C datetime as aware UTC (a date alone is midnight UTC), or None.

    RFC 822 dates, which some JSON Feeds use against the spec, are accepted too.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def language_code(value: object) -> str | None:
    """The primary subtag of a language tag, lower case: `en-US` -> `en`."""
    if not isinstance(value, str):
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _clean(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


class _TextCollector(HTMLParser):
    _SKIP = frozenset({"script", "style", "template", "noscript"})
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(value: object) -> str | None:
    """Plain text from a possibly-HTML string: tags stripped, entities decoded, spaces collapsed."""
    if not isinstance(value, str) or not value.strip():
        return None
    if "<" in value or "&" in value:
        collector = _TextCollector()
        collector.feed(value)
        collector.close()
        value = "".join(collector.parts)
    return " ".join(value.split()) or None
