"""Exact duplicates in the story layer: a copy takes its original's story, undecided. No I/O.

An article whose normalised text hash is already known (an item stored before it, or decided
before it in the same batch) is an exact duplicate of the oldest such item, its original.
When that original is indexed in the story layer, the copy is a *follower*: it takes the
original's story without a story decision of its own, is not a member of the story index
(so it neither votes in later decisions nor makes any article be decided again), and keeps
no story features: the store holds `follow_marker(original)` in their place. Wherever the
original's story is decided or moved (a late arrival's re-decisions, a seed signed, a
correction undone, a rebuild at start or after a correction, a cluster node's catch-up), its
followers are moved with it, in the same transaction (`Followers.moves`).

A split of the original takes its followers along into the new story (`store.corrections`);
a split of a follower itself sets it apart from its original: it keeps the new story and
no longer follows (it has no features of its own to be decided with); undone, it follows
again. A follower whose original left the story window is not indexed at a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store reads the marker without loading the story layer
    from monitor.dedupe.story import StoryMatch, StoryMove

_MARKER_START = '{"follows":'


def follow_marker(original: str) -> str:
    """What a follower stores in place of story features: its original's key (URL)."""
    return json.dumps({"follows": original}, ensure_ascii=False, separators=(",", ":"))


def followed(features: str) -> str | None:
    """The original a stored follower follows; None for story features."""
    if not features.startswith(_MARKER_START):
        return None
    original = json.loads(features).get("follows")
    return original if isinstance(original, str) else None


def follow_match(
    story_id: int, original: str, *, threshold: float, seed_refs: tuple[str, ...] = ()
) -> StoryMatch:
    """A follower's decision: its original's story, linked by the same text."""
    from monitor.dedupe.story import StoryMatch

    return StoryMatch(
        story_id=story_id,
        is_new=False,
        score=1.0,
        threshold=threshold,
        matched_key=original,
        compared_with=original,
        reasons=(f"exact duplicate: the same normalised text as {original}, so its story",),
        seed_refs=seed_refs,
        mean=1.0,
        members_compared=1,
    )


class Followers:
    """Which articles follow which original (both by key, the item URL)."""

    def __init__(self) -> None:
        self._of: dict[str, list[str]] = {}  # original -> its followers, in arrival order
        self._original: dict[str, str] = {}  # follower -> its original

    def __len__(self) -> int:
        return len(self._original)

    def add(self, key: str, original: str) -> bool:
        """Note that `key` follows `original`; False when there was nothing to note."""
        if key == original or key in self._original:
            return False
        self._original[key] = original
        self._of.setdefault(original, []).append(key)
        return True

    def drop(self, key: str) -> None:
        """Take back `add` (a follower decided ahead of the cluster's lock, not kept)."""
        original = self._original.pop(key, None)
        if original is None:
            return
        keys = self._of[original]
        keys.remove(key)
        if not keys:
            del self._of[original]

    def original(self, key: str) -> str | None:
        return self._original.get(key)

    def of(self, original: str) -> tuple[str, ...]:
        return tuple(self._of.get(original, ()))

    def moves(self, moves: Sequence[StoryMove]) -> list[StoryMove]:
        """`moves` with, after each original's, a move of each of its followers."""
        from monitor.dedupe.story import StoryMove

        out: list[StoryMove] = []
        for move in moves:
            out.append(move)
            for key in self._of.get(move.key, ()):
                match = follow_match(
                    move.match.story_id,
                    move.key,
                    threshold=move.match.threshold,
                    seed_refs=move.match.seed_refs,
                )
                out.append(StoryMove(key, None, match))
        return out

    def keep(self, indexed: Callable[[str], bool]) -> int:
        """Forget the originals that are no longer `indexed` (evicted) and their followers;
        returns how many followers were forgotten."""
        gone = [original for original in self._of if not indexed(original)]
        count = 0
        for original in gone:
            for key in self._of.pop(original):
                del self._original[key]
                count += 1
        return count


def kept_apart(constraints: Mapping[str, Iterable[str]], key: str, other: str) -> bool:
    """Whether a correction keeps `key` and `other` out of one story (either direction)."""
    return other in constraints.get(key, ()) or key in constraints.get(other, ())
