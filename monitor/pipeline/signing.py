"""What a worker computes from an article's text, kept for texts it has seen. No I/O.

The same text comes back often: a report syndicated by several outlets, one page listed by
several feeds, a page whose feed entry changed but whose text did not. Its MinHash signature,
story features (and their JSON), tags, language and normalised text hash are pure functions
of the text (with the title, date, language or hint), so a worker keeps the last `MEMO_TEXTS`
of them and computes them once per text (issue 14: about 8 ms of each article's 25 ms in the
worker, then the language and the JSON, about 2 ms more). The memo is keyed by the exact
text, not its normalised hash, so a hit gives exactly what computing afresh would.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from datetime import datetime

from monitor.dedupe.exact import text_fingerprint
from monitor.dedupe.near import sign_text, signature_to_bytes
from monitor.dedupe.story import StoryFeatures, extract_features, features_to_json
from monitor.extract import detect_language
from monitor.tag import Tags, Taxonomy, tag_article

MEMO_TEXTS = 256  # per worker; a text is about 10 KB, its signature and features about 6 KB


@functools.lru_cache(maxsize=MEMO_TEXTS)
def signature(text: str) -> tuple[bytes, int]:
    """`near.signature_to_bytes` of the text's signature, and its shingle count."""
    sig, shingles = sign_text(text)
    return signature_to_bytes(sig), shingles


@functools.lru_cache(maxsize=MEMO_TEXTS)
def _undated_features(title: str, text: str, language: str | None) -> StoryFeatures:
    return extract_features(title, text, None, language)


def features(
    title: str, text: str, published_at: datetime | None, language: str | None
) -> StoryFeatures:
    """`story.extract_features`: the date sets only `published_at` and the reference year
    (the date's, else the latest year the text mentions), so the rest is kept per text."""
    undated = _undated_features(title, text, language)
    if published_at is None:
        return undated
    return replace(undated, published_at=published_at, ref_year=published_at.year)


def features_json(
    title: str, text: str, published_at: datetime | None, language: str | None
) -> str:
    """`story.features_to_json` of `features`: the text's JSON is kept around its two dated
    values (`published_at`, `ref_year`), so a repeated text with another date encodes only
    them (every feed entry of a syndicated page has its own date)."""
    if published_at is None:
        return _undated_json(title, text, language)
    parts = _json_parts(title, text, language)
    if parts is None:
        return features_to_json(features(title, text, published_at, language))
    head, middle, tail = parts
    return f"{head}{json.dumps(published_at.isoformat())}{middle}{published_at.year}{tail}"


@functools.lru_cache(maxsize=MEMO_TEXTS)
def _undated_json(title: str, text: str, language: str | None) -> str:
    return features_to_json(_undated_features(title, text, language))


_DATED = "\x00dated"  # a value no feature holds, cut out of the kept JSON


@functools.lru_cache(maxsize=MEMO_TEXTS)
def _json_parts(title: str, text: str, language: str | None) -> tuple[str, str, str] | None:
    """The JSON of the text's features before `published_at`, between it and `ref_year`, and
    after `ref_year`; None if the marker is not found exactly twice."""
    undated = _undated_features(title, text, language)
    marked = replace(undated, published_at=_Marker(), ref_year=_DATED)  # type: ignore[arg-type]
    parts = features_to_json(marked).split(json.dumps(_DATED, ensure_ascii=False))
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


class _Marker:
    """Stands for `published_at` while the kept JSON is written (its isoformat is `_DATED`)."""

    def isoformat(self) -> str:
        return _DATED


@functools.lru_cache(maxsize=MEMO_TEXTS)
def language(text: str, hint: str | None) -> str | None:
    """`extract.detect_language`."""
    return detect_language(text, hint=hint)


@functools.lru_cache(maxsize=MEMO_TEXTS)
def fingerprint(text: str) -> str:
    """`exact.text_fingerprint`: the normalised text's hash."""
    return text_fingerprint(text)


_taxonomy: Taxonomy | None = None  # the worker's topic rules (`use_taxonomy`)


def use_taxonomy(taxonomy: Taxonomy) -> None:
    """Set the topic rules `tags` applies, emptying every memo (a worker starting)."""
    global _taxonomy
    _taxonomy = taxonomy
    for memo in (
        signature,
        _undated_features,
        _undated_json,
        _json_parts,
        language,
        fingerprint,
        tags,
    ):
        memo.cache_clear()


@functools.lru_cache(maxsize=MEMO_TEXTS)
def tags(title: str, text: str, language: str | None) -> Tags:
    """`tag.tag_article` with the rules given to `use_taxonomy`."""
    if _taxonomy is None:
        raise RuntimeError("tags() before use_taxonomy(taxonomy)")
    return tag_article(_taxonomy, title=title, text=text, language=language)
