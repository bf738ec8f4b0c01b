"""The seed corpus folder: list, read and add seed files (.txt, .md, .html). I/O: files."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.dedupe.seeds import Seed, parse_seed
from monitor.errors import CorpusError
from monitor.resources import is_packaged

SUFFIXES = (".txt", ".md", ".html")


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


def read_seed(path: Path) -> SeedFile:
    """Read and parse one seed file; HTML goes through the page extractor first."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    return SeedFile(path, seed_from_bytes(path.name, data), hashlib.sha256(data).hexdigest())


def seed_from_bytes(name: str, data: bytes) -> Seed:
    """A seed from a file's bytes: .txt and .md as UTF-8 text, .html through `extract_page`
    (the extractor article pages go through), then `parse_seed` drops scraping boilerplate."""
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
            language=detect_language(seed.text, hint=page.language) or seed.language,
        )
    if not seed.text.strip():
        raise CorpusError(name, "no article text")
    return seed


def add_to_corpus(folder: Path, paths: list[Path]) -> list[Path]:
    """Copy seed files into the corpus folder after checking all of them (all or nothing).
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
        except OSError as exc:
            raise CorpusError(str(target), f"cannot write: {exc.strerror or exc}") from exc
        added.append(target)
    return added
