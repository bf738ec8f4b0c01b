"""Cluster mode (DESIGN §7) on a real PostgreSQL: the config check, the migrations, two nodes
deciding at the same moment, and three `monitor run` processes sharing one local site, one SMTP
server and one database, one of them killed with -9."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.cluster.gate import DecisionGate
from monitor.cluster.queue import entry_from_json, entry_to_json
from monitor.config import DedupeConfig, PollConfig
from monitor.fetch import Fetcher, make_client
from monitor.models import Entry, HttpConfig, Source
from monitor.pipeline.index import DedupeIndex
from monitor.pipeline.poll import Poller, PollOutcome, init_worker
from monitor.schedule import cron_trigger, latest_fire
from monitor.store import SCHEMA_VERSION, Store
from monitor.store.schema import DECISION_LOCK, metadata, schema_version
from tests.daemon_process import DaemonProcess, free_port, health, http_get, metric
from tests.servers import LocalServer
from tests.smtp_server import SmtpServer
from tests.test_cli import ROOT, run
from tests.test_dedupe_e2e import MFA_REMARKS, VNA_TALKS, seed_page
from tests.test_pipeline import TAXONOMY, Clock, rss
from tests.test_store import empty_postgres

pytestmark = pytest.mark.postgres
NO_CORPUS = Path(__file__).parent / "data" / "no-corpus"


@pytest.fixture
def pg_url() -> str:
    """The test database, emptied (our tables and the queue's)."""
    return empty_postgres()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


# -- config and migrations -----------------------------------------------------------------------


def test_check_config_refuses_cluster_mode_on_sqlite_naming_file_key_and_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "sources.toml").write_text("", "utf-8")
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///monitor.db"\n[topics]\nfile = "{ROOT / "config/topics.toml"}"'
        "\n[cluster]\nenabled = true\n",
        "utf-8",
    )
    done = run(config, "check-config", check=False)
    assert done.returncode == 2
    assert str(config) in done.stderr
    assert "cluster.enabled" in done.stderr
    assert "PostgreSQL" in done.stderr
    assert "SQLite" in done.stderr


def test_a_new_database_has_the_queue_schema(pg_url: str) -> None:
    store = Store.open(pg_url, now=datetime.now(UTC))
    try:
        assert store.schema_version() == SCHEMA_VERSION == 8
    finally:
        store.close()
    assert {"index_log", "procrastinate_jobs", "procrastinate_workers"} <= tables(pg_url)


def test_a_version_5_database_is_upgraded_to_the_queue_schema_keeping_its_rows(
    pg_url: str,
) -> None:
    now = datetime.now(UTC)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # a database as version 5 made it: no index_log, no queue
        metadata.create_all(
            conn, tables=[t for n, t in metadata.tables.items() if n != "index_log"]
        )
        conn.execute(schema_version.insert().values(version=5, applied_at=now))
        conn.execute(
            sa.text(
                "INSERT INTO sources (name, url, kind, priority, consecutive_failures, created_at)"
                " VALUES ('A', 'http://127.0.0.1/a.xml', 'feed', 1, 0, now())"
            )
        )
    engine.dispose()
    assert "procrastinate_jobs" not in tables(pg_url)
    store = Store.open(pg_url, now=now)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert [h.name for h in store.list_source_health()] == ["A"]
    finally:
        store.close()
    assert {"index_log", "procrastinate_jobs", "procrastinate_workers"} <= tables(pg_url)


# -- two nodes deciding at the same moment -------------------------------------------------------


START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def serve(server: LocalServer, name: str, seed: str, title: str, before: list[str]) -> Source:
    server.add(
        f"/{name}/page.html",
        seed_page(seed, title=title, before=before, after=["Follow us"]),
        content_type="text/html",
    )
    day = format_datetime(START - timedelta(hours=2))
    server.add(
        f"/{name}.xml",
        rss([{"title": title, "link": server.url(f"/{name}/page.html"), "date": day}]),
    )
    return Source(name, server.url(f"/{name}.xml"))


