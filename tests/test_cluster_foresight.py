"""Deciding ahead of the decision lock (monitor.cluster.foresight): which rows logged since a
position make an answer stale, what a hold reads from a real PostgreSQL, and that decisions
taken by two nodes that look up ahead are the ones one node takes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.cluster.foresight import EVERYTHING, Foresight, Logged, Stale, stale
from monitor.cluster.gate import DecisionGate
from monitor.config import DedupeConfig, PollConfig
from monitor.dedupe.near import sign_text, signature_to_bytes
from monitor.fetch import Fetcher, make_client
from monitor.models import DuplicateOf, HttpConfig, Source
from monitor.pipeline.index import DedupeIndex
from monitor.pipeline.poll import Poller, PollOutcome, init_worker
from monitor.store import Store, StoredSignature
from tests.servers import LocalServer
from tests.test_cluster import serve
from tests.test_dedupe_e2e import MFA_REMARKS, VNA_TALKS
from tests.test_pipeline import TAXONOMY, Clock
from tests.test_store import empty_postgres

NO_CORPUS = Path(__file__).parent / "data" / "no-corpus"
AT = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

TEXT = " ".join(
    f"the delegation of province {i} met the ministry about the harbour budget and the railway"
    for i in range(40)
)
OTHER = " ".join(
    f"an orchestra from town {i} played at the museum festival beside the glacier and the canal"
    for i in range(40)
)
SIGNATURE, SHINGLES = sign_text(TEXT)
GENERATION = (1, 0)


def seen(**changes: object) -> Foresight:
    base = Foresight(
        position=10,
        generation=GENERATION,
        stored=False,
        exact=("new", None),
        near=None,
        signature=SIGNATURE,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def row(log_id: int, kind: str = "insert", text: str | None = OTHER, **changes: object) -> Logged:
    base = Logged(
        log_id=log_id,
        item_id=log_id,
        kind=kind,
        source="other",
        url=f"http://127.0.0.1/other/{log_id}",
        canonical_url=f"http://127.0.0.1/other/{log_id}",
        text_hash=f"hash{log_id}",
    )
    base = replace(base, **changes)  # type: ignore[arg-type]
    if text is None or base.url is None or base.source is None:
        return base
    signature, shingles = sign_text(text)
    stored = StoredSignature(
        log_id, base.url, base.source, AT, signature_to_bytes(signature), shingles, "{}", None
    )
    return replace(base, stored=stored)


def check(
    since: Sequence[Logged], foresight: Foresight | None = None, *, text_hash: str = "minehash"
) -> Stale:
    return stale(
        foresight or seen(),
        since,
        generation=GENERATION,
        source="mine",
        url="http://127.0.0.1/mine/1",
        canonical="http://127.0.0.1/mine/1",
        text_hash=text_hash,
        shingles=SHINGLES,
    )


# -- the rule (pure) -------------------------------------------------------------------------------


def test_nothing_logged_since_or_only_unrelated_rows_leave_every_answer_valid() -> None:
    assert check([]).none
    assert check([row(11), row(12, kind="moves", text=None, source=None, url=None)]).none


def test_rows_at_or_before_the_position_are_ignored_they_were_seen() -> None:
    same = row(10, canonical_url="http://127.0.0.1/mine/1", text=TEXT, text_hash="minehash")
    assert check([same]).none
    assert not check([replace(same, log_id=11)]).none


def test_the_same_canonical_url_or_text_hash_makes_the_exact_layer_stale() -> None:
    assert check([row(11, canonical_url="http://127.0.0.1/mine/1")]) == Stale(exact=True)
    assert check([row(11, text_hash="minehash")]) == Stale(exact=True)


def test_an_empty_text_hash_matches_nothing() -> None:
    assert check([row(11, text_hash="")], text_hash="").none


def test_any_update_makes_the_exact_layer_stale_a_text_hash_may_have_moved() -> None:
    assert check([row(11, kind="update")]).exact


def test_the_same_url_from_the_same_source_makes_stored_stale_from_another_source_not() -> None:
    mine = row(11, source="mine", url="http://127.0.0.1/mine/1")
    assert check([mine]).stored
    assert not check([replace(mine, source="other")]).stored


def test_a_near_duplicate_logged_since_makes_the_near_layer_stale_whatever_its_source() -> None:
    teaser = TEXT[: len(TEXT) * 3 // 4]
    assert check([row(11, text=TEXT)]) == Stale(near=True)
    assert check([row(11, text=teaser)]).near
    assert check([row(11, text=TEXT, source="mine")]).near
    assert not check([row(11, text=OTHER)]).near


def test_a_retention_sweep_or_another_index_since_makes_everything_stale() -> None:
    assert check([], seen(generation=(1, 1))) == EVERYTHING
    assert check([], seen(generation=(2, 0))) == EVERYTHING


# -- real PostgreSQL: what a hold reads, and decisions as one node takes them ---------------------


@dataclass
class Node:
    store: Store
    index: DedupeIndex
    gate: DecisionGate


@pytest.fixture
def pg_url() -> str:
    return empty_postgres()


def nodes(url: str, sources: Sequence[Source], count: int, clock: Clock) -> list[Node]:
    """`count` nodes on one database, each with its store, index (loaded now) and gate."""
    out = []
    for _ in range(count):
        store = Store.open(url, now=clock())
        store.sync_sources(sources, clock())
        store.log_decisions = True
        index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), clock())
        out.append(Node(store, index, DecisionGate(store)))
    return out


def poll(node: Node, source: Source, clock: Clock, http_config: HttpConfig) -> PollOutcome:
    async def go() -> PollOutcome:
        with ThreadPoolExecutor(1, initializer=init_worker, initargs=(TAXONOMY,)) as pool:
            async with make_client(http_config) as client:
                poller = Poller(
                    node.store,
                    Fetcher(client, http_config),
                    pool,
                    PollConfig(),
                    index=node.index,
                    clock=clock,
                    gate=node.gate,
                )
                return await poller.poll_source(source)

    return asyncio.run(go())


def decisions(url: str) -> dict[str, tuple[object, ...]]:
    """Per item URL: its status, what it duplicates, its story and its recorded decisions."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT i.url, i.status, i.dup_ref, i.story_id, d.near, d.story"
                    " FROM items i JOIN decisions d ON d.item_id = i.id"
                )
            ).all()
    finally:
        engine.dispose()
    return {r[0]: (r[1], r[2], r[3], json.loads(r[4] or "null"), json.loads(r[5])) for r in rows}


