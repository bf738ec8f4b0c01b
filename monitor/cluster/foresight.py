"""Looking up before the decision lock, and whether what other deciders logged since can change
the answer. Pure: no I/O.

Before a node takes the decision lock for a new article, it asks its own index and the store
what the exact and near-duplicate layers say (and whether the article is already stored), and
notes the decision-log position its index had then. Inside the lock it reads the rows logged
after that position (`Logged`) and `stale` says which of the answers those rows could change;
only those are looked up again. A dated article's story is assigned ahead too, as a trial the
story index can take back (`StoryTrial`); inside the lock it stands when the rows logged
since could not have changed it (`keep_ahead`), else it is taken back and decided again there.

A row logged since the position can change an answer only in these ways (`stale`):

- **stored**: an item inserted by the same source under the same URL (the article's own job,
  run by a node that died, or twice);
- **exact**: an item inserted with the same canonical URL or the same text hash, or any item
  whose text was replaced (an update can give an older item this text hash, or take it away);
- **near**: an item inserted or updated whose signature would be a confirmed near-duplicate of
  the article's (the same banding and thresholds as the index, whatever its source), since
  only a confirmed match can become the best one;
- **all three**: the index itself changed other than by additions since the position (a
  retention sweep evicted entries, or the indexes were loaded again).

The "indexed" count of the near layer's record is always taken inside the lock, so the stored
decision reads exactly as a single node's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from datasketch import LeanMinHash

from monitor.dedupe.follow import followed
from monitor.dedupe.near import NearIndex, NearMatch
from monitor.dedupe.story import StoryFeatures, StoryIndex, StoryTrial, features_from_json
from monitor.models import DuplicateOf, Status
from monitor.pipeline.index import Decision, add_stored
from monitor.store import StoredSignature


@dataclass(frozen=True, slots=True)
class Logged:
    """One row of the decision log after a position, with the item it names (a "moves" row
    names none: its item fields are None)."""

    log_id: int
    item_id: int
    kind: str  # insert | update | moves
    source: str | None = None
    url: str | None = None
    canonical_url: str | None = None
    text_hash: str | None = None
    stored: StoredSignature | None = None  # the item's signature, as the catch-up reads it


@dataclass(frozen=True, slots=True)
class Foresight:
    """What the exact and near layers said for one article before the lock, at log position
    `position`, with the index in generation `generation`."""

    position: int
    generation: tuple[int, int]
    stored: bool
    exact: tuple[Status, DuplicateOf | None]
    near: NearMatch | None  # not looked up (None) when the exact layer found a duplicate
    signature: LeanMinHash  # the article's


@dataclass(frozen=True, slots=True)
class Stale:
    """Which answers of a `Foresight` must be looked up again inside the lock."""

    stored: bool = False
    exact: bool = False
    near: bool = False

    @property
    def none(self) -> bool:
        return not (self.stored or self.exact or self.near)


EVERYTHING = Stale(stored=True, exact=True, near=True)


def stale(
    seen: Foresight,
    since: Sequence[Logged],
    *,
    generation: tuple[int, int],
    source: str,
    url: str,
    canonical: str,
    text_hash: str,
    shingles: int,
) -> Stale:
    """Which answers of `seen` the rows logged after `seen.position` (`since`) can change."""
    if generation != seen.generation:
        return EVERYTHING
    after = [row for row in since if row.log_id > seen.position]
    inserted = [row for row in after if row.kind == "insert"]
    return Stale(
        stored=any(row.source == source and row.url == url for row in inserted),
        exact=any(row.kind == "update" for row in after)
        or any(
            row.canonical_url == canonical or (bool(text_hash) and row.text_hash == text_hash)
            for row in inserted
        ),
        near=_near_candidate(after, seen.signature, shingles),
    )


def _near_candidate(rows: Sequence[Logged], signature: LeanMinHash, shingles: int) -> bool:
    """Whether any of `rows` is a confirmed near-duplicate of the signature, whatever its
    source (the index's own query over an index of just these rows). A signature this
    version cannot read counts as one: the answer is looked up again."""
    small = NearIndex()
    for row in rows:
        if row.kind in ("insert", "update") and row.stored is not None:
            try:
                add_stored(small, row.stored)
            except ValueError:
                return True
    return len(small) > 0 and small.query(signature, source=None, size=shingles) is not None


def keep_ahead(
    stories: StoryIndex,
    decision: Decision,
    trial: StoryTrial,
    since: Sequence[Logged],
    *,
    again: Stale,
    corrections_changed: bool,
) -> Decision | None:
    """Inside the lock: the decision taken ahead of it (its story assigned as `trial`) when
    it stands as if taken now, with the ids of the stories it made renumbered past those the
    rows logged since took; None when it must be taken back and taken again. It stands when
    every answer looked up ahead does (`again`), the corrections are as they were, the rows
    since are all inserts (a "moves" row has the stories rebuilt, an update can change the
    exact layer), and none of their items could change the trial (`trial_holds`). An exact
    duplicate among them (a follower, outside the story index) reads nothing the trial
    changed, but lets it stand only when it moved no article (it would have moved the
    follower along with its original)."""
    if not again.none or corrections_changed or any(row.kind != "insert" for row in since):
        return None
    others: list[tuple[StoryFeatures, int]] = []
    top = -1  # the highest story id the rows since took (a first-step story's too)
    for row in since:
        if row.stored is None or row.stored.story_id is None:
            continue  # not in the story index: nothing to read
        if followed(row.stored.features) is not None:
            # An exact duplicate follows its original, outside the story index: it changes
            # nothing the trial read, but the trial's moves would have taken it along.
            if decision.moves:
                return None
            continue
        try:
            others.append((features_from_json(row.stored.features), row.stored.story_id))
        except ValueError:
            return None
        top = max(top, row.stored.story_id, row.stored.story_part or -1)
    if not stories.trial_holds(trial, others):
        return None
    renamed = stories.renumber_trial(trial, max(trial.next_id, top + 1))
    if renamed is None:
        return None
    story = decision.story
    if story.story_id in renamed:
        story = replace(story, story_id=renamed[story.story_id])
    return replace(decision, story=story)