def poll_as_two_nodes(
    url: str,
    sources: Sequence[Source],
    http_config: HttpConfig,
    indexes_out: list[DedupeIndex] | None = None,
    gates_out: list[DecisionGate] | None = None,
) -> dict[str, PollOutcome]:
    """Two nodes (each its own store connection, index and decision lock) poll one source
    each, at once; both indexes are loaded before either node stores anything."""
    clock = Clock()
    stores = [Store.open(url, now=clock()) for _ in sources]
    for store in stores:
        store.sync_sources(sources, clock())
        store.log_decisions = True
    indexes = [DedupeIndex.load(s, NO_CORPUS, DedupeConfig(), clock()) for s in stores]
    if indexes_out is not None:
        indexes_out.extend(indexes)
    gates = [DecisionGate(s) for s in stores]
    if gates_out is not None:
        gates_out.extend(gates)

    async def go() -> list[PollOutcome]:
        with ThreadPoolExecutor(2, initializer=init_worker, initargs=(TAXONOMY,)) as pool:
            async with make_client(http_config) as client:
                pollers = [
                    Poller(
                        store,
                        Fetcher(client, http_config),
                        pool,
                        PollConfig(),
                        index=index,
                        clock=clock,
                        gate=gate,
                    )
                    for store, index, gate in zip(stores, indexes, gates, strict=True)
                ]
                return list(
                    await asyncio.gather(
                        *(p.poll_source(s) for p, s in zip(pollers, sources, strict=True))
                    )
                )

    try:
        return {o.source: o for o in asyncio.run(go())}
    finally:
        for gate, store in zip(gates, stores, strict=True):
            gate.close()
            store.close()


def test_two_nodes_deciding_on_near_duplicates_at_once_call_one_new_and_one_duplicate(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig
) -> None:
    a = serve(http_server, "a", VNA_TALKS, "Talks in Moscow", [])
    b = serve(http_server, "b", VNA_TALKS, "Talks in Moscow (reprint)", ["Reprinted from VNA"])
    outcomes = poll_as_two_nodes(pg_url, [a, b], http_config)
    assert sorted((o.new, o.duplicate) for o in outcomes.values()) == [(0, 1), (1, 0)]
    store = Store.open(pg_url, now=START)
    try:
        items = store.list_items()
        assert sorted(i.status for i in items) == ["duplicate", "new"]
        [dup] = [i for i in items if i.status == "duplicate"]
        [new] = [i for i in items if i.status == "new"]
        assert dup.duplicate_of is not None
        assert dup.duplicate_of.ref == new.url
        assert dup.story_id == new.story_id is not None
    finally:
        store.close()


def test_two_nodes_deciding_on_one_event_at_once_put_both_in_one_story(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig
) -> None:
    mfa = serve(http_server, "mfa", MFA_REMARKS, "Lavrov meets Lim Jock Hoi", [])
    vna = serve(http_server, "vna", VNA_TALKS, "Lim Jock Hoi in Moscow", [])
    indexes: list[DedupeIndex] = []
    outcomes = poll_as_two_nodes(pg_url, [mfa, vna], http_config, indexes)
    assert [o.new for o in outcomes.values()] == [1, 1]
    store = Store.open(pg_url, now=START)
    try:
        items = store.list_items()
        assert len({i.story_id for i in items}) == 1
        # The node that decided second had caught up with the first: its index holds both
        # articles in one story. (Without the lock each node's index would hold only its own
        # article, and the equal story ids above could be two stories both numbered 1.)
        urls = [i.url for i in items]
        assert any(
            index.stories.story_of(urls[0]) == index.stories.story_of(urls[1]) is not None
            for index in indexes
        )
    finally:
        store.close()


def poll_as_two_nodes_both_ahead(
    url: str, sources: Sequence[Source], http_config: HttpConfig
) -> tuple[dict[str, PollOutcome], list[DecisionGate]]:
    """`poll_as_two_nodes`, with the decision lock held elsewhere until both nodes wait for
    it: each has looked its article up and decided its story ahead of the lock, before either
    stored anything."""
    engine = sa.create_engine(url)
    gates: list[DecisionGate] = []
    try:
        with engine.connect() as blocker, ThreadPoolExecutor(1) as runner:
            blocker.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": DECISION_LOCK})
            blocker.commit()
            polled = runner.submit(poll_as_two_nodes, url, sources, http_config, None, gates)
            waiting = sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            deadline = time.monotonic() + 120
            while blocker.execute(waiting).scalar_one() < 2 and not polled.done():
                blocker.commit()
                assert time.monotonic() < deadline, "the nodes never waited for the lock"
                time.sleep(0.05)
            blocker.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": DECISION_LOCK})
            blocker.commit()
            return polled.result(timeout=300), gates
    finally:
        engine.dispose()


