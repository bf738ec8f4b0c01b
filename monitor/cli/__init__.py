"""Command line: poll, digest, items, explain, retag. I/O: terminal, files, network.

The management commands (sources, corpus, check-config, demo) are in `monitor.cli.manage`.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monitor import __version__, logs
from monitor.config import Config, DigestConfig, find_config, load_config
from monitor.durations import iso, parse_time
from monitor.errors import (
    ConfigError,
    MonitorError,
    StoreError,
)
from monitor.models import Item, Source
from monitor.store import Store

if TYPE_CHECKING:
    from monitor.pipeline import PollOutcome
    from monitor.pipeline.digest import SendOutcome, Window
    from monitor.tag import Tags

EXIT_USAGE = 2
EXIT_NOTHING_DONE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _State:
    config_path: str | None
    verbose: int = 0
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            path = find_config(self.config_path, os.environ, Path.cwd())
            self._config = load_config(path, os.environ)
        return self._config


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"monitor: {message}", err=True)
    sys.exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn our exceptions into messages and DESIGN §3 exit codes."""
    try:
        yield
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        _fail(f"storage: {exc}", EXIT_NOTHING_DONE)
    except MonitorError as exc:
        _fail(str(exc), EXIT_NOTHING_DONE)


@contextmanager
def _opened_store(config: Config, *, sync: bool = True) -> Iterator[Store]:
    """The database; `sync` records the configured sources first (read-only commands skip it)."""
    store = Store.open(config.storage_url, now=utcnow())
    try:
        if sync:
            store.sync_sources(config.sources, utcnow())
        yield store
    finally:
        store.close()


