"""`monitor corrections ...` end to end: real processes, a real SQLite file, a local site."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.daemon_process import DaemonProcess, free_port, health
from tests.servers import LocalServer
from tests.test_cli import ROOT, run, write_config
from tests.test_corrections import serve_late_reprint, serve_reports, serve_unrelated
from tests.test_daemon import write_config as daemon_config
from tests.test_pipeline import rss
from tests.topics_data import load_news


def items_by_source(config: Path) -> dict[str, dict[str, Any]]:
    rows = map(json.loads, run(config, "items", "--json").stdout.splitlines())
    return {r["source"]: r for r in rows}


def configured(tmp_path: Path, server: LocalServer, *, late: bool = False) -> Path:
    sources = [(s.name, s.url) for s in serve_reports(server)]
    if late:
        reprint = serve_late_reprint(server)
        sources.append((reprint.name, reprint.url))
    config = write_config(tmp_path, sources)
    config.write_text(config.read_text("utf-8") + '[poll]\nbackfill = "36500d"\n', "utf-8")
    return config


def test_split_from_the_command_line_survives_a_restart_and_the_next_poll(
    http_server: LocalServer, tmp_path: Path
) -> None:
    config = configured(tmp_path, http_server)
    run(config, "poll")
    before = items_by_source(config)
    story = before["C"]["story"]["id"]
    assert {r["story"]["id"] for r in before.values()} == {story}
    assert before["C"]["story"]["size"] == 3

    done = json.loads(run(config, "corrections", "split", str(before["C"]["id"]), "--json").stdout)
    assert (done["kind"], done["item_id"], done["story_id"], done["via"]) == (
        "split",
        before["C"]["id"],
        story,
        "cli",
    )
    assert done["undone_at"] is None
    after = items_by_source(config)
    assert after["C"]["story"] == {
        "id": done["new_story_id"],
        "size": 1,
        "sources": ["C"],
        "seed_refs": [],
    }
    assert after["A"]["story"]["id"] == after["B"]["story"]["id"] == story
    assert after["A"]["story"]["size"] == 2
    assert "correction 1 (cli)" in run(config, "explain", str(before["C"]["id"])).stdout

    # Another process (a new poll: the index rebuilt from the store) with a similar report
    # dated before the story: every member is decided again, and the split item stays apart.
    config = configured(tmp_path, http_server, late=True)
    run(config, "poll")
    polled = items_by_source(config)
    assert polled["C"]["story"]["id"] == done["new_story_id"]
    assert polled["A"]["story"]["id"] == polled["B"]["story"]["id"] == story
    assert polled["D"]["story"]["id"] == story

    listed = run(config, "corrections", "list", "--json").stdout.splitlines()
    assert [json.loads(line) for line in listed] == [done]
    assert (
        f"split from story {story} into story {done['new_story_id']}"
        in run(config, "corrections", "list").stdout
    )

    undone = json.loads(run(config, "corrections", "undo", "1", "--json").stdout)
    assert undone["undone_at"] is not None
    assert items_by_source(config)["C"]["story"]["id"] == story  # decided again: it rejoins


def test_untag_retag_export_and_the_eval_scripts_read_the_export(
    http_server: LocalServer, tmp_path: Path
) -> None:
    config = configured(tmp_path, http_server)
    run(config, "poll")
    items = items_by_source(config)
    target = items["B"]
    topic = target["topics"][0]["id"]
    untag = json.loads(
        run(config, "corrections", "untag", str(target["id"]), topic, "--json").stdout
    )
    assert (untag["kind"], untag["topic"]) == ("untag", topic)
    assert topic not in {t["id"] for t in items_by_source(config)["B"]["topics"]}
    run(config, "retag")
    assert topic not in {t["id"] for t in items_by_source(config)["B"]["topics"]}
    split = json.loads(run(config, "corrections", "split", str(items["C"]["id"]), "--json").stdout)

    exported = tmp_path / "corrections.jsonl"
    run(config, "corrections", "export", "--output", str(exported))
    records = [json.loads(line) for line in exported.read_text("utf-8").splitlines()]
    stories = [r for r in records if r["set"] == "stories"]
    assert {r["event"] for r in stories} == {
        f"correction-{split['id']}-item",
        f"correction-{split['id']}-story",
    }
    assert len(stories) == 3
    recurring = ROOT / "tests" / "data" / "stories" / "recurring.jsonl"
    first = recurring.read_text("utf-8").split("\n", 1)[0]
    wanted = set(json.loads(first)) | {"set", "origin"}
    assert all(set(r) == wanted for r in stories)
    [label] = [r for r in records if r["set"] == "topics"]
    assert label["not_topics"] == [topic]
    assert topic not in label["topics"]
    [news] = load_news(exported)  # the topic set's loader reads it
    assert (news.id, news.split, news.title) == (label["id"], "corrections", target["title"])

    # The story evaluation scores the story layer against the analyst's labels: without the
    # correction, the three reports are one story, so precision falls short of 1.
    evaluated = subprocess.run(
        [sys.executable, "tests/eval/eval_events.py", "--data", str(exported), "--orders", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    ).stdout
    [line] = [x for x in evaluated.splitlines() if x.startswith("corrections")]
    assert "3 reports,   2 events ->   1 stories" in line
    assert "B-cubed P 0.556 R 1.000" in line
    tagged = subprocess.run(
        [sys.executable, "tests/eval/eval_tagging.py", "--labels", str(exported)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    ).stdout
    assert "corrections split" in tagged

    undone = json.loads(run(config, "corrections", "undo", str(untag["id"]), "--json").stdout)
    assert undone["undone_at"] is not None
    assert topic in {t["id"] for t in items_by_source(config)["B"]["topics"]}


def test_bad_ids_are_usage_errors_that_name_what_is_wrong(
    http_server: LocalServer, tmp_path: Path
) -> None:
    config = configured(tmp_path, http_server)
    run(config, "poll")
    item = items_by_source(config)["A"]["id"]
    cases = [
        (("split", "999"), "no stored item with id or URL '999'"),
        (("untag", "999", "diplomacy"), "no stored item with id or URL '999'"),
        (("untag", str(item), "no-such-topic"), f"item {item} is not tagged with topic"),
        (("undo", "7"), "correction 7: no such correction"),
    ]
    for args, message in cases:
        done = run(config, "corrections", *args, check=False)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr
        assert done.stdout == ""
    bad = run(config, "corrections", "undo", "seven", check=False)
    assert bad.returncode == 2
    assert "'seven' is not a valid integer" in bad.stderr
    assert run(config, "corrections", "list").stdout == "no corrections\n"
    assert run(config, "corrections", "list", "--json").stdout == ""


def test_a_running_daemon_obeys_a_split_made_from_the_command_line_at_its_next_decision(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """The daemon's index was built before the split; the CLI is another process. (That a
    stale index would take a colliding story id is shown deterministically in
    test_corrections.py; here the real processes agree end to end.)"""
    sources = {s.name: s.url for s in serve_reports(http_server)}
    later = [serve_late_reprint(http_server), serve_unrelated(http_server)]
    for source in later:  # their feeds are empty until the split is made
        http_server.add(f"/{source.name.lower()}.xml", rss([]))
    sources.update({s.name: s.url for s in later})
    port = free_port()
    config = daemon_config(tmp_path, sources, digests=False, server_port=port)
    with DaemonProcess(config) as daemon:
        # Only once the daemon has opened (created) the database does another process read it.
        daemon.wait_for("/healthz", lambda: health(port))
        daemon.wait_for("three stored reports", lambda: len(stored(config)) == 3, timeout=60)
        before = stored(config)
        story = before["C"]["story"]["id"]
        done = json.loads(
            run(config, "corrections", "split", str(before["C"]["id"]), "--json").stdout
        )
        serve_late_reprint(http_server)
        serve_unrelated(http_server)
        daemon.wait_for("D and E stored", lambda: {"D", "E"} <= set(stored(config)), timeout=60)
        daemon.wait_log("corrections_obeyed")
    after = stored(config)
    assert after["C"]["story"]["id"] == done["new_story_id"] != story
    assert after["A"]["story"]["id"] == after["B"]["story"]["id"] == story
    assert after["D"]["story"]["id"] == story
    # The daemon's next new story takes an id past the split's: no collision.
    assert after["E"]["story"]["id"] not in {story, done["new_story_id"]}
    assert after["E"]["story"]["size"] == 1


def stored(config: Path) -> dict[str, dict[str, Any]]:
    """The stored items by source, as another process reads them (`items --json`)."""
    done = run(config, "items", "--json", check=False)
    return {} if done.returncode else items_by_source(config)
