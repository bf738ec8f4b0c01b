"""Command line: poll, items, explain, sources, check-config. I/O: terminal, files, network."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import jinja2

from monitor import __version__
from monitor.config import Config, DigestConfig, find_config, load_config
from monitor.digest.render import TEMPLATES, make_environment
from monitor.durations import parse_time
from monitor.errors import (
    ConfigError,
    MonitorError,
    ParseError,
    Problem,
    SourceError,
    StoreError,
)
from monitor.fetch import Fetcher, make_client
from monitor.models import Item, Source, SourceHealth
from monitor.parse import parse_feed
from monitor.pipeline import PollOutcome, poll_once
from monitor.pipeline.digest import (
    SendOutcome,
    Window,
    collect,
    deliver_due,
    next_window,
    render,
    send_digest,
)
from monitor.resources import default_templates_dir
from monitor.sources import parse_opml, render_opml, render_sources
from monitor.store import Store
from monitor.tag import FACET_KINDS, Tags, explain_scores, explain_tag, score_article, tag_article

EXIT_USAGE = 2
EXIT_NOTHING_DONE = 3
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _State:
    config_path: str | None
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s %(message)s", stream=sys.stderr)
    ctx.obj = _State(config_path)


def main() -> None:
    cli(prog_name="monitor")


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
        with _opened_store(config) as store, _progress(len(selected)) as advance:
            outcomes = poll_once(
                config, store, selected, clock=utcnow, force=force, progress=advance
            )
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
            with _opened_store(config) as store, _progress(len(config.sources)) as advance:
                outcomes = poll_once(config, store, config.sources, clock=utcnow, progress=advance)
            _print_poll_summary(outcomes, err=True)  # stdout carries the digest
            now = utcnow()
        with _opened_store(config, sync=False) as store:
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
        if as_json:
            for item in found:
                click.echo(json.dumps(item_json(item, with_text=with_text), ensure_ascii=False))
            return
        _print_items_table(found)


def _time_option(name: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, now)
    except ValueError as exc:
        _fail(f"{name}: {exc}", EXIT_USAGE)


def item_json(item: Item, *, with_text: bool = False) -> dict[str, Any]:
    """The DESIGN §3 `items --json` object."""
    dup = item.duplicate_of
    data: dict[str, Any] = {
        "id": item.id,
        "url": item.url,
        "canonical_url": item.canonical_url,
        "source": item.source,
        "title": item.title,
        "published_at": _iso(item.published_at),
        "fetched_at": _iso(item.fetched_at),
        "language": item.language,
        "status": item.status,
        "duplicate_of": None
        if dup is None
        else {"kind": dup.kind, "ref": dup.ref, "similarity": dup.similarity, "method": dup.method},
        "story": None,
        "topics": [
            {
                "id": t.id,
                "score": t.score,
                "threshold": t.threshold,
                "evidence": [
                    {"term": term, "lang": lang, "count": n} for term, lang, n in t.evidence
                ],
            }
            for t in item.topics
        ],
        "facets": {kind: list(item.facets.get(kind, ())) for kind in FACET_KINDS},
        "extraction": item.extraction,
        "text_chars": item.text_chars,
        "guid": item.guid,
        "baseline": item.baseline,
    }
    if with_text:
        data["text"] = item.text
    return data


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _print_items_table(found: Sequence[Item]) -> None:
    if not sys.stdout.isatty():
        for item in found:
            when = _iso(item.published_at or item.fetched_at)
            click.echo(
                _terminal_safe(f"{item.id}\t{item.status}\t{when}\t{item.source}\t{item.title}")
            )
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
            _terminal_safe(item.title[:120]),
            item.language or "?",
            item.extraction,
        )
    Console().print(table)


def _terminal_safe(text: str) -> str:
    """Untrusted text on a terminal: no control characters or bidi overrides."""
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
    with _errors(), _opened_store(state.config, sync=False) as store:
        item = store.get_item(ref)
        if item is None:
            _fail(f"no stored item with id or URL {ref!r}", EXIT_USAGE)
        revisions = store.revisions(item.id)
    lines = [
        f"item {item.id}: {item.title}",
        f"  source: {item.source}  url: {item.url}",
        f"  canonical url: {item.canonical_url}",
        f"  first seen: {_iso(item.fetched_at)}  published: {_iso(item.published_at) or 'unknown'}",
        f"  text: {item.text_chars} characters ({item.extraction}), language {item.language}",
        f"status: {item.status}"
        + (" (baseline: before the first poll's backfill)" if item.baseline else ""),
        "exact layer:",
    ]
    dup = item.duplicate_of
    if dup is None:
        lines.append(
            "  no stored item has the same GUID in this source, the same canonical URL, "
            "or the same normalised text"
        )
    elif dup.method == "canonical_url":
        lines.append(f"  duplicate: same canonical URL as {dup.ref} (exact match)")
    elif dup.method == "text_hash":
        lines.append(f"  duplicate: same normalised text as {dup.ref} (exact match)")
    else:
        lines.append(
            f"  {item.status}: {dup.kind} {dup.ref}, method {dup.method}, "
            f"similarity {dup.similarity:.3f}"
        )
    for rev in revisions:
        lines.append(f"  changed at {_iso(rev['changed_at'])}: was {rev['old_title']!r}")
    lines += _explain_tags(state.config, item)
    for line in lines:
        click.echo(_terminal_safe(line))


def _explain_tags(config: Config, item: Item) -> list[str]:
    """Topics with their evidence (as stored), then every other candidate and why it missed."""
    lines = [f"topics (rules: {config.topics_file}):"]
    for tag in item.topics:
        lines.append("  " + explain_tag(config.taxonomy, tag))
    if not item.topics:
        lines.append("  none")
    scores, _facets = score_article(
        config.taxonomy, title=item.title, text=item.text, language=item.language
    )
    tagged = {t.id for t in item.topics}
    missed = [s for s in scores if s.id not in tagged and s.status != "tagged"]
    if missed:
        lines.append("  candidates not tagged:")
        lines += [f"    {line}" for line in explain_scores(missed)]
    for kind in FACET_KINDS:
        values = item.facets.get(kind, ())
        lines.append(f"{kind}: {', '.join(values) if values else 'none'}")
    return lines


# -- retag --------------------------------------------------------------------------------------


@cli.command()
@click.pass_obj
def retag(state: _State) -> None:
    """Re-tag every stored item with the current topic rules (fetches nothing)."""
    with _errors():
        config = state.config  # a rule file with an error stops here: the old tags stay

        def tag(item: Item) -> Tags:
            return tag_article(
                config.taxonomy, title=item.title, text=item.text, language=item.language
            )

        with _opened_store(config) as store:
            count = store.retag(tag)
    click.echo(f"re-tagged {count} item(s) with {config.topics_file}")


# -- sources ------------------------------------------------------------------------------------


@cli.group()
def sources() -> None:
    """Manage and test sources."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def sources_list(state: _State, as_json: bool) -> None:
    """Each source's health: last success, failures, last error."""
    with _errors(), _opened_store(state.config) as store:
        health = store.list_source_health([s.name for s in state.config.sources])
    for h in health:
        if as_json:
            click.echo(json.dumps(health_json(h), ensure_ascii=False))
        else:
            last = _iso(h.last_success_at) or "never"
            line = f"{h.name}: {h.status}, last success {last}"
            if h.consecutive_failures:
                line += (
                    f", {h.consecutive_failures} failure(s), {h.last_error_class}: {h.last_error}"
                )
            click.echo(_terminal_safe(line))


