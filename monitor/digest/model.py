"""Turn a window's items into the digest's view model: stories, sections, counts, footer. No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from monitor.digest.summary import summarise
from monitor.digest.text import TITLE_MAX, clean_text, safe_url
from monitor.models import Item, SourceHealth, TopicTag, rank_tags
from monitor.web.links import ItemActions, LinkMaker

OTHER_ID = "other"
OTHER_LABEL = "Other"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LANG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_TAGS_SHOWN = 3  # DESIGN §2: an item shows at most its 3 strongest topics
_WHY_TERMS = 2  # evidence terms shown per topic (the rest is in `explain`)
_WHY_CHARS = 160  # the "why" of one story stays about this short
_EARLIER_SHOWN = 3  # a follow-up links at most this many earlier reports


@dataclass(frozen=True, slots=True)
class DigestInput:
    """Everything one digest issue is made from; the store and config fill it in."""

    name: str
    window_start: datetime  # aware UTC
    window_end: datetime  # aware UTC
    timezone: str  # IANA name; dates are shown in it
    generated_at: datetime  # aware; passed in, never read from a clock
    items: Sequence[Item]  # new (status "new", not baseline) items first seen in the window
    suppressed: Sequence[Item] = ()  # known or duplicate items first seen in the window
    stories: Mapping[int, Sequence[Item]] = field(default_factory=dict)  # all members
    seed_titles: Mapping[str, str] = field(default_factory=dict)  # seed file name -> title
    story_seed_refs: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    health: Sequence[SourceHealth] = ()  # sources that failed during the window
    topic_order: Sequence[str] = ()  # configured order of topic ids
    topic_labels: Mapping[str, str] = field(default_factory=dict)  # long names
    topic_short: Mapping[str, str] = field(default_factory=dict)  # chip labels
    min_score: float = 0.0  # > 0: items without a topic scoring this much are left out
    topics: Sequence[str] = ()  # only these topics; empty: all
    links: LinkMaker | None = None  # `[server] public_url` set: item pages and corrections


@dataclass(frozen=True, slots=True)
class Link:
    """Something that links out: `url` is None when the link was not http(s) or unsafe.

    `ref` numbers the link in the plain-text link list (1-based; equal URLs share a number).
    """

    text: str
    url: str | None
    ref: int | None


@dataclass(frozen=True, slots=True)
class TagChip:
    id: str
    label: str  # the short chip label
    name: str  # the long name (legend, tooltip)
    score: float
    terms: tuple[str, ...]  # at most two evidence terms, strongest first: "Lavrov ×3"


@dataclass(frozen=True, slots=True)
class CoverageView:
    """Another item of the same story ("Also covered by")."""

    source: Link  # the source name, linking to that item
    title: str
    date: str
    actions: ItemActions | None = None


@dataclass(frozen=True, slots=True)
class StoryView:
    headline: Link
    source: str
    date: str
    language: str | None  # BCP 47-ish tag for `lang=`, or None
    summary: str
    tags: tuple[TagChip, ...]
    also: tuple[CoverageView, ...]  # other reports of the event first seen in this window
    follow_up: tuple[str, ...]  # seed titles this story follows up
    item_count: int  # new items of the story in this window
    earlier: tuple[CoverageView, ...] = ()  # its reports first seen before this window
    earlier_more: int = 0
    actions: ItemActions | None = None  # the lead item's page and corrections


@dataclass(frozen=True, slots=True)
class SectionView:
    id: str
    label: str
    stories: tuple[StoryView, ...]


@dataclass(frozen=True, slots=True)
class SuppressedView:
    """One known/duplicate item: "<title> — duplicate of <ref> (method, similarity)"."""

    item: Link
    source: str
    relation: str  # "duplicate of", "known: copy of seed", "already known"
    target: Link | None
    method: str
    similarity: str  # "0.93", "" when unknown


@dataclass(frozen=True, slots=True)
class HealthView:
    name: str
    url: Link
    error_class: str
    failures: int
    last_success: str  # local time, or "never"
    last_error: str


@dataclass(frozen=True, slots=True)
class Counts:
    new_items: int
    stories: int
    suppressed: int
    failing_sources: int
    filtered_out: int  # new items left out by `min_score` / `topics`


@dataclass(frozen=True, slots=True)
class DigestModel:
    """What the templates see. Every string here is already neutralised, links vetted."""

    name: str
    subject: str
    timezone: str
    window_start: str
    window_end: str
    date: str  # the window's end date, local: "22 Nov 2026"
    generated_at: str
    counts: Counts
    sections: tuple[SectionView, ...]
    suppressed: tuple[SuppressedView, ...]
    health: tuple[HealthView, ...]
    links: tuple[str, ...]  # the plain-text link list; Link.ref - 1 indexes it
    legend: tuple[tuple[str, str], ...] = ()  # (chip label, long name) of the chips shown

    @property
    def empty(self) -> bool:
        return not self.sections


class _Links:
    """Numbers links in order of first appearance, for the plain-text link list."""

    def __init__(self) -> None:
        self.urls: dict[str, int] = {}

    def link(self, text: str, url: str | None) -> Link:
        safe = safe_url(url)
        if safe is None:
            return Link(text, None, None)
        ref = self.urls.setdefault(safe, len(self.urls) + 1)
        return Link(text, safe, ref)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def format_date(value: datetime, tz: ZoneInfo) -> str:
    """'22 Nov 2026' in `tz`, independent of the process locale."""
    local = _aware(value).astimezone(tz)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def format_datetime(value: datetime, tz: ZoneInfo) -> str:
    """'22 Nov 2026 07:00' in `tz`, independent of the process locale."""
    local = _aware(value).astimezone(tz)
    return f"{format_date(local, tz)} {local:%H:%M}"


def _when(item: Item) -> datetime:
    return _aware(item.published_at or item.fetched_at)


def _lead_key(item: Item) -> tuple[int, datetime, int]:
    """Best source first (lowest priority number), then earliest published, then id."""
    return (item.source_priority, _when(item), item.id)


def _qualifying_tags(item: Item, inp: DigestInput) -> list[TopicTag]:
    wanted = set(inp.topics)
    return [
        tag
        for tag in item.topics
        if tag.score >= tag.threshold
        and tag.score >= inp.min_score
        and (not wanted or tag.id in wanted)
    ]


def _keep(item: Item, inp: DigestInput) -> bool:
    if inp.min_score <= 0 and not inp.topics:
        return True
    return bool(_qualifying_tags(item, inp))


def _shown_term(term: str, count: int) -> str:
    """An evidence term as a reader sees it: no rule syntax (wildcards, a proximity rule's
    word window). `explain` shows the rule as written."""
    shown = clean_text(_RULE_SYNTAX.sub("", _WITHIN.sub("", term)), 40)
    return f"{shown} ×{count}" if count > 1 and shown else shown


_WITHIN = re.compile(r"\s*\((?:title or lead, )?within \d+ words\)$")
_RULE_SYNTAX = re.compile(r"[*…]")


def _ranked_tags(members: Sequence[Item], inp: DigestInput) -> list[TopicTag]:
    """Each qualifying topic once (its strongest tag among the members), strongest first."""
    best: dict[str, TopicTag] = {}
    for item in members:
        for tag in _qualifying_tags(item, inp):
            if tag.id not in best or tag.strength > best[tag.id].strength:
                best[tag.id] = tag
    return list(rank_tags(best.values()))


def _chips(tags: Sequence[TopicTag], inp: DigestInput) -> tuple[TagChip, ...]:
    """The strongest `_TAGS_SHOWN` tags as chips, with a "why" of about `_WHY_CHARS`: each
    topic's strongest term, then second terms while the budget lasts."""
    shown = tags[:_TAGS_SHOWN]
    labels: list[tuple[str, str]] = []
    candidates: list[list[str]] = []
    for tag in shown:
        name = clean_text(inp.topic_labels.get(tag.id) or tag.id, 80)
        labels.append((clean_text(inp.topic_short.get(tag.id) or "", 30) or name, name))
        unique = dict.fromkeys(_shown_term(term, count) for term, _lang, count in tag.evidence)
        candidates.append([t for t in unique if t][:_WHY_TERMS])
    budget = _WHY_CHARS - sum(len(label) + 4 for label, _ in labels)
    picked: list[list[str]] = [[] for _ in shown]
    for rank in range(_WHY_TERMS):
        for i, terms in enumerate(candidates):
            if rank < len(terms) and (len(terms[rank]) + 2 <= budget or rank == 0):
                picked[i].append(terms[rank])  # every topic gives at least one reason
                budget -= len(terms[rank]) + 2
    return tuple(
        TagChip(clean_text(tag.id, 80), label, name, tag.score, tuple(terms))
        for tag, (label, name), terms in zip(shown, labels, picked, strict=True)
    )


