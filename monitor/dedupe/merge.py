"""Whole-story merging: stories that match as wholes become one story, whatever the arrival
order. No I/O.

Deciding articles one by one splits an event when its first report in a language does not
match the story as a whole (a Jakarta report of the Kazan summit, before the others in
Indonesian): later reports in that language then follow it. This second step looks at the
stories the first one formed and merges two when they match as wholes, not through one
member (issue 12: a chain A~B~C must not put C beside A):

- both are dated, hold no seed, and share a name most of each one's members name;
- together they would not span more than the maximum span;
- no correction keeps a member of one apart from a member of the other;
- each names what the other agrees on: the groupings and partners of its members' event
  signatures and the two people whose meeting most of them report (an ASEAN Summit and the
  East Asia Summit of the same week, a summit and a bilateral on its sidelines stay apart);
- no pair of members is vetoed ("different numbered ..."), the best pair reaches the link
  threshold, the mean over the pairs compared the story-mean threshold, and on both sides
  more than half of the members compared have a pair at the support floor.

Merges happen only within the connected components of that relation between the first
step's stories, best mean first (ties by the members' keys), each checked again as a whole
against the merged story; a component's result depends on its stories only, so the merged
partition does not depend on arrival order when the first step's does not. A merged story
takes the lowest id of the stories it joins; the others keep theirs inside the index.

`unnamed` is the first step's check of the same kind, for one article against a story.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.dedupe.story import StoryFeatures

_DAY = 86400.0
MIN_SHARED = 2  # profile names two stories share before they are compared
SAMPLE = 8  # members of a large story compared: the first and last four in story order


@dataclass(frozen=True, slots=True)
class Member:
    """What the merge step reads of an indexed article."""

    row: int
    key: str
    when: float | None
    features: StoryFeatures
    is_seed: bool


@dataclass(frozen=True, slots=True)
class MergeRules:
    threshold: float  # the best pair must reach it
    mean_threshold: float  # the mean over the pairs compared must reach it
    support_floor: float  # a member is supported by a pair at least this high
    max_span_days: int


@dataclass(frozen=True, slots=True)
class _Link:
    mean: float  # over the pairs compared
    pairs: int


@dataclass(slots=True)
class MergeJournal:
    """What a `StoryMerger` changed while journaling (a story decided ahead of the cluster's
    decision lock, taken back if it does not stand): each container entry's value before its
    first change (`_ABSENT` when there was none), the dirty set as it was, the first-step
    stories the merges read (their members could change the result) and the profile names
    of those whose neighbours were looked up (a story sharing none of them with any is not
    one of their neighbours, before or after)."""

    dirty: set[int]
    saved: dict[tuple[str, Any], Any] = field(default_factory=dict)
    read: set[int] = field(default_factory=set)
    names: set[str] = field(default_factory=set)


_ABSENT = object()


Members = Callable[[int], Sequence[Member]]  # a first-step story's members, in story order
PairScore = Callable[[Member, Member], float]  # the pair score (-0.0: a "numbered" veto)
Apart = Callable[[str], Iterable[str]]  # the keys a correction keeps apart from a key


def profile(members: Sequence[Member], names: Callable[[Member], Iterable[str]]) -> frozenset[str]:
    """The names most of a story's members name (none for a story with a seed or undated
    members: it is never merged)."""
    if not members or any(m.is_seed or m.when is None for m in members):
        return frozenset()
    counts = Counter(n for m in members for n in set(names(m)))
    return frozenset(n for n, c in counts.items() if 2 * c >= len(members))


def _agreed(members: Sequence[Member]) -> set[str]:
    """What a story's members agree on: the groupings and partners most of those with an
    event signature name, and a pair of people whose meeting one reports and most name."""
    feats = [m.features for m in members]
    signatures = [s for f in feats if (s := {x for x in f.signature if x[:4] in ("org:", "with")})]
    out: set[str] = set()
    if signatures:
        counts = Counter(x for s in signatures for x in s)
        out.update(x.split(":", 1)[1] for x, c in counts.items() if 2 * c >= len(signatures))
    for pair in sorted({f.pair for f in feats if f.pair}):
        if 2 * sum(set(pair) <= set(f.people) for f in feats) >= len(feats):
            out.update(pair)
    return out


def disagree(a: Sequence[Member], b: Sequence[Member]) -> str | None:
    """A name one story agrees on that most of the other's members do not name."""
    for one, other in ((a, b), (b, a)):
        for name in sorted(_agreed(one)):
            if 2 * sum(name in m.features.entities for m in other) < len(other):
                return name
    return None