def health_json(h: SourceHealth) -> dict[str, Any]:
    """The DESIGN §4 `sources list --json` object."""
    return {
        "name": h.name,
        "url": h.url,
        "status": h.status,
        "last_success_at": _iso(h.last_success_at),
        "consecutive_failures": h.consecutive_failures,
        "last_error_class": h.last_error_class,
        "last_error": h.last_error,
        "next_check_at": _iso(h.next_check_at),
    }


@sources.command("check")
@click.option("--source", "names", multiple=True, metavar="NAME", help="Only this source.")
@click.pass_obj
def sources_check(state: _State, names: tuple[str, ...]) -> None:
    """Fetch and parse each source once, store nothing, and report."""
    with _errors():
        config = state.config
        selected = _select_sources(config, names)
        results = asyncio.run(_check_sources(config, selected))
    failed = 0
    for source, message in results:
        failed += message.startswith("FAIL")
        click.echo(_terminal_safe(f"{source.name}: {message}"))
    if failed == len(results) and results:
        sys.exit(EXIT_NOTHING_DONE)


async def _check_sources(config: Config, selected: Sequence[Source]) -> list[tuple[Source, str]]:
    from monitor.discover import discover_links, parse_sitemap

    async with make_client(config.http) as client:
        fetcher = Fetcher(client, config.http)

        async def one(source: Source) -> tuple[Source, str]:
            try:
                result = await fetcher.fetch(source.url)
                if source.kind == "feed":
                    count = len(
                        parse_feed(result.body, url=result.final_url, headers=result.headers)
                    )
                elif source.kind == "sitemap":
                    found, children = parse_sitemap(result.body, url=result.final_url)
                    count = len(found) + len(children)
                else:
                    count = len(
                        discover_links(result.body, url=result.final_url, selector=source.selector)
                    )
                    if not count:
                        raise ParseError(source.url, "the listing page has no article links")
            except SourceError as exc:
                return source, f"FAIL ({exc.error_class}) {exc}"
            return source, (
                f"ok, HTTP {result.status}, {count} entries, {len(result.body)} bytes "
                f"in {result.elapsed_ms} ms"
            )

        return list(await asyncio.gather(*(one(s) for s in selected)))


