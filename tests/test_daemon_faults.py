"""`monitor run` against failing delivery channels: an SMTP server that refuses the first
attempts, and a full file system under the Markdown archive. The daemon runs as a subprocess
(tests/daemon_process.py) against a local HTTP server and a local SMTP server.

The outbox's first retry waits `[daemon] retry_base` (a minute by default); the config here
sets one second (tests/test_daemon.py `write_config`), so three retries fit in a few seconds.
"""

from __future__ import annotations

import email
import email.policy
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.daemon_process import DaemonProcess, free_port, http_get, metric, query
from tests.servers import LocalServer
from tests.smtp_server import SmtpServer
from tests.test_daemon import ARTICLES, feed, pages, stored_urls, write_config

TITLE = ARTICLES["som"][0]  # one article: one poll stores it, so one digest carries it


class RecordingSmtpServer(SmtpServer):
    """An SmtpServer that also keeps the bytes of every DATA it was sent, refused or not, so a
    test can read the Message-ID of the attempts that failed."""

    def __init__(self, **options: Any) -> None:
        self.attempts: list[bytes] = []
        super().__init__(**options)

    def __enter__(self) -> RecordingSmtpServer:
        return self

    async def data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts.append(bytes(envelope.original_content))
        return await super().data(server, session, envelope)


def message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"])


def digest_rows(db: Path) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT id, status, message_id, attempts, last_error, markdown FROM digests "
        "WHERE name = 'daily' AND status != 'empty' ORDER BY id",
    )


def attempts_of(db: Path, digest_id: int) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT channel, ok, error FROM delivery_attempts WHERE digest_id = ? ORDER BY id",
        digest_id,
    )


def wait_two_more_windows(daemon: DaemonProcess, db: Path) -> None:
    """Let two more digest windows go by (a resend would have happened in them)."""
    windows = len(query(db, "SELECT id FROM digests"))
    daemon.wait_for(
        "two more digest windows",
        lambda: len(query(db, "SELECT id FROM digests")) >= windows + 2,
    )


