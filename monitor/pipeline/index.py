"""The in-memory dedupe indexes, built from the seed corpus and the store. I/O: files, database.

`DedupeIndex.load` signs only what it has not signed before: an unchanged seed file (same
name, same bytes) and every stored item come back from their stored signatures and features.
Items first seen within `[dedupe] retention` go into the near-duplicate index and those within
`story_retention` into the story index; seeds are always in both. An exact duplicate of an
indexed article follows its story (`monitor.dedupe.follow`).
"""

from __future__ import annotations

import gc
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.config import DedupeConfig
from monitor.corpus import corpus_files, read_sidecar, seed_from_bytes, seed_hash
from monitor.dedupe.follow import Followers, follow_marker, follow_match, followed, kept_apart
from monitor.dedupe.minhash import LeanMinHash
from monitor.dedupe.near import (
    CONTAINMENT_THRESHOLD,
    JACCARD_THRESHOLD,
    MIN_SHINGLES,
    NearIndex,
    NearMatch,
    sign_text,
    signature_from_bytes,
    signature_to_bytes,
)
from monitor.dedupe.seeds import Seed, release_language_model
from monitor.dedupe.story import (
    StoryFeatures,
    StoryIndex,
    StoryMatch,
    StoryMove,
    extract_features,
    features_from_json,
    features_to_json,
)
from monitor.errors import CorpusError
from monitor.models import DuplicateOf, Status
from monitor.store import (
    DedupeRecord,
    ItemSignature,
    SeedRecord,
    Store,
    StoredSignature,
    StoryChange,
)

log = logging.getLogger("monitor.dedupe")
_SERIALS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class NearLookup:
    """The near layer's answer, looked up before the decision (cluster mode)."""

    match: NearMatch | None


@dataclass(frozen=True, slots=True)
class Decision:
    """What the near-duplicate and story layers decided for one new article."""

    status: Status
    duplicate_of: DuplicateOf | None
    near: NearMatch | None
    near_record: dict[str, Any] | None  # for `explain`; None when the exact layer decided
    story: StoryMatch
    moves: Sequence[StoryMove] = ()  # earlier articles whose story this one changed
    follows: str | None = None  # the original whose story it took (an exact duplicate)

    def record(self, signature: ItemSignature) -> DedupeRecord:
        """What the store keeps with the item (a follower: the marker for its features)."""
        if self.follows is not None:
            signature = replace(signature, features=follow_marker(self.follows))
        return DedupeRecord(
            signature=signature,
            story_id=self.story.story_id,
            near=self.near_record,
            story=story_record(self.story),
            changes=story_changes(self.moves),
            story_part=self.story.part,
        )


