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


@functools.lru_cache(maxsize=MEMO_TEXTS)
def features_json(
    title: str, text: str, published_at: datetime | None, language: str | None
) -> str:
    """`story.features_to_json` of `features`."""
    return features_to_json(features(title, text, published_at, language))


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
    for memo in (signature, _undated_features, features_json, language, fingerprint, tags):
        memo.cache_clear()


@functools.lru_cache(maxsize=MEMO_TEXTS)
def tags(title: str, text: str, language: str | None) -> Tags:
    """`tag.tag_article` with the rules given to `use_taxonomy`."""
    if _taxonomy is None:
        raise RuntimeError("tags() before use_taxonomy(taxonomy)")
    return tag_article(_taxonomy, title=title, text=text, language=language)
