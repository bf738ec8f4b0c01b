"""Polling: sources | fetch | parse | extract | dedupe | tag | store. I/O: network, database."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from monitor.backoff import backoff_delay, next_check_after_success, parse_retry_after
from monitor.config import Config, PollConfig
from monitor.dedupe.exact import canonical_url
from monitor.discover import discover_links, parse_sitemap, site_of
from monitor.errors import FetchError, ParseError, SourceError, StoreError
from monitor.fetch import PAGE_ACCEPT, Fetcher, make_client
from monitor.loop import run as run_loop
from monitor.models import Article, DuplicateOf, Entry, FetchResult, Page, Source, SourceHealth
from monitor.parse import looks_like_challenge, parse_feed
from monitor.pipeline.workers import WorkerPool, route_key
from monitor.sources import interleave_hosts
from monitor.store import CorrectionsChanged, ItemSignature, PollSuccess, Store
from monitor.topics import TopicRules

if TYPE_CHECKING:  # datasketch (numpy, scipy) and the tagger load when an article needs them
    from sqlalchemy import Connection

    from monitor.cluster.foresight import Foresight
    from monitor.cluster.gate import DecisionGate
    from monitor.dedupe.story import StoryTrial
    from monitor.pipeline.batch import Pending
    from monitor.pipeline.index import Decision, DedupeIndex, NearLookup
    from monitor.tag import Tags, Taxonomy

log = logging.getLogger("monitor.pipeline")

Outcome = Literal["ok", "not_modified", "failed", "skipped"]
MAX_CHILD_SITEMAPS = 5
MAX_TITLE = 1000  # characters stored of a title; a feed's 1 MB "title" is not one
# A changed feed larger than this is parsed in a thread (`_entries`): most feeds are far
# smaller and parse in a few milliseconds on the loop.
PARSE_ON_LOOP_BYTES = 256 * 1024
# Successful polls `poll_all` writes per transaction. One transaction per 304 cost more than
# the request itself; a crash loses at most this many records of unchanged polls, which the
# next poll simply repeats (new items wait in a batch until no other article is in flight,
# at most `[poll] decide_window_ms`, `batch.py`; one not stored is fetched again by the next
# poll, as its source's validators are recorded only after it is stored).
SUCCESS_BATCH = 100
# Pages in flight (fetched, queued or extracting) per extraction worker (`Poller`).
PAGES_PER_WORKER = 4
# Cluster mode: how many times a node decides ahead of the decision lock before it decides a
# story inside it (each attempt that does not stand lets go of the lock having written nothing).
AHEAD_ATTEMPTS = 3


class _TryAgain(Exception):
    """A decision taken ahead of the lock did not stand: decide ahead again."""


@dataclass(slots=True)
class PollOutcome:
    """What one poll of one source did."""

    source: str
    outcome: Outcome
    new: int = 0
    duplicate: int = 0
    known: int = 0
    unchanged: int = 0
    updated: int = 0
    baseline: int = 0
    page_failures: int = 0
    deferred: int = 0  # cluster mode: articles handed to the queue as ingest jobs
    error_class: str | None = None
    error: str | None = None
    next_check_at: datetime | None = None
    bytes_received: int = 0
    elapsed_ms: int = 0
    item_ids: list[int] = field(default_factory=list)
    extract_seconds: list[float] = field(default_factory=list)  # per article, in the worker

    @property
    def stored(self) -> int:
        return self.new + self.duplicate + self.known + self.baseline


@dataclass(frozen=True, slots=True)
class _Extracted:
    page: Page | None
    title: str
    text: str
    extraction: Literal["full_text", "summary_only", "failed"]
    language: str | None
    text_hash: str
    tags: Tags
    signature: bytes  # near.signature_to_bytes of the text
    shingles: int
    features: str  # story.features_to_json
    seconds: float  # the worker's time for all of the above


# Set in each worker by `init_worker`: the rules travel to a worker once, not with every page.
_worker_taxonomy: Taxonomy | None = None


def init_worker(taxonomy: Taxonomy) -> None:
    """Executor initializer: give this worker (a process or a thread) the topic rules."""
    global _worker_taxonomy
    _worker_taxonomy = taxonomy
    from monitor.pipeline import signing  # datasketch: only workers and deciding need it

    signing.use_taxonomy(taxonomy)


def _init_process_worker(taxonomy: Taxonomy | TopicRules, parent: int) -> None:
    """`init_worker` for a worker process of `parent`. It leaves when its parent is gone (the
    watch starts first: a parent killed during the warm-up must not leave it behind). It
    ignores SIGINT and SIGTERM: a Ctrl-C or a supervisor signals the whole process group, and
    the parent decides when its workers stop (after the in-flight extractions, when it
    drains)."""
    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    init_worker(taxonomy.taxonomy if isinstance(taxonomy, TopicRules) else taxonomy)
    warm_up()


def _exit_with(parent: int) -> None:
    """Leave when the parent is gone (`kill -9`): an orphaned worker would wait forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def make_pool(workers: int, taxonomy: Taxonomy | TopicRules) -> WorkerPool:
    """The extraction processes, each holding the topic rules and the extractor, a page sent
    to the one that saw its bytes (`workers.WorkerPool`). The parent never loads trafilatura
    or the language model: only workers use them, and given `TopicRules` unparsed, only
    workers parse them (a poll of unchanged feeds starts no worker)."""
    return WorkerPool(workers, _init_process_worker, (taxonomy, os.getpid()))


