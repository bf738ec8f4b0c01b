"""Evaluate story grouping end to end: real reports polled from local feeds; does I/O (127.0.0.1).

Usage: .venv/bin/python tests/eval/eval_events_poll.py [--split train] [--data FILE]

`eval_events.py` hands the reports of a split straight to `StoryIndex`. This script takes the
path a user's reports take: each report becomes an article page on a local HTTP server, the
reports are shared out among four feeds by their outlet, and `monitor poll` (a subprocess, the
shipped seed corpus loaded, a real SQLite file) fetches, extracts and decides them. Twice:

- "backfill": the four feeds in one poll;
- "one by one": one feed a poll, in the reverse order, each poll a new process that reloads
  the index from the database (as on another day).

Reported: B-cubed precision and recall against the events for both runs, whether the two
runs give the same partition, whether it is the partition `eval_events.py` computes from the
same reports, reports linked to a seed's story (the set holds no Russia-ASEAN event, so any
is a false link), links between reports more than 30 days apart, and reports whose own title
is missing from the Markdown digest of the window (neither a headline nor among a story's
"also covered by" reports; a long list ends "and N more").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from monitor.dedupe.story import MAX_SPAN_DAYS, MEAN_THRESHOLD, STORY_THRESHOLD  # noqa: E402
from tests.eval.eval_events import (  # noqa: E402
    DATA,
    HELD_OUT,
    bcubed,
    far_links,
    features_of,
    groups,
    load,
    partition,
)
from tests.servers import LocalServer  # noqa: E402
from tests.test_cli import run, write_config  # noqa: E402
from tests.test_dedupe_e2e import OUTLET_FEEDS, report_site  # noqa: E402


def poll(
    server: LocalServer, home: Path, feeds: list[str], batches: list[list[str]]
) -> list[dict[str, object]]:
    """Poll the `feeds` in `batches` (one `monitor poll` each); the stored items as JSON."""
    home.mkdir()
    config = write_config(home, [(name, server.url(f"/{name}.xml")) for name in feeds])
    config.write_text(
        config.read_text("utf-8") + '[poll]\nbackfill = "36500d"\n[[digests]]\nname = "all"\n',
        "utf-8",
    )
    for names in batches:
        run(config, "poll", *(f"--source={name}" for name in names))
    records = [json.loads(x) for x in run(config, "items", "--json").stdout.splitlines()]
    digest = run(config, "digest", "--no-poll", "--since", "1d").stdout
    shown = digest.replace("\\", "")  # Markdown escapes
    for record in records:  # a headline, or an "also covered by" entry (its title cut short)
        record["in_digest"] = str(record["title"])[:60].rstrip() in shown
    return records


def stories_of(rows: list[dict[str, str]], records: list[dict[str, object]]) -> dict[str, int]:
    by_id = {str(r["url"]).rsplit("/", 1)[1].removesuffix(".html"): r for r in records}
    missing = [r["id"] for r in rows if r["id"] not in by_id]
    if missing:
        raise SystemExit(f"not stored by the poll: {', '.join(missing[:5])}")
    return {r["id"]: int(by_id[r["id"]]["story"]["id"]) for r in rows}  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="train")
    parser.add_argument("--data", type=Path, nargs="+", default=[DATA, HELD_OUT])
    args = parser.parse_args()
    rows = [r for path in args.data for r in load(path) if r["split"] == args.split]
    if not rows:
        raise SystemExit(f"no report in split {args.split!r}")
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    params = {"threshold": STORY_THRESHOLD, "mean": MEAN_THRESHOLD, "span": MAX_SPAN_DAYS}
    direct = groups(rows, partition(rows, features_of(rows), order, params))
    print(f"{args.split}: {len(rows)} reports of {len({r['event'] for r in rows})} events")
    found = {}
    with tempfile.TemporaryDirectory() as tmp, LocalServer() as server:
        served = report_site(server, rows)
        feeds = [name for name in OUTLET_FEEDS if name in served]
        for name, batches in (
            ("backfill", [feeds]),
            ("one by one", [[f] for f in reversed(feeds)]),
        ):
            records = poll(server, Path(tmp) / name.replace(" ", "-"), feeds, batches)
            stories = stories_of(rows, records)
            found[name] = groups(rows, stories)
            p, r = bcubed(rows, stories)
            seeded = sum(1 for x in records if x["story"]["seed_refs"])  # type: ignore[index]
            hidden = sum(1 for x in records if x["status"] == "new" and not x["in_digest"])
            new = sum(1 for x in records if x["status"] == "new")
            print(
                f"  {name:<10}  P {p:.3f}  R {r:.3f}  stories {len(found[name])}  far links "
                f"{far_links(rows, stories)}  linked to a seed's story {seeded}  new items "
                f"without their own title in the digest {hidden} of {new}"
            )
    same = found["backfill"] == found["one by one"]
    print(f"  the two polls give the same partition: {'yes' if same else 'NO'}")
    print(
        f"  the same partition as eval_events.py: {'yes' if found['backfill'] == direct else 'NO'}"
    )


if __name__ == "__main__":
    main()