def test_two_nodes_deciding_near_duplicates_both_ahead_of_the_lock_one_new_one_duplicate(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig
) -> None:
    """Both decide their story ahead against an index without the other's article: the one
    that takes the lock second must take its trial back and decide again, ahead of the lock
    from its new position."""
    a = serve(http_server, "a", VNA_TALKS, "Talks in Moscow", [])
    b = serve(http_server, "b", VNA_TALKS, "Talks in Moscow (reprint)", ["Reprinted from VNA"])
    outcomes, gates = poll_as_two_nodes_both_ahead(pg_url, [a, b], http_config)
    assert sorted((o.new, o.duplicate) for o in outcomes.values()) == [(0, 1), (1, 0)]
    # The second let go of the lock having written nothing and decided ahead again.
    assert sorted((g.kept, g.undone, g.retried) for g in gates) == [(1, 0, 0), (1, 1, 1)]
    store = Store.open(pg_url, now=START)
    try:
        items = store.list_items()
        [dup] = [i for i in items if i.status == "duplicate"]
        [new] = [i for i in items if i.status == "new"]
        assert dup.duplicate_of is not None
        assert dup.duplicate_of.ref == new.url
        assert dup.story_id == new.story_id is not None
    finally:
        store.close()


def test_two_nodes_deciding_one_event_both_ahead_of_the_lock_put_both_in_one_story(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig
) -> None:
    mfa = serve(http_server, "mfa", MFA_REMARKS, "Lavrov meets Lim Jock Hoi", [])
    vna = serve(http_server, "vna", VNA_TALKS, "Lim Jock Hoi in Moscow", [])
    outcomes, gates = poll_as_two_nodes_both_ahead(pg_url, [mfa, vna], http_config)
    assert [o.new for o in outcomes.values()] == [1, 1]
    # Each node's trial made a story of its own; the second's is taken back, and decided
    # ahead again it joins the first's.
    assert sorted((g.kept, g.undone, g.retried) for g in gates) == [(1, 0, 0), (1, 1, 1)]
    store = Store.open(pg_url, now=START)
    try:
        assert len({i.story_id for i in store.list_items()}) == 1
    finally:
        store.close()


def test_a_trial_no_row_logged_since_could_change_stands_with_its_story_renumbered(
    pg_url: str, http_server: LocalServer, http_config: HttpConfig
) -> None:
    """Two unrelated articles decided ahead at once: both trials stand, and the second to
    store takes the next story id past the first's, as one node deciding in turn would."""
    vna = serve(http_server, "vna", VNA_TALKS, "Lim Jock Hoi in Moscow", [])
    http_server.add(
        "/other/page.html",
        f"<html><body><article><h1>Harbour festival opens</h1><p>{UNRELATED}</p></article>"
        "</body></html>".encode(),
        content_type="text/html",
    )
    day = format_datetime(START - timedelta(hours=2))
    link = http_server.url("/other/page.html")
    http_server.add(
        "/other.xml", rss([{"title": "Harbour festival opens", "link": link, "date": day}])
    )
    other = Source("other", http_server.url("/other.xml"))
    outcomes, gates = poll_as_two_nodes_both_ahead(pg_url, [vna, other], http_config)
    assert [o.new for o in outcomes.values()] == [1, 1]
    assert sorted((g.kept, g.undone, g.retried) for g in gates) == [(1, 0, 0), (1, 0, 0)]
    store = Store.open(pg_url, now=START)
    try:
        assert sorted(i.story_id for i in store.list_items()) == [1, 2]
    finally:
        store.close()


UNRELATED = (
    "The harbour festival of Tromso opened on Saturday with a regatta of wooden boats, a "
    "market of smoked fish and a concert by the town's brass band on the quay. Hoteliers "
    "expect twenty thousand visitors over the week; the ferry company added evening sailings "
    "and the museum of polar history stays open until midnight. Local bakers sold out of "
    "cardamom buns before noon, and the mayor thanked the volunteers who rebuilt the old "
    "pier after last winter's storms."
)