@sources.command("import")
@click.argument("opml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def sources_import(state: _State, opml: Path) -> None:
    """Add the feeds of an OPML file to the sources file (existing names are kept)."""
    with _errors():
        config = state.config
        imported = parse_opml(opml.read_bytes(), file=str(opml))
        known = {s.name for s in config.sources} | {s.url for s in config.sources}
        added = [s for s in imported if s.name not in known and s.url not in known]
        if added:
            target = config.sources_file
            try:
                with target.open("a", encoding="utf-8") as out:
                    out.write("\n" + render_sources(added))
            except OSError as exc:
                _fail(f"cannot write {target}: {exc.strerror or exc}", EXIT_USAGE)
        click.echo(
            f"imported {len(added)} source(s) into {config.sources_file}; "
            f"{len(imported) - len(added)} already present"
        )


@sources.command("export")
@click.pass_obj
def sources_export(state: _State) -> None:
    """Print the sources as OPML."""
    with _errors():
        click.echo(render_opml(state.config.sources), nl=False)


# -- check-config -------------------------------------------------------------------------------


@cli.command("check-config")
@click.pass_obj
def check_config(state: _State) -> None:
    """Validate the config and the files it names."""
    with _errors():
        config = state.config
        problems = list(_template_problems(config))
        if problems:
            raise ConfigError(problems)
    click.echo(
        f"{config.path}: ok; {len(config.sources)} source(s), "
        f"{len(config.taxonomy.topic_ids)} topic(s), {len(config.digests)} digest(s), "
        f"storage {config.storage_url.split('@')[-1]}"
    )


def _template_problems(config: Config) -> Iterator[Problem]:
    """Every digest's templates (with its overrides) compile."""
    for d in config.digests:
        env = make_environment(d.templates_dir, default_templates_dir())
        for name in TEMPLATES:
            try:
                env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                where = f"{exc.filename or name}:{exc.lineno}"
                yield Problem(
                    str(config.path), f"digests ({d.name}).templates_dir", f"{where}: {exc}"
                )
            except jinja2.TemplateNotFound as exc:
                yield Problem(
                    str(config.path), f"digests ({d.name}).templates_dir", f"missing {exc}"
                )


# -- demo ---------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to keep the demo's config and database (default: a new temporary directory).",
)
def demo(workdir: Path | None) -> None:
    """Offline tour: serve recorded sources on 127.0.0.1, poll them, show what was found."""
    from monitor.demo import prepare, serve

    with _errors(), serve() as base:
        # The demo's own config, whatever MONITOR_* variables the user has set.
        config = load_config(prepare(workdir, base), {})
        click.echo(f"Serving recorded sources at {base}; polling {len(config.sources)} sources")
        with _opened_store(config) as store, _progress(len(config.sources)) as advance:
            outcomes = poll_once(config, store, config.sources, clock=utcnow, progress=advance)
            found = store.list_items()
            health = store.list_source_health()
    click.echo("")
    _print_poll_summary(outcomes)
    click.echo("\nItems (id, status, published, source, title):")
    for item in found:
        when = (item.published_at or item.fetched_at).strftime("%Y-%m-%d")
        dup = (
            f" [{item.duplicate_of.method} of {item.duplicate_of.ref}]" if item.duplicate_of else ""
        )
        click.echo(
            _terminal_safe(
                f"  {item.id:>3}  {item.status:<9}  {when}  {item.source}: {item.title[:70]}{dup}"
            )
        )
    click.echo("\nSource health:")
    for h in health:
        error = f" - {h.last_error_class}: {h.last_error}" if h.last_error_class else ""
        click.echo(_terminal_safe(f"  {h.name}: {h.status}{error}"))
    folder = config.path.parent
    click.echo(
        f"\nThe demo's config and database are in {folder}\n"
        f"  monitor --config {config.path} items --json\n"
        f"  monitor --config {config.path} explain 1"
    )
