"""Text folding shared by rules and articles, and rule-term compilation. No I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Dashes and hyphens fold to a space so "Russia–ASEAN", "Russia-ASEAN" and "Russia ASEAN" are
# the same words; invisible characters (soft hyphen, zero-width joiners) disappear.
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
# Apostrophes fold to a space too: "Ministers' Meeting" matches "Ministers Meeting", and
# "ASEAN's" still has the word "asean" in it.
_APOSTROPHES = "'\u2018\u2019\u02bc\u0060\u00b4"
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_KEEP_MARKS = {"й", "Й"}  # Russian й is not a diacritic variant of и; ё is folded to е on purpose


def _build_table() -> dict[int, str]:
    table: dict[int, str] = {ord(c): " " for c in _DASHES + _APOSTROPHES}
    table.update({ord(c): "" for c in _INVISIBLE})
    table.update(dict.fromkeys(range(768, 880), ""))  # stray combining marks
    ranges = [range(0xC0, 0x250), range(0x400, 0x460), range(0x1E00, 0x1F00)]
    for block in ranges:
        for cp in block:
            ch = chr(cp)
            if ch in _KEEP_MARKS:
                continue
            base = "".join(
                c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)
            )
            if base and base != ch:
                table[cp] = base.casefold()
    # Letters with a stroke have no decomposition; Vietnamese writers drop it (đ -> d).
    table.update({ord("đ"): "d", ord("Đ"): "d", ord("ø"): "o", ord("ł"): "l", ord("ı"): "i"})
    return table


_TABLE = _build_table()
# The folding is applied with one regular-expression pass over the characters the table
# changes rather than with str.translate, which looks every character up in the table:
# the same result, 2-3x faster on news text (most characters map to themselves).
_SPECIAL = re.compile("[" + re.escape("".join(map(chr, sorted(_TABLE)))) + "]")
_ASCII_SPECIAL = re.compile(
    "[" + re.escape("".join(chr(k) for k in sorted(_TABLE) if k < 128)) + "]"
)


def _fold_char(match: re.Match[str]) -> str:
    return _TABLE[ord(match.group())]


# Vietnamese writes a syllable ending in i/y after a consonant either way: tỷ / tỉ "billion",
# kỹ thuật / kĩ thuật, nghệ sỹ / nghệ sĩ, Hoa Kỳ / Hoa Kì, quý / quí (issue 13). Folded, such a
# one-syllable word ends in "i" whichever the writer chose; one-letter-consonant words only,
# so the cost elsewhere is an English "my" that is matched as "mi" on both sides.
_VI_Y = re.compile(r"(?:qu|[hklmstv])y(?!\w)")  # and no word character before it (below)


def _fold_vi_y(folded: str) -> str:
    """`_VI_Y` matches whose first letter starts a word end in i. (A regex that begins with
    the word boundary cannot use the letters to skip ahead, and costs twice as much.)"""
    parts: list[str] = []
    last = 0
    for match in _VI_Y.finditer(folded):
        start = match.start()
        if start and (folded[start - 1].isalnum() or folded[start - 1] == "_"):
            continue
        parts += [folded[last : match.end() - 1], "i"]
        last = match.end()
    return "".join(parts) + folded[last:] if parts else folded


def normalise_text(text: str) -> str:
    """Fold text for matching: NFKC, casefold, no diacritics (Latin, ё), Vietnamese syllable-
    final y after a consonant to i, dashes and whitespace runs (line breaks included) to one
    space."""
    if text.isascii():  # fast path: only dashes and apostrophes need folding
        folded = _ASCII_SPECIAL.sub(_fold_char, text.lower())
    else:
        folded = _SPECIAL.sub(_fold_char, unicodedata.normalize("NFKC", text).casefold())
    if "y" in folded:
        folded = _fold_vi_y(folded)
    return " ".join(folded.split())


def is_word_char(ch: str) -> bool:
    """True for letters and digits: what a match must not continue into."""
    return ch.isalnum()


@dataclass(frozen=True, slots=True)
class TermPattern:
    """A rule term compiled for matching: a literal `prefix` (the Aho-Corasick key) and, for
    terms with wildcards, a regex the text right after the prefix must match."""

    prefix: str
    rest: re.Pattern[str] | None
    inflected: bool = False  # an inflection rule supplied an ending (`_inflection`)


_WORD_END = r"(?![^\W_])"

# Morphology rules per language, applied to a term's last word when it has no `*`
# (docs/tagging.md, "Morphology"). Indonesian: the enclitics -nya (its/the), -lah, -kah and
# -pun attach to any word without changing what it means ("investasinya" = "the
# investment"); a lemmatiser would strip them, but it also folds derivations into roots
# (kesehatan "health" -> sehat "healthy"), which is not evidence for the same topic.
CLITICS: dict[str, tuple[str, ...]] = {"id": ("nya", "lah", "kah", "pun")}


# Inflection rules per language for words written without `*` (docs/tagging.md,
# "Morphology"). Russian: a word ending in a consonant takes the endings of the masculine
# noun paradigm (посол -> посла is not covered: the vowel that drops is not restored; the
# rule adds "МИДа", "газом", "визиты"). English: the last word of a term also matches its
# plural (deal -> deals, study -> studies, gas -> gases). Words written with `*` are already
# the writer's own stem; Indonesian and Vietnamese have no inflection rule (see CLITICS).
_RU_CONSONANT_END = re.compile(r"^[а-яё]{2,}[бвгджзклмнпрстфхцчшщ]$")
_RU_NOUN_ENDINGS = "(?:ами|ом|ов|ам|ах|а|у|е|ы)?"
_EN_WORD = re.compile(r"^[a-z]{3,}$")


def _inflection(word: str, lang: str, *, last: bool) -> tuple[str, str] | None:
    """(literal stem, regex of the endings) for a word the language's rule inflects."""
    if lang == "ru" and _RU_CONSONANT_END.match(word):
        return word, _RU_NOUN_ENDINGS
    return None


