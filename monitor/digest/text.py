"""Neutralise untrusted text, vet links, escape Markdown, wrap text by columns. No I/O."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit, urlunsplit

TITLE_MAX = 300  # characters shown of a title; the issue asks that 1 MB titles are cut
LINE_MAX = 500  # any other single-line field (source name, error text, seed title)
URL_MAX = 2048  # longer links are not emitted

# Bidi embeddings/overrides/isolates and marks (the "Trojan Source" set), the BOM, the
# deprecated format characters and interlinear annotations: removed outright.
_DROP = re.compile("[\u202a-\u202e\u2066-\u206f\u200e\u200f\u061c\ufeff\ufff9-\ufffb]")
# C0/C1 controls (category Cc: CR, LF, ESC for terminal escapes, NUL...) and the Unicode
# line/paragraph separators become spaces.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")


def clean_text(value: str | None, limit: int = LINE_MAX) -> str:
    """Return `value` as one safe line: controls and bidi overrides gone, spaces collapsed, cut.

    Only a bounded prefix is examined, so a 1 MB title costs no more than a short one.
    """
    if not value:
        return ""
    scan = limit * 4 + 16
    head = _DROP.sub("", unicodedata.normalize("NFC", value[:scan]))
    head = _SPACES.sub(" ", _CONTROLS.sub(" ", head)).strip()
    if len(head) <= limit:
        return head if len(value) <= scan else head + "…"
    return _cut(head, limit)


def neutral(value: str, limit: int = 5000) -> str:
    """`value` with bidi controls removed and control characters as spaces, cut at `limit`;
    unlike `clean_text` it keeps the spacing (indented `explain` lines)."""
    head = _CONTROLS.sub(" ", _DROP.sub("", value[: limit + 1]))
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _cut(text: str, limit: int) -> str:
    """Cut at a word boundary near `limit`, never inside a base+combining-mark cluster."""
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    while cut and unicodedata.combining(cut[-1]):
        cut = cut[:-1]
    return cut.rstrip(" ,;:-–—") + "…"


# Characters kept as they are in a URL; everything else (spaces, quotes, angle brackets,
# backticks, parentheses, non-ASCII, bidi controls) is percent-encoded, so the result is safe
# inside an HTML attribute, a Markdown link destination and a plain-text line alike.
_URL_SAFE = "/?#[]@!$&*+,;=:%-._~"


def safe_url(url: str | None) -> str | None:
    """Return an http(s) URL safe to emit as a link, or None when it must not be a link."""
    if not url:
        return None
    url = url.strip()
    if len(url) > URL_MAX or _CONTROLS.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if parts.username is not None or parts.password is not None:
        return None  # "https://bank.example@evil.example/" hides the real host
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    netloc = ascii_host if port is None else f"{ascii_host}:{port}"
    if ":" in ascii_host:  # IPv6 literal
        netloc = f"[{ascii_host}]" if port is None else f"[{ascii_host}]:{port}"
    rebuilt = urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=_URL_SAFE),
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )
    return rebuilt if len(rebuilt) <= URL_MAX else None


# `_` between letters or digits cannot start emphasis (CommonMark), so "004_77ff" stays as is.
_MD_INLINE = re.compile(r"([\\`*\[\]<>#|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
_MD_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_MD_LINE_START = re.compile(r"^[-+=]")
_MD_ORDERED = re.compile(r"^(\d+)([.)])")


def md_escape(value: str) -> str:
    """Escape untrusted text for Markdown so it cannot form links, HTML, emphasis or headings.

    Parentheses stay as they are: without an unescaped `]` before them they cannot form a
    link, and "Hanoi (VNA)" stays readable in the raw file.
    """
    text = _MD_INLINE.sub(r"\\\1", value)
    text = _MD_ENTITY.sub(r"\\&", text)
    text = _MD_LINE_START.sub(lambda m: "\\" + m.group(0), text)
    return _MD_ORDERED.sub(r"\1\\\2", text)


def char_width(ch: str) -> int:
    """Terminal columns taken by one character (wide East Asian: 2, combining: 0)."""
    if unicodedata.combining(ch) or ch in "\u200b\u200c\u200d":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    """Terminal columns taken by `text`."""
    if text.isascii():
        return len(text)
    return sum(char_width(ch) for ch in text)


def wrap_text(text: str, width: int = 72, indent: str = "", subsequent: str | None = None) -> str:
    """Greedy word wrap by display columns; a word longer than a line is split across lines."""
    rest_indent = indent if subsequent is None else subsequent
    lines: list[str] = []
    current, used, empty = indent, text_width(indent), True
    for word in text.split():
        word_width = text_width(word)
        gap = 0 if empty else 1
        if used + gap + word_width <= width:
            current += " " * gap + word
            used += gap + word_width
            empty = False
            continue
        if not empty:
            lines.append(current)
            current, used, empty = rest_indent, text_width(rest_indent), True
            if used + word_width <= width:
                current += word
                used += word_width
                empty = False
                continue
        for ch in word:  # longer than a whole line: split it
            ch_width = char_width(ch)
            if used + ch_width > width and not empty:
                lines.append(current)
                current, used = rest_indent, text_width(rest_indent)
            current += ch
            used += ch_width
            empty = False
    if not empty or not lines:
        lines.append(current)
    return "\n".join(line.rstrip() for line in lines)