class _Commands(click.Group):
    """The command group; the management commands load when one of them is named or listed
    (importing them, with jinja2 and the digest renderer, cost a warm poll's start-up about
    0.1 s: issue 14)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name not in self.commands:
            _load_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        _load_commands()
        return super().list_commands(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $MONITOR_CONFIG, ./config/monitor.toml, packaged defaults).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.version_option(__version__, prog_name="monitor")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """News monitor and digest mailer."""
    gc.freeze()  # the modules imported so far stay: see `poll`
    level = logging.WARNING - 10 * min(verbose, 2)
    logs.configure(level, os.environ.get("MONITOR_LOG_FORMAT", "text"))
    ctx.obj = _State(config_path, verbose=verbose)


def main() -> None:
    cli(prog_name="monitor")


# -- run ----------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines as text or JSON (default: [daemon] log_format, or $MONITOR_LOG_FORMAT).",
)
@click.pass_obj
def run(state: _State, log_format: str | None) -> None:
    """The daemon: scheduled polls and digests until SIGTERM/SIGINT, then drain and exit 0.
    SIGHUP re-reads the config."""
    with _errors():
        config = state.config
        fmt = log_format or os.environ.get("MONITOR_LOG_FORMAT") or config.daemon.log_format
        logs.configure(logging.DEBUG if state.verbose > 1 else logging.INFO, fmt)
        for noisy in ("apscheduler", "httpx", "httpcore"):  # one line per request or job run
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # "skipped: maximum number of running instances" each second of a slow poll: counted
        # in /metrics (monitor_job_runs_skipped_total) instead.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        from monitor.daemon import run_daemon  # the daemon's imports only for the daemon

        sys.exit(run_daemon(config, os.environ))


# -- poll ---------------------------------------------------------------------------------------


@cli.command()
@click.option("--source", "names", multiple=True, metavar="NAME", help="Only this source.")
@click.option("--force", is_flag=True, help="Ignore a Retry-After embargo too.")
@click.pass_obj
def poll(state: _State, names: tuple[str, ...], force: bool) -> None:
    """Fetch all (or the named) sources now and print a summary."""
    with _errors():
        config = state.config
        selected = _select_sources(config, names)
        from monitor.pipeline import poll_once

        # The modules and the config live as long as the process: the cyclic collector need
        # not walk them again at every collection of the poll (a tenth of a warm poll's CPU
        # for 1,000 feeds, issue 14). What the poll itself allocates is collected as before.
        gc.freeze()
        finished: list[PollOutcome] = []
        try:
            with _opened_store(config) as store, _progress(len(selected)) as advance:

                def progress(outcome: PollOutcome) -> None:
                    finished.append(outcome)
                    advance(outcome)

                outcomes = poll_once(
                    config, store, selected, clock=utcnow, force=force, progress=progress
                )
        except KeyboardInterrupt:
            # Items are stored as they come, and the poll writes the finished sources' state
            # on its way out, so nothing done is lost; a source cut short starts over.
            _print_poll_summary(finished)
            click.echo(
                f"interrupted: {len(finished)} of {len(selected)} source(s) finished; every item "
                "stored so far is kept, and the rest are polled again next time",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)
        _print_poll_summary(outcomes)
        attempted = [o for o in outcomes if o.outcome != "skipped"]
        if attempted and all(o.outcome == "failed" for o in attempted):
            sys.exit(EXIT_NOTHING_DONE)


def _select_sources(config: Config, names: Sequence[str]) -> list[Source]:
    if not names:
        if not config.sources:
            _fail(f"{config.sources_file}: no sources configured", EXIT_USAGE)
        return list(config.sources)
    unknown = [n for n in names if config.source(n) is None]
    if unknown:
        known = ", ".join(repr(s.name) for s in config.sources)
        _fail(f"unknown source {', '.join(map(repr, unknown))}; known: {known}", EXIT_USAGE)
    return [s for s in config.sources if s.name in names]


@contextmanager
def _progress(total: int) -> Iterator[Callable[[PollOutcome], None]]:
    """A progress bar on a terminal; nothing when piped."""
    if not sys.stderr.isatty():
        yield lambda _outcome: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("polling", total=total)
        yield lambda outcome: bar.update(task, advance=1, description=outcome.source)


def _print_poll_summary(outcomes: Sequence[PollOutcome], *, err: bool = False) -> None:
    for o in outcomes:
        if o.outcome == "failed":
            line = f"{o.source}: failed ({o.error_class}): {o.error}"
        elif o.outcome == "skipped":
            when = _iso(o.next_check_at) if o.next_check_at else "later"
            line = f"{o.source}: skipped (Retry-After until {when}; --force to poll anyway)"
        elif o.outcome == "not_modified":
            line = f"{o.source}: unchanged (304 Not Modified)"
        else:
            parts = [f"{o.new} new"]
            for label, count in (
                ("duplicate", o.duplicate),
                ("known", o.known),
                ("baseline", o.baseline),
                ("updated", o.updated),
                ("unchanged", o.unchanged),
                ("article pages failed", o.page_failures),
            ):
                if count:
                    parts.append(f"{count} {label}")
            line = f"{o.source}: ok, {', '.join(parts)}"
        click.echo(_terminal_safe(line), err=err)
    failed = sum(o.outcome == "failed" for o in outcomes)
    new = sum(o.new for o in outcomes)
    click.echo(f"total: {new} new item(s); {failed} of {len(outcomes)} source(s) failed", err=err)


# -- digest -------------------------------------------------------------------------------------


@cli.command()
@click.option("--name", metavar="N", help="Which [[digests]] entry (default: the first).")
@click.option("--since", metavar="T", help="Window start (default: end of the last digest).")
@click.option("--until", metavar="T", help="Window end (default: now).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "html", "text"]),
    default="markdown",
    show_default=True,
)
@click.option("--output", metavar="PATH|-", default="-", help="Where to write it (- = stdout).")
@click.option("--no-poll", is_flag=True, help="Render from what is stored; fetch nothing.")
@click.option("--send", is_flag=True, help="Deliver it through the outbox (archive and/or email).")
@click.pass_obj
def digest(
    state: _State,
    name: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    output: str,
    no_poll: bool,
    send: bool,
) -> None:
    """One-shot digest: poll, then render the window.

    Without --send it is a preview of every item of the window and changes nothing. With
    --send the digest is stored in the outbox, then delivered per the digest's `formats`;
    items an earlier sent digest of the same name carried are left out.
    """
    with _errors():
        config = state.config
        chosen = _digest_config(config, name)
        now = utcnow()
        if not no_poll:
            from monitor.pipeline import poll_once

            with _opened_store(config) as store, _progress(len(config.sources)) as advance:
                outcomes = poll_once(config, store, config.sources, clock=utcnow, progress=advance)
            _print_poll_summary(outcomes, err=True)  # stdout carries the digest
            now = utcnow()
        with _opened_store(config, sync=False) as store:
            from monitor.pipeline.digest import Window, collect, next_window, render

            default = next_window(store, chosen.name, now)
            start = _time_option("--since", since, now) or default.start
            end = _time_option("--until", until, now) or now
            if start >= end and since is None and until is None:
                click.echo(
                    f"digest {chosen.name!r}: the last one already covers up to "
                    f"{_iso(start)}; nothing to do",
                    err=True,
                )
                return
            if start >= end:
                _fail(f"empty window: --since {_iso(start)} is not before --until {_iso(end)}", 2)
            if send:
                _send(store, config, chosen, Window(start, end), now)
                return
            inp = collect(store, config, chosen, Window(start, end), for_sending=False, now=now)
        rendered = render(chosen, inp)
        body = {"markdown": rendered.markdown, "html": rendered.html, "text": rendered.text}[fmt]
        if output == "-":
            click.echo(body, nl=not body.endswith("\n"))
        else:
            try:
                Path(output).write_text(body, encoding="utf-8")
            except OSError as exc:
                _fail(f"--output: cannot write {output}: {exc.strerror or exc}", EXIT_NOTHING_DONE)


def _send(
    store: Store, config: Config, chosen: DigestConfig, window: Window, now: datetime
) -> None:
    from monitor.pipeline.digest import deliver_due, send_digest

    for retried in deliver_due(store, config, now, everything=True):  # earlier failures first
        _report_send(retried)
    outcome = send_digest(store, config, chosen, window, now=now)
    _report_send(outcome)
    if outcome.status == "pending":
        sys.exit(EXIT_NOTHING_DONE)


def _report_send(outcome: SendOutcome) -> None:
    r = outcome.record
    head = f"digest {r.name!r} {_iso(r.window_start)} – {_iso(r.window_end)}"
    if outcome.status == "sent":
        line = f"{head}: sent, Message-ID {r.message_id}"
    elif outcome.status == "already_sent":
        line = f"{head}: already sent at {_iso(r.sent_at)}; nothing sent again"
    elif outcome.status == "empty":
        line = f"{head}: nothing new; not sent (send_empty = false)"
    else:
        problems = "; ".join(str(e) for e in outcome.errors)
        line = (
            f"{head}: not delivered: {problems}. It stays in the outbox and is retried "
            f"(next attempt {_iso(r.next_attempt_at)}) by `monitor digest --send` or `monitor run`"
        )
    click.echo(_terminal_safe(line), err=True)


def _digest_config(config: Config, name: str | None) -> DigestConfig:
    if not config.digests:
        _fail(f"{config.path}: no [[digests]] configured", EXIT_USAGE)
    if name is None:
        return config.digests[0]
    for d in config.digests:
        if d.name == name:
            return d
    known = ", ".join(repr(d.name) for d in config.digests)
    _fail(f"--name: no digest {name!r} in {config.path}; configured: {known}", EXIT_USAGE)


# -- items --------------------------------------------------------------------------------------


@cli.command()
@click.option("--since", metavar="T", help="First seen at or after T (ISO date/time or 24h, 7d).")
@click.option("--until", metavar="T", help="First seen before T.")
@click.option(
    "--status",
    type=click.Choice(["new", "known", "duplicate", "all"]),
    default="all",
    show_default=True,
)
@click.option("--source", "source_name", metavar="NAME", help="Only items from this source.")
@click.option("--topic", metavar="ID", help="Only items tagged with this topic.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (the newest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--with-text", is_flag=True, help="Include the extracted text (with --json).")
@click.pass_obj
def items(
    state: _State,
    since: str | None,
    until: str | None,
    status: str,
    source_name: str | None,
    topic: str | None,
    limit: int | None,
    as_json: bool,
    with_text: bool,
) -> None:
    """List stored items."""
    with _errors():
        now = utcnow()
        start = _time_option("--since", since, now)
        end = _time_option("--until", until, now)
        config = state.config
        if topic is not None and topic not in config.taxonomy.topic_ids:
            known = ", ".join(config.taxonomy.topic_ids)
            _fail(f"--topic: unknown topic {topic!r} in {config.topics_file}; known: {known}", 2)
        with _opened_store(config, sync=False) as store:
            found = store.list_items(
                since=start,
                until=end,
                statuses=None if status == "all" else [status],
                source=source_name,
                topic=topic,
            )
            if limit is not None:
                found = found[-limit:]
            stories = store.story_info([i.story_id for i in found if i.story_id is not None])
        if as_json:
            from monitor.views import item_json

            for item in found:
                story = None if item.story_id is None else stories.get(item.story_id)
                record = item_json(item, with_text=with_text, story=story)
                click.echo(json_line(record))
            return
        _print_items_table(found)


def _time_option(name: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, now)
    except ValueError as exc:
        _fail(f"{name}: {exc}", EXIT_USAGE)


_iso = iso


def _print_items_table(found: Sequence[Item]) -> None:
    if not sys.stdout.isatty():
        for item in found:
            when = _iso(item.published_at or item.fetched_at)
            title = _clip(item.title, 300)
            click.echo(_terminal_safe(f"{item.id}\t{item.status}\t{when}\t{item.source}\t{title}"))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "status", "published", "source", "title", "lang", "extraction")
    for item in found:
        shown = item.published_at or item.fetched_at
        table.add_row(
            str(item.id),
            item.status + (" (baseline)" if item.baseline else ""),
            shown.strftime("%Y-%m-%d %H:%M"),
            _terminal_safe(item.source),
            _terminal_safe(_clip(item.title, 120)),
            item.language or "?",
            item.extraction,
        )
    Console().print(table)


_JSON_UNSAFE = re.compile("[\u0080-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_line(record: Any) -> str:
    """One JSON object on one line. Bidi overrides and C1 controls from untrusted text are
    written as \\u escapes (the same JSON value), so they cannot reorder a terminal's line."""
    text = json.dumps(record, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _terminal_safe(text: str) -> str:
    """Untrusted text on a terminal: no control characters or bidi overrides."""
    if text.isascii() and text.isprintable():
        return text  # nothing to replace: most lines, checked without a loop in Python
    return "".join(" " if ch in "\r\n\t" else ("\ufffd" if _is_unsafe(ch) else ch) for ch in text)


def _is_unsafe(ch: str) -> bool:
    code = ord(ch)
    return (
        code < 0x20
        or code == 0x7F
        or 0x80 <= code < 0xA0
        or 0x202A <= code <= 0x202E
        or (0x2066 <= code <= 0x2069)
    )


# -- explain ------------------------------------------------------------------------------------


@cli.command()
@click.argument("ref", metavar="ITEM")
@click.pass_obj
def explain(state: _State, ref: str) -> None:
    """Why an item is new, duplicate or known (ITEM: id or URL)."""
    from monitor.views import explain_item, explain_lines

    with _errors(), _opened_store(state.config, sync=False) as store:
        item = store.get_item(ref)
        if item is None:
            _fail(f"no stored item with id or URL {ref!r}", EXIT_USAGE)
        explanation = explain_item(store, state.config, item)
    for line in explain_lines(explanation):
        click.echo(_terminal_safe(line))


# -- retag --------------------------------------------------------------------------------------


@cli.command()
@click.pass_obj
def retag(state: _State) -> None:
    """Re-tag every stored item with the current topic rules (fetches nothing)."""
    with _errors():
        config = state.config  # a rule file with an error stops here: the old tags stay
        from monitor.tag import tag_article

        def tag(item: Item) -> Tags:
            return tag_article(
                config.taxonomy, title=item.title, text=item.text, language=item.language
            )

        with _opened_store(config) as store:
            count = store.retag(tag)
    click.echo(f"re-tagged {count} item(s) with {config.topics_file}")


def _load_commands() -> None:
    """Register the management commands: their modules add themselves to `cli` (they use
    the above); loaded only when one of them is asked for, as a poll needs none of them."""
    from monitor.cli import corrections, manage  # noqa: F401
    from monitor.cli.cluster import cluster

    cli.add_command(cluster)


__all__ = ["cli", "main"]