class DedupeIndex:
    """Seeds and recent items in a `NearIndex` and a `StoryIndex`."""

    def __init__(self, config: DedupeConfig, *, next_story_id: int = 1) -> None:
        self.config = config
        self.near = NearIndex()
        self.stories = StoryIndex(
            next_story_id=next_story_id,
            max_span_days=max(1, round(config.story_max_span.total_seconds() / 86400)),
        )
        self.followers = Followers()  # exact duplicates following an indexed original
        self.apart: dict[str, set[str]] = {}  # the corrections' constraints (`set_apart`)
        self.seeds_signed: list[str] = []  # seed files (re)signed by the last load
        # The store's corrections as this index last obeyed them (`obey_corrections`).
        self.corrections_seen = (0, 0)
        self.evictions = 0  # retention sweeps so far: answers looked up before one are stale
        self.serial = next(_SERIALS)  # which index this is (a reload makes another)

    @classmethod
    def load(
        cls, store: Store, corpus_dir: Path, config: DedupeConfig, now: datetime
    ) -> DedupeIndex:
        """Build the indexes: stored items of the retention windows, then the seed corpus."""
        index = cls(config, next_story_id=store.max_story_id() + 1)
        index.corrections_seen = store.corrections_state()
        index.set_apart(store.apart_keys())
        # Loading makes hundreds of thousands of objects and no garbage: with the cyclic
        # collector on, it ran over and over and took half the load (1.1 of 2.4 s, 100k items).
        collecting = gc.isenabled()
        gc.disable()
        try:
            index._load_items(store, now)
            index._load_seeds(store, corpus_dir, now)
        finally:
            if collecting:
                gc.enable()
        if index.seeds_signed:
            gc.collect()
            release_language_model()
            gc.collect()
        return index

    def _load_items(self, store: Store, now: datetime) -> None:
        near_since = now - self.config.retention
        story_since = now - self.config.story_retention
        for row in store.signatures_since(min(near_since, story_since)):
            try:
                if row.fetched_at >= near_since and row.shingles >= MIN_SHINGLES:
                    add_stored(self.near, row)
                if row.fetched_at >= story_since and row.story_id is not None:
                    self._add_story(row)
            except ValueError as exc:  # a row this version cannot read: skip it, say so
                log.warning("signature_unreadable item=%d error=%s", row.item_id, exc)

    def catch_up(
        self,
        store: Store,
        logged: Sequence[tuple[int, int, str]],
        now: datetime,
        *,
        rows: Sequence[StoredSignature] | None = None,
    ) -> None:
        """Apply decisions another node logged (cluster mode, under the decision lock): its new
        items join both indexes with the story it gave them, a changed item's new signature
        joins the near index, and when any decision moved earlier articles to other stories
        the story index is rebuilt from the store, as a restart would build it. `rows` are the
        logged items' signatures when the caller read them with the log (in id order)."""
        inserted = {item_id for _, item_id, kind in logged if kind == "insert"}
        updated = {item_id for _, item_id, kind in logged if kind == "update"}
        moved = any(kind == "moves" for _, _, kind in logged)
        near_since = now - self.config.retention
        story_since = now - self.config.story_retention
        if rows is None:
            rows = store.signatures_of(sorted(inserted | updated))
        for row in rows:
            try:
                if row.fetched_at >= near_since and row.shingles >= MIN_SHINGLES:
                    add_stored(self.near, row)
                if (
                    not moved
                    and row.item_id in inserted
                    and row.fetched_at >= story_since
                    and row.story_id is not None
                ):
                    self._add_story(row)
            except ValueError as exc:
                log.warning("signature_unreadable item=%d error=%s", row.item_id, exc)
        if moved:
            self.reload_stories(store, now)

    def obey_corrections(
        self, store: Store, now: datetime, *, state: tuple[int, int] | None = None
    ) -> bool:
        """Before a decision: when a correction was made or undone since the last look (by
        any process), rebuild the story index from the store, with the corrections'
        constraints and past every story id they took. True when it did. `state` is the
        corrections' state when the caller has just read it."""
        if state is None:
            state = store.corrections_state()
        if state == self.corrections_seen:
            return False
        self.corrections_seen = state
        self.reload_stories(store, now)
        log.info("corrections_obeyed last=%d undone=%d", *state)
        return True

    def reload_stories(
        self,
        store: Store,
        now: datetime,
        *,
        skip: str | None = None,
        apart: dict[str, set[str]] | None = None,
    ) -> None:
        """Rebuild the story index from the stored story ids of items and seeds (without the
        item `skip`), obeying the corrections' constraints (or `apart`)."""
        self.stories = StoryIndex(
            next_story_id=store.max_story_id() + 1, max_span_days=self.stories.max_span_days
        )
        self.followers = Followers()
        self.set_apart(store.apart_keys() if apart is None else apart)
        story_since = now - self.config.story_retention
        for row in store.signatures_since(story_since):
            if row.story_id is None or row.url == skip:
                continue
            if skip is not None and followed(row.features) == skip:
                if not kept_apart(self.apart, row.url, skip):  # it follows what is decided again
                    self.followers.add(row.url, skip)
                continue
            try:
                self._add_story(row)
            except ValueError:
                continue
        for seed in store.list_seeds():
            try:
                features = features_from_json(seed.features)
            except ValueError:
                continue
            self._add_seed_story(seed, features)

    def set_apart(self, constraints: dict[str, set[str]]) -> None:
        """The corrections' cannot-link constraints, for the story layer and the followers."""
        self.apart = constraints
        self.stories.set_apart(constraints)

    def _add_story(self, row: StoredSignature) -> None:
        """A stored item into the story index with its stored story, or, for a follower
        (`follow_marker` in place of its features), among its original's followers, unless
        the original is not indexed or a correction set the two apart. Items are read in
        id order, so an original comes before its followers. ValueError when this version
        cannot read the row."""
        original = followed(row.features)
        if original is None:
            assert row.story_id is not None
            features = features_from_json(row.features)
            self.stories.add(
                row.url, features, row.fetched_at, story_id=row.story_id, part=row.story_part
            )
        elif self.stories.story_of(original) is not None and not kept_apart(
            self.apart, row.url, original
        ):
            self.followers.add(row.url, original)

    def follows(self, key: str, exact: tuple[Status, DuplicateOf | None]) -> str | None:
        """The original whose story an article takes undecided: the item the exact layer
        found with the same normalised text, when it is indexed in the story layer and no
        correction keeps the two apart."""
        dup = exact[1]
        if dup is None or dup.kind != "item" or dup.method != "text_hash" or dup.ref == key:
            return None
        if self.stories.story_of(dup.ref) is None or kept_apart(self.apart, key, dup.ref):
            return None
        return dup.ref

    def moves(self) -> list[StoryMove]:
        """The story index's moves since the last call, each original's with its followers'."""
        return self.followers.moves(self.stories.take_moves())

    def _load_seeds(self, store: Store, corpus_dir: Path, now: datetime) -> None:
        stored = {s.name: s for s in store.list_seeds()}
        present: set[str] = set()
        changed: list[tuple[Seed, str]] = []
        for path in corpus_files(corpus_dir):
            try:
                data = path.read_bytes()
                meta = read_sidecar(path)
            except (OSError, CorpusError) as exc:
                log.warning("seed_unreadable file=%s error=%s", path, exc)
                continue
            present.add(path.name)
            text_hash = seed_hash(data, meta)
            row = stored.get(path.name)
            if row is not None and row.text_hash == text_hash:
                self._add_seed(row)  # unchanged: its stored signature, features and story
                continue
            try:
                changed.append((seed_from_bytes(path.name, data, meta), text_hash))
            except CorpusError as exc:
                log.warning("seed_unusable %s", exc)
        store.delete_seeds(sorted(set(stored) - present))
        # Dated seeds first (by date), so an undated one can take its date from its story.
        changed.sort(key=lambda c: (c[0].published_at is None, c[0].published_at or now, c[0].name))
        for seed, text_hash in changed:
            self._sign_seed(store, seed, text_hash, now)
        store.change_stories(story_changes(self.moves()))

    def _sign_seed(self, store: Store, seed: Seed, text_hash: str, now: datetime) -> None:
        name = seed.name
        signature, shingles = sign_text(seed.text)
        features = extract_features(seed.title, seed.text, seed.published_at, seed.language)
        match = self.stories.assign(
            name, features, now, seed_ref=name, date_basis=seed.date_source or ""
        )
        date_source = seed.date_source
        if seed.published_at is None:
            span = self.stories.span(match.story_id)
            if span is not None:  # its story's dated seeds date it
                features = replace(features, published_at=span[0], ref_year=span[0].year)
                seed = replace(seed, published_at=span[0], date_source="story")
                date_source = "story"
                self.stories.date_seed(name, features, "story")
        self.near.add(name, signature, kind="seed", ref=name, source=None, at=now, size=shingles)
        store.upsert_seed(
            SeedRecord(
                name=name,
                text_hash=text_hash,
                title=seed.title,
                published_at=seed.published_at,
                language=seed.language,
                text_chars=len(seed.text),
                signature=signature_to_bytes(signature),
                shingles=shingles,
                features=features_to_json(features),
                story_id=match.story_id,
                added_at=now,
                date_source=date_source,
            )
        )
        self.seeds_signed.append(name)
        log.info("seed_signed name=%s story=%d date=%s", name, match.story_id, date_source)

    def _add_seed(self, row: SeedRecord) -> None:
        try:
            signature = signature_from_bytes(row.signature)
            features = features_from_json(row.features)
        except ValueError as exc:
            log.warning("seed_row_unreadable name=%s error=%s", row.name, exc)
            return
        self.near.add(
            row.name,
            signature,
            kind="seed",
            ref=row.name,
            source=None,
            at=row.added_at,
            size=row.shingles,
        )
        self._add_seed_story(row, features)

    def _add_seed_story(self, row: SeedRecord, features: StoryFeatures) -> None:
        """A stored seed into the story index, with its story and its date's origin."""
        self.stories.add(
            row.name,
            features,
            row.added_at,
            story_id=row.story_id,
            seed_ref=row.name,
            date_basis=row.date_source or "",
        )

    # -- per article ----------------------------------------------------------------------------

    def decide(
        self,
        *,
        key: str,
        source: str,
        signature: LeanMinHash,
        shingles: int,
        features: StoryFeatures | str,
        exact: tuple[Status, DuplicateOf | None],
        at: datetime,
        near_match: NearLookup | None = None,
    ) -> Decision:
        """Near-duplicate layer (unless the exact layer already found a duplicate; its answer
        is `near_match` when it was looked up ahead), then the story layer, which also
        indexes the article's `features` (or their JSON) under `key` (its URL). An exact
        duplicate of an indexed article takes its story instead (`follows`): no story
        decision, and its features are not read."""
        status, dup = exact
        original = self.follows(key, exact)
        if original is not None:
            story_id = self.stories.story_of(original)
            assert story_id is not None
            same_story = follow_match(
                story_id,
                original,
                threshold=self.stories.threshold,
                seed_refs=self.stories.seed_refs(story_id),
            )
            if self.followers.add(key, original):  # a trial (cluster mode) takes it back
                self.stories.on_undo(lambda: self.followers.drop(key))
            return Decision(status, dup, None, None, same_story, (), follows=original)
        if isinstance(features, str):
            features = features_from_json(features)
        match: NearMatch | None = None
        near: dict[str, Any] | None = None
        if dup is None:
            if near_match is None:
                match = self.near.query(signature, source=source, size=shingles)
            else:
                match = near_match.match
            near = near_record(match, shingles, len(self.near))
            if match is not None:
                status = "known" if match.kind == "seed" else "duplicate"
                dup = DuplicateOf(match.kind, match.ref, match.similarity, match.method)
        story = self.stories.assign(key, features, at)
        return Decision(status, dup, match, near, story, tuple(self.moves()))

    def remember(
        self, key: str, *, source: str, signature: LeanMinHash, shingles: int, at: datetime
    ) -> None:
        """Index a stored item's signature for the near-duplicate queries that follow."""
        self.near.add(key, signature, kind="item", ref=key, source=source, at=at, size=shingles)

    def evict(self, now: datetime) -> tuple[int, int]:
        """Drop items past the retention windows (never seeds); returns (near, story) counts."""
        self.evictions += 1
        near = self.near.evict_before(now - self.config.retention)
        stories = self.stories.evict_before(now - self.config.story_retention)
        self.followers.keep(lambda key: self.stories.story_of(key) is not None)
        return near, stories


