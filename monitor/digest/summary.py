"""Extractive lead summary: split text into sentences, skip boilerplate, keep 2-3. No I/O."""

from __future__ import annotations

import re
from collections.abc import Iterator

from monitor.digest.text import clean_text

SUMMARY_MAX = 420  # characters of summary in all; the issue asks for 2-3 sentences
SENTENCE_MAX = 300  # one runaway "sentence" (a text without full stops) is cut here
_SCAN_MAX = 8_000  # the lead is at the top: only this much text is examined
_SCAN_SENTENCES = 40  # nor more sentences than this
_MIN_CHARS = 40
_MIN_WORDS = 6

# Words that end in a full stop without ending the sentence (English, Russian, Vietnamese
# news style). Compared lower-cased, without the final dot.
_ABBREVIATION_WORDS = """
    mr mrs ms dr prof st sr jr gen col lt maj capt sgt adm gov sen rep amb pres
    inc ltd co corp no nos vs etc e.g i.e cf approx est dept univ u.s u.k u.n e.u
    jan feb mar apr jun jul aug sep sept oct nov dec
    г гг т т.е т.д т.п т.н им ул д тыс млн млрд трлн руб долл см ст стр рис проф акад
    ген обл р-н пос
    tp ts ths pgs gs
"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())

# A sentence may end after . ! ? … (and closing quotes/brackets), before whitespace.
_BOUNDARY = re.compile(r"[.!?…]+[\"'»”’)\]]*\s+")
_OPENERS = "\"'«“„‘([—–-"
_WORD_BEFORE = re.compile(r"(\S+?)[.!?…]+[\"'»”’)\]]*$")

# Datelines that open a news lead: "Moscow (VNA) – ", "Hà Nội (TTXVN) - ",
# "MOSCOW, July 26. /TASS/. ", "BALI, 21 February 2019 – ". Stripped before the sentence
# is shown.
_DATELINES = (
    re.compile(r"^[^()\n]{0,60}?\((?:[A-ZА-ЯЁĐ][\w.\s-]{1,24})\)\s*[–—-]+\s*"),
    re.compile(r"^[^/\n]{0,60}?/(?:[A-ZА-ЯЁ][\w\s-]{1,20})/\.?\s*"),
    re.compile(r"^[A-ZА-ЯЁĐ][A-ZА-ЯЁĐ .'-]{1,30},\s*[\w .]{3,30}?\s*[–—]\s+"),
)

_BOILERPLATE_START = re.compile(
    r"^(?:photo|image|video|source|read (?:more|also)|see also|related|tags?|share|"
    r"subscribe|advertisement|follow us|фото|видео|источник|читайте также|теги|"
    r"поделиться|подписывайтесь|реклама|ảnh|nguồn|xem thêm|video|chia sẻ|từ khóa)\b",
    re.IGNORECASE,
)
_BOILERPLATE_ANY = re.compile(
    r"©|copyright|all rights reserved|все права защищены|bản quyền|https?://|www\.",
    re.IGNORECASE,
)
_NON_LETTERS = re.compile(r"[\W\d_]")
_TERMINAL = re.compile(r"[.!?…][\"'»”’)\]]*$")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; paragraphs (lines) never run into each other."""
    return list(_iter_sentences(text))


def _iter_sentences(text: str) -> Iterator[str]:
    for paragraph in text[:_SCAN_MAX].splitlines():
        paragraph = paragraph.strip()
        if paragraph:
            yield from _split_paragraph(paragraph)


def _split_paragraph(paragraph: str) -> Iterator[str]:
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        end = match.end()
        if end >= len(paragraph):
            break
        if not _starts_sentence(paragraph[end : end + 4]):
            continue
        piece = paragraph[start:end].strip()
        if _ends_in_abbreviation(piece):
            continue
        yield piece
        start = end
    tail = paragraph[start:].strip()
    if tail:
        yield tail


def _starts_sentence(head: str) -> bool:
    """Whether the text after a full stop opens a sentence (capital or digit, maybe quoted)."""
    for ch in head:
        if ch in _OPENERS:
            continue
        return ch.isupper() or ch.isdigit()
    return False


def _ends_in_abbreviation(piece: str) -> bool:
    match = _WORD_BEFORE.search(piece[-40:])
    if not match:
        return False
    word = match.group(1).lstrip(_OPENERS)
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "V. Putin", "С. Лавров"
    return word.lower() in _ABBREVIATIONS


def strip_dateline(sentence: str) -> str:
    """Drop a leading news dateline ("Moscow (VNA) – ") from a sentence."""
    for pattern in _DATELINES:
        stripped = pattern.sub("", sentence, count=1)
        if stripped != sentence and stripped[:1].isupper():
            return stripped
    return sentence


def _is_boilerplate(sentence: str, title_key: str) -> bool:
    if len(sentence) < _MIN_CHARS or len(sentence.split()) < _MIN_WORDS:
        return True
    if _BOILERPLATE_START.match(sentence) or _BOILERPLATE_ANY.search(sentence):
        return True
    if len(_NON_LETTERS.findall(sentence)) > len(sentence) * 0.4:
        return True  # dates, numbers, language menus
    key = sentence.casefold().rstrip(" .")
    return bool(title_key) and (key == title_key or title_key.startswith(key))


def summarise(text: str, title: str = "", max_sentences: int = 3) -> str:
    """Return the 2-3 lead sentences of `text` that are not datelines, captions or menus."""
    title_key = clean_text(title).casefold().rstrip(" .")
    # Lines without a full stop at the end are mostly headings and captions; they are used
    # only when the text has nothing better (a teaser, a text without punctuation).
    good: list[str] = []
    unterminated: list[str] = []
    for n, raw in enumerate(_iter_sentences(text)):
        if n >= _SCAN_SENTENCES or len(good) >= max_sentences:
            break
        sentence = strip_dateline(clean_text(raw, SENTENCE_MAX * 3))
        if _is_boilerplate(sentence, title_key):
            continue
        (good if _TERMINAL.search(sentence) else unterminated).append(sentence)
    picked: list[str] = []
    total = 0
    for sentence in (good or unterminated)[:max_sentences]:
        if len(picked) >= 2 and total + len(sentence) > SUMMARY_MAX:
            break
        picked.append(clean_text(sentence, SENTENCE_MAX))
        total += len(sentence) + 1
        if len(sentence) > SENTENCE_MAX:
            break  # a cut sentence followed by another reads badly
    return " ".join(picked)
