"""`monitor run` under real timing: a subprocess against a local HTTP server and a local SMTP
server, with 1-second poll intervals and a digest every few seconds."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.daemon_process import DaemonProcess, free_port, health, http_get, metric, query
from tests.servers import LocalServer
from tests.smtp_server import SmtpServer
from tests.test_cli import ROOT, run
from tests.test_digest_send import seed_page

NOW = datetime.now(UTC)
ARTICLES = {  # guid: (title, seed whose text the page carries)
    "som": ("ASEAN, Russia commit to deepen cooperation", "004_77ff1506fea45f61.txt"),
    "vte": ("Lavrov to attend ASEAN meetings in Vientiane", "003_24ad2f7826d9acd6.txt"),
    "moscow": ("ASEAN Secretary-General visits Moscow", "002_3b70ce0ad9d51632.txt"),
}


def feed(server: LocalServer, guids: list[str], *, path: str = "/feed.xml") -> str:
    items = ""
    for guid in guids:
        title, _seed = ARTICLES[guid]
        items += (
            f"<item><title>{title}</title><link>{server.url(f'/{guid}.html')}</link>"
            f"<guid>{guid}</guid><pubDate>{format_datetime(NOW - timedelta(hours=1))}</pubDate>"
            "</item>"
        )
    return server.add(
        path,
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>A</title>{items}'
        "</channel></rss>".encode(),
    )


def pages(server: LocalServer, *, delay: float = 0.0) -> None:
    for guid, (_title, seed) in ARTICLES.items():
        server.add(f"/{guid}.html", seed_page(seed), content_type="text/html", delay=delay)


def write_config(
    tmp_path: Path,
    sources: dict[str, str],
    *,
    smtp_port: int = 9,
    server_port: int = 0,
    schedule: str = "*/3 * * * * *",
    drain: str = "10s",
    digests: bool = True,
    extra: str = "",
) -> Path:
    (tmp_path / "corpus").mkdir(exist_ok=True)  # no seeds: every article here is news
    (tmp_path / "sources.toml").write_text(
        "".join(
            f'[[sources]]\nname = "{name}"\nurl = "{url}"\ninterval = "1s"\npriority = 1\n'
            for name, url in sources.items()
        ),
        "utf-8",
    )
    digest = f"""
[[digests]]
name = "daily"
schedule = "{schedule}"
timezone = "UTC"
recipients = ["analyst@example.org"]
formats = ["email"]
"""
    path = tmp_path / "monitor.toml"
    path.write_text(
        f"""
