"""`monitor digest` end to end: poll a local HTTP server, send to a real local SMTP server."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from tests.servers import LocalServer
from tests.smtp_server import SmtpServer
from tests.test_cli import ROOT, run

SEEDS = ROOT / "config" / "corpus"
NOW = datetime.now(UTC)


def seed_page(seed: str) -> bytes:
    lines = (SEEDS / seed).read_text("utf-8").splitlines()
    body = "".join(f"<p>{line}</p>" for line in lines[1:] if line.strip())
    return f"<html><body><article>{body}</article></body></html>".encode()


def serve_feed(server: LocalServer) -> None:
    entries = [
        ("ASEAN, Russia commit to deepen cooperation", "004_77ff1506fea45f61.txt", "som"),
        ("Lavrov to attend ASEAN meetings in Vientiane", "003_24ad2f7826d9acd6.txt", "vte"),
    ]
    items = ""
    for title, seed, guid in entries:
        server.add(f"/{guid}.html", seed_page(seed), content_type="text/html")
        items += (
            f"<item><title>{title}</title><link>{server.url(f'/{guid}.html')}</link>"
            f"<guid>{guid}</guid><pubDate>{format_datetime(NOW - timedelta(hours=1))}</pubDate>"
            "</item>"
        )
    server.add(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>A</title>{items}'
        "</channel></rss>".encode(),
    )


def write_config(tmp_path: Path, feed: str, smtp_port: int) -> Path:
    (tmp_path / "sources.toml").write_text(
        f'[[sources]]\nname = "ASEAN Secretariat"\nurl = "{feed}"\npriority = 1\n', "utf-8"
    )
    (tmp_path / "topics.toml").write_text((ROOT / "config/topics.toml").read_text("utf-8"), "utf-8")
    path = tmp_path / "monitor.toml"
    path.write_text(
        f"""
[storage]
url = "sqlite:///monitor.db"
[sources]
file = "sources.toml"
[topics]
file = "topics.toml"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "monitor@example.org"
timeout = 5.0
[[digests]]
name = "daily"
timezone = "Asia/Jakarta"
recipients = ["analyst@example.org"]
formats = ["markdown", "email"]
output_dir = "archive"
""",
        "utf-8",
    )
    return path


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_send_delivers_once_with_parts_headers_and_archive(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    serve_feed(http_server)
    config = write_config(tmp_path, http_server.url("/feed.xml"), smtp_server.port)
    run(config, "poll")
    until = datetime.now(UTC).isoformat()
    window = ["--since", "2000-01-01", "--until", until]
    sent = run(config, "digest", "--send", "--no-poll", *window)
    assert ": sent, Message-ID <digest.daily." in sent.stderr
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("analyst@example.org",)
    message = parse(received.data)
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message["Message-ID"].startswith("<digest.daily.")
    assert message["List-Unsubscribe"].startswith("<mailto:monitor@example.org")
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None
    assert text is not None
    assert "ASEAN, Russia commit to deepen cooperation" in html.get_content()
    assert "<script" not in html.get_content()
    assert all(len(line) <= 72 or "://" in line for line in text.get_content().splitlines())
    archive = list((tmp_path / "archive" / "daily").glob("*.md"))
    assert len(archive) == 1
    assert "ASEAN, Russia commit to deepen cooperation" in archive[0].read_text("utf-8")

    again = run(config, "digest", "--send", "--no-poll", *window)
    assert "already sent" in again.stderr
    assert len(smtp_server.messages) == 1

    # The next window starts where the last one ended: nothing new, so nothing is mailed.
    later = run(config, "digest", "--send", "--no-poll")
    assert "nothing new; not sent" in later.stderr
    assert len(smtp_server.messages) == 1


def test_an_smtp_outage_loses_nothing_and_the_retry_keeps_the_message_id(
    http_server: LocalServer, tmp_path: Path
) -> None:
    serve_feed(http_server)
    down = write_config(tmp_path, http_server.url("/feed.xml"), smtp_port=9)
    failed = run(down, "digest", "--send", check=False)
    assert failed.returncode == 3
    assert "cannot connect to SMTP server 127.0.0.1:9" in failed.stderr
    assert "stays in the outbox" in failed.stderr
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        [(status, message_id, attempts)] = db.execute(
            "SELECT status, message_id, attempts FROM digests"
        ).fetchall()
    assert (status, attempts) == ("pending", 2)  # the archive worked, the mail did not

    with SmtpServer() as smtp:
        up = write_config(tmp_path, http_server.url("/feed.xml"), smtp.port)
        done = run(up, "digest", "--send", "--no-poll")
        assert f"sent, Message-ID {message_id}" in done.stderr
        [received] = smtp.messages
        assert parse(received.data)["Message-ID"] == message_id
        run(up, "digest", "--send", "--no-poll")
        assert len(smtp.messages) == 1
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM digests ORDER BY id")]
    assert statuses[0] == "sent"


def test_a_preview_of_a_past_window_is_deterministic_and_changes_nothing(
    http_server: LocalServer, tmp_path: Path
) -> None:
    serve_feed(http_server)
    config = write_config(tmp_path, http_server.url("/feed.xml"), smtp_port=9)
    run(config, "poll")
    window = [
        "--no-poll",
        "--since",
        "2000-01-01",
        "--until",
        (NOW + timedelta(hours=1)).isoformat(),
    ]
    before = (tmp_path / "monitor.db").read_bytes()
    outputs = {}
    for fmt in ("markdown", "html", "text"):
        first = run(config, "digest", "--format", fmt, *window).stdout
        second = run(config, "digest", "--format", fmt, *window).stdout
        differing = [
            (a, b) for a, b in zip(first.splitlines(), second.splitlines(), strict=True) if a != b
        ]
        assert all("Generated" in a or "generated" in a for a, _b in differing), differing
        outputs[fmt] = first
    assert "ASEAN, Russia commit to deepen cooperation" in outputs["markdown"]
    assert outputs["html"].lstrip().lower().startswith("<!doctype html")
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        assert db.execute("SELECT COUNT(*) FROM digests").fetchone() == (0,)
    assert (tmp_path / "monitor.db").read_bytes() == before or not (tmp_path / "archive").exists()


def test_digest_output_to_a_file(http_server: LocalServer, tmp_path: Path) -> None:
    serve_feed(http_server)
    config = write_config(tmp_path, http_server.url("/feed.xml"), smtp_port=9)
    out = tmp_path / "digest.html"
    run(config, "digest", "--format", "html", "--output", str(out), "--since", "2000-01-01")
    assert "ASEAN, Russia commit to deepen cooperation" in out.read_text("utf-8")
    unknown = run(config, "digest", "--name", "weekly", "--no-poll", check=False)
    assert unknown.returncode == 2
    assert "no digest 'weekly'" in unknown.stderr
