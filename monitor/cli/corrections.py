"""Command line: `corrections list|split|untag|undo|export`. I/O: terminal, files, database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from monitor.cli import EXIT_USAGE, _errors, _fail, _iso, _opened_store, _State, cli
from monitor.errors import CorrectionError
from monitor.models import Correction
from monitor.pipeline.corrections import (
    export_corrections,
    list_corrections,
    remove_tag,
    split_item,
    undo_correction,
)
from monitor.store import Store

JSON_HELP = "One JSON object per correction."


@cli.group()
def corrections() -> None:
    """Corrections of stories and topics: "not the same story" and "wrong topic"."""


@corrections.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def list_command(state: _State, as_json: bool) -> None:
    """Every correction, oldest first; undone ones say when."""
    with _errors(), _opened_store(state.config, sync=False) as store:
        found = list_corrections(store)
    for correction in found:
        _echo(correction, as_json)
    if not found and not as_json:
        click.echo("no corrections")


@corrections.command("split")
@click.argument("item")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def split_command(state: _State, item: str, as_json: bool) -> None:
    """Not the same story: ITEM (id or URL) gets a story of its own and never rejoins this one."""
    with _errors(), _opened_store(state.config, sync=False) as store:
        done = _correct(lambda: split_item(store, _item_id(store, item)))
    _echo(done, as_json)


@corrections.command("untag")
@click.argument("item")
@click.argument("topic")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def untag_command(state: _State, item: str, topic: str, as_json: bool) -> None:
    """Wrong topic: take TOPIC off ITEM (id or URL); re-tagging keeps it off."""
    with _errors(), _opened_store(state.config, sync=False) as store:
        done = _correct(lambda: remove_tag(store, _item_id(store, item), topic))
    _echo(done, as_json)


@corrections.command("undo")
@click.argument("correction_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def undo_command(state: _State, correction_id: int, as_json: bool) -> None:
    """Undo correction ID: a split item is decided again, a removed tag comes back."""
    with _errors():
        config = state.config
        with _opened_store(config, sync=False) as store:
            done = _correct(lambda: undo_correction(store, correction_id, dedupe=config.dedupe))
    _echo(done, as_json)


@corrections.command("export")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@click.pass_obj
def export_command(state: _State, output: Path | None) -> None:
    """The active corrections as labelled data for the dev sets (JSON lines): splits as
    reports of different events (tests/eval/eval_events.py --data FILE), untags as negative
    topic labels (tests/eval/eval_tagging.py --labels FILE)."""
    with _errors(), _opened_store(state.config, sync=False) as store:
        records = export_corrections(store)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if output is None:
        click.echo(lines, nl=False)
        return
    try:
        output.write_text(lines, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_USAGE)
    click.echo(f"exported {len(records)} record(s) to {output}", err=True)


def correction_json(correction: Correction) -> dict[str, Any]:
    """A correction as `corrections list --json` prints it."""
    return {
        "id": correction.id,
        "kind": correction.kind,
        "item_id": correction.item_id,
        "story_id": correction.story_id,
        "new_story_id": correction.new_story_id,
        "topic": correction.topic,
        "created_at": _iso(correction.created_at),
        "undone_at": _iso(correction.undone_at),
        "via": correction.via,
    }


def _echo(correction: Correction, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(correction_json(correction), ensure_ascii=False))
        return
    if correction.kind == "split":
        what = f"split from story {correction.story_id} into story {correction.new_story_id}"
    else:
        what = f"topic {correction.topic} removed"
    undone = f", undone {correction.undone_at:%Y-%m-%d %H:%M}" if correction.undone_at else ""
    click.echo(
        f"{correction.id}  {correction.kind}  item {correction.item_id}: {what}  "
        f"({correction.via}, {correction.created_at:%Y-%m-%d %H:%M}{undone})"
    )


def _item_id(store: Store, ref: str) -> int:
    """An item by id or URL; a usage error naming it when there is none."""
    found = store.get_item(ref)
    if found is None:
        _fail(f"no stored item with id or URL {ref!r}", EXIT_USAGE)
    return found.id


def _correct(do: Any) -> Correction:
    """Run a correction; a bad item, topic or correction id is a usage error (DESIGN §3)."""
    try:
        result: Correction = do()
    except CorrectionError as exc:
        _fail(str(exc), EXIT_USAGE)
    return result
