"""Corrections from the analyst: split an item off its story, take a topic off an item, undo.
I/O: database (where the store and the story layer meet).

A split ("not the same story") gives the item a new story of its own, and the rest of the
story keeps its id. The keys of the story's other members are recorded as a cannot-link
constraint that every story decision obeys from then on: the next poll, a late arrival's
re-decisions, a rebuild after a restart, every cluster node (`DedupeIndex.obey_corrections`
runs before each decision). An untag ("wrong topic") deletes the tag and keeps the topic off
the item in every later re-tag. Undo reverses either; the correction stays, with `undone_at`.

On PostgreSQL a correction waits for the decision lock (at most `LOCK_TIMEOUT`): async code
calls these functions in a thread (`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.config import DedupeConfig
from monitor.errors import CorrectionError
from monitor.models import Correction, Item
from monitor.store import Store, StoryChange

VIAS = ("web", "cli")


def split_item(store: Store, item_id: int, *, via: str = "cli") -> Correction:
    """Not the same story: the item gets a new story of its own, apart from the members its
    story has now. Repeated, it returns the active split of the item and changes nothing.
    Raises CorrectionError for an unknown item or one already alone in its story."""
    return store.record_split(item_id, via=_via(via), now=_now())


def remove_tag(store: Store, item_id: int, topic_id: str, *, via: str = "cli") -> Correction:
    """Wrong topic: the tag is removed from the item and stays off in every re-tag.
    Repeated, it returns the active untag and changes nothing. Raises CorrectionError for an
    unknown item or a topic the item does not have."""
    return store.record_untag(item_id, topic_id, via=_via(via), now=_now())


def undo_correction(
    store: Store, correction_id: int, *, dedupe: DedupeConfig | None = None
) -> Correction:
    """Reverse a correction and record when: an untag's tag comes back; a split item loses its
    constraint and is decided again against the stories around it (it may rejoin). Raises
    CorrectionError for an unknown correction or one already undone."""
    now = _now()
    found = store.get_correction(correction_id)
    if found is None:
        raise CorrectionError(f"correction {correction_id}: no such correction")

    def redecide() -> tuple[int, dict[str, Any], Sequence[StoryChange]]:
        return _redecide(store, found, dedupe or DedupeConfig())

    return store.undo_correction(correction_id, now=now, redecide=redecide)


def list_corrections(store: Store) -> list[Correction]:
    """Every correction, undone ones included, oldest first."""
    return store.list_corrections()


def _redecide(
    store: Store, found: Correction, config: DedupeConfig
) -> tuple[int, dict[str, Any], Sequence[StoryChange]]:
    """Decide the split item again, as a late arrival among the stored stories of its time,
    without the undone constraint (the others still hold). Runs inside the undo's transaction,
    which holds the lock: new story ids start past the stored ones."""
    rows = store.signatures_of([found.item_id])
    if not rows:  # stored before signatures: it keeps the story the split gave it
        assert found.new_story_id is not None
        return found.new_story_id, {"story_id": found.new_story_id}, ()
    # The story layer (datasketch, numpy, scipy) only when an undo decides again: the CLI
    # imports this module, and a poll of unchanged feeds never needs them (issue 14).
    from monitor.dedupe.follow import follow_match, followed
    from monitor.dedupe.story import StoryMove, features_from_json
    from monitor.pipeline.index import DedupeIndex, story_changes, story_record

    row = rows[0]
    index = DedupeIndex(config)
    index.reload_stories(
        store,
        row.fetched_at,
        skip=row.url,
        apart=store.apart_keys(excluding=found.id),
    )
    undone = f"(decided again: correction {found.id} undone)"
    original = followed(row.features)
    if original is not None:  # an exact duplicate: it follows its original again
        story_id = index.stories.story_of(original)
        if story_id is None:  # its original left the story window: it keeps its story
            assert found.new_story_id is not None
            return found.new_story_id, {"story_id": found.new_story_id}, ()
        followed_match = follow_match(
            story_id,
            original,
            threshold=index.stories.threshold,
            seed_refs=index.stories.seed_refs(story_id),
        )
        record = story_record(followed_match)
        record["explanation"] = f"{record['explanation']} {undone}"
        return story_id, record, ()
    match = index.stories.assign(row.url, features_from_json(row.features), row.fetched_at)
    record = story_record(match)
    record["explanation"] = f"{record['explanation']} {undone}"
    # Its followers go where it goes, as do those of the articles it moved.
    own = index.followers.moves([StoryMove(row.url, None, match)])[1:]
    return match.story_id, record, story_changes([*own, *index.moves()])


def _via(via: str) -> str:
    if via not in VIAS:
        raise CorrectionError(f"via {via!r}: expected one of {', '.join(VIAS)}")
    return via


def _now() -> datetime:
    return datetime.now(UTC)


def export_corrections(store: Store) -> list[dict[str, Any]]:
    """The active corrections as labelled data for the dev sets, one record per line:

    - a split: the split item and the story's other stored members as reports in the format
      of `tests/data/stories/recurring.jsonl` (split "corrections"), the item labelled as an
      event of its own and the members as one event: a "different event" pair for each
      member, which `tests/eval/eval_events.py --data FILE` scores;
    - an untag: the item in the format of `tests/data/topics/news.jsonl` (split
      "corrections"), `topics` the tags it kept and `not_topics` the one taken off, which
      `tests/eval/eval_tagging.py --labels FILE` scores (the removed topic is a negative).

    Each record says which set it belongs to (`set`: stories | topics); the loaders of each
    set skip the other's records."""
    out: list[dict[str, Any]] = []
    active = [c for c in store.list_corrections() if c.active]
    apart = store.apart_keys()
    for correction in active:
        item = store.get_item(str(correction.item_id))
        if item is None:
            continue
        if correction.kind == "split":
            others = [
                found
                for key in sorted(apart.get(item.url, ()))
                if (found := store.get_item(key)) is not None and found.id != item.id
            ]
            series = f"correction-{correction.id}"
            out.append(_report(item, series, f"{series}-item", correction.id))
            out += [_report(o, series, f"{series}-story", correction.id) for o in others]
        else:
            out.append(
                {
                    "set": "topics",
                    "id": f"correction-{correction.id}-item-{item.id}",
                    "lang": item.language or "",
                    "url": item.url,
                    "source": item.source,
                    "title": item.title,
                    "text": item.text,
                    "topics": sorted(t.id for t in item.topics if t.id != correction.topic),
                    "not_topics": [correction.topic],
                    "split": "corrections",
                    "origin": f"correction {correction.id} ({correction.via})",
                }
            )
    return out


def _report(item: Item, series: str, event: str, correction_id: int) -> dict[str, Any]:
    """One report in the story dev set's format."""
    day = (item.published_at or item.fetched_at).date().isoformat()
    return {
        "set": "stories",
        "id": f"{series}-{item.id}",
        "series": series,
        "event": event,
        "split": "corrections",
        "url": item.url,
        "source": item.source,
        "published_at": day,
        "language": item.language or "",
        "title": item.title,
        "text": item.text,
        "origin": f"correction {correction_id}",
    }