def stored_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row an item insert writes, by table, keyed by the item's URL (not its id)."""
    queries = {
        "items": "SELECT url, canonical_url, title, text, text_hash, status, baseline, dup_kind,"
        " dup_ref, dup_similarity, dup_method, story_id, fetched_at, published_at FROM items",
        "topics": "SELECT i.url, t.topic_id, t.score, t.threshold, t.evidence"
        " FROM item_topics t JOIN items i ON i.id = t.item_id",
        "facets": "SELECT i.url, f.kind, f.value"
        " FROM item_facets f JOIN items i ON i.id = f.item_id",
        "signatures": "SELECT i.url, s.signature, s.shingles, s.features"
        " FROM signatures s JOIN items i ON i.id = s.item_id",
        "decisions": "SELECT i.url, d.near, d.story"
        " FROM decisions d JOIN items i ON i.id = d.item_id",
    }
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                k: sorted(map(tuple, conn.execute(sa.text(q)).all())) for k, q in queries.items()
            }
    finally:
        engine.dispose()


def text_hash(url: str, item_id: int) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT text_hash FROM items WHERE id = :i")
            return str(conn.execute(query, {"i": item_id}).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def closing() -> Iterator[list[Node]]:
    opened: list[Node] = []
    yield opened
    for node in opened:
        node.gate.close()
        node.store.close()


def test_a_hold_reads_the_rows_logged_since_a_position_with_what_the_rule_needs(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig, closing: list[Node]
) -> None:
    clock = Clock()
    a = serve(http_server, "a", VNA_TALKS, "Talks in Moscow", [])
    first, second = nodes(pg_url, [a], 2, clock)
    closing += [first, second]
    assert poll(first, a, clock, http_config).new == 1
    [item] = first.store.list_items()
    before = len(second.index.near)

    async def hold() -> Sequence[Logged]:
        async with second.gate.hold(second.index, clock, since=0) as held:
            return held.since

    [logged] = asyncio.run(hold())
    assert (logged.kind, logged.item_id, logged.source, logged.url) == (
        "insert",
        item.id,
        "a",
        item.url,
    )
    assert logged.canonical_url == item.canonical_url
    assert logged.text_hash == text_hash(pg_url, item.id)
    assert logged.stored is not None
    assert logged.stored.shingles > 0
    assert logged.stored.item_id == item.id
    assert len(second.index.near) == before + 1  # caught up with the same rows
    assert second.gate.last_id == logged.log_id
    # The article again, looked up by the second node before it had seen the first's row:
    ahead = Foresight(0, (0, 0), False, ("new", None), None, SIGNATURE)
    again = stale(
        ahead,
        [logged],
        generation=(0, 0),
        source="b",
        url="http://127.0.0.1/b",
        canonical=item.canonical_url,
        text_hash=text_hash(pg_url, item.id),
        shingles=SHINGLES,
    )
    assert again.exact


def test_a_near_duplicate_stored_by_another_node_since_is_decided_again_inside_the_lock(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig, closing: list[Node]
) -> None:
    clock = Clock()
    a = serve(http_server, "a", VNA_TALKS, "Talks in Moscow", [])
    b = serve(http_server, "b", VNA_TALKS, "Talks in Moscow (reprint)", ["Reprinted from VNA"])
    first, second = nodes(pg_url, [a, b], 2, clock)
    closing += [first, second]
    assert poll(first, a, clock, http_config).new == 1
    # The second node's index has not seen the first's article: its near answer before the
    # lock is "nothing", and only the rule makes it look again: it catches up, lets go of the
    # lock and decides ahead again, now reusing what it looked up.
    outcome = poll(second, b, clock, http_config)
    assert (outcome.new, outcome.duplicate) == (0, 1)
    assert (second.gate.reused, second.gate.redone, second.gate.retried) == (1, 1, 1)


def test_two_nodes_looking_up_ahead_store_the_decisions_one_node_stores(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig, closing: list[Node]
) -> None:
    a = serve(http_server, "a", VNA_TALKS, "Talks in Moscow", [])
    b = serve(http_server, "b", VNA_TALKS, "Talks in Moscow (reprint)", ["Reprinted from VNA"])
    mfa = serve(http_server, "mfa", MFA_REMARKS, "Lavrov meets Lim Jock Hoi", [])
    order = [(0, a), (1, b), (0, mfa)]

    clock = Clock()
    two = nodes(pg_url, [a, b, mfa], 2, clock)
    closing += two
    for n, source in order:
        poll(two[n], source, clock, http_config)
    on_two = decisions(pg_url)
    rows_on_two = stored_rows(pg_url)
    # The first node's second article: the rows since its position are the second node's
    # reprint, neither the same text nor a near-duplicate of the remarks: the lookups are
    # reused; but the reprint joined the story the remarks' trial judged, so the node lets go
    # of the lock and decides ahead again (a third reuse).
    assert (two[0].gate.reused, two[0].gate.retried) == (3, 1)
    assert (two[1].gate.reused, two[1].gate.redone, two[1].gate.retried) == (1, 1, 1)

    url = empty_postgres()
    clock = Clock()
    [one] = nodes(url, [a, b, mfa], 1, clock)
    closing.append(one)
    for _, source in order:
        poll(one, source, clock, http_config)
    on_one = decisions(url)

    assert on_two == on_one
    # Written in the lock's transaction on two nodes, or on its own on one node: the same rows.
    rows_on_one = stored_rows(url)
    assert rows_on_two == rows_on_one
    assert all(rows_on_one[table] for table in ("topics", "facets", "signatures"))
    assert sorted(d[0] for d in on_one.values()) == ["duplicate", "new", "new"]
    assert len({d[2] for d in on_one.values()}) == 1  # one story


def test_an_exact_twin_stored_since_the_lookup_is_found_inside_the_lock(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig, closing: list[Node]
) -> None:
    """The answers of a Foresight taken before another node's insert are stale, and the
    decision inside the lock finds the twin (`DuplicateOf` by text hash)."""
    clock = Clock()
    a = serve(http_server, "a", VNA_TALKS, "Talks in Moscow", [])
    c = serve(http_server, "c", VNA_TALKS, "Talks in Moscow", [])
    first, second = nodes(pg_url, [a, c], 2, clock)
    closing += [first, second]
    position = second.gate.last_id
    assert poll(first, a, clock, http_config).new == 1
    # The second node looked up before the first stored (position 0, nothing found), then
    # holds the lock: the rows since are the first node's insert, the same text.
    [item] = first.store.list_items()

    async def hold() -> Stale:
        async with second.gate.hold(second.index, clock, since=position) as held:
            return stale(
                Foresight(
                    position, (second.index.serial, 0), False, ("new", None), None, SIGNATURE
                ),
                held.since,
                generation=(second.index.serial, second.index.evictions),
                source="c",
                url="http://127.0.0.1/c",
                canonical="http://127.0.0.1/c",
                text_hash=text_hash(pg_url, item.id),
                shingles=SHINGLES,
            )

    assert asyncio.run(hold()) == Stale(exact=True)
    outcome = poll(second, c, clock, http_config)
    assert (outcome.new, outcome.duplicate) == (0, 1)
    stored = {i.source: i for i in second.store.list_items()}
    assert stored["c"].duplicate_of == DuplicateOf("item", item.url, 1.0, "text_hash")


def test_each_index_has_its_own_serial_so_a_reload_makes_earlier_answers_stale() -> None:
    first, second = DedupeIndex(DedupeConfig()), DedupeIndex(DedupeConfig())
    assert first.serial != second.serial
    assert first.evictions == 0
    first.evict(AT)
    assert first.evictions == 1


def test_an_exact_duplicate_logged_since_lets_a_trial_stand_only_when_it_moved_nothing() -> None:
    """A follower (its features the marker of its original) is outside the story index: it
    changes nothing a trial read, but a trial that moved articles would have moved it with
    its original, so that trial is taken back."""
    from monitor.cluster.foresight import keep_ahead
    from monitor.dedupe.follow import follow_marker
    from monitor.dedupe.story import StoryIndex, StoryMove, extract_features
    from monitor.pipeline.index import Decision

    stories = StoryIndex()
    features = extract_features("Harbour budget", TEXT, AT, "en")
    trial = stories.begin_trial()
    match = stories.assign("http://127.0.0.1/mine/1", features, AT)
    stories.end_trial()
    decision = Decision("new", None, None, None, match, ())
    follower = row(11)
    assert follower.stored is not None
    stored = replace(follower.stored, features=follow_marker("http://127.0.0.1/x"), story_id=0)
    follower = replace(follower, stored=stored)
    kept = keep_ahead(
        stories, decision, trial, [follower], again=Stale(), corrections_changed=False
    )
    assert kept == decision
    moved = replace(decision, moves=(StoryMove("http://127.0.0.1/x", None, match),))
    assert (
        keep_ahead(stories, moved, trial, [follower], again=Stale(), corrections_changed=False)
        is None
    )