def _title(item: Item) -> str:
    return clean_text(item.title, TITLE_MAX) or clean_text(item.canonical_url or item.url, 120)


def _language(item: Item) -> str | None:
    lang = (item.language or "").strip()
    return lang if _LANG.match(lang) else None


def _group(items: Sequence[Item]) -> list[list[Item]]:
    """Group the window's new items by story; an item without a story is its own story."""
    groups: dict[tuple[int, int], list[Item]] = {}
    for item in items:
        key = (0, item.story_id) if item.story_id is not None else (1, item.id)
        groups.setdefault(key, []).append(item)
    return [sorted(g, key=_lead_key) for g in groups.values()]


def _section_of(members: list[Item], inp: DigestInput, order: Mapping[str, int]) -> str:
    """The story's strongest configured topic, else "other"."""
    return next((t.id for t in _ranked_tags(members, inp) if t.id in order), OTHER_ID)


def _story(members: list[Item], inp: DigestInput, tz: ZoneInfo, links: _Links) -> StoryView:
    lead = members[0]
    all_members = {m.id: m for m in members}
    if lead.story_id is not None:
        for other in inp.stories.get(lead.story_id, ()):
            all_members.setdefault(other.id, other)
    lead_url = safe_url(lead.url)
    others = sorted(
        (
            m
            for m in all_members.values()
            if m.id != lead.id and (lead_url is None or safe_url(m.url) != lead_url)
        ),
        key=_lead_key,
    )
    # Reports first seen before the window are earlier coverage of the event: the story is a
    # follow-up, and they are listed as such, not as "also covered by".
    start = _aware(inp.window_start)
    earlier = sorted((m for m in others if _aware(m.fetched_at) < start), key=_seen_key)
    others = [m for m in others if _aware(m.fetched_at) >= start]
    chips = _chips(_ranked_tags(members, inp), inp)
    seeds = inp.story_seed_refs.get(lead.story_id, ()) if lead.story_id is not None else ()
    follow_up = tuple(
        clean_text(inp.seed_titles.get(ref) or ref, 200) for ref in sorted(set(seeds))
    )
    headline = links.link(_title(lead), lead.url)
    multi = len(all_members) > 1
    before = tuple(_coverage(m, tz, links, inp, multi) for m in earlier[:_EARLIER_SHOWN])
    text = lead.text or lead.summary or ""
    # Every report of the window is listed with its own title: none is hidden (issue 12).
    also = tuple(_coverage(m, tz, links, inp, multi) for m in others)
    return StoryView(
        headline=headline,
        source=clean_text(lead.source, 80),
        date=format_date(_when(lead), tz),
        language=_language(lead),
        summary=summarise(text, lead.title) or clean_text(lead.summary, 400),
        tags=chips,
        also=also,
        follow_up=follow_up,
        item_count=len(members),
        earlier=before,
        earlier_more=max(0, len(earlier) - _EARLIER_SHOWN),
        actions=_actions(lead, inp, multi),
    )