# -- three nodes ---------------------------------------------------------------------------------

WORDS = [
    "ministry",
    "delegation",
    "harbour",
    "railway",
    "budget",
    "forum",
    "treaty",
    "festival",
    "vaccine",
    "drought",
    "river",
    "factory",
    "coalition",
    "province",
    "satellite",
    "election",
    "tariff",
    "monsoon",
    "orchestra",
    "museum",
    "fishery",
    "bridge",
    "airline",
    "volcano",
    "stadium",
    "library",
    "refinery",
    "plantation",
    "parliament",
    "laboratory",
    "cargo",
    "pipeline",
    "glacier",
    "bakery",
    "theatre",
    "market",
    "tunnel",
    "canal",
    "reservoir",
    "cathedral",
    "observatory",
]
FEEDS, PAGES = 6, 5  # 30 pages in all


def site(server: LocalServer) -> list[str]:
    """FEEDS feeds of PAGES pages each; every page a different text (no duplicates, no
    stories), each answered after a short delay so that a run lasts a few seconds."""
    rng = random.Random(15)
    urls = []
    for f in range(FEEDS):
        entries = []
        for p in range(PAGES):
            words = " ".join(rng.choice(WORDS) for _ in range(400))
            path = f"/f{f}/p{p}.html"
            body = f"<html><body><article><h1>Report {f}-{p}</h1><p>{words}.</p></article>"
            server.add(
                path, (body + "</body></html>").encode(), content_type="text/html", delay=0.4
            )
            entries.append(
                {
                    "title": f"Report {f}-{p}",
                    "link": server.url(path),
                    "date": format_datetime(datetime.now(UTC) - timedelta(hours=1)),
                }
            )
            urls.append(server.url(path))
        server.add(f"/f{f}.xml", rss(entries))
    return urls


def cluster_config(tmp_path: Path, url: str, server: LocalServer, smtp_port: int) -> Path:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "sources.toml").write_text(
        "".join(
            f'[[sources]]\nname = "f{f}"\nurl = "{server.url(f"/f{f}.xml")}"\ninterval = "2s"\n'
            for f in range(FEEDS)
        ),
        "utf-8",
    )
    config = tmp_path / "monitor.toml"
    config.write_text(
        f"""
[storage]
url = "{url}"
[sources]
file = "sources.toml"
[topics]
file = "{ROOT / "config" / "topics.toml"}"
[corpus]
dir = "corpus"
[poll]
min_interval = "1s"
workers = 1
[http]
timeout = 5.0
deadline = 10.0
[daemon]
drain_timeout = "20s"
outbox_interval = "2s"
retry_base = "1s"
[cluster]
enabled = true
concurrency = 3
heartbeat = "1s"
stalled_after = "3s"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "monitor@example.org"
timeout = 5.0
[[digests]]
name = "daily"
schedule = "*/4 * * * * *"
timezone = "UTC"
recipients = ["analyst@example.org"]
formats = ["email"]
""",
        "utf-8",
    )
    return config