def test_smtp_down_for_three_attempts_then_delivered_once_under_the_same_message_id(
    http_server: LocalServer, tmp_path: Path
) -> None:
    pages(http_server)
    url = feed(http_server, ["som"])
    port = free_port()
    db = tmp_path / "monitor.db"
    with RecordingSmtpServer(fail_first=3) as smtp:
        config = write_config(
            tmp_path,
            {"ASEAN Secretariat": url},
            smtp_port=smtp.port,
            server_port=port,
            schedule="* * * * * *",
        )
        with DaemonProcess(config) as daemon:

            def pending() -> float:
                status, body = http_get(f"http://127.0.0.1:{port}/metrics")
                return metric(body.decode(), "monitor_outbox_pending") if status == 200 else -1

            daemon.wait_for("the item stored", lambda: len(stored_urls(tmp_path)) == 1)
            daemon.wait_for("a failed delivery", lambda: smtp.attempts)
            # The refused digest waits in the outbox, and /metrics says so.
            daemon.wait_for("monitor_outbox_pending 1", lambda: pending() == 1.0)
            daemon.wait_for("a delivered digest", lambda: smtp.messages, timeout=30)
            daemon.wait_for("monitor_outbox_pending back to 0", lambda: pending() == 0.0)
            # Two more windows go by (empty: their items are already carried): no second mail.
            wait_two_more_windows(daemon, db)
            assert daemon.stop() == 0
            log = daemon.log()

    [row] = digest_rows(db)
    digest_id, status, mid, attempts, last_error, _markdown = row
    assert status == "sent", log
    assert attempts == 4
    assert last_error is None
    tries = attempts_of(db, digest_id)
    assert [(channel, bool(ok)) for channel, ok, _ in tries] == [
        ("email", False),
        ("email", False),
        ("email", False),
        ("email", True),
    ], tries
    for _channel, _ok, error in tries[:3]:
        assert error.startswith("temporary: ")
        assert "451" in error
    # Four DATA commands reached the server, all with the one Message-ID the outbox stored;
    # the last was accepted, and it is the only message received.
    assert len(smtp.attempts) == 4
    assert {message_id(raw) for raw in smtp.attempts} == {mid}
    [received] = smtp.messages
    assert message_id(received.data) == mid
    assert received.data == smtp.attempts[-1]
    assert TITLE.encode() in received.data
    assert log.count("digest_failed name=daily channel=email") == 3, log
    assert "outbox_retry name=daily status=sent attempts=4" in log, log
    assert "Traceback" not in log


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(mount point, filler file): a 64 KiB tmpfs filled up. Needs root and mount(2)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for a real full file system needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        probe = mount / "probe"
        with pytest.raises(OSError, match="No space left on device") as full:
            probe.write_bytes(b"x" * 4096)
        assert full.value.errno == errno.ENOSPC
        probe.unlink(missing_ok=True)
        yield mount, filler
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_keeps_the_archive_digest_pending_until_space_is_freed(
    http_server: LocalServer, tmp_path: Path, full_disk: tuple[Path, Path]
) -> None:
    mount, filler = full_disk
    pages(http_server)
    url = feed(http_server, ["som"])
    config = write_config(tmp_path, {"ASEAN Secretariat": url}, schedule="* * * * * *")
    text = config.read_text("utf-8").replace(
        'formats = ["email"]', f'formats = ["markdown"]\noutput_dir = "{mount}"'
    )
    config.write_text(text, "utf-8")
    db = tmp_path / "monitor.db"
    folder = mount / "daily"
    with DaemonProcess(config) as daemon:
        daemon.wait_for("the item stored", lambda: len(stored_urls(tmp_path)) == 1)
        daemon.wait_log("digest_failed name=daily channel=markdown")
        failure = next(
            line for line in daemon.log().splitlines() if "digest_failed name=daily" in line
        )
        assert f"error={folder}/" in failure, failure
        assert ".md: cannot write archive file: No space left on device (ENOSPC)" in failure
        # Retried while the disk stays full, and still pending; nothing stored is lost.
        daemon.wait_for("a failed retry", lambda: digest_rows(db)[0][3] >= 2)
        [(digest_id, status, _mid, attempts, last_error, markdown)] = digest_rows(db)
        assert status == "pending"
        assert "No space left on device" in last_error
        assert stored_urls(tmp_path) == [http_server.url("/som.html")]
        assert query(db, "PRAGMA integrity_check") == [("ok",)]
        assert list(folder.glob("*.md")) == []  # no archive, not even a truncated one

        filler.unlink()
        daemon.wait_for(
            "the archive digest delivered",
            lambda: digest_rows(db)[0][1] == "sent",
            timeout=15,
        )
        wait_two_more_windows(daemon, db)
        assert daemon.stop() == 0
        log = daemon.log()

    [(digest_id, status, _mid, attempts, last_error, markdown)] = digest_rows(db)
    assert status == "sent"
    assert last_error is None
    tries = attempts_of(db, digest_id)
    assert len(tries) == attempts
    assert [bool(ok) for _, ok, _ in tries] == [False] * (attempts - 1) + [True], tries
    assert all(channel == "markdown" for channel, _, _ in tries)
    for _channel, _ok, error in tries[:-1]:
        assert error.startswith("temporary: "), error
        assert "No space left on device (ENOSPC)" in error
    # Written once, complete: exactly the stored rendering; the failed atomic writes left no
    # temporary file behind.
    assert sorted(p.name for p in mount.iterdir()) == ["daily"]
    [archive] = folder.iterdir()
    assert archive.suffix == ".md"
    assert archive.read_text("utf-8") == markdown
    assert TITLE in markdown
    assert "outbox_retry name=daily status=sent" in log, log
    assert "Traceback" not in log
