"""Frozen records passed between pipeline stages. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

SourceKind = Literal["feed", "sitemap", "page"]
Extraction = Literal["full_text", "summary_only", "failed"]
Status = Literal["new", "known", "duplicate"]


@dataclass(frozen=True, slots=True)
class Source:
    """One monitored source, as configured."""

    name: str
    url: str
    kind: SourceKind = "feed"
    interval: timedelta = timedelta(minutes=30)
    language: str | None = None  # hint; the text decides
    priority: int = 5  # 1 = official source, ranks first
    selector: str | None = None  # CSS selector for article links on a `page` source


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """HTTP manners and limits (config `[http]`)."""

    user_agent: str = "monitor/0.1 (news monitor and digest mailer)"
    timeout: float = 20.0  # seconds per connect / read / write
    deadline: float = 60.0  # seconds for the whole request, redirects and body included
    max_bytes: int = 10_000_000  # decoded body cap
    max_redirects: int = 5
    per_host: int = 2  # concurrent requests to one host
    # Concurrent requests overall: the pool size httpx and aiohttp default to. It only caps a
    # poll spread over many hosts (`per_host` caps each one): at 32, a warm poll of 1,000 feeds
    # on 50 hosts waited with connections to spare (issue 14).
    concurrency: int = 100


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one HTTP GET returned. A 304 is `not_modified=True`, not an error."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    max_age: int | None = None  # Cache-Control max-age, seconds
    bytes_received: int = 0  # on the wire, before decompression
    elapsed_ms: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as the feed (or sitemap / listing page) gave it."""

    url: str  # the article link as the feed gave it (made absolute)
    guid: str | None = None
    title: str | None = None
    summary: str | None = None  # plain text
    published_at: datetime | None = None  # aware UTC
    updated_at: datetime | None = None
    author: str | None = None
    language: str | None = None
    has_page: bool = True  # False: no link of its own (`url` is the feed's, see parse.py)


@dataclass(frozen=True, slots=True)
class Page:
    """What extraction found on an article page."""

    text: str
    title: str | None = None
    published_at: datetime | None = None
    author: str | None = None
    canonical_url: str | None = None  # <link rel=canonical>, if the page has one
    language: str | None = None  # as the page declares it


@dataclass(frozen=True, slots=True)
class Article:
    """An entry joined with its extracted text: what gets deduped, tagged and stored."""

    source: str
    url: str
    canonical_url: str
    guid: str | None
    title: str
    text: str
    summary: str | None
    published_at: datetime | None
    language: str | None
    extraction: Extraction
    text_hash: str  # normalised-text fingerprint; "" when there is no text


@dataclass(frozen=True, slots=True)
class DuplicateOf:
    kind: Literal["seed", "item"]
    ref: str  # seed file name or item URL
    similarity: float
    method: str


@dataclass(frozen=True, slots=True)
class TopicTag:
    id: str
    score: float
    threshold: float
    evidence: tuple[tuple[str, str, int], ...]  # (term, lang, count), strongest first

    @property
    def strength(self) -> float:
        """Score relative to the threshold: what ranks an item's tags. Where the evidence
        sits is already in the score (title and lead occurrences count more)."""
        return self.score / self.threshold if self.threshold > 0 else self.score


def rank_tags(tags: Iterable[TopicTag]) -> tuple[TopicTag, ...]:
    """Strongest first (score relative to threshold), then higher score, then id."""
    return tuple(sorted(tags, key=lambda t: (-round(t.strength, 6), -t.score, t.id)))


@dataclass(frozen=True, slots=True)
class Item:
    """A stored item, as `items --json` shows it."""

    id: int
    source: str
    url: str
    canonical_url: str
    guid: str | None
    title: str
    published_at: datetime | None
    fetched_at: datetime
    language: str | None
    status: Status
    extraction: Extraction
    text: str
    summary: str | None
    text_chars: int
    baseline: bool = False
    duplicate_of: DuplicateOf | None = None
    story_id: int | None = None
    topics: tuple[TopicTag, ...] = ()
    facets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source_priority: int = 5


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source's stored fetch state (DESIGN §4 `sources list --json`)."""

    name: str
    url: str
    status: Literal["ok", "failing", "never"]
    last_success_at: datetime | None
    consecutive_failures: int
    last_error_class: str | None
    last_error: str | None
    next_check_at: datetime | None
    etag: str | None = None
    last_modified: str | None = None
    first_polled_at: datetime | None = None
    retry_after_until: datetime | None = None


CorrectionKind = Literal["split", "untag"]


@dataclass(frozen=True, slots=True)
class Correction:
    """An analyst's correction of the story or tag layer (issue 16), as recorded."""

    id: int
    kind: CorrectionKind  # split: "not the same story"; untag: "wrong topic"
    item_id: int
    story_id: int | None  # split: the story the item was split from
    new_story_id: int | None  # split: the item's own new story
    topic: str | None  # untag: the topic removed from the item
    created_at: datetime
    undone_at: datetime | None = None
    via: str = "cli"  # web | cli

    @property
    def active(self) -> bool:
        return self.undone_at is None