def _extract_job(
    entry_title: str | None,
    body: bytes | None,
    url: str,
    summary: str | None,
    hint: str | None,
    fast: bool,
    published_at: datetime | None = None,
) -> _Extracted:
    """Runs in a worker: the CPU-bound part of one article (extract, language, hash, tags,
    MinHash signature, story features; the last three once per text, `signing`)."""
    if _worker_taxonomy is None:
        raise RuntimeError("extraction worker started without init_worker(taxonomy)")
    from monitor.extract import build_text, extract_page
    from monitor.pipeline import signing

    started = time.perf_counter()
    page = extract_page(body, url=url, fast=fast) if body else None
    title = entry_title or (page.title if page else None) or url
    text, extraction = build_text(page, summary)
    language = signing.language(text, (page.language if page else None) or hint)
    tags = signing.tags(title, text, language)
    signature, shingles = signing.signature(text)
    published = page.published_at if page else None
    features = signing.features_json(title, text, published_at or published, language)
    return _Extracted(
        replace(page, text="") if page else None,  # its text is `text`: do not send it twice
        title,
        text,
        extraction,
        language,
        signing.fingerprint(text),
        tags,
        signature,
        shingles,
        features,
        time.perf_counter() - started,
    )


def warm_up() -> None:
    """In a worker: import the extractor and load the language model (about a second) before
    the first article, not during it."""
    from monitor.extract import detect_language

    detect_language("warm up the language identifier model once", hint=None)


Clock = Callable[[], datetime]
Progress = Callable[[PollOutcome], None]
# Cluster mode: hands a group of entries (an article and its canonical twins, in feed order,
# each with the id of the stored item it updates) to the queue as one ingest job.
Deferrer = Callable[[Source, list[tuple[Entry, int | None]], datetime | None], Awaitable[None]]


def poll_once(
    config: Config,
    store: Store,
    sources: Sequence[Source],
    *,
    clock: Clock,
    force: bool = False,
    due_only: bool = False,
    progress: Progress | None = None,
) -> list[PollOutcome]:
    """One poll of `sources` with a fresh HTTP client, process pool and dedupe index (the
    one-shot path: the index is rebuilt from the corpus and the stored signatures, when the
    first new article needs it: a poll of unchanged feeds never loads it)."""
    workers = config.poll.workers or os.cpu_count() or 1
    gate: DecisionGate | None = None
    if config.cluster.enabled:
        # Nodes may be deciding on the same database: decide under their lock, and log each
        # decision for them to replay (DESIGN §7).
        from monitor.cluster.gate import DecisionGate

        gate = DecisionGate(store)
        store.log_decisions = True

    def index() -> DedupeIndex:
        from monitor.pipeline.index import DedupeIndex

        if gate is None:
            return DedupeIndex.load(store, config.corpus_dir, config.dedupe, clock())
        with gate.holding():
            return DedupeIndex.load(store, config.corpus_dir, config.dedupe, clock())

    async def go() -> list[PollOutcome]:
        with make_pool(workers, config.rules) as pool:
            async with make_client(config.http) as client:
                fetcher = Fetcher(client, config.http)
                poller = Poller(
                    store, fetcher, pool, config.poll, index=index, clock=clock, gate=gate
                )
                return await poller.poll_all(
                    sources, force=force, due_only=due_only, progress=progress
                )

    try:
        return run_loop(go())
    finally:
        if gate is not None:
            gate.close()