def compile_term(raw: str, *, max_suffix: int, lang: str = "any") -> TermPattern | str:
    """Compile a rule term, or return the reason it is invalid.

    `*` at the end of a word means "up to `max_suffix` more letters, then the word ends":
    `Лавров*` matches Лавров, Лаврова, Лаврову, Лавровым but not a longer word. A term of a
    language with `CLITICS` also matches its last word with one of them attached; a word
    the language's inflection rule covers (`_inflection`) also matches its endings.
    """
    text = normalise_text(raw)
    if not text or not any(is_word_char(c) for c in text):
        return "empty term"
    words = text.split(" ")
    pieces: list[str | tuple[str]] = []  # words, and after a word the regex of its ending
    wildcard = (f"[^\\W_]{{0,{max_suffix}}}",)
    for i, word in enumerate(words):
        stem = word[:-1] if word.endswith("*") else word
        if "*" in stem:
            return f"bad wildcard in {raw!r}: '*' may only end a word"
        if word.endswith("*") and (len(stem) < 3 or not all(is_word_char(c) for c in stem)):
            return f"bad wildcard in {raw!r}: '*' needs a stem of at least 3 letters"
        if word.endswith("*"):
            pieces += [stem, wildcard]
            continue
        ending = _inflection(word, lang, last=i == len(words) - 1)
        pieces += [ending[0], (ending[1],)] if ending else [word]
    clitics = CLITICS.get(lang, ())
    end = f"(?:{'|'.join(clitics)})?{_WORD_END}" if clitics else _WORD_END
    if all(isinstance(p, str) for p in pieces):
        rest = None if not clitics else re.compile(end)
        return TermPattern(prefix=text, rest=rest)
    # The literal prefix runs up to the first ending; the rest is checked by a regex.
    first = next(i for i, p in enumerate(pieces) if isinstance(p, tuple))
    prefix = " ".join(str(p) for p in pieces[:first])
    regex: list[str] = []
    for p in pieces[first:]:
        regex.append(f"{p[0]}{_WORD_END}" if isinstance(p, tuple) else " " + re.escape(p))
    tail = "" if isinstance(pieces[-1], tuple) else end
    inflected = any(isinstance(p, tuple) and p is not wildcard for p in pieces)
    return TermPattern(prefix=prefix, rest=re.compile("".join(regex) + tail), inflected=inflected)
