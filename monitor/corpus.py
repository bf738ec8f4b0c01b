"""The seed corpus folder: list, read and add seed files (.txt, .md, .html). I/O: files."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

from monitor.dedupe.seeds import Seed, parse_seed
from monitor.errors import CorpusError
from monitor.resources import is_packaged

SUFFIXES = (".txt", ".md", ".html")
# A seed's metadata sits beside it: "000_x.txt" -> "000_x.txt.toml", holding
# `published = 2020-02-02` (a TOML date). `corpus add --date` writes it.
SIDECAR_SUFFIX = ".toml"


@dataclass(frozen=True, slots=True)
class SeedFile:
    """A seed as read from its file; `text_hash` (sha256 of the bytes) tells whether it changed."""

    path: Path
    seed: Seed
    text_hash: str


def corpus_files(folder: Path) -> list[Path]:
    """The seed files of a corpus folder, by name; a missing folder has none."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    )


def sidecar_path(path: Path) -> Path:
    """Where the metadata of the seed file `path` is kept."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> bytes | None:
    """The bytes of a seed's metadata file, None when it has none."""
    try:
        return sidecar_path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorpusError(str(sidecar_path(path)), f"cannot read: {exc.strerror or exc}") from exc


def seed_hash(data: bytes, meta: bytes | None) -> str:
    """What tells whether a seed changed: its file and its metadata."""
    digest = hashlib.sha256(data)
    if meta is not None:
        digest.update(b"\0metadata\0" + meta)
    return digest.hexdigest()


def parse_sidecar(name: str, meta: bytes) -> datetime | None:
    """The publication date a metadata file records (midnight UTC); CorpusError if broken."""
    where = name + SIDECAR_SUFFIX
    try:
        data = tomllib.loads(meta.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CorpusError(where, f"not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"published"})
    if unknown:
        raise CorpusError(where, f"unknown key {unknown[0]!r} (known: published)")
    value = data.get("published")
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise CorpusError(where, f"published: expected a date like 2020-02-03, got {value!r}")


def read_seed(path: Path) -> SeedFile:
    """Read and parse one seed file with its metadata; HTML goes through the extractor."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    meta = read_sidecar(path)
    return SeedFile(path, seed_from_bytes(path.name, data, meta), seed_hash(data, meta))


def seed_from_bytes(name: str, data: bytes, meta: bytes | None = None) -> Seed:
    """A seed from a file's bytes: .txt and .md as UTF-8 text, .html through `extract_page`
    (the extractor article pages go through), then `parse_seed` drops scraping boilerplate.
    A date in `meta` (the seed's metadata file) wins over any date found in the text."""
    seed = _seed_from_bytes(name, data)
    if meta is not None:
        published = parse_sidecar(name, meta)
        if published is not None:
            seed = replace(seed, published_at=published, date_source="metadata")
    return seed


def _seed_from_bytes(name: str, data: bytes) -> Seed:
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise CorpusError(name, f"not a seed file type (use {', '.join(SUFFIXES)})")
    if suffix != ".html":
        seed = parse_seed(name, data.decode("utf-8-sig", errors="replace"))
    else:
        from monitor.extract import detect_language, extract_page  # trafilatura: only for HTML

        page = extract_page(data, url=f"https://corpus.invalid/{name}")
        if page is None or not page.text.strip():
            raise CorpusError(name, "the HTML has no article text the extractor can find")
        seed = parse_seed(name, f"{page.title or ''}\n{page.text}")
        seed = replace(
            seed,
            title=page.title or seed.title,
            published_at=page.published_at or seed.published_at,
            date_source="header" if page.published_at else seed.date_source,
            language=detect_language(seed.text, hint=page.language) or seed.language,
        )
    if not seed.text.strip():
        raise CorpusError(name, "no article text")
    return seed


def add_to_corpus(folder: Path, paths: list[Path], *, published: date | None = None) -> list[Path]:
    """Copy seed files into the corpus folder after checking all of them (all or nothing);
    with `published`, record it as their publication date in their metadata files.
    Returns the new paths. Raises CorpusError naming the first bad file or the folder."""
    for path in paths:
        if path.suffix.lower() not in SUFFIXES:
            raise CorpusError(str(path), f"not a seed file type (use {', '.join(SUFFIXES)})")
        if not path.is_file():
            raise CorpusError(str(path), "no such file")
        read_seed(path)  # an HTML page without text, or an empty file, is refused here
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK) and not is_packaged(folder)
    except OSError:
        writable = False
    if not writable:
        raise CorpusError(
            str(folder),
            "the corpus folder is not writable (the packaged default corpus is read-only); "
            "point [corpus] dir in your monitor.toml at a folder of your own",
        )
    added: list[Path] = []
    for path in paths:
        target = folder / path.name
        try:
            # Write beside the target and rename, so a poll never reads half a file.
            with (
                path.open("rb") as source,
                tempfile.NamedTemporaryFile(dir=folder, prefix=".adding-", delete=False) as tmp,
            ):
                shutil.copyfileobj(source, tmp)
            Path(tmp.name).replace(target)
            if published is not None:
                _write_atomic(sidecar_path(target), f"published = {published.isoformat()}\n")
        except OSError as exc:
            raise CorpusError(str(target), f"cannot write: {exc.strerror or exc}") from exc
        added.append(target)
    return added


def _write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".adding-", delete=False
    ) as tmp:
        tmp.write(text)
    Path(tmp.name).replace(path)
