"""The command line end to end: real processes, a local HTTP server, a temporary database."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.servers import LocalServer

ROOT = Path(__file__).resolve().parents[1]
DESIGN_ITEM_KEYS = {
    "id",
    "url",
    "canonical_url",
    "source",
    "title",
    "published_at",
    "fetched_at",
    "language",
    "status",
    "duplicate_of",
    "story",
    "topics",
    "facets",
    "extraction",
    "text_chars",
}
DESIGN_SOURCE_KEYS = {
    "name",
    "url",
    "status",
    "last_success_at",
    "consecutive_failures",
    "last_error_class",
    "last_error",
    "next_check_at",
}


def run(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_DATA_DIR"] = str(config.parent / "data")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.parent,
        timeout=120,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def write_config(tmp_path: Path, sources: Sequence[tuple[str, str]]) -> Path:
    blocks = [f'[[sources]]\nname = "{name}"\nurl = "{url}"\n' for name, url in sources]
    (tmp_path / "sources.toml").write_text("\n".join(blocks), "utf-8")
    (tmp_path / "topics.toml").write_text((ROOT / "config/topics.toml").read_text("utf-8"), "utf-8")
    path = tmp_path / "monitor.toml"
    path.write_text(
        '[storage]\nurl = "sqlite:///monitor.db"\n[sources]\nfile = "sources.toml"\n'
        '[topics]\nfile = "topics.toml"\n[http]\ntimeout = 2.0\ndeadline = 5.0\n',
        "utf-8",
    )
    return path


def local_feed(server: LocalServer) -> None:
    when = format_datetime(datetime.now(UTC) - timedelta(hours=2))
    items = "".join(
        f"<item><title>{title}</title><link>{server.url('/data/pages/' + page)}</link>"
        f"<guid>{guid}</guid><pubDate>{when}</pubDate></item>"
        for title, page, guid in [
            ("Esper in Vietnam", "chron.com.esper-vietnam.html", "1"),
            ("Helicopter crash", "aljazeera.com.helicopter.html", "2"),
        ]
    )
    server.add(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>L</title>{items}'
        "</channel></rss>".encode(),
        etag='"e1"',
    )


def test_poll_then_items_json_follows_the_contract(
    http_server: LocalServer, tmp_path: Path
) -> None:
    local_feed(http_server)
    config = write_config(
        tmp_path,
        [("Local", http_server.url("/feed.xml")), ("Dead", http_server.url("/status/404"))],
    )
    polled = run(config, "poll")
    assert "Local: ok, 2 new" in polled.stdout
    assert "Dead: failed (http)" in polled.stdout
    assert "\x1b[" not in polled.stdout  # no progress bar or colour when piped

    lines = run(config, "items", "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2
    esper = next(r for r in records if r["title"] == "Esper in Vietnam")
    assert "Vietnam" in esper["facets"]["countries"]
    for record in records:
        assert set(record) >= DESIGN_ITEM_KEYS
        assert "text" not in record
        assert record["status"] == "new"
        assert record["extraction"] == "full_text"
        assert record["language"] == "en"
        assert record["duplicate_of"] is None
        assert set(record["facets"]) == {"countries", "organisations", "officials"}
        assert all(isinstance(v, list) for v in record["facets"].values())
        assert record["fetched_at"].endswith("Z")
        assert datetime.fromisoformat(record["published_at"]).tzinfo is not None
    with_text = [
        json.loads(x) for x in run(config, "items", "--json", "--with-text").stdout.splitlines()
    ]
    assert all(len(r["text"]) == r["text_chars"] > 500 for r in with_text)

    again = run(config, "poll")
    assert "Local: unchanged (304 Not Modified)" in again.stdout
    assert len(run(config, "items", "--json").stdout.splitlines()) == 2
    assert run(config, "items", "--json", "--status", "duplicate").stdout == ""
    assert run(config, "items", "--json", "--since", "2999-01-01").stdout == ""

    health = {
        h["name"]: h
        for h in map(json.loads, run(config, "sources", "list", "--json").stdout.splitlines())
    }
    assert set(health["Dead"]) == DESIGN_SOURCE_KEYS
    assert health["Dead"]["status"] == "failing"
    assert health["Dead"]["last_error_class"] == "http"
    assert health["Dead"]["consecutive_failures"] == 2
    assert health["Local"]["status"] == "ok"
    assert health["Local"]["last_error_class"] is None

    explained = run(config, "explain", str(records[0]["id"])).stdout
    assert "status: new" in explained
    assert records[0]["canonical_url"] in explained


def test_poll_exits_3_when_every_source_fails(http_server: LocalServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, [("Dead", http_server.url("/status/500"))])
    done = run(config, "poll", check=False)
    assert done.returncode == 3
    assert "Dead: failed (http)" in done.stdout


def test_an_interrupted_poll_keeps_what_finished_and_says_so(
    http_server: LocalServer, tmp_path: Path
) -> None:
    local_feed(http_server)
    drip = "/slow-drip?bytes=100000&interval=0.5&chunk=1"  # never done within the deadline
    config = write_config(
        tmp_path, [("Local", http_server.url("/feed.xml")), ("Stuck", http_server.url(drip))]
    )
    # Stuck must still be running when the signal comes, however loaded the machine: a read
    # timeout of 2 s fired between two of its drips under load, so the poll ended by itself.
    text = config.read_text("utf-8").replace("deadline = 5.0", "deadline = 60.0")
    config.write_text(text.replace("timeout = 2.0", "timeout = 30.0"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    poll = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "poll"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    db = tmp_path / "monitor.db"

    def stored() -> int:
        if not db.exists():
            return 0
        with contextlib.closing(sqlite3.connect(db)) as con:
            try:
                return int(con.execute("SELECT count(*) FROM items").fetchone()[0])
            except sqlite3.OperationalError:  # the tables are not there yet
                return 0

    deadline = time.monotonic() + 60
    while stored() < 2 or not http_server.requests_for("/slow-drip"):
        assert poll.poll() is None, poll.communicate()
        assert time.monotonic() < deadline, "Local's items were never stored"
        time.sleep(0.05)
    time.sleep(0.3)  # Local's poll ends right after its last item; Stuck takes 60 s
    poll.send_signal(signal.SIGINT)
    out, err = poll.communicate(timeout=60)
    assert poll.returncode == 130, (out, err)
    assert "Local: ok, 2 new" in out
    assert "total: 2 new item(s); 0 of 1 source(s) failed" in out
    assert "interrupted: 1 of 2 source(s) finished" in err
    assert "Traceback" not in err
    with contextlib.closing(sqlite3.connect(db)) as con:
        rows = dict(con.execute("SELECT name, etag FROM sources").fetchall())
    assert rows == {"Local": '"e1"', "Stuck": None}  # Local's state was written on the way out
    again = run(config, "poll", "--source", "Local")
    assert "Local: unchanged (304 Not Modified)" in again.stdout


def test_poll_only_the_named_source(http_server: LocalServer, tmp_path: Path) -> None:
    local_feed(http_server)
    config = write_config(
        tmp_path,
        [("Local", http_server.url("/feed.xml")), ("Other", http_server.url("/status/500"))],
    )
    assert "Other" not in run(config, "poll", "--source", "Local").stdout
    assert http_server.requests_for("/status/500") == []
    unknown = run(config, "poll", "--source", "Nope", check=False)
    assert unknown.returncode == 2
    assert "unknown source 'Nope'" in unknown.stderr


def test_a_bad_config_exits_2_naming_file_key_and_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("Local", "http://127.0.0.1:9/feed")])
    config.write_text(config.read_text("utf-8") + '[poll]\nbackfil = "7d"\n', "utf-8")
    done = run(config, "check-config", check=False)
    assert done.returncode == 2
    assert f"{config}: poll.backfil: unknown key; did you mean 'backfill'?" in done.stderr
    assert run(config, "poll", check=False).returncode == 2


def test_check_config_reports_ok(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("Local", "http://127.0.0.1:9/feed")])
    assert "ok; 1 source(s)" in run(config, "check-config").stdout


def test_sources_check_stores_nothing(http_server: LocalServer, tmp_path: Path) -> None:
    local_feed(http_server)
    config = write_config(
        tmp_path,
        [("Local", http_server.url("/feed.xml")), ("Challenge", http_server.url("/html-as-feed"))],
    )
    out = run(config, "sources", "check").stdout
    assert "Local: ok, HTTP 200, 2 entries" in out
    assert "Challenge: FAIL (not_a_feed)" in out
    assert run(config, "items", "--json").stdout == ""


def test_opml_import_then_export(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("Local", "http://127.0.0.1:9/feed")])
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="ASEAN" xmlUrl="https://asean.org/feed/"/>'
        '<outline text="Local" xmlUrl="http://127.0.0.1:9/feed"/></body></opml>',
        "utf-8",
    )
    assert "imported 1 source(s)" in run(config, "sources", "import", str(opml)).stdout
    exported = run(config, "sources", "export").stdout
    assert 'xmlUrl="https://asean.org/feed/"' in exported
    assert exported.count("<outline") == 2


@pytest.mark.parametrize("bad", ["\u202etxt.exe", "line\r\nX-Injected: 1", "\x1b[31mred"])
def test_untrusted_titles_reach_the_terminal_neutralised(
    http_server: LocalServer, tmp_path: Path, bad: str
) -> None:
    when = format_datetime(datetime.now(UTC))
    title = bad.replace("&", "&amp;").replace("<", "&lt;")
    http_server.add(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>L</title><item><title>{title}'
        f"</title><link>{http_server.url('/status/404')}</link><guid>g</guid>"
        f"<description>text</description><pubDate>{when}</pubDate></item></channel></rss>".encode(),
    )
    config = write_config(tmp_path, [("Local", http_server.url("/feed.xml"))])
    run(config, "poll")
    out = run(config, "items").stdout
    for forbidden in ("\u202e", "\r", "\x1b"):
        assert forbidden not in out
    assert out.count("\n") == 1


def serve_seed_page(server: LocalServer) -> None:
    seed = (ROOT / "config/corpus/004_77ff1506fea45f61.txt").read_text("utf-8")
    body = "".join(f"<p>{line}</p>" for line in seed.splitlines()[1:] if line.strip())
    server.add(
        "/som.html",
        f"<html><body><article>{body}</article></body></html>".encode(),
        content_type="text/html",
    )
    when = format_datetime(datetime.now(UTC) - timedelta(hours=1))
    server.add(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>A</title><item>'
        f"<title>ASEAN, Russia commit to deepen cooperation</title>"
        f"<link>{server.url('/som.html')}</link><guid>som</guid><pubDate>{when}</pubDate>"
        "</item></channel></rss>".encode(),
    )


def test_topics_in_json_filter_explain_and_retag(http_server: LocalServer, tmp_path: Path) -> None:
    serve_seed_page(http_server)
    config = write_config(tmp_path, [("ASEAN", http_server.url("/feed.xml"))])
    run(config, "poll")
    [record] = [json.loads(x) for x in run(config, "items", "--json").stdout.splitlines()]
    topics = {t["id"]: t for t in record["topics"]}
    # Every tag is kept, strongest first: score relative to threshold (thresholds differ).
    assert len(record["topics"]) >= 2
    strengths = [t["score"] / t["threshold"] for t in record["topics"]]
    assert strengths == sorted(strengths, reverse=True)
    assert [t["strength"] for t in record["topics"]] == [round(s, 3) for s in strengths]
    architecture = topics["regional-architecture"]
    assert architecture["score"] >= architecture["threshold"]
    assert all(set(e) == {"term", "lang", "count"} for e in architecture["evidence"])
    assert "Russia" in record["facets"]["countries"]
    tagged = run(config, "items", "--json", "--topic", "regional-architecture").stdout
    assert len(tagged.splitlines()) == 1
    assert run(config, "items", "--json", "--topic", "maritime-security").stdout == ""
    bad_topic = run(config, "items", "--topic", "sport", check=False)
    assert bad_topic.returncode == 2
    assert "unknown topic 'sport'" in bad_topic.stderr

    explained = run(config, "explain", str(record["id"])).stdout
    assert "regional-architecture: score" in explained
    # The long name stays in explain (the digest shows the short chip label).
    assert "1. " in explained
    assert "Regional architecture: EAS, ARF" in explained
    assert "matched '" in explained
    assert "countries: " in explained

    # A broken rule file is refused with file, rule, key and reason; the old tags stay.
    topics_file = tmp_path / "topics.toml"
    good = topics_file.read_text("utf-8")
    topics_file.write_text(
        good + '\n[topics.sport]\nlabel = "Sport"\nthreshold = "high"\n', "utf-8"
    )
    refused = run(config, "retag", check=False)
    assert refused.returncode == 2
    assert f"{topics_file}: topics.sport.threshold" in refused.stderr
    topics_file.write_text(good, "utf-8")
    again = [json.loads(x) for x in run(config, "items", "--json").stdout.splitlines()]
    assert again[0]["topics"] == record["topics"]

    # Drop the regional-architecture rule: retag removes the tag without fetching anything.
    requests_before = len(http_server.requests)
    start = good.index("[topics.regional-architecture]")
    end = good.index("\n[topics.", start + 1)
    topics_file.write_text(good[:start] + good[end + 1 :], "utf-8")
    assert "re-tagged 1 item(s)" in run(config, "retag").stdout
    retagged = json.loads(run(config, "items", "--json").stdout)
    assert "regional-architecture" not in {t["id"] for t in retagged["topics"]}
    assert len(http_server.requests) == requests_before


def test_check_config_compiles_template_overrides(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("Local", "http://127.0.0.1:9/feed")])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "digest.md.j2").write_text("# {{ model.name\n", "utf-8")
    config.write_text(
        config.read_text("utf-8") + '[[digests]]\nname = "daily"\ntemplates_dir = "mine"\n',
        "utf-8",
    )
    done = run(config, "check-config", check=False)
    assert done.returncode == 2
    assert "digests (daily).templates_dir" in done.stderr
    assert "digest.md.j2:1" in done.stderr
