"""New articles decided as a batch, in date order, stored in one transaction. I/O: database.

A poll's articles arrive in whatever order their pages answer. The story layer's decisions do
not depend on that order, but an arrival dated earlier than articles already decided makes
it look at them again (issue 14: about half the main process's time in a cold poll, whose
feeds list the newest first, and as much again between batches when a batch is earlier than
what the batches before it stored). `Poller` therefore holds new articles until no other
article is being fetched or extracted (so a cold poll's articles are one batch), or for at
most `[poll] decide_batch` articles or `decide_window_ms`, and decides them here by effective
date (published, else first seen), then URL: one exact-layer query for the whole batch, one
transaction for all its inserts. The result is what deciding the same
articles one by one in that order stores (tests/test_batch.py); a crash during the batch
stores none of it, and the next poll fetches those articles again, as they are not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.dedupe.near import signature_from_bytes
from monitor.models import Article, DuplicateOf, Status
from monitor.pipeline.index import DedupeIndex
from monitor.store import CorrectionsChanged, ExistingItem, ItemSignature, NewItem, Store
from monitor.tag import Tags

log = logging.getLogger("monitor.pipeline")


@dataclass(frozen=True, slots=True)
class Pending:
    """A new article, extracted and signed, waiting for its decision."""

    article: Article
    tags: Tags
    signature: ItemSignature
    baseline: bool  # older than the first poll's backfill cut-off


@dataclass(frozen=True, slots=True)
class Decided:
    """What the batch stored for one article."""

    item_id: int
    status: Status


class ExactLayer:
    """The exact layer for one batch: the stored items the batch's canonical URLs and text
    hashes name (one query), and the batch's own articles as they are decided."""

    def __init__(self, found: Sequence[tuple[ExistingItem, str]]) -> None:
        # Oldest first, as the store's per-article lookups order them.
        self._by_url: dict[str, list[tuple[str, str]]] = {}
        self._by_hash: dict[str, str] = {}
        for item, canonical in sorted(found, key=lambda f: f[0].id):
            self._add(item.source, item.url, canonical, item.text_hash)

    def classify(self, article: Article) -> tuple[Status, DuplicateOf | None]:
        """A canonical-URL twin (the same source's first, else the oldest) or the same
        normalised text (the oldest) is a duplicate: `Poller._classify` for a batch."""
        twins = self._by_url.get(article.canonical_url, ())
        twin = next((url for source, url in twins if source == article.source), None)
        if twin is None and twins:
            twin = twins[0][1]
        if twin is not None:
            return "duplicate", DuplicateOf("item", twin, 1.0, "canonical_url")
        same_text = self._by_hash.get(article.text_hash) if article.text_hash else None
        if same_text is not None:
            return "duplicate", DuplicateOf("item", same_text, 1.0, "text_hash")
        return "new", None

    def add(self, article: Article) -> None:
        """An article of the batch, decided: the later ones see it as stored before them."""
        self._add(article.source, article.url, article.canonical_url, article.text_hash)

    def _add(self, source: str, url: str, canonical: str, text_hash: str) -> None:
        self._by_url.setdefault(canonical, []).append((source, url))
        if text_hash:
            self._by_hash.setdefault(text_hash, url)


def decision_order(batch: Sequence[Pending], now: datetime) -> list[int]:
    """Positions of the batch by effective date (published, else first seen `now`), then
    URL: an article rarely arrives before one it could change."""
    return sorted(
        range(len(batch)),
        key=lambda i: (batch[i].article.published_at or now, batch[i].article.url),
    )


def decide_batch(
    store: Store, index: DedupeIndex, batch: Sequence[Pending], now: datetime
) -> list[Decided]:
    """Decide and store `batch` (in `decision_order`, in one transaction); returns what was
    stored for each article, in the batch's order. When another process recorded a
    correction meanwhile (CorrectionsChanged), nothing was stored: the index obeys it, forgets
    the batch's signatures and decides the batch again. Any other failure also leaves the
    near-duplicate index as it was and raises."""
    order = decision_order(batch, now)
    while True:
        index.obey_corrections(store, now)  # made by any process, before deciding
        mark = index.near.mark()
        try:
            found = store.find_exact(
                [p.article.canonical_url for p in batch], [p.article.text_hash for p in batch]
            )
            exact = ExactLayer(found)
            rows = [_decide_one(index, exact, batch[i], now) for i in order]
            ids = store.insert_items(
                [row for row, _ in rows], corrections_seen=index.corrections_seen
            )
        except CorrectionsChanged:
            index.near.forget_since(mark)
            log.info("decisions_retried count=%d reason=corrections_changed", len(batch))
            continue
        except BaseException:
            index.near.forget_since(mark)
            raise
        out: list[Decided | None] = [None] * len(batch)
        for i, item_id, (_, status) in zip(order, ids, rows, strict=True):
            out[i] = Decided(item_id, status)
        return [d for d in out if d is not None]


def _decide_one(
    index: DedupeIndex, exact: ExactLayer, pending: Pending, now: datetime
) -> tuple[NewItem, Status]:
    """The near and story layers for one article of the batch, as `Poller._decide` does."""
    article, stored = pending.article, pending.signature
    signature = signature_from_bytes(stored.signature)
    decision = index.decide(
        key=article.url,
        source=article.source,
        signature=signature,
        shingles=stored.shingles,
        features=stored.features,  # read only when the story layer decides
        exact=exact.classify(article),
        at=now,
    )
    index.remember(
        article.url, source=article.source, signature=signature, shingles=stored.shingles, at=now
    )
    exact.add(article)
    row = NewItem(
        article,
        now,
        decision.status,
        pending.baseline,
        decision.duplicate_of,
        pending.tags,
        decision.record(stored),
    )
    return row, decision.status