def add_stored(near: NearIndex, row: StoredSignature) -> None:
    """Index a stored item's signature; ValueError when this version cannot read it."""
    near.add(
        row.url,
        signature_from_bytes(row.signature),
        kind="item",
        ref=row.url,
        source=row.source,
        at=row.fetched_at,
        size=row.shingles,
    )


def near_record(match: NearMatch | None, shingles: int, indexed: int) -> dict[str, Any]:
    """The near layer's decision as `explain` shows it."""
    base = {
        "shingles": shingles,
        "jaccard_threshold": JACCARD_THRESHOLD,
        "containment_threshold": CONTAINMENT_THRESHOLD,
        "indexed": indexed,
    }
    if match is not None:
        return base | {
            "result": "match",
            "kind": match.kind,
            "ref": match.ref,
            "similarity": match.similarity,
            "method": match.method,
            "threshold": match.threshold,
            "compared_with": match.compared_with,
            "jaccard": match.jaccard,
            "containment": match.containment,
            "explanation": match.explain(),
        }
    if shingles < MIN_SHINGLES:
        explanation = (
            f"not judged: the text has {shingles} word 3-shingles, fewer than {MIN_SHINGLES}"
        )
        return base | {"result": "too_short", "explanation": explanation}
    explanation = (
        f"no near-duplicate among {indexed} indexed seeds and items (items of the same source "
        f"are not compared): no candidate reached estimated Jaccard >= {JACCARD_THRESHOLD:.2f} "
        f"or containment >= {CONTAINMENT_THRESHOLD:.2f} (MinHash, word 3-shingles)"
    )
    return base | {"result": "none", "explanation": explanation}


def story_record(match: StoryMatch) -> dict[str, Any]:
    """The story layer's decision as `explain` shows it."""
    return {
        "story_id": match.story_id,
        "part": match.part,
        "is_new": match.is_new,
        "score": match.score,
        "threshold": match.threshold,
        "mean": match.mean,
        "mean_threshold": match.mean_threshold,
        "members_compared": match.members_compared,
        "matched_key": match.matched_key,
        "compared_with": match.compared_with,
        "reasons": list(match.reasons),
        "refused": list(match.refused),
        "seed_refs": list(match.seed_refs),
        "date": match.date.isoformat() if match.date else None,
        "date_basis": match.date_basis,
        "span": [d.isoformat() for d in match.span] if match.span else None,
        "window_days": match.window_days,
        "max_span_days": match.max_span_days,
        "explanation": match.explain(),
    }


def story_changes(moves: Sequence[StoryMove]) -> tuple[StoryChange, ...]:
    """Moves of the story index as the store records them."""
    return tuple(
        StoryChange(
            m.key,
            m.seed_ref is not None,
            m.match.story_id,
            {} if m.match.restored else story_record(m.match),
            m.match.part,
        )
        for m in moves
    )