class Poller:
    """Polls sources: fetch, parse, extract (in `executor`), dedupe in three layers, store."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        executor: Executor,
        config: PollConfig,
        *,
        index: DedupeIndex | Callable[[], DedupeIndex],
        clock: Clock,
        rng: random.Random | None = None,
        gate: DecisionGate | None = None,
        defer: Deferrer | None = None,
    ) -> None:
        """`executor` runs the extraction jobs: `make_pool` (or any executor whose workers
        ran `init_worker`). `index` holds the seeds and recent items (`DedupeIndex.load`), or
        is a function that loads them, called when the first new article needs them. `gate`
        (cluster mode) is the decision lock shared with the other nodes, and `defer` queues the
        articles a poll finds as ingest jobs, which any node may run (`ingest`)."""
        self.store = store
        self.gate = gate
        self.defer = defer
        self._index = index
        self.fetcher = fetcher
        self.executor = executor
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        # Pages fetched or extracted at once. A page holds its slot while it is fetched
        # (a round trip) and while it waits for and runs its extraction: with two slots per
        # worker the workers waited for pages (issue 14: 1.75 of 2 cores busy in a cold poll);
        # four per worker keep a page queued for each (about 175 KB each).
        self._page_slots = asyncio.Semaphore(max(8, PAGES_PER_WORKER * _workers(executor)))
        # Sources in flight at once. Parsing, deduping and storing run on the event loop; with
        # thousands of sources started together, one turn of the loop would carry all their
        # work and a fetch waiting for its next read would miss its deadline.
        self._source_slots = asyncio.Semaphore(max(1, config.parallel_sources))
        # Successful polls waiting to be written in one transaction (only inside `poll_all`).
        self._successes: list[PollSuccess] | None = None
        # New articles waiting to be decided as a batch (`_decide_later`), each with what its
        # poll awaits.
        self._pending: list[tuple[Pending, PollOutcome, asyncio.Future[int]]] = []
        self._pending_timer: asyncio.TimerHandle | None = None
        self._in_flight = 0  # articles being fetched or extracted (`_decide_if_idle`)

    @property
    def index(self) -> DedupeIndex:
        if callable(self._index):  # a loader (an index itself is not callable)
            self._index = self._index()
        return self._index

    async def poll_all(
        self,
        sources: Sequence[Source],
        *,
        due_only: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> list[PollOutcome]:
        """Poll every source concurrently; one failing source never stops the others.

        The sources start dealt over their hosts (`interleave_hosts`); the outcomes come in
        the order given. The sources' stored state is read in one query, and their
        successful polls are written `SUCCESS_BATCH` to a transaction."""
        states = {h.name: h for h in self.store.list_source_health()}

        async def one(source: Source) -> PollOutcome:
            try:
                outcome = await self.poll_source(
                    source, due_only=due_only, force=force, state=states.get(source.name)
                )
            except BrokenProcessPool as exc:
                # A worker died (the OOM killer, a crash in a parser) and the pool with it:
                # every source still to extract fails the same way; the next poll redoes them.
                log.error("workers_died source=%r", source.name)
                died = ParseError(source.url, f"the extraction workers died: {exc}")
                outcome = self._failed(source, died, self.clock(), states.get(source.name))
            if progress is not None:
                progress(outcome)
            return outcome

        self._successes = []
        try:
            order = interleave_hosts([s.url for s in sources])
            done = await asyncio.gather(*(one(sources[i]) for i in order))
            outcomes = list(done)
            for position, outcome in zip(order, done, strict=True):
                outcomes[position] = outcome
            return outcomes
        finally:
            self._flush_successes()
            self._successes = None

    def _flush_successes(self) -> None:
        if self._successes:
            batch, self._successes = self._successes, []
            self.store.record_successes(batch)

    async def poll_source(
        self,
        source: Source,
        *,
        due_only: bool = False,
        force: bool = False,
        slack: timedelta = timedelta(0),
        state: SourceHealth | None = None,
    ) -> PollOutcome:
        """Poll one source now. `due_only` honours the stored next check time (the daemon),
        give or take `slack`; a Retry-After embargo is honoured unless `force`. `state` is the
        source's stored state when the caller has just read it.

        A bug hit by this source's content is recorded as the source's failure ("internal
        error, please report it"), so the caller and the other sources go on. A `StoreError`
        or a `BrokenProcessPool` still raises: neither is the source's doing."""
        slot = _Slot(self._source_slots)
        await slot.take()
        try:
            if state is None:
                state = self.store.source_health(source.name)
            return await self._poll_source(
                source, state, due_only=due_only, force=force, slack=slack, slot=slot
            )
        except (StoreError, BrokenProcessPool):
            raise
        except Exception as exc:
            log.critical("poll_bug source=%r", source.name, exc_info=True)
            internal = ParseError(
                source.url, f"internal error, please report it: {type(exc).__name__}: {exc}"
            )
            return self._failed(source, internal, self.clock(), state)
        finally:
            slot.give()

    async def _poll_source(
        self,
        source: Source,
        state: SourceHealth,
        *,
        due_only: bool,
        force: bool,
        slack: timedelta,
        slot: _Slot | None = None,
    ) -> PollOutcome:
        now = self.clock()
        if not force and state.retry_after_until and now < state.retry_after_until:
            return PollOutcome(source.name, "skipped", next_check_at=state.retry_after_until)
        if due_only and state.next_check_at and now + slack < state.next_check_at:
            return PollOutcome(source.name, "skipped", next_check_at=state.next_check_at)
        first_poll = state.first_polled_at is None
        try:
            result = await self.fetcher.fetch(
                source.url, etag=state.etag, last_modified=state.last_modified
            )
            if result.not_modified:
                return self._succeeded(source, result, PollOutcome(source.name, "not_modified"))
            entries = await self._entries(source, result)
        except SourceError as exc:
            return self._failed(source, exc, now, state)
        outcome = PollOutcome(source.name, "ok")
        cutoff = now - self.config.backfill if first_poll else None
        if not await self._ingest(source, entries, outcome, cutoff, slot):
            # Entries were left for the next poll: keep no validators, or that poll would get
            # a 304 and never see them until the feed changes.
            result = replace(result, etag=None, last_modified=None)
        return self._succeeded(source, result, outcome)

    async def _entries(self, source: Source, result: FetchResult) -> list[Entry]:
        if source.kind == "feed":
            # The first changed feed of a process imports the parser (about half a second on
            # a busy machine), and a large feed takes as long to parse (10,000 entries: about
            # 1.5 s): both in a thread, so the loop keeps serving the requests in flight,
            # whose timeouts would otherwise count that time.
            if _started(self.executor):
                # Workers are running (a cold poll extracting pages): they parse too, and
                # the loop keeps to the requests and the decisions (issue 14: parsing was
                # the largest part of a cold poll's main process).
                loop = asyncio.get_running_loop()
                try:
                    parsed = await loop.run_in_executor(
                        self.executor, _parse_job, result.body, result.final_url, result.headers
                    )
                except BrokenExecutor:
                    parsed = None  # the workers died: parse here, as before they started
                if isinstance(parsed, _ParseFailure):
                    raise ParseError(parsed.url, parsed.detail, error_class=parsed.error_class)
                if parsed is not None:
                    return parsed
            if "feedparser" in sys.modules and len(result.body) < PARSE_ON_LOOP_BYTES:
                return parse_feed(result.body, url=result.final_url, headers=result.headers)
            return await asyncio.to_thread(
                parse_feed, result.body, url=result.final_url, headers=result.headers
            )
        if source.kind == "sitemap":
            entries, children = parse_sitemap(result.body, url=result.final_url)
            for child in children[:MAX_CHILD_SITEMAPS]:
                child_result = await self.fetcher.fetch(child)
                entries += parse_sitemap(child_result.body, url=child_result.final_url)[0]
            if not entries and not children:
                raise ParseError(source.url, "the sitemap lists no URLs")
            # Newest first, so the per-poll page budget goes to what is new.
            return sorted(entries, key=_newest_first)
        entries = discover_links(result.body, url=result.final_url, selector=source.selector)
        if not entries:
            kind = "not_a_feed" if looks_like_challenge(result.body) else "parse"
            detail = (
                "got a bot-protection challenge page instead of the listing"
                if kind == "not_a_feed"
                else "the listing page has no article links"
                + (f" matching {source.selector!r}" if source.selector else "")
            )
            raise ParseError(source.url, detail, error_class=kind)
        return entries

    async def _ingest(
        self,
        source: Source,
        entries: Sequence[Entry],
        outcome: PollOutcome,
        cutoff: datetime | None,
        slot: _Slot | None = None,
    ) -> bool:
        """Store what is new or changed, at most `max_pages_per_poll` of it; False when
        entries were left for the next poll. While its new articles wait for their batch,
        the source gives up its `slot` to another source."""
        fresh: list[tuple[Entry, int | None]] = []
        keys = [(entry.guid, canonical_url(entry.url)) for entry in entries]
        for entry, seen in zip(entries, self.store.find_items(source.name, keys), strict=True):
            if seen is None:
                fresh.append((entry, None))
            elif seen.source == source.name and (
                seen.url == entry.url or (entry.guid is not None and seen.guid == entry.guid)
            ):
                # The same item seen again: re-extract only when the feed says it changed.
                if _changed(entry, seen.title, seen.updated_at):
                    fresh.append((entry, seen.id))
                else:
                    outcome.unchanged += 1
            elif seen.url == entry.url:
                outcome.unchanged += 1  # the same article listed by another source
            else:
                fresh.append((entry, None))  # a canonical twin: stored as a duplicate below
        budget = fresh[: self.config.max_pages_per_poll]
        canonical = {entry.url: key for entry, (_, key) in zip(entries, keys, strict=True)}
        # A canonical twin of an earlier entry of this feed (an AMP or tracking-URL variant)
        # waits for it, so the feed's first listing is the one stored as the original.
        firsts: list[tuple[Entry, int | None]] = []
        twins: list[tuple[Entry, int | None]] = []
        seen_urls: set[str] = set()
        for entry, existing in budget:
            key = canonical[entry.url]
            (twins if key in seen_urls and existing is None else firsts).append((entry, existing))
            seen_urls.add(key)
        if self.defer is not None:
            groups: dict[str, list[tuple[Entry, int | None]]] = {}
            for entry, existing in firsts + twins:  # a twin goes after its first, in one job
                groups.setdefault(canonical[entry.url], []).append((entry, existing))
            for group in groups.values():
                await self.defer(source, group, cutoff)
            outcome.deferred += len(budget)
            if budget:
                log.info("articles_deferred source=%r count=%d", source.name, len(budget))
            return len(budget) == len(fresh)
        for batch in (firsts, twins):
            waiting = await asyncio.gather(
                *(self._article(source, e, i, outcome, cutoff) for e, i in batch)
            )
            await _wait_stored([w for w in waiting if w is not None], slot)
        return len(budget) == len(fresh)

    async def ingest(
        self,
        source: Source,
        group: Sequence[tuple[Entry, int | None]],
        cutoff: datetime | None,
    ) -> PollOutcome:
        """An ingest job (cluster mode): fetch, extract, decide and store these entries of
        `source`, one after the other. An entry stored meanwhile (by this job's earlier run,
        before its node died) is skipped before its page is fetched again."""
        outcome = PollOutcome(source.name, "ok")
        for entry, existing in group:
            if existing is None and self._stored(source, entry):
                outcome.unchanged += 1
                continue
            waiting = await self._article(source, entry, existing, outcome, cutoff)
            if waiting is not None:
                await _wait_stored([waiting], None)
        return outcome

    async def _article(
        self,
        source: Source,
        entry: Entry,
        existing_id: int | None,
        outcome: PollOutcome,
        cutoff: datetime | None,
    ) -> asyncio.Future[int] | None:
        """Fetch, extract, decide and store one article. A new article decided in a batch
        returns the future of its stored id (`_decide_later`); the others are stored on
        return."""
        batched = self.gate is None and existing_id is None and self.config.decide_batch > 1
        self._in_flight += 1
        try:
            done = await self._extract(source, entry, outcome)
        except BaseException:
            self._in_flight -= 1
            self._decide_if_idle()  # this one will not join the waiting batch
            raise
        self._in_flight -= 1
        outcome.extract_seconds.append(done.seconds)
        if batched:
            return self._decide_later(source, entry, outcome, cutoff, done)
        self._decide_if_idle()
        if self.gate is None:
            self._decide(source, entry, existing_id, outcome, cutoff, done)
            return None
        await self._decide_held(source, entry, existing_id, outcome, cutoff, done)
        return None

    async def _extract(self, source: Source, entry: Entry, outcome: PollOutcome) -> _Extracted:
        """The article's page (when it has one) through a worker's `_extract_job`."""
        async with self._page_slots:
            body: bytes | None = None
            page_url = entry.url
            try:
                if entry.has_page:  # else the feed's own text is all there is
                    page = await self.fetcher.fetch(entry.url, accept=PAGE_ACCEPT)
                    body, page_url = page.body, page.final_url
            except FetchError as exc:
                outcome.page_failures += 1
                log.info("page_failed source=%r url=%s error=%s", source.name, entry.url, exc)
            hint = entry.language or source.language
            job = (entry.title, body, page_url, entry.summary, hint)
            fast, published = self.config.fast_extraction, entry.published_at
            if body and isinstance(self.executor, WorkerPool):
                # The worker that saw these bytes knows their text: its signature, features,
                # language and tags are computed once per text, not once per worker.
                key = route_key(body)
                future = self.executor.submit_keyed(key, _extract_job, *job, fast, published)
                return await asyncio.wrap_future(future)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, _extract_job, *job, fast, published)

    async def _decide_held(
        self,
        source: Source,
        entry: Entry,
        existing_id: int | None,
        outcome: PollOutcome,
        cutoff: datetime | None,
        done: _Extracted,
    ) -> None:
        """Cluster mode: decide and store one article under the lock every node decides
        under (DESIGN §7), on the gate's thread (`_decide_locked`)."""
        assert self.gate is not None
        await self.gate.run(
            lambda: self._decide_locked(source, entry, existing_id, outcome, cutoff, done)
        )

    def _decide_locked(
        self,
        source: Source,
        entry: Entry,
        existing_id: int | None,
        outcome: PollOutcome,
        cutoff: datetime | None,
        done: _Extracted,
    ) -> None:
        """On the gate's thread: what can be looked up ahead of the lock is looked up
        (`monitor.cluster.foresight`), a dated article's story is decided ahead as a trial;
        then, holding the lock, the trial stands when nothing logged since could change it,
        the answers the rows logged since can change are looked up again, and the item is
        inserted and committed. A trial that does not stand is taken back and everything is
        done ahead again from the new position, at most `AHEAD_ATTEMPTS` times in all; the
        last time the story is decided inside the lock."""
        gate = self.gate
        assert gate is not None
        if existing_id is not None:
            with gate.locked(gate.last_id) as held:
                gate.catch_up(held, self.index, self.clock())
                self._decide(source, entry, existing_id, outcome, cutoff, done)
            return
        article = _article(source, entry, done)
        for attempt in range(1, AHEAD_ATTEMPTS + 1):
            seen = self._foresee(source, entry, article, done)
            if seen.stored:
                outcome.unchanged += 1  # another node stored it (a retried job)
                return
            ahead = self._decide_ahead(source, article, seen, done)
            try:
                self._decide_in_lock(
                    source,
                    entry,
                    article,
                    outcome,
                    cutoff,
                    done,
                    seen,
                    ahead,
                    retry=attempt < AHEAD_ATTEMPTS,
                )
                return
            except _TryAgain:
                gate.retried += 1

    def _decide_in_lock(
        self,
        source: Source,
        entry: Entry,
        article: Article,
        outcome: PollOutcome,
        cutoff: datetime | None,
        done: _Extracted,
        seen: Foresight,
        ahead: tuple[Decision, StoryTrial] | None,
        *,
        retry: bool,
    ) -> None:
        """Hold the lock and decide with what was looked up and decided ahead (`seen`,
        `ahead`). A trial that does not stand is taken back; with `retry`, the node then
        catches up and lets go of the lock with nothing written (`_TryAgain`), to decide
        ahead again from the new position, else it decides the story inside the lock."""
        from monitor.cluster.foresight import keep_ahead, stale
        from monitor.pipeline.index import NearLookup

        gate = self.gate
        assert gate is not None
        settled = ahead is None  # a trial is kept or taken back once the lock is held
        try:
            with gate.locked(seen.position) as held:
                again = stale(
                    seen,
                    held.since,
                    generation=(self.index.serial, self.index.evictions),
                    source=source.name,
                    url=entry.url,
                    canonical=article.canonical_url,
                    text_hash=article.text_hash,
                    shingles=done.shingles,
                )
                gate.count(again)
                decision = None
                if ahead is not None:
                    decision = keep_ahead(
                        self.index.stories,
                        *ahead,
                        held.since,
                        again=again,
                        corrections_changed=held.corrections != self.index.corrections_seen,
                    )
                    settled = True
                    gate.story_kept(decision is not None)
                    if decision is None:
                        self.index.stories.undo_trial(ahead[1])
                        if retry:  # catch up, let go of the lock, decide ahead again
                            gate.catch_up(held, self.index, self.clock())
                            raise _TryAgain
                gate.catch_up(held, self.index, self.clock())
                if again.stored and self._stored(source, entry):
                    outcome.unchanged += 1  # another node stored it meanwhile (a retried job)
                    return
                exact = self._classify(source, entry, article) if again.exact else seen.exact
                looked = not again.exact and seen.exact[1] is None and not again.near
                near = NearLookup(seen.near) if looked else None
                self._decide(
                    source,
                    entry,
                    None,
                    outcome,
                    cutoff,
                    done,
                    exact=exact,
                    near=near,
                    conn=held.conn,
                    decision=decision,
                )
        except BaseException:
            if ahead is not None and not settled:  # nothing stored: the trial must not stay
                self.index.stories.undo_trial(ahead[1])
            raise

    def _decide_ahead(
        self, source: Source, article: Article, seen: Foresight, done: _Extracted
    ) -> tuple[Decision, StoryTrial] | None:
        """Cluster mode, before the lock: the decision with what was looked up ahead, its
        story assigned as a trial the lock's holder keeps or takes back. None for an article
        without a publication date: its story's date is the time it is stored, taken in the
        lock."""
        from monitor.dedupe.story import features_from_json
        from monitor.pipeline.index import NearLookup

        features = features_from_json(done.features)
        if features.published_at is None:
            return None
        stories = self.index.stories
        trial = stories.begin_trial()
        try:
            decision = self.index.decide(
                key=article.url,
                source=source.name,
                signature=seen.signature,
                shingles=done.shingles,
                features=features,
                exact=seen.exact,
                at=self.clock(),
                near_match=NearLookup(seen.near) if seen.exact[1] is None else None,
            )
        except BaseException:
            stories.end_trial()
            stories.undo_trial(trial)
            raise
        stories.end_trial()
        return decision, trial

    def _foresee(
        self, source: Source, entry: Entry, article: Article, done: _Extracted
    ) -> Foresight:
        """Cluster mode, before the decision lock: whether the article is stored, and what the
        exact and near layers say, at the log position the node's index has reached."""
        from monitor.cluster.foresight import Foresight
        from monitor.dedupe.near import signature_from_bytes

        index = self.index
        assert self.gate is not None
        position = self.gate.last_id
        signature = signature_from_bytes(done.signature)
        stored = self._stored(source, entry)
        exact = self._classify(source, entry, article)
        near = None
        if exact[1] is None:
            near = index.near.query(signature, source=source.name, size=done.shingles)
        return Foresight(position, (index.serial, index.evictions), stored, exact, near, signature)

    def _decide_if_idle(self) -> None:
        """Decide the waiting articles now when no other article is being fetched or
        extracted: none could join their batch before its window ends."""
        if self._pending and self._in_flight == 0:
            self._decide_pending()

    def _decide_later(
        self,
        source: Source,
        entry: Entry,
        outcome: PollOutcome,
        cutoff: datetime | None,
        done: _Extracted,
    ) -> asyncio.Future[int]:
        """Queue a new article for the next batch (`batch.decide_batch`); returns the future
        of its stored id. The batch is decided when it is full, when no other article is in
        flight, or when its window has passed, whichever comes first."""
        from monitor.pipeline.batch import Pending

        article = _article(source, entry, done)
        baseline = cutoff is not None and (
            article.published_at is None or article.published_at < cutoff
        )
        signature = ItemSignature(done.signature, done.shingles, done.features)
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[int] = loop.create_future()
        self._pending.append((Pending(article, done.tags, signature, baseline), outcome, stored))
        if len(self._pending) >= self.config.decide_batch or self._in_flight == 0:
            self._decide_pending()
        elif self._pending_timer is None:
            window = self.config.decide_window_ms / 1000
            self._pending_timer = loop.call_later(window, self._decide_pending)
        return stored

    def _decide_pending(self) -> None:
        """Decide and store the waiting articles; their polls learn the outcome (an error
        raised by one is raised in each: none of them was stored)."""
        from monitor.pipeline.batch import decide_batch

        if self._pending_timer is not None:
            self._pending_timer.cancel()
            self._pending_timer = None
        waiting, self._pending = self._pending, []
        if not waiting:
            return
        log.info("batch_decided count=%d in_flight=%d", len(waiting), self._in_flight)
        try:
            decided = decide_batch(self.store, self.index, [p for p, _, _ in waiting], self.clock())
        except Exception as exc:
            for _, _, stored in waiting:
                if not stored.done():
                    stored.set_exception(exc)
            return
        for (pending, outcome, stored), done in zip(waiting, decided, strict=True):
            outcome.item_ids.append(done.item_id)
            if pending.baseline:
                outcome.baseline += 1
            elif done.status == "duplicate":
                outcome.duplicate += 1
            elif done.status == "known":
                outcome.known += 1
            else:
                outcome.new += 1
            if not stored.done():
                stored.set_result(done.item_id)

    def _stored(self, source: Source, entry: Entry) -> bool:
        """Whether this source already stored this entry (a job run again after a crash)."""
        seen = self.store.find_item(source.name, entry.guid, canonical_url(entry.url))
        return seen is not None and seen.source == source.name and seen.url == entry.url

    def _decide(
        self,
        source: Source,
        entry: Entry,
        existing_id: int | None,
        outcome: PollOutcome,
        cutoff: datetime | None,
        done: _Extracted,
        *,
        exact: tuple[Literal["new", "known", "duplicate"], DuplicateOf | None] | None = None,
        near: NearLookup | None = None,
        conn: Connection | None = None,
        decision: Decision | None = None,
    ) -> None:
        """Dedupe, story and store one extracted article. No await in here: the dedupe
        lookups, the index updates and the insert are one atomic step, so two copies of one
        article in a poll cannot both be "new". In cluster mode the decision lock's hold has
        obeyed the corrections, `exact` and `near` may be answers looked up before it,
        `decision` one taken ahead of it that stands, and the insert joins the hold's
        transaction `conn`."""
        article = _article(source, entry, done)
        tags = done.tags
        now = self.clock()
        stored_signature = ItemSignature(done.signature, done.shingles, done.features)
        from monitor.dedupe.near import signature_from_bytes

        signature = signature_from_bytes(done.signature)
        if existing_id is not None:
            original = self.index.followers.original(article.url)
            if original is not None:  # an exact duplicate changed: it still follows
                from monitor.dedupe.follow import follow_marker

                stored_signature = replace(stored_signature, features=follow_marker(original))
            if self.store.update_item(existing_id, article, now, tags, stored_signature):
                self.index.remember(
                    article.url,
                    source=source.name,
                    signature=signature,
                    shingles=done.shingles,
                    at=now,
                )
                outcome.updated += 1
            else:
                outcome.unchanged += 1
            return
        baseline = cutoff is not None and (
            article.published_at is None or article.published_at < cutoff
        )
        ahead = decision
        if ahead is not None and ahead.near_record is not None:
            # The record's count of indexed signatures as a decision taken now reads it.
            from monitor.pipeline.index import near_record

            indexed = len(self.index.near)
            ahead = replace(ahead, near_record=near_record(ahead.near, done.shingles, indexed))
        while True:
            if self.gate is None:  # corrections made by any process, before deciding
                self.index.obey_corrections(self.store, now)
            decision = ahead or self.index.decide(
                key=article.url,
                source=source.name,
                signature=signature,
                shingles=done.shingles,
                features=done.features,
                exact=self._classify(source, entry, article) if exact is None else exact,
                at=now,
                near_match=near,
            )
            try:
                item_id = self.store.insert_item(
                    article,
                    fetched_at=now,
                    status=decision.status,
                    baseline=baseline,
                    duplicate_of=decision.duplicate_of,
                    tags=tags,
                    dedupe=decision.record(stored_signature),
                    # Without the cluster's lock another process may record a correction
                    # between the catch-up and the insert: then decide again (issue 16).
                    corrections_seen=None if self.gate else self.index.corrections_seen,
                    conn=conn,
                )
                break
            except CorrectionsChanged:
                log.info("decision_retried url=%s reason=corrections_changed", article.url)
        status = decision.status
        self.index.remember(
            article.url, source=source.name, signature=signature, shingles=done.shingles, at=now
        )
        outcome.item_ids.append(item_id)
        if baseline:
            outcome.baseline += 1
        elif status == "duplicate":
            outcome.duplicate += 1
        elif status == "known":
            outcome.known += 1
        else:
            outcome.new += 1

    def _classify(
        self, source: Source, entry: Entry, article: Article
    ) -> tuple[Literal["new", "known", "duplicate"], DuplicateOf | None]:
        """Exact layer: a canonical-URL twin or the same normalised text is a duplicate."""
        twin = self.store.find_item(source.name, None, article.canonical_url)
        if twin is not None:
            return "duplicate", DuplicateOf("item", twin.url, 1.0, "canonical_url")
        same_text = self.store.find_by_text_hash(article.text_hash)
        if same_text is not None:
            return "duplicate", DuplicateOf("item", same_text.url, 1.0, "text_hash")
        return "new", None

    def _succeeded(self, source: Source, result: FetchResult, outcome: PollOutcome) -> PollOutcome:
        now = self.clock()
        next_check = next_check_after_success(now, source.interval, result.max_age)
        success = PollSuccess(
            source.name,
            now=now,
            etag=result.etag,
            last_modified=result.last_modified,
            next_check_at=next_check,
            outcome=outcome.outcome,
            http_status=result.status,
            bytes_received=result.bytes_received,
            elapsed_ms=result.elapsed_ms,
            new_items=outcome.new,
        )
        if self._successes is None:
            self.store.record_successes([success])
        else:
            self._successes.append(success)
            if len(self._successes) >= SUCCESS_BATCH:
                self._flush_successes()
        outcome.next_check_at = next_check
        outcome.bytes_received = result.bytes_received
        outcome.elapsed_ms = result.elapsed_ms
        log.info(
            "poll_ok source=%r status=%s new=%d duplicate=%d known=%d baseline=%d updated=%d "
            "unchanged=%d page_failures=%d",
            source.name,
            outcome.outcome,
            outcome.new,
            outcome.duplicate,
            outcome.known,
            outcome.baseline,
            outcome.updated,
            outcome.unchanged,
            outcome.page_failures,
        )
        return outcome

    def _failed(
        self,
        source: Source,
        exc: SourceError,
        started: datetime,
        state: SourceHealth | None = None,
    ) -> PollOutcome:
        now = self.clock()
        if state is None:
            state = self.store.source_health(source.name)
        failures = state.consecutive_failures + 1
        delay = backoff_delay(
            failures,
            base=min(self.config.backoff_base, source.interval),
            cap=max(self.config.backoff_cap, source.interval),
            rand=self.rng.random(),
        )
        next_check = now + delay
        retry_until = None
        if isinstance(exc, FetchError) and exc.retry_after:
            retry_until = parse_retry_after(exc.retry_after, now)
            if retry_until is not None:
                next_check = max(next_check, retry_until)
        status = exc.status if isinstance(exc, FetchError) else None
        elapsed = int((now - started).total_seconds() * 1000)
        self.store.record_failure(
            source.name,
            now=now,
            error_class=exc.error_class,
            error=str(exc),
            next_check_at=next_check,
            retry_after_until=retry_until,
            http_status=status,
            elapsed_ms=elapsed,
        )
        log.info("poll_failed source=%r class=%s error=%s", source.name, exc.error_class, exc)
        return PollOutcome(
            source.name,
            "failed",
            error_class=exc.error_class,
            error=str(exc),
            next_check_at=next_check,
            elapsed_ms=elapsed,
        )


