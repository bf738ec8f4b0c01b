"""What `items --json`, `explain`, `sources list` and the web pages show, built from the store.
I/O: database reads.

The command line prints these views and the web pages render them, so a terminal and a
browser never disagree about an item, a story or a source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.config import Config
from monitor.dedupe.explain import DedupeFacts, explain_dedupe
from monitor.durations import iso
from monitor.models import Item, SourceHealth, rank_tags
from monitor.store import Store, StoryInfo
from monitor.tag import FACET_KINDS, explain_scores, explain_tag, score_article

# -- items --json -------------------------------------------------------------------------------


def item_json(
    item: Item, *, with_text: bool = False, story: StoryInfo | None = None
) -> dict[str, Any]:
    """The DESIGN §3 `items --json` object; `story` is the item's story (`Store.story_info`)."""
    dup = item.duplicate_of
    data: dict[str, Any] = {
        "id": item.id,
        "url": item.url,
        "canonical_url": item.canonical_url,
        "source": item.source,
        "title": item.title,
        "published_at": iso(item.published_at),
        "fetched_at": iso(item.fetched_at),
        "language": item.language,
        "status": item.status,
        "duplicate_of": None
        if dup is None
        else {"kind": dup.kind, "ref": dup.ref, "similarity": dup.similarity, "method": dup.method},
        "story": None
        if item.story_id is None
        else {
            "id": item.story_id,
            "size": story.size if story else 1,
            "sources": list(story.sources) if story else [item.source],
            "seed_refs": list(story.seed_refs) if story else [],
        },
        "topics": [
            {
                "id": t.id,
                "score": t.score,
                "threshold": t.threshold,
                "strength": round(t.strength, 3),
                "evidence": [
                    {"term": term, "lang": lang, "count": n} for term, lang, n in t.evidence
                ],
            }
            for t in item.topics
        ],
        "facets": {kind: list(item.facets.get(kind, ())) for kind in FACET_KINDS},
        "extraction": item.extraction,
        "text_chars": item.text_chars,
        "guid": item.guid,
        "baseline": item.baseline,
    }
    if with_text:
        data["text"] = item.text
    return data


# -- sources list -------------------------------------------------------------------------------


def health_json(h: SourceHealth) -> dict[str, Any]:
    """The DESIGN §4 `sources list --json` object."""
    return {
        "name": h.name,
        "url": h.url,
        "status": h.status,
        "last_success_at": iso(h.last_success_at),
        "consecutive_failures": h.consecutive_failures,
        "last_error_class": h.last_error_class,
        "last_error": h.last_error,
        "next_check_at": iso(h.next_check_at),
    }


def health_line(h: SourceHealth) -> str:
    """One source's health in words, as `sources list` prints it."""
    line = f"{h.name}: {h.status}, last success {iso(h.last_success_at) or 'never'}"
    if h.consecutive_failures:
        line += f", {h.consecutive_failures} failure(s), {h.last_error_class}: {h.last_error}"
    return line


def source_health(store: Store, config: Config) -> list[SourceHealth]:
    """The configured sources' health, in the store's order."""
    return store.list_source_health([s.name for s in config.sources])