def unnamed(article: Member, story: Sequence[Member]) -> str | None:
    """A grouping, partner or meeting pair the article's head names that no member of the
    story names: the ASEAN Summit's reports never name the East Asia Summit of the same
    week, whose report names both (the first step's check; issue 12)."""
    for name in sorted(_agreed([article])):
        if not any(name in m.features.entities for m in story):
            return name
    return None


def _sample(members: Sequence[Member]) -> Sequence[Member]:
    if len(members) <= SAMPLE:
        return members
    half = SAMPLE // 2
    return [*members[:half], *members[-half:]]


def whole_link(
    a: Sequence[Member],
    b: Sequence[Member],
    score: PairScore,
    apart: Apart,
    rules: MergeRules,
) -> _Link | None:
    """How two stories (members in story order) match as wholes; None when they do not."""
    dates = [m.when for m in (*a, *b) if m.when is not None]
    if len(dates) < len(a) + len(b):
        return None
    if (max(dates) - min(dates)) / _DAY > rules.max_span_days:
        return None
    keys_b = {m.key for m in b}
    if any(keys_b.intersection(apart(m.key)) for m in a):
        return None
    if disagree(a, b):
        return None
    sa, sb = _sample(a), _sample(b)
    best_a = dict.fromkeys(range(len(sa)), 0.0)
    best_b = dict.fromkeys(range(len(sb)), 0.0)
    total, best = 0.0, 0.0
    for i, x in enumerate(sa):
        for j, y in enumerate(sb):
            s = score(x, y)
            if math.copysign(1.0, s) < 0:
                return None  # "different numbered ..." between two members
            total += s
            best = max(best, s)
            best_a[i] = max(best_a[i], s)
            best_b[j] = max(best_b[j], s)
    pairs = len(sa) * len(sb)
    mean = total / pairs
    if best < rules.threshold or mean < rules.mean_threshold:
        return None
    floor = rules.support_floor
    for side in (best_a, best_b):
        if 2 * sum(v >= floor for v in side.values()) <= len(side):
            return None
    return _Link(mean, pairs)


def merge_component(
    stories: Sequence[int],
    edges: Mapping[int, set[int]],
    members: Members,
    score: PairScore,
    apart: Apart,
    rules: MergeRules,
) -> list[list[int]]:
    """Groups of the first step's `stories` (one connected component of `edges`): the pair
    of groups joined by an edge that match best as wholes is merged, until none match."""
    groups: dict[int, list[int]] = {s: [s] for s in stories}
    rows: dict[int, list[Member]] = {s: list(members(s)) for s in stories}
    label = {s: min(m.key for m in rows[s]) for s in stories}  # order-free tie-break
    owner = {s: s for s in stories}
    while True:
        best: tuple[float, str, str, int, int] | None = None
        seen: set[tuple[int, int]] = set()
        for s in stories:
            for t in edges.get(s, ()):
                g, h = owner[s], owner.get(t)
                if h is None or g == h:
                    continue
                pair = (min(g, h), max(g, h))
                if pair in seen:
                    continue
                seen.add(pair)
                link = whole_link(rows[pair[0]], rows[pair[1]], score, apart, rules)
                if link is None:
                    continue
                la, lb = sorted((label[pair[0]], label[pair[1]]))
                key = (-link.mean, la, lb, *pair)
                if best is None or key < best:
                    best = key
        if best is None:
            break
        g, h = best[3], best[4]
        keep, gone = (g, h) if label[g] <= label[h] else (h, g)
        groups[keep] += groups.pop(gone)
        rows[keep] = _in_order(rows[keep] + rows.pop(gone))
        label[keep] = min(label[keep], label.pop(gone))
        for s in groups[keep]:
            owner[s] = keep
    return [sorted(g) for g in groups.values()]