def _actions(item: Item, inp: DigestInput, multi_report: bool) -> ItemActions | None:
    if inp.links is None:
        return None
    return inp.links.actions(item.id, multi_report=multi_report, tagged=bool(item.topics))


def _coverage(
    item: Item, tz: ZoneInfo, links: _Links, inp: DigestInput, multi_report: bool
) -> CoverageView:
    """Another report of the story: its source (linking to it), title and date."""
    return CoverageView(
        links.link(clean_text(item.source, 80) or "?", item.url),
        _title(item),
        format_date(_when(item), tz),
        _actions(item, inp, multi_report),
    )


def _suppressed(item: Item, inp: DigestInput, links: _Links) -> SuppressedView:
    dup = item.duplicate_of
    title = links.link(_title(item), item.url)
    if dup is None:
        return SuppressedView(title, clean_text(item.source, 80), "already known", None, "", "")
    if dup.kind == "seed":
        seed_title = clean_text(inp.seed_titles.get(dup.ref) or "", 200)
        ref = clean_text(dup.ref, 120)
        target = Link(f"“{seed_title}” ({ref})" if seed_title else ref, None, None)
        relation = "known: copy of seed"
    else:
        target = links.link(clean_text(dup.ref, 160), dup.ref)
        relation = "duplicate of"
    return SuppressedView(
        item=title,
        source=clean_text(item.source, 80),
        relation=relation,
        target=target,
        method=clean_text(dup.method, 40),
        similarity=f"{dup.similarity:.2f}",
    )


