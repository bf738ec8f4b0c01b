"""Command line: sources, corpus, check-config, demo. I/O: terminal, files, network, database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
import jinja2

from monitor.cli import (
    EXIT_NOTHING_DONE,
    EXIT_USAGE,
    _errors,
    _fail,
    _iso,
    _opened_store,
    _print_poll_summary,
    _progress,
    _select_sources,
    _State,
    _terminal_safe,
    cli,
    json_line,
    utcnow,
)
from monitor.config import Config, load_config, serving_notes
from monitor.corpus import add_to_corpus, corpus_files, read_seed
from monitor.demo import LATER_SOURCES
from monitor.digest.render import TEMPLATES, make_environment
from monitor.errors import ConfigError, CorpusError, ParseError, Problem, SourceError
from monitor.fetch import Fetcher, make_client
from monitor.loop import run as run_loop
from monitor.models import Source
from monitor.parse import parse_feed
from monitor.pipeline.digest import Window, collect, render
from monitor.resources import default_templates_dir
from monitor.sources import parse_opml, render_opml, render_sources
from monitor.views import health_json, health_line, source_health

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
        health = source_health(store, state.config)
    for h in health:
        click.echo(json_line(health_json(h)) if as_json else _terminal_safe(health_line(h)))


@sources.command("check")
@click.option("--source", "names", multiple=True, metavar="NAME", help="Only this source.")
@click.pass_obj
def sources_check(state: _State, names: tuple[str, ...]) -> None:
    """Fetch and parse each source once, store nothing, and report."""
    with _errors():
        config = state.config
        selected = _select_sources(config, names)
        results = run_loop(_check_sources(config, selected))
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
        for note in serving_notes(config):
            click.echo(f"note: {note}", err=True)
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
    from monitor.pipeline import poll_once

    with _errors(), serve() as base:
        # The demo's own config, whatever MONITOR_* variables the user has set.
        config = load_config(prepare(workdir, base), {})
        click.echo(f"Serving recorded sources at {base}; polling {len(config.sources)} sources")
        # A wire picks stories up after the publishers: polled second, its copies come later.
        first = [s for s in config.sources if s.name not in LATER_SOURCES]
        later = [s for s in config.sources if s.name in LATER_SOURCES]
        with _opened_store(config) as store, _progress(len(config.sources)) as advance:
            outcomes = poll_once(config, store, first, clock=utcnow, progress=advance)
            outcomes += poll_once(config, store, later, clock=utcnow, progress=advance)
            found = store.list_items()
            health = store.list_source_health()
            stories = store.story_info([i.story_id for i in found if i.story_id is not None])
            titles = store.seed_titles()
            # A preview of everything polled: the digest an analyst would get.
            preview = config.digests[0]
            window = Window(datetime(2000, 1, 1, tzinfo=UTC), utcnow())
            rendered = render(
                preview,
                collect(store, config, preview, window, for_sending=False, now=window.end),
            )
    click.echo("")
    _print_poll_summary(outcomes)
    click.echo("\nItems (id, status, published, story, source, title):")
    for item in found:
        when = (item.published_at or item.fetched_at).strftime("%Y-%m-%d")
        dup = item.duplicate_of
        why = f" [{dup.method} {dup.similarity:.2f} of {dup.kind} {dup.ref}]" if dup else ""
        story = f"s{item.story_id}" if item.story_id is not None else "-"
        click.echo(
            _terminal_safe(
                f"  {item.id:>3}  {item.status:<9}  {when}  {story:>4}  {item.source}: "
                f"{item.title[:60]}{why}"
            )
        )
    click.echo("\nStories with more than one outlet or a known seed:")
    for story_id, info in sorted(stories.items()):
        if info.size < 2 and not info.seed_refs:
            continue
        line = f"  story {story_id}: {info.size} item(s) from {', '.join(info.sources)}"
        for ref in info.seed_refs:
            line += f"; linked to known seed {ref} ({titles.get(ref, '?')})"
        click.echo(_terminal_safe(line))
    click.echo("\nTopic tags, with the words that triggered them:")
    for item in found:
        if item.status != "new" or not item.topics:
            continue
        click.echo(_terminal_safe(f"  {item.id:>3}  {item.title[:70]}"))
        for tag in item.topics[:3]:
            words = ", ".join(f"{term} ({lang}) ×{count}" for term, lang, count in tag.evidence[:4])
            click.echo(
                _terminal_safe(
                    f"       {tag.id}: score {tag.score:g} >= {tag.threshold:g}, from {words}"
                )
            )
    click.echo("\nSource health:")
    for h in health:
        error = f" - {h.last_error_class}: {h.last_error}" if h.last_error_class else ""
        click.echo(_terminal_safe(f"  {h.name}: {h.status}{error}"))
    folder = config.path.parent
    html_path = folder / "digest.html"
    html_path.write_text(rendered.html, "utf-8")
    (folder / "digest.md").write_text(rendered.markdown, "utf-8")
    click.echo("\nThe digest (Markdown; also in " + str(folder / "digest.md") + "):\n")
    click.echo(rendered.markdown.rstrip("\n"))
    click.echo(f"\nThe HTML email version: {html_path}")
    known = next((i.id for i in found if i.status == "known"), 1)
    click.echo(
        f"\nThe demo's config and database are in {folder}\n"
        f"  monitor --config {config.path} items --json\n"
        f"  monitor --config {config.path} explain {known}\n"
        f"  monitor --config {config.path} corpus list"
    )


# -- corpus -------------------------------------------------------------------------------------


@cli.group()
def corpus() -> None:
    """The seed corpus: articles the analyst already knows (.txt, .md, .html)."""


@corpus.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def corpus_list(state: _State, as_json: bool) -> None:
    """Each seed: file name, date and where it came from, language, characters, story id."""
    with _errors():
        config = state.config
        with _opened_store(config, sync=False) as store:
            rows = {r.name: r for r in store.list_seeds()}
        for path in corpus_files(config.corpus_dir):
            try:
                read = read_seed(path)
            except CorpusError as exc:
                click.echo(_terminal_safe(f"{path.name}: unusable: {exc}"), err=True)
                continue
            row = rows.get(path.name)
            current = row is not None and row.text_hash == read.text_hash
            story = row.story_id if row is not None and current else None
            seed = read.seed
            published, source = seed.published_at, seed.date_source
            if row is not None and current and row.date_source == "story":
                published, source = row.published_at, row.date_source  # its story dated it
            if as_json:
                record = {
                    "name": seed.name,
                    "title": seed.title,
                    "published_at": _iso(published),
                    "date_source": source,
                    "language": seed.language,
                    "text_chars": len(seed.text),
                    "story_id": story,
                }
                click.echo(json_line(record))
                continue
            when = f"{published:%Y-%m-%d} ({source})" if published else "undated"
            shown = f"story {story}" if story is not None else "not indexed yet"
            click.echo(
                _terminal_safe(
                    f"{seed.name}  {when}  {seed.language or '?'}  {len(seed.text)} chars  "
                    f"{shown}  {seed.title}"
                )
            )


@corpus.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--date",
    "published",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The seeds' publication date (YYYY-MM-DD), kept beside them as NAME.toml.",
)
@click.pass_obj
def corpus_add(state: _State, paths: tuple[Path, ...], published: datetime | None) -> None:
    """Copy seed files into the corpus folder and index them (signature, story)."""
    with _errors():
        config = state.config
        try:
            from monitor.pipeline.index import DedupeIndex

            day = published.date() if published else None
            added = add_to_corpus(config.corpus_dir, list(paths), published=day)
        except CorpusError as exc:
            _fail(str(exc), EXIT_USAGE)
        with _opened_store(config, sync=False) as store:
            DedupeIndex.load(store, config.corpus_dir, config.dedupe, utcnow())
            rows = {r.name: r for r in store.list_seeds()}
        for path in added:
            row = rows.get(path.name)
            where = f"story {row.story_id}" if row is not None else "not indexed (no text)"
            click.echo(_terminal_safe(f"added {path} ({where})"))