def _in_order(members: list[Member]) -> list[Member]:
    return sorted(members, key=lambda m: (m.when or 0.0, m.key))


class StoryMerger:
    """The second step's state: each first-step story's profile and merged id.

    `update` is called with the first-step stories that changed; it recomputes the
    components they were or are now in and returns the stories whose merged id changed."""

    def __init__(
        self,
        members: Members,
        names: Callable[[Member], Iterable[str]],
        score: PairScore,
        apart: Apart,
        rules: MergeRules,
    ) -> None:
        self._members = members
        self._names = names
        self._score = score
        self._apart = apart
        self.rules = rules
        self._profile: dict[int, frozenset[str]] = {}
        self._span: dict[int, tuple[float, float]] = {}
        self._by_name: dict[str, set[int]] = {}
        self._merged: dict[int, int] = {}  # first-step story -> merged id (when merged)
        self._groups: dict[int, list[int]] = {}  # merged id -> its first-step stories
        self._dirty: set[int] = set()  # stories whose profile is to be read again
        self._journal: MergeJournal | None = None  # the changes being journaled

    # -- journaling (`StoryIndex.begin_trial`) ------------------------------------------------

    def start_journal(self) -> MergeJournal:
        """Journal every change that follows until `stop_journal`, for `undo`."""
        self._journal = MergeJournal(set(self._dirty))
        return self._journal

    def stop_journal(self) -> None:
        self._journal = None

    def undo(self, journal: MergeJournal) -> None:
        """Put back every entry `journal` saw changed, as it was before its first change:
        the state is then the one `start_journal` found (nothing changed after the journal
        stopped may remain)."""
        self._journal = None
        for (name, key), old in journal.saved.items():
            container: dict[Any, Any] = getattr(self, name)
            if old is _ABSENT:
                container.pop(key, None)
            else:
                container[key] = old
        self._dirty = set(journal.dirty)

    def _save(self, name: str, key: Any) -> None:
        """Before `self.<name>[key]` changes: its value, the first time in a journal."""
        journal = self._journal
        if journal is None or (name, key) in journal.saved:
            return
        old = getattr(self, name).get(key, _ABSENT)
        if isinstance(old, set | list):
            old = old.copy()  # changed in place
        journal.saved[name, key] = old

    def _read(self, stories: Iterable[int]) -> None:
        if self._journal is not None:
            self._journal.read.update(stories)

    def merged_id(self, story_id: int) -> int:
        return self._merged.get(story_id, story_id)

    def parts(self, merged_id: int) -> list[int]:
        """The first-step stories of a merged story (itself when not merged)."""
        return self._groups.get(merged_id, [merged_id])

    def rename(self, old: int, new: int) -> None:
        """A first-step story took another id (its merged id stays, unless it was its own)."""
        self._drop_profile(old)
        self._save("_merged", old)
        merged = self._merged.pop(old, None)
        if merged is not None:
            self._save("_groups", merged)
            group = self._groups[merged]
            group[group.index(old)] = new
            self._save("_merged", new)
            self._merged[new] = merged
        self._refresh(new)

    def restore(self, story_id: int, merged_id: int) -> None:
        """A first-step story the store records as merged into `merged_id` (rebuilding the
        index): the merge holds as it was decided until one of its stories changes."""
        self._save("_groups", merged_id)
        group = self._groups.setdefault(merged_id, [merged_id])
        if story_id not in group:
            group.append(story_id)
            group.sort()
        for s in (story_id, merged_id):
            self._save("_merged", s)
            self._merged[s] = merged_id

    def forget(self, story_id: int) -> None:
        """A first-step story left the index (evicted). The rest of its group keeps the
        merged id, as the store has it, until one of them changes."""
        self._drop_profile(story_id)
        self._dirty.discard(story_id)
        self._save("_merged", story_id)
        merged = self._merged.pop(story_id, None)
        if merged is not None:
            self._save("_groups", merged)
            group = self._groups[merged]
            group.remove(story_id)
            if not group:
                del self._groups[merged]

    def note(self, story_id: int) -> None:
        """A first-step story changed outside `update` (rebuilt from the store, or lost
        members to eviction): its profile is read again before the next update."""
        self._dirty.add(story_id)

    def update(self, changed: Iterable[int]) -> dict[int, int]:
        """Recompute the merges around the `changed` first-step stories; returns
        {first-step story: its previous merged id} for those whose merged id changed."""
        dirty, self._dirty = self._dirty, set()
        for s in sorted(dirty):
            self._refresh(s)
        start: set[int] = set()
        for s in changed:
            self._refresh(s)
            start.add(s)
            start.update(self.parts(self.merged_id(s)))
        edges: dict[int, set[int]] = {}
        seen: set[int] = set()
        todo = sorted(start)
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            for other in self.parts(self.merged_id(s)):  # its old group is recomputed too
                if other not in seen:
                    todo.append(other)
            for t in self._neighbours(s):
                edges.setdefault(s, set()).add(t)
                edges.setdefault(t, set()).add(s)
                if t not in seen:
                    todo.append(t)
        live = sorted(s for s in seen if s in self._profile)
        previous = {s: self.merged_id(s) for s in seen}
        self._read(seen)
        for s in seen:
            self._save("_merged", s)
            merged = self._merged.pop(s, None)
            if merged is not None:
                self._save("_groups", merged)
                self._groups.pop(merged, None)
        for component in _components(live, edges):
            if len(component) < 2:
                continue
            for group in merge_component(
                component, edges, self._members, self._score, self._apart, self.rules
            ):
                if len(group) > 1:
                    merged_id = min(group)
                    self._save("_groups", merged_id)
                    self._groups[merged_id] = group
                    for s in group:
                        self._save("_merged", s)
                        self._merged[s] = merged_id
        return {s: old for s, old in previous.items() if self.merged_id(s) != old}

    def _neighbours(self, story_id: int) -> list[int]:
        """First-step stories sharing a profile name that match `story_id` as wholes."""
        names = self._profile.get(story_id)
        if not names:
            return []
        if self._journal is not None:
            self._journal.names.update(names)
        lo, hi = self._span[story_id]
        limit = self.rules.max_span_days * _DAY
        shared = Counter(t for n in names for t in self._by_name.get(n, ()) if t != story_id)
        found = sorted(t for t, c in shared.items() if c >= MIN_SHARED)
        self._read(found)
        mine = self._members(story_id)
        out = []
        for t in found:
            tlo, thi = self._span[t]
            if max(hi, thi) - min(lo, tlo) > limit:
                continue
            if whole_link(mine, self._members(t), self._score, self._apart, self.rules):
                out.append(t)
        return out

    def _refresh(self, story_id: int) -> None:
        self._drop_profile(story_id)
        self._read((story_id,))
        members = self._members(story_id)
        names = profile(members, self._names)
        if not names:
            return
        self._save("_profile", story_id)
        self._profile[story_id] = names
        dates = [m.when for m in members if m.when is not None]
        self._save("_span", story_id)
        self._span[story_id] = (min(dates), max(dates))
        for n in names:
            self._save("_by_name", n)
            self._by_name.setdefault(n, set()).add(story_id)

    def _drop_profile(self, story_id: int) -> None:
        self._save("_profile", story_id)
        self._save("_span", story_id)
        names = self._profile.pop(story_id, None)
        self._span.pop(story_id, None)
        for n in names or ():
            self._save("_by_name", n)
            stories = self._by_name.get(n)
            if stories is not None:
                stories.discard(story_id)
                if not stories:
                    del self._by_name[n]


def _components(nodes: Sequence[int], edges: Mapping[int, set[int]]) -> list[list[int]]:
    left = set(nodes)
    out = []
    for start in nodes:
        if start not in left:
            continue
        left.discard(start)
        part, todo = [start], [start]
        while todo:
            for t in edges.get(todo.pop(), ()):
                if t in left:
                    left.discard(t)
                    part.append(t)
                    todo.append(t)
        out.append(sorted(part))
    return out