# -- explain ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TagReason:
    """One topic of an item, with the rule's evidence in words."""

    rank: int
    id: str
    name: str
    strength: float
    evidence: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything `explain ITEM` says about one item, in parts a page can lay out."""

    item: Item
    head: tuple[str, ...]  # identity, dates, text length, status, title changes
    layers: tuple[str, ...]  # the exact, near-duplicate and story layers' decisions
    tags: tuple[TagReason, ...]  # strongest first
    missed: tuple[str, ...]  # candidate topics not tagged, and why
    facets: tuple[tuple[str, tuple[str, ...]], ...]  # (kind, values) in FACET_KINDS order
    topics_file: str


def explain_item(store: Store, config: Config, item: Item) -> Explanation:
    """Why an item is new, duplicate or known, its story, and its tags with evidence."""
    head = [
        f"item {item.id}: {item.title}",
        f"  source: {item.source}  url: {item.url}",
        f"  canonical url: {item.canonical_url}",
        f"  first seen: {iso(item.fetched_at)}  published: {iso(item.published_at) or 'unknown'}",
        f"  text: {item.text_chars} characters ({item.extraction}), language {item.language}",
        f"status: {item.status}"
        + (" (baseline: before the first poll's backfill)" if item.baseline else ""),
    ]
    for rev in store.revisions(item.id):
        head.append(f"  changed at {iso(rev['changed_at'])}: was {rev['old_title']!r}")
    names = {t.id: t.label for t in config.taxonomy.topics}
    tags = tuple(
        TagReason(
            rank,
            tag.id,
            names.get(tag.id, tag.id),
            tag.strength,
            explain_tag(config.taxonomy, tag),
        )
        for rank, tag in enumerate(rank_tags(item.topics), start=1)
    )
    scores, _facets = score_article(
        config.taxonomy, title=item.title, text=item.text, language=item.language
    )
    tagged = {t.id for t in item.topics}
    missed = [s for s in scores if s.id not in tagged and s.status != "tagged"]
    return Explanation(
        item=item,
        head=tuple(head),
        layers=tuple(explain_dedupe(dedupe_facts(store, item))),
        tags=tags,
        missed=tuple(explain_scores(missed)) if missed else (),
        facets=tuple((kind, tuple(item.facets.get(kind, ()))) for kind in FACET_KINDS),
        topics_file=str(config.topics_file),
    )


def explain_lines(e: Explanation) -> list[str]:
    """The explanation as `monitor explain` prints it."""
    lines = [*e.head, *e.layers, f"topics, strongest first (rules: {e.topics_file}):"]
    for tag in e.tags:
        lines.append(f"  {tag.rank}. {tag.name} (strength {tag.strength:.2f} × threshold)")
        lines.append("     " + tag.evidence)
    if not e.tags:
        lines.append("  none")
    if e.missed:
        lines.append("  candidates not tagged:")
        lines += [f"    {line}" for line in e.missed]
    for kind, values in e.facets:
        lines.append(f"{kind}: {', '.join(values) if values else 'none'}")
    return lines


def dedupe_facts(store: Store, item: Item) -> DedupeFacts:
    """What the store knows about an item's dedupe decisions and its story."""
    recorded = store.decision(item.id)
    near, story = recorded if recorded is not None else (None, None)
    members: list[Item] = []
    seed_refs: tuple[str, ...] = ()
    if item.story_id is not None:
        members = store.story_members([item.story_id]).get(item.story_id, [])
        info = store.story_info([item.story_id]).get(item.story_id)
        seed_refs = info.seed_refs if info else ()
    titles = store.seed_titles()
    keys = {k for k in _compared_keys(near, story) if k not in titles}
    found = {k: store.get_item(k) for k in sorted(keys)}
    return DedupeFacts(
        item=item,
        near=near,
        story=story,
        recorded=recorded is not None,
        members=members,
        seed_refs=seed_refs,
        seed_titles=titles,
        seed_dates=seed_dates(store),
        items_by_key={k: v for k, v in found.items() if v is not None},
    )


def seed_dates(store: Store) -> dict[str, str]:
    """Seed file name -> "dated 2020-02-02, from metadata" for the dated seeds."""
    return {
        s.name: f"dated {s.published_at:%Y-%m-%d}, from {s.date_source or 'the text'}"
        for s in store.list_seeds()
        if s.published_at is not None
    }


def _compared_keys(near: dict[str, Any] | None, story: dict[str, Any] | None) -> list[str]:
    keys = [near.get("compared_with") if near else None]
    keys += [story.get("matched_key"), story.get("compared_with")] if story else []
    return [k for k in keys if isinstance(k, str)]


# -- stories ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoryMember:
    """One report of a story and why it is in it (the story layer's recorded decision)."""

    item: Item
    joined: str  # "started the story" / "joined: score 0.71 >= 0.55; why: ..."


@dataclass(frozen=True, slots=True)
class StoryPage:
    id: int
    members: tuple[StoryMember, ...]  # first seen first
    sources: tuple[str, ...]
    span: tuple[datetime, datetime] | None  # earliest and latest member date
    seeds: tuple[tuple[str, str, str], ...]  # (file name, title, "dated ...")


def story_page(store: Store, story_id: int) -> StoryPage | None:
    """A story's members, span and seeds; None when no item or seed is in it."""
    members = store.story_members([story_id]).get(story_id, [])
    info = store.story_info([story_id]).get(story_id)
    if not members and info is None:
        return None
    titles = store.seed_titles()
    dates = seed_dates(store) if info and info.seed_refs else {}
    when = [m.published_at or m.fetched_at for m in members]
    by_key = {key: m for m in members for key in (m.url, m.canonical_url)}
    return StoryPage(
        id=story_id,
        members=tuple(StoryMember(m, _joined(store, m, by_key)) for m in _by_first_seen(members)),
        sources=tuple(sorted({m.source for m in members})),
        span=(min(when), max(when)) if when else None,
        seeds=tuple(
            (ref, titles.get(ref, ""), dates.get(ref, "undated"))
            for ref in (info.seed_refs if info else ())
        ),
    )


def _by_first_seen(members: Sequence[Item]) -> list[Item]:
    return sorted(members, key=lambda m: (m.fetched_at, m.id))


def _joined(store: Store, item: Item, by_key: dict[str, Item]) -> str:
    recorded = store.decision(item.id)
    story = recorded[1] if recorded is not None else None
    if not story:
        return "not recorded: stored before the story layer existed"
    reasons = "; ".join(story.get("reasons", ())) or "no shared names or title words"
    if story.get("is_new"):
        if story.get("compared_with") is None:
            return "started the story: no earlier article shared a name or title word"
        return (
            f"started the story: best candidate scored {story['score']:.2f} < threshold "
            f"{story['threshold']:.2f}"
        )
    key = story.get("matched_key") or ""
    other = by_key.get(key)
    against = f"item {other.id} ({other.source}: {other.title})" if other else key
    return (
        f"joined: score {story['score']:.2f} >= threshold {story['threshold']:.2f} against "
        f"{against}; why: {reasons}"
    )