class _Slot:
    """A source's place among the sources polled at once, which it can give up while it
    only waits (its articles waiting for their batch) and take again."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False

    async def take(self) -> None:
        if not self._held:
            await self._slots.acquire()
            self._held = True

    def give(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


async def _wait_stored(waiting: Sequence[asyncio.Future[int]], slot: _Slot | None) -> None:
    """Wait until these articles' batches are stored, giving `slot` to another source
    meanwhile; the first error of a batch is raised (none of that batch was stored)."""
    if not waiting:
        return
    if slot is not None:
        slot.give()
    try:
        results = await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        if slot is not None:
            await slot.take()
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _article(source: Source, entry: Entry, done: _Extracted) -> Article:
    page = done.page
    canonical = canonical_url(entry.url)
    if page is not None and page.canonical_url and _same_site(page.canonical_url, entry.url):
        canonical = canonical_url(page.canonical_url)
    published = entry.published_at or (page.published_at if page else None)
    title = done.title if len(done.title) <= MAX_TITLE else done.title[: MAX_TITLE - 1] + "…"
    return Article(
        source=source.name,
        url=entry.url,
        canonical_url=canonical,
        guid=entry.guid,
        title=title,
        text=done.text,
        summary=entry.summary,
        published_at=published,
        language=done.language,
        extraction=done.extraction,
        text_hash=done.text_hash,
    )


def _changed(entry: Entry, stored_title: str, stored_at: datetime) -> bool:
    """Re-extract a known entry when the feed says it was updated since we stored it."""
    if entry.updated_at is not None and entry.updated_at > stored_at:
        return True
    return bool(entry.title) and entry.title != stored_title


def _same_site(a: str, b: str) -> bool:
    return site_of(a) == site_of(b) and urlsplit(a).path not in ("", "/")


def _newest_first(entry: Entry) -> tuple[int, float]:
    at = entry.published_at or entry.updated_at
    return (0, -at.timestamp()) if at else (1, 0.0)


def _started(executor: Executor) -> bool:
    """Whether the executor's worker processes are running: a poll that extracted nothing
    yet starts none just to parse a feed (a worker takes about a second to start)."""
    if isinstance(executor, WorkerPool):
        return bool(executor.processes())
    return bool(getattr(executor, "_processes", None))


@dataclass(frozen=True, slots=True)
class _ParseFailure:
    """A ParseError on its way back from a worker (raised again by the poll)."""

    url: str
    detail: str
    error_class: str


def _parse_job(body: bytes, url: str, headers: Mapping[str, str]) -> list[Entry] | _ParseFailure:
    """Runs in a worker: `parse_feed`, a ParseError returned as a value (an exception's
    own arguments would not survive the way back)."""
    try:
        return parse_feed(body, url=url, headers=headers)
    except ParseError as exc:
        return _ParseFailure(exc.url, exc.detail, exc.error_class)


def _workers(executor: Executor) -> int:
    if isinstance(executor, WorkerPool):
        return executor.workers
    return int(getattr(executor, "_max_workers", 1))