def _health(h: SourceHealth, tz: ZoneInfo, links: _Links) -> HealthView:
    return HealthView(
        name=clean_text(h.name, 80),
        url=links.link(clean_text(h.url, 160), h.url),
        error_class=clean_text(h.last_error_class or "unknown", 40),
        failures=h.consecutive_failures,
        last_success=format_datetime(h.last_success_at, tz) if h.last_success_at else "never",
        last_error=clean_text(h.last_error, 160),
    )


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def build_digest(inp: DigestInput) -> DigestModel:
    """Group, order and neutralise a window's items into what the templates render.

    Order (all ties broken by item id, so input order never matters):
    - a story's lead: lowest `source_priority`, then earliest published (else first seen);
    - sections: configured topic order, then "Other"; a story goes under its strongest
      configured topic (tags rank by score relative to threshold);
    - a story's tag chips: its 3 strongest topics, strongest first;
    - stories in a section: lead priority, then more new items first, then newest, then id;
    - "also covered by": priority, then earliest, then id;
    - suppressed: first seen, then id; health: source name.

    Raises:
        ValueError: a naive window bound or an unknown time zone.
    """
    if inp.window_start.tzinfo is None or inp.window_end.tzinfo is None:
        raise ValueError("digest window bounds must be timezone-aware")
    tz = ZoneInfo(inp.timezone)
    order = {topic: i for i, topic in enumerate(dict.fromkeys(inp.topic_order))}
    if inp.topics:
        order = {t: i for t, i in order.items() if t in set(inp.topics)}
    links = _Links()

    unique = {i.id: i for i in inp.items if i.status == "new" and not i.baseline}
    candidates = sorted(unique.values(), key=lambda i: i.id)
    kept = [i for i in candidates if _keep(i, inp)]
    groups = _group(kept)
    keyed = sorted(groups, key=lambda g: (g[0].source_priority, -len(g), -_ts(g[0]), g[0].id))

    by_section: dict[str, list[list[Item]]] = {}
    for members in keyed:
        by_section.setdefault(_section_of(members, inp, order), []).append(members)
    labels = {t: clean_text(inp.topic_labels.get(t) or t, 80) for t in order}
    labels.setdefault(OTHER_ID, OTHER_LABEL)
    # Views are built in display order so plain-text link numbers ascend down the page.
    sections = tuple(
        SectionView(
            topic,
            labels[topic],
            tuple(_story(members, inp, tz, links) for members in by_section[topic]),
        )
        for topic in dict.fromkeys([*order, OTHER_ID])
        if topic in by_section
    )

    suppressed_items = sorted({i.id: i for i in inp.suppressed}.values(), key=_seen_key)
    suppressed = tuple(_suppressed(i, inp, links) for i in suppressed_items)
    health_sorted = sorted(inp.health, key=lambda h: (h.name.casefold(), h.name, h.url))
    health = tuple(_health(h, tz, links) for h in health_sorted)

    counts = Counts(
        new_items=len(kept),
        stories=len(groups),
        suppressed=len(suppressed),
        failing_sources=len(health),
        filtered_out=len(candidates) - len(kept),
    )
    name = clean_text(inp.name, 60) or "digest"
    date = format_date(inp.window_end, tz)
    subject = (
        f"[monitor] {name} — {_plural(counts.stories, 'story', 'stories')}, "
        f"{counts.new_items} new — {date}"
    )
    shown = {chip.id: chip for sec in sections for story in sec.stories for chip in story.tags}
    rank = {t: i for i, t in enumerate(inp.topic_order)}
    legend = tuple(
        (chip.label, chip.name)
        for chip in sorted(shown.values(), key=lambda c: (rank.get(c.id, len(rank)), c.id))
        if chip.label != chip.name
    )
    return DigestModel(
        name=name,
        subject=clean_text(subject, 200),
        timezone=inp.timezone,
        window_start=format_datetime(inp.window_start, tz),
        window_end=format_datetime(inp.window_end, tz),
        date=date,
        generated_at=format_datetime(inp.generated_at, tz),
        counts=counts,
        sections=sections,
        suppressed=suppressed,
        health=health,
        links=tuple(links.urls),
        legend=legend,
    )


def _ts(item: Item) -> float:
    return _when(item).timestamp()


def _seen_key(item: Item) -> tuple[datetime, int]:
    return (_aware(item.fetched_at), item.id)