[storage]
url = "sqlite:///monitor.db"
[sources]
file = "sources.toml"
[topics]
file = "{ROOT / "config" / "topics.toml"}"
[corpus]
dir = "corpus"
[poll]
min_interval = "1s"
[http]
timeout = 5.0
deadline = 10.0
[server]
port = {server_port}
[daemon]
drain_timeout = "{drain}"
outbox_interval = "1s"
retry_base = "1s"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "monitor@example.org"
timeout = 5.0
{extra}
{digest if digests else ""}
""",
        "utf-8",
    )
    return path


def stored_urls(tmp_path: Path) -> list[str]:
    db = tmp_path / "monitor.db"
    if not db.exists():
        return []
    try:
        return [row[0] for row in query(db, "SELECT url FROM items")]
    except Exception:  # the schema is not there yet
        return []


def test_daemon_polls_mails_a_digest_serves_health_and_metrics_and_drains(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    pages(http_server)
    url = feed(http_server, ["som", "vte"])
    port = free_port()
    config = write_config(
        tmp_path, {"ASEAN Secretariat": url}, smtp_port=smtp_server.port, server_port=port
    )
    with DaemonProcess(config) as daemon:
        ready = daemon.wait_for("/healthz", lambda: health(port))
        assert ready["http_status"] == 200
        assert ready["status"] == "ok"
        assert ready["scheduler"] == "running"

        def scrape() -> str:
            status, body = http_get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            return body.decode()

        daemon.wait_for(
            "two new items in /metrics",
            lambda: metric(scrape(), "monitor_items_stored_total", status="new") == 2.0,
        )
        assert len(stored_urls(tmp_path)) == 2
        first = scrape().encode()
        polls_before = metric(first.decode(), "monitor_polls_total", outcome="ok")
        assert polls_before >= 1
        assert metric(first.decode(), "monitor_extraction_seconds_count") == 2.0

        # The digest job runs every 3 s; the first with the two items is mailed.
        received = daemon.wait_for("a mailed digest", lambda: smtp_server.messages)
        message = email.message_from_bytes(received[0].data, policy=email.policy.default)
        assert message["Message-ID"].startswith("<digest.daily.")
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "ASEAN, Russia commit to deepen cooperation" in text
        assert "Lavrov to attend ASEAN meetings in Vientiane" in text

        # The metrics move with the polls that follow (304s or unchanged feeds).
        def polled_again() -> bool:
            _, later = http_get(f"http://127.0.0.1:{port}/metrics")
            total = sum(
                metric(later.decode(), "monitor_polls_total", outcome=o)
                for o in ("ok", "not_modified")
            )
            return total > polls_before and "monitor_digest_sends_total" in later.decode()

        daemon.wait_for("more polls in /metrics", polled_again)
        _, scraped = http_get(f"http://127.0.0.1:{port}/metrics")
        assert metric(scraped.decode(), "monitor_digest_sends_total", name="daily", status="sent")
        assert metric(scraped.decode(), "monitor_queue_depth") >= 0
        status, _ = http_get(f"http://127.0.0.1:{port}/nothing-here")
        assert status == 404

        assert daemon.stop() == 0
        log = daemon.log()
    assert "daemon_started" in log
    assert "daemon_stopped" in log
    assert "Traceback" not in log
    # Each digest went out once: one message per Message-ID, each recorded as sent.
    ids = Counter(
        email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"]
        for m in smtp_server.messages
    )
    assert all(n == 1 for n in ids.values()), ids
    sent = query(tmp_path / "monitor.db", "SELECT message_id FROM digests WHERE status = 'sent'")
    assert {row[0] for row in sent} == set(ids)


def test_sigterm_during_a_slow_fetch_lets_it_finish_then_exits_zero(
    http_server: LocalServer, tmp_path: Path
) -> None:
    pages(http_server)
    url = http_server.add("/slow.xml", _rss(http_server), delay=3.0)
    port = free_port()
    config = write_config(tmp_path, {"Slow": url}, drain="15s", digests=False, server_port=port)
    with DaemonProcess(config) as daemon:
        daemon.wait_for("the slow fetch", lambda: http_server.requests_for("/slow.xml"))

        def skipped() -> float:
            _, body = http_get(f"http://127.0.0.1:{port}/metrics")
            return metric(body.decode(), "monitor_job_runs_skipped_total", job="poll")

        # The 1 s job fires while the 3 s fetch runs: counted, not run twice, not logged.
        daemon.wait_for("a skipped run in /metrics", skipped)
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.process.wait(30)
        took = time.monotonic() - started
        log = daemon.log()
    assert code == 0, log
    assert took < 15, log
    assert "cancelled=0" in log, log
    assert "maximum number of running instances" not in log
    # The fetch that was in flight finished, and its item was stored before the exit.
    assert stored_urls(tmp_path) == [http_server.url("/som.html")]


def test_sigterm_with_a_fetch_that_never_answers_exits_zero_at_the_drain_timeout(
    http_server: LocalServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"Hangs": http_server.url("/hang")}, drain="2s", digests=False)
    config.write_text(config.read_text("utf-8").replace("deadline = 10.0", "deadline = 60.0"))
    with DaemonProcess(config) as daemon:
        daemon.wait_for("the hanging fetch", lambda: http_server.requests_for("/hang"))
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.process.wait(30)
        took = time.monotonic() - started
        log = daemon.log()
    assert code == 0, log
    assert 1.5 < took < 10, (took, log)
    assert "cancelled=1" in log, log


def test_kill_9_mid_poll_loses_nothing_and_restart_sends_no_digest_under_a_new_id(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    pages(http_server)
    url = feed(http_server, ["som", "vte"])
    config = write_config(
        tmp_path, {"ASEAN Secretariat": url}, smtp_port=smtp_server.port, schedule="*/2 * * * * *"
    )
    with DaemonProcess(config) as daemon:
        daemon.wait_for("a mailed digest", lambda: smtp_server.messages, timeout=40)
        # A new entry whose page is slow: the daemon is killed while that poll is in flight.
        http_server.add(
            "/moscow.html", seed_page(ARTICLES["moscow"][1]), content_type="text/html", delay=4
        )
        feed(http_server, ["som", "vte", "moscow"])
        daemon.wait_for("the slow page", lambda: http_server.requests_for("/moscow.html"))
        daemon.kill9()
    before = sorted(stored_urls(tmp_path))
    assert len(before) == 2  # nothing half-written, nothing lost
    assert query(tmp_path / "monitor.db", "PRAGMA integrity_check") == [("ok",)]

    with DaemonProcess(config, log_name="daemon2.log") as daemon:
        daemon.wait_for("the third item", lambda: len(stored_urls(tmp_path)) == 3, timeout=40)

        def mailed_third() -> bool:
            return any(b"Secretary-General visits Moscow" in m.data for m in smtp_server.messages)

        daemon.wait_for("a digest with the third item", mailed_third, timeout=40)
        assert daemon.stop() == 0
    urls = stored_urls(tmp_path)
    assert sorted(set(urls)) == sorted(urls)  # each once
    assert set(before) <= set(urls)
    ids = [
        email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"]
        for m in smtp_server.messages
    ]
    rows = query(
        tmp_path / "monitor.db",
        "SELECT message_id, window_start, window_end FROM digests WHERE status = 'sent'",
    )
    # Every message received is a recorded digest, and no window went out under two IDs.
    assert set(ids) == {row[0] for row in rows}
    windows = Counter((row[1], row[2]) for row in rows)
    assert all(n == 1 for n in windows.values())
    # The windows follow each other without overlap.
    spans = sorted((row[1], row[2]) for row in rows)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # Each item was mailed in one digest only.
    mailed = [
        title
        for m in smtp_server.messages
        for title, _ in ARTICLES.values()
        if title.encode() in m.data
    ]
    assert sorted(mailed) == sorted(t for t, _ in ARTICLES.values())


def test_a_digest_due_while_the_daemon_was_down_is_sent_once_at_start(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    pages(http_server)
    url = feed(http_server, ["som"])
    config = write_config(
        tmp_path, {"ASEAN Secretariat": url}, smtp_port=smtp_server.port, schedule="0 7 * * *"
    )
    run(config, "poll")
    # The last digest recorded ended two days ago: the 07:00 runs since then were missed.
    until = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    run(config, "digest", "--send", "--no-poll", "--since", "2000-01-01", "--until", until)
    assert len(smtp_server.messages) == 0  # that window had nothing new: recorded, not mailed
    with DaemonProcess(config) as daemon:
        daemon.wait_log("digest_missed name=daily")
        daemon.wait_for("the catch-up digest", lambda: smtp_server.messages)
        time.sleep(2)
        assert daemon.stop() == 0
    assert len(smtp_server.messages) == 1
    assert b"ASEAN, Russia commit to deepen cooperation" in smtp_server.messages[0].data
    # A second start owes nothing: the catch-up window ended when the first one started.
    with DaemonProcess(config, log_name="daemon2.log") as daemon:
        daemon.wait_log("daemon_started")
        time.sleep(2)
        assert daemon.stop() == 0
        assert "digest_missed" not in daemon.log()
    assert len(smtp_server.messages) == 1


def test_sighup_reloads_a_good_config_and_keeps_the_old_one_on_a_bad_one(
    http_server: LocalServer, tmp_path: Path
) -> None:
    pages(http_server)
    first = feed(http_server, ["som"], path="/a.xml")
    second = feed(http_server, ["vte"], path="/b.xml")
    port = free_port()
    config = write_config(tmp_path, {"A": first}, server_port=port, digests=False)
    with DaemonProcess(config) as daemon:
        daemon.wait_for("the first item", lambda: len(stored_urls(tmp_path)) == 1)
        good = config.read_text("utf-8")

        config.write_text(good + "\n[pol]\nbackfill = '7d'\n", "utf-8")  # a typo: rejected
        daemon.signal(signal.SIGHUP)
        # Each problem is logged, then the summary: wait for the last of those lines.
        daemon.wait_log("still running on the old config")
        log = daemon.log()
        assert str(config) in log
        assert "reload_rejected file=" in log
        status = health(port)
        assert status is not None
        assert status["http_status"] == 200

        config.write_text(good, "utf-8")
        (tmp_path / "sources.toml").write_text(
            f'[[sources]]\nname = "A"\nurl = "{first}"\ninterval = "1s"\n'
            f'[[sources]]\nname = "B"\nurl = "{second}"\ninterval = "1s"\n',
            "utf-8",
        )
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("reload_ok sources=2")
        daemon.wait_for("the second source's item", lambda: len(stored_urls(tmp_path)) == 2)
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.log()


def _rss(server: LocalServer) -> bytes:
    title, _ = ARTICLES["som"]
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>'
        f"<item><title>{title}</title><link>{server.url('/som.html')}</link><guid>som</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=1))}</pubDate></item>"
        "</channel></rss>"
    ).encode()


def test_while_draining_healthz_says_503_and_a_second_signal_exits_at_once(
    http_server: LocalServer, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(
        tmp_path, {"Hangs": http_server.url("/hang")}, server_port=port, drain="60s", digests=False
    )
    config.write_text(config.read_text("utf-8").replace("deadline = 10.0", "deadline = 60.0"))
    with DaemonProcess(config) as daemon:
        daemon.wait_for("the hanging fetch", lambda: http_server.requests_for("/hang"))
        daemon.signal(signal.SIGTERM)
        draining = daemon.wait_for(
            "503 while draining",
            lambda: (h := health(port)) is not None and h["http_status"] == 503 and h,
        )
        assert draining["status"] == "unavailable"
        assert draining["scheduler"] == "stopped"
        assert draining["in_flight"] == 1
        time.sleep(0.6)  # a repeat within half a second is the same stop delivered twice
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.process.wait(10)
        took = time.monotonic() - started
        log = daemon.log()
    assert code == 128 + signal.SIGTERM, log
    assert took < 5, log
    assert "daemon_exit_now signal=SIGTERM" in log


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_dead_extraction_worker_is_replaced_and_its_poll_redone(
    http_server: LocalServer, tmp_path: Path
) -> None:
    pages(http_server)
    url = feed(http_server, ["som"])
    config = write_config(tmp_path, {"A": url}, digests=False)
    with DaemonProcess(config) as daemon:
        daemon.wait_for("the first item", lambda: len(stored_urls(tmp_path)) == 1)
        for worker in daemon.wait_for("the workers", lambda: children(daemon.pid)):
            os.kill(worker, signal.SIGKILL)  # as the OOM killer would
        feed(http_server, ["som", "vte"])
        daemon.wait_log("workers_died")
        daemon.wait_for("the second item, by new workers", lambda: len(stored_urls(tmp_path)) == 2)
        assert daemon.stop() == 0
        log = daemon.log()
    assert "Traceback" not in log