def count(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def jobs_done(port: int) -> float:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return 0.0
    text = body.decode()
    return sum(
        metric(text, "monitor_cluster_jobs_done_total", kind=k)
        for k in ("poll", "digest", "outbox")
    )


def test_three_nodes_store_each_page_once_mail_each_item_once_and_survive_a_kill(
    pg_url: str, http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    urls = site(http_server)
    config = cluster_config(tmp_path, pg_url, http_server, smtp_server.port)
    ports = [free_port() for _ in range(3)]
    nodes = [
        DaemonProcess(config, log_name=f"node{n}.log", MONITOR_SERVER_PORT=str(port))
        for n, port in enumerate(ports)
    ]
    try:
        stored = lambda: count(pg_url, "SELECT url FROM items")  # noqa: E731
        # Every node takes jobs (the queue hands them to whoever asks first).
        for node, port in zip(nodes, ports, strict=True):
            node.wait_for("a finished job", lambda p=port: jobs_done(p) > 0, timeout=60)
        # Killed mid-run: its running poll is taken over once its heartbeat is 3 s old.
        nodes[2].wait_for("some pages stored", lambda: len(stored()) >= 3, timeout=60)
        assert len(stored()) < len(urls), "the run ended before the kill: make it longer"
        nodes[2].kill9()
        nodes[0].wait_for("every page stored", lambda: len(stored()) == len(urls), timeout=90)
        time.sleep(3)  # more polls of the same feeds: still nothing stored twice
        rows = [r[0] for r in stored()]
        assert sorted(rows) == sorted(urls), Counter(rows).most_common(3)
        # Every item gets mailed, once: one message per Message-ID, no item in two digests.
        nodes[0].wait_for(
            "every item in a sent digest",
            lambda: (
                count(
                    pg_url,
                    "SELECT count(DISTINCT di.item_id) FROM digest_items di "
                    "JOIN digests d ON d.id = di.digest_id WHERE d.status = 'sent'",
                )[0][0]
                == len(urls)
            ),
            timeout=60,
        )
        assert (
            count(
                pg_url,
                "SELECT di.item_id FROM digest_items di JOIN digests d ON d.id = di.digest_id "
                "GROUP BY di.item_id HAVING count(*) > 1",
            )
            == []
        )
        sent = count(pg_url, "SELECT message_id FROM digests WHERE status = 'sent'")
        ids = [
            email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"]
            for m in smtp_server.messages
        ]
        assert sorted(ids) == sorted(r[0] for r in sent)
        assert len(set(ids)) == len(ids)
        assert jobs_done(ports[0]) > 0
        assert jobs_done(ports[1]) > 0
        # The queue, as each node and an operator see it.
        healthz = health(ports[0])
        assert healthz is not None
        assert (healthz["http_status"], healthz["queue"]) == (200, "ok")
        listed = json.loads(run(config, "cluster", "status", "--json").stdout)
        assert len(listed["nodes"]) == 2  # the killed node's heartbeat is too old
        assert listed["stalled"] == []  # its jobs were taken over
        # SIGTERM drains each live node: exit 0, and its worker leaves the queue.
        for node in nodes[:2]:
            node.signal(signal.SIGTERM)
        for node in nodes[:2]:
            assert node.process.wait(timeout=40) == 0, node.log()
            assert "daemon_stopped" in node.log()
    finally:
        for node in nodes:
            node.close()


# -- job arguments and digest slots ----------------------------------------------------------------


def test_an_entry_survives_the_queue_as_json() -> None:
    entry = Entry(
        url="http://127.0.0.1/a.html",
        guid="a-1",
        title="Talks",
        summary="Lavrov met Lim Jock Hoi.",
        published_at=START,
        updated_at=None,
        language="en",
        has_page=False,
    )
    assert entry_from_json(json.loads(json.dumps(entry_to_json(entry)))) == entry


def test_a_digest_window_ends_at_the_latest_fire_time_whichever_node_looks() -> None:
    trigger = cron_trigger("0 7 * * *", "UTC")
    last = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    assert latest_fire(trigger, last, last + timedelta(hours=23)) is None  # not fired since
    three_days = last + timedelta(days=3, hours=1)
    assert latest_fire(trigger, last, three_days) == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_a_one_shot_poll_on_a_cluster_database_decides_under_the_lock_and_logs_it(
    pg_url: str, http_server: LocalServer, tmp_path: Path
) -> None:
    a = serve(http_server, "a", VNA_TALKS, "Talks in Moscow", [])
    (tmp_path / "corpus").mkdir()
    (tmp_path / "sources.toml").write_text(f'[[sources]]\nname = "a"\nurl = "{a.url}"\n', "utf-8")
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "{pg_url}"\n[topics]\nfile = "{ROOT / "config/topics.toml"}"\n'
        '[corpus]\ndir = "corpus"\n[poll]\nbackfill = "36500d"\n[cluster]\nenabled = true\n',
        "utf-8",
    )
    assert "a: ok, 1 new" in run(config, "poll").stdout
    # The running nodes replay what `monitor poll` decided, as they replay each other.
    assert [r[1] for r in count(pg_url, "SELECT item_id, kind FROM index_log")] == ["insert"]
