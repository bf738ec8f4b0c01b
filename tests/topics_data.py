"""Load the labelled topic set, reading each item's title and text from ../shared. Reads files.

`tests/data/topics/labelled.jsonl` holds references and labels only: the texts are third-party
news whose sources ask not to be redistributed, so they are resolved at run time from
`../shared` (the directory beside the repo root), exactly as they were derived when labelled
(see `tests/data/topics/ATTRIBUTION.md`):

- `seeds/<name>.txt` (relative to `../shared`): the whole file; the title is its first line,
  the text the rest, both stripped.
- `semeval2022-task8-hfl-sample/<csv>#pair_id=<id>;text1|text2`: that column of the row with
  that `pair_id`, stripped. The CSVs join a headline and its body with two spaces; when the
  text holds a double space, the title is what comes before the first one and the text what
  comes after it (otherwise the title is empty).
- `article-extraction-benchmark/html/<sha256>.html.gz`: the `articleBody` of that key in
  `ground-truth.json`; no title.
- `trafilatura-tests/eval-news-subset/<page>.html`: title and text from trafilatura's
  `bare_extraction` with metadata on.

Everything except the seeds is cut to its first 6,000 characters. Each record carries the
SHA-256 of the title and of the text it was labelled with, and the loader checks both.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "data" / "topics" / "labelled.jsonl"
SHARED = ROOT.parent / "shared"
MAX_CHARS = 6000  # texts other than the seeds were cut to this many characters

SEEDS = "seeds/"
SEMEVAL = "semeval2022-task8-hfl-sample/"
AEB = "article-extraction-benchmark/"
TRAFILATURA = "trafilatura-tests/"


class LabelledDataError(RuntimeError):
    """A labelled item's text could not be resolved, or differs from the one labelled."""


@dataclass(frozen=True)
class LabelledItem:
    id: str
    source: str
    lang: str
    topics: tuple[str, ...]
    split: str
    machine_translated: bool
    title: str
    text: str
    url: str | None = None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shared_dir() -> Path | None:
    """The repo's sibling `../shared` directory, or None when it isn't there."""
    return SHARED if SHARED.is_dir() else None


def load_records(labels: Path = LABELLED) -> list[dict[str, Any]]:
    """The raw records of the labelled set (references, labels and hashes; no texts). Of a
    `monitor corrections export` file, its topic records."""
    with labels.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return [r for r in records if r.get("set", "topics") == "topics"]


class _Resolver:
    """Resolves references to (title, text), reading each shared file once."""

    def __init__(self, shared: Path) -> None:
        self.shared = shared
        self.corpus = shared / "corpus"
        self._csv_rows: dict[str, dict[str, dict[str, str]]] = {}
        self._ground_truth: dict[str, Any] | None = None

    def resolve(self, source: str) -> tuple[str, str]:
        if source.startswith(SEEDS):
            return self._seed(source)
        if source.startswith(SEMEVAL):
            return self._semeval(source)
        if source.startswith(AEB):
            return self._aeb(source)
        if source.startswith(TRAFILATURA):
            return self._trafilatura(source)
        raise ValueError("unknown kind of source")

    def _seed(self, source: str) -> tuple[str, str]:
        raw = (self.shared / source).read_text(encoding="utf-8")
        first, _, rest = raw.partition("\n")
        return first.strip(), rest.strip()

    def _semeval(self, source: str) -> tuple[str, str]:
        name, _, fragment = source.partition("#")
        pair, _, column = fragment.partition(";")
        key, _, pair_id = pair.partition("=")
        if key != "pair_id" or column not in ("text1", "text2"):
            raise ValueError("expected <csv>#pair_id=<id>;text1|text2")
        if name not in self._csv_rows:
            with (self.corpus / name).open(encoding="utf-8", newline="") as handle:
                rows: dict[str, dict[str, str]] = {}
                for read in csv.DictReader(handle):
                    # A few pair_ids occur twice in one CSV, with the same texts: keep the first.
                    rows.setdefault(read["pair_id"], read)
            self._csv_rows[name] = rows
        row = self._csv_rows[name].get(pair_id)
        if row is None:
            raise ValueError(f"no row with pair_id {pair_id} in {name}")
        full = row[column].strip()
        title, sep, body = full.partition("  ")
        if not sep:
            title, body = "", full
        return title.strip(), body.strip()[:MAX_CHARS]

    def _aeb(self, source: str) -> tuple[str, str]:
        if self._ground_truth is None:
            path = self.corpus / AEB / "ground-truth.json"
            self._ground_truth = json.loads(path.read_text(encoding="utf-8"))
        key = Path(source).name.removesuffix(".html.gz")
        body = self._ground_truth[key]["articleBody"]
        return "", str(body)[:MAX_CHARS]

    def _trafilatura(self, source: str) -> tuple[str, str]:
        from trafilatura import bare_extraction  # imported here: slow, and only needed here

        html = (self.corpus / source).read_text(encoding="utf-8")
        document = bare_extraction(html, with_metadata=True)
        if document is None:
            raise ValueError("trafilatura extracted nothing")
        if isinstance(document, dict):
            title, text = document.get("title"), document.get("text")
        else:
            title, text = document.title, document.text
        return str(title or ""), str(text or "")[:MAX_CHARS]


def load_labelled(shared: Path | None = None, labels: Path = LABELLED) -> list[LabelledItem]:
    """The labelled set with each item's title and text read from `shared` and verified.

    `shared` defaults to the repo's sibling `../shared`. Raises LabelledDataError naming the
    item when a reference cannot be resolved or resolves to a different title or text than
    the one labelled (its SHA-256 differs).
    """
    shared = SHARED if shared is None else shared
    if not shared.is_dir():
        raise LabelledDataError(
            f"{shared} is missing: the labelled texts are read from it (see ATTRIBUTION.md)"
        )
    resolver = _Resolver(shared)
    items = []
    for record in load_records(labels):
        item_id, source = record["id"], record["source"]
        try:
            title, text = resolver.resolve(source)
        except (OSError, ValueError, KeyError) as error:
            raise LabelledDataError(
                f"labelled item {item_id}: cannot read {source!r} under {shared}: {error}"
            ) from error
        for field, value, expected in (
            ("title", title, record["title_sha256"]),
            ("text", text, record["sha256"]),
        ):
            if sha256(value) != expected:
                raise LabelledDataError(
                    f"labelled item {item_id}: the {field} resolved from {source!r} under "
                    f"{shared} differs from the one labelled (sha256 {sha256(value)}, "
                    f"expected {expected}); the shared corpus or the extractor has changed"
                )
        items.append(
            LabelledItem(
                id=item_id,
                source=source,
                lang=record["lang"],
                topics=tuple(record["topics"]),
                split=record["split"],
                machine_translated=record["machine_translated"],
                title=title,
                text=text,
                url=record.get("url"),
            )
        )
    return items


NEWS = ROOT / "tests" / "data" / "topics" / "news.jsonl"


def load_news(path: Path = NEWS) -> list[LabelledItem]:
    """The second labelled set (guideline version 2): real news texts in en, ru, vi and id,
    stored with their title and text, split train / dev / test."""
    items = []
    for record in load_records(path):
        items.append(
            LabelledItem(
                id=record["id"],
                source=record.get("source", ""),
                lang=record["lang"],
                topics=tuple(record["topics"]),
                split=record["split"],
                machine_translated=False,
                title=record.get("title") or "",
                text=record.get("text") or "",
                url=record.get("url"),
            )
        )
    return items
