"""Story layer: features, cross-lingual similarity and story assignment. No I/O.

Two articles are in the same story when they report the same event, possibly in different
words or languages. Signals that survive rewording and translation: title and lead overlap
(same language only), shared names (a gazetteer with multilingual aliases plus capitalised
words, Cyrillic transliterated: Лавров ~ Lavrov), shared specific numbers and day mentions,
the event signature (grouping, partner and kind of gathering with the venue or edition:
`signature`), and publication dates within a window. Hard-negative guards come first:
publication dates further apart than the window, different event years, or different numbers
of the same kind of event (the 16th vs the 17th Senior Officials' Meeting) mean "not the same
story", whatever the words say. Thresholds and weights were chosen on the SemEval-2022 Task 8
training split (docs/dedupe.md); the word lists are data, in `lexicon`.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from typing import Literal, TypeVar

from monitor.dedupe.lexicon import (
    CYRILLIC,
    EVENT_NOUNS,
    EVENT_PHRASES,
    GAZETTEER,
    GROUPINGS,
    MEETING_PHRASES,
    MEETING_WORDS,
    MONTHS,
    NOT_NAMES,
    STOPWORDS,
    UNSPACED_NAMES,
)
from monitor.dedupe.merge import Member, MergeJournal, MergeRules, StoryMerger, unnamed
from monitor.dedupe.signature import (
    SignatureReader,
    dateline_end,
    departure_places,
    other_signature,
    same_signature,
)

STEM = 6  # compare words by their first 6 letters: a crude stemmer that works across languages
LEAD_WORDS = 60  # the lead: the first words of the body
TOP_TERMS = 64  # the most frequent content words kept per article
# Publication dates further apart than this are different stories. A preview up to eight days
# ahead is part of its event (docs/story-dev-set.md, rule 1), so a one-day meeting's preview and
# its reports are eight days apart (7 split the Gyeongju APEC previews from the meeting).
WINDOW_DAYS = 8
# Weights of the parts (same language / different languages) and the link threshold.
W_TITLE, W_BODY, W_ENTITIES, W_FACTS = 0.35, 0.40, 0.20, 0.05
X_BODY, X_ENTITIES, X_FACTS = 0.45, 0.45, 0.10
PLACE_PENALTY = 0.5  # both leads name a place (gazetteer) and none is shared
# Added when two heads have one event signature (the same groupings and kind of gathering)
# and share the venue or the edition's number: what reports of one meeting share in any
# language, when their words do not (docs/dedupe.md).
SIGNATURE_BONUS = 0.15
# Two heads name the same kind of gathering of other groupings or partners (an ASEAN Summit
# and the East Asia Summit of the same week): the middle of the train optimum (0.8-0.9).
SIGNATURE_PENALTY = 0.8
# One head names a gathering of groupings the other head names none of, and the other head
# names groupings of its own (APEC's summit vs ASEAN's leaders): two series, not one event.
# Train: 0 to 0.7 give the same figures; 0.5, as for different places.
GROUPING_PENALTY = 0.5
# The link threshold: SemEval's training F1 maximum, and with MEAN_THRESHOLD the highest recall
# with B-cubed precision >= 0.95 on the train split of the recurring-event set (docs/dedupe.md).
STORY_THRESHOLD = 0.22

# -- normalisation ----------------------------------------------------------------------------

_TRANSLIT = str.maketrans({**CYRILLIC, **{k.upper(): v.capitalize() for k, v in CYRILLIC.items()}})
_FOLD = str.maketrans({"đ": "d", "Đ": "D", "ø": "o", "ł": "l", "Ł": "L", "ß": "ss", "ı": "i"})
_UNSPACED_CHARS = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff"
)
_UNSPACED = re.compile(f"[{_UNSPACED_CHARS}]")
# A word: a run of an unspaced script, or of other word characters. A name written in Latin
# letters inside Japanese or Chinese text ("日本とASEAN特別首脳会議") is a word of its own.
# Devanagari's vowel signs and virama and Arabic's short vowels are marks, not word
# characters: without them "ब्रिक्स" (BRICS in Hindi) would be four words.
_MARKS = "\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963\u064b-\u065f\u0670"
_TOKEN = re.compile(f"[{_UNSPACED_CHARS}]+|(?:[^\\W{_UNSPACED_CHARS}]+|[{_MARKS}]+)+")
_SKELETON = (("dzh", "j"), ("dj", "j"), ("kh", "h"), ("ck", "k"), ("ph", "f"), ("y", "i"))


def latinise(text: str) -> str:
    """Cyrillic transliterated, accents and case folded: 'Лавровым' -> 'lavrovym'."""
    if text.isascii():
        return text.casefold()
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLIT).translate(_FOLD))
    text = text.translate(_combining_marks())
    if _ASTRAL.search(text):  # beyond the table: drop astral combining marks one by one
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.casefold()


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@functools.cache
def _combining_marks() -> dict[int, None]:
    """Every combining mark of the BMP, to delete with str.translate (C speed)."""
    return {code: None for code in range(0x10000) if unicodedata.combining(chr(code))}


@functools.lru_cache(maxsize=8192)
def _latin_word(word: str) -> str:
    return latinise(word)


@functools.lru_cache(maxsize=8192)
def _skeleton(token: str) -> str:
    """Spelling-variant key for names: Sergey/Sergei, Dzhakarta/Jakarta, Jock/Dzhok."""
    for old, new in _SKELETON:
        token = token.replace(old, new)
    return re.sub(r"(.)\1", r"\1", token)


def _tokens(text: str) -> list[str]:
    """Latinised word tokens; unspaced scripts give character bigrams."""
    out: list[str] = []
    for word in _TOKEN.findall(latinise(text)):
        if _UNSPACED.search(word):
            out.extend(word[i : i + 2] for i in range(max(1, len(word) - 1)))
        else:
            out.append(word)
    return out


_STOP = frozenset(t for t in _tokens(STOPWORDS))
_NOT_NAMES = frozenset(t for t in _tokens(NOT_NAMES))
_MEETING = frozenset(t[:STEM] for t in _tokens(MEETING_WORDS))
_MEETING_PHRASE = re.compile(
    r"\b(?:" + "|".join(" ".join(_tokens(p)) for p in MEETING_PHRASES) + r")\b"
)
_MONTHS = {latinise(k): v for k, v in MONTHS.items()}
_EVENT_NOUNS = {latinise(k): v for k, v in EVENT_NOUNS.items()}


def _stem(token: str) -> str:
    return token[:STEM]


def _terms(tokens: Iterable[str]) -> list[str]:
    return [
        _stem(t)
        for t in tokens
        if (len(t) >= 3 or _UNSPACED.match(t)) and not t.isdigit() and t not in _STOP
    ]


def _gaz_key(tokens: Iterable[str]) -> tuple[str, ...]:
    return tuple(_skeleton(t)[:5] for t in tokens)


_GAZ: dict[tuple[str, ...], str] = {}
# For each alias key, the longer prefix the whole token must share (one letter short of the
# alias, up to 6), so that case endings still match (Москве ~ Moskva) but a longer word
# that merely starts alike does not (Vladimir is not Vladivostok).
_GAZ_PREFIX: dict[tuple[str, ...], set[tuple[str, ...]]] = {}  # several aliases share a key
_GAZ_WEIGHT: dict[str, float] = {}
_GAZ_PLACES: frozenset[str] = frozenset(
    name for name, (kind, _w, _a) in GAZETTEER.items() if kind == "place" and _w >= 1.0
)
_GAZ_PEOPLE: frozenset[str] = frozenset(
    name for name, (kind, _w, _a) in GAZETTEER.items() if kind == "person"
)
_GAZ_ORGS: frozenset[str] = frozenset(
    name for name, (kind, _w, _a) in GAZETTEER.items() if kind == "org"
)
for _name, (_kind, _weight, _aliases) in GAZETTEER.items():
    _GAZ_WEIGHT[_name] = _weight
    for _alias in (_name, *_aliases):
        _words = _TOKEN.findall(latinise(_alias))
        _GAZ[_gaz_key(_words)] = _name
        _GAZ_PREFIX.setdefault(_gaz_key(_words), set()).add(
            tuple(_skeleton(w)[: max(5, min(len(_skeleton(w)) - 1, 6))] for w in _words)
        )
_GAZ_MAX = max(len(k) for k in _GAZ)
# Names inside Japanese, Chinese or Korean text, found as substrings (the longest first).
_UNSPACED_NAME = re.compile("|".join(sorted(map(re.escape, UNSPACED_NAMES), key=len, reverse=True)))
_HEAD_NAMES = _GAZ_PLACES | _GAZ_PEOPLE | _GAZ_ORGS


# -- features ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoryFeatures:
    """What the story layer compares: language-independent signals plus lexical ones."""

    language: str | None
    published_at: datetime | None
    title_terms: tuple[str, ...]  # stems of title + lead, sorted, unique
    terms: tuple[str, ...]  # the most frequent content stems of the whole text
    entities: tuple[str, ...]  # gazetteer names ("Lavrov") and name keys ("=merkel")
    places: tuple[str, ...]  # gazetteer places named in title + lead
    numbers: tuple[str, ...]  # specific numbers: decimals and 3+ digits, not years
    dates: tuple[str, ...]  # day mentions as "MM-DD"
    ordinals: tuple[str, ...]  # numbered events as "type:N", e.g. "meeting:16"
    ref_year: int | None  # publication year; else the latest year of a dated mention
    entity_norm: float = 0.0  # weighted norm of `entities`, precomputed for the cosine
    people: tuple[str, ...] = ()  # gazetteer people named in title + lead
    pair: tuple[str, ...] = ()  # the two people whose meeting the lead reports, if it does
    # The event signature of the head: the groupings it names ("org:G20") and the kind of
    # gathering it names first ("kind:summit"); with places and ordinals, the same in every
    # language (`_same_signature`).
    signature: tuple[str, ...] = ()
    # Places of `places` named only in the dateline ("JAKARTA, KOMPAS.com -", "МОСКВА, 2 сен -
    # РИА Новости."): where the outlet is, which is no evidence of where the event is.
    dateline: tuple[str, ...] = ()
    groupings: tuple[str, ...] = ()  # the groupings of `lexicon.GROUPINGS` the head names


_ORDINAL_PATTERNS = (
    re.compile(r"\b(\d{1,3})(?:st|nd|rd|th)\b"),
    re.compile(r"\b(\d{1,3})-?(?:е|й|я|го|му|м|ое|ий|ый|ая|ого)\b"),
    re.compile(r"\bl[aầ]n\s+th[uứ]\s+(\d{1,3})\b"),
    re.compile(r"\bke-?(\d{1,3})\b"),
    re.compile(r"\b(\d{1,3})(?:e|ème|er|re|º|ª|°)\s"),
)
_NUMERIC_DATE = re.compile(
    r"\b(?:((?:19|20)\d\d)-([01]?\d)-([0-3]?\d)|([0-3]?\d)[./]([01]?\d)[./]((?:19|20)\d\d))\b"
)
# Vietnamese day-month without a year: "ngày 3/2" (3 February).
_VI_DAY = re.compile(r"\bngay\s+([0-3]?\d)[/.-]([01]?\d)\b")
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")
_CAPITALISED = re.compile(r"(?<![\w'’])([^\W\d_][\w'’-]*)")


def extract_features(
    title: str, text: str, published_at: datetime | None, language: str | None
) -> StoryFeatures:
    """Story features of one article (pure; `published_at` aware UTC or None)."""
    text = _without_headline(title, text)
    lead = " ".join(text.split()[:LEAD_WORDS])
    head = f"{title}\n{lead}"
    full = f"{title}\n{text}"
    title_terms = tuple(sorted(set(_terms(_tokens(head)))))
    tokens = _tokens(full)
    counts = Counter(_terms(tokens))
    terms = tuple(sorted(t for t, _ in counts.most_common(TOP_TERMS)))
    entities, named = _entities(full, len(title) + 1 + len(_lead_chars(text)))
    dates, dated_years = _dates(full, tokens)
    ref_year = published_at.year if published_at else (max(dated_years) if dated_years else None)
    named -= departure_places(head, _head_places)
    return StoryFeatures(
        language=language,
        published_at=published_at,
        title_terms=_interned(title_terms),
        terms=_interned(terms),
        entities=_interned(sorted(entities)),
        places=tuple(sorted(named & _GAZ_PLACES)),
        dateline=_dateline_places(title, lead, named & _GAZ_PLACES),
        numbers=tuple(sorted(_numbers(full))),
        dates=tuple(sorted(dates)),
        ordinals=tuple(sorted(_ordinals(full))),
        ref_year=ref_year,
        entity_norm=_entity_norm(entities),
        people=tuple(sorted(named & _GAZ_PEOPLE)),
        pair=_pair(title, text),
        signature=_SIGNATURES.read(head, named),
        groupings=tuple(sorted(GROUPINGS.intersection(named))),
    )


def _without_headline(title: str, text: str) -> str:
    """The text without its first line when that line is the headline again (the extracted
    text of about one page in five starts with it): the lead is what follows, and the
    headline's words are not counted twice."""
    first, newline, rest = text.partition("\n")
    words = first.casefold().split()
    if newline and words and words == title.casefold().split():
        return rest
    return text


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def _pair(title: str, text: str) -> tuple[str, ...]:
    """The two people whose meeting the report is about: its headline and first sentence name
    exactly two people of the gazetteer and a word of meeting."""
    first = _first_sentence(text)[:300]
    headline = f"{title.strip()}\n{first}"
    named, _ = _entities(headline, len(headline))
    people = (named & _GAZ_PEOPLE) - _inviters(headline)
    if len(people) != 2:
        return ()
    tokens = _tokens(headline)
    if {t[:STEM] for t in tokens} & _MEETING or _MEETING_PHRASE.search(" ".join(tokens)):
        return tuple(sorted(people))
    return ()


# "At the invitation of X": X is the host of a visit, not a party to the meeting reported
# ("theo lời mời của Tổng thống Mỹ Joe Biden" in a report of a president's APEC trip).
_INVITATION = re.compile(
    r"(?:invitation of|invited by|по приглашению|lời mời của|atas undangan)\s+", re.IGNORECASE
)
_INVITER_WORDS = 8  # the inviter's name follows within a title and a few words


def _inviters(headline: str) -> set[str]:
    """The people of the gazetteer a headline names as the inviter: the first one named after
    "at the invitation of" and its Russian, Vietnamese and Indonesian forms."""
    out: set[str] = set()
    for match in _INVITATION.finditer(headline):
        words = headline[match.end() :].split()[:_INVITER_WORDS]
        for n in range(1, len(words) + 1):
            people = _entities(" ".join(words[:n]), 0)[0] & _GAZ_PEOPLE
            if people:
                out |= people
                break
    return out


# A "sentence" this short at the start of a text is a dateline ending in a full stop
# ("МОСКВА, 2 сен - РИА Новости.", "МОСКВА, 2 сентября. /ТАСС/."), not the lead (issue 12).
_DATELINE_WORDS = 5


def _first_sentence(text: str) -> str:
    """The lead's first sentence, past a dateline that ends in a full stop."""
    pieces = _SENTENCE_END.split(text.strip(), maxsplit=3)
    for piece in pieces[:3]:
        if sum(any(c.isalnum() for c in w) for w in piece.split()) > _DATELINE_WORDS:
            return piece
    return pieces[0]


def _head_places(text: str) -> set[str]:
    return _entities(text, len(text))[1] & _GAZ_PLACES


def _gaz_lookup(words: list[str]) -> str | None:
    return _GAZ.get(_gaz_key(words))


_SIGNATURES = SignatureReader(latinise, _gaz_lookup)


def _dateline_places(title: str, lead: str, places: set[str]) -> tuple[str, ...]:
    """The places of the head that only its dateline names."""
    end = dateline_end(lead) if places else None
    if end is None:
        return ()
    rest, _ = _entities(f"{title}\n{lead[end:]}", len(title) + len(lead) + 1)
    return tuple(sorted(places - rest))


def features_to_json(features: StoryFeatures) -> str:
    """Compact JSON for the store, so a restart rebuilds the story index without extracting."""
    data = {
        "v": 1,
        "language": features.language,
        "published_at": features.published_at.isoformat() if features.published_at else None,
        "title_terms": features.title_terms,
        "terms": features.terms,
        "entities": features.entities,
        "places": features.places,
        "numbers": features.numbers,
        "dates": features.dates,
        "ordinals": features.ordinals,
        "ref_year": features.ref_year,
        "entity_norm": features.entity_norm,  # kept: recomputing may differ in the last bit
        "people": features.people,
        "pair": features.pair,
        "signature": features.signature,
        "groupings": features.groupings,
        "dateline": features.dateline,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def features_from_json(text: str) -> StoryFeatures:
    """Inverse of `features_to_json`; raises ValueError on JSON it did not write."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != 1:
        raise ValueError("not story features written by features_to_json")
    published = data["published_at"]
    return StoryFeatures(
        language=data["language"],
        published_at=datetime.fromisoformat(published) if published else None,
        title_terms=_interned(data["title_terms"]),
        terms=_interned(data["terms"]),
        entities=_interned(data["entities"]),
        places=tuple(data["places"]),
        numbers=tuple(data["numbers"]),
        dates=tuple(data["dates"]),
        ordinals=tuple(data["ordinals"]),
        ref_year=data["ref_year"],
        entity_norm=float(data["entity_norm"]),
        people=tuple(data.get("people", ())),  # absent from features stored before it existed
        pair=tuple(data.get("pair", ())),
        signature=tuple(data.get("signature", ())),
        groupings=tuple(data.get("groupings", ())),
        dateline=tuple(data.get("dateline", ())),
    )


def _interned(words: Iterable[str]) -> tuple[str, ...]:
    """Shared string objects: the index holds thousands of articles with one vocabulary."""
    return tuple(sys.intern(w) for w in words)


def _entities(text: str, head_chars: int) -> tuple[set[str], set[str]]:
    """Gazetteer names, other capitalised names (as keys), and the gazetteer places and people
    named in the head."""
    words = [(m.start(), m.group(0)) for m in _TOKEN.finditer(text)]
    latin = [_latin_word(w) for _, w in words]
    # A word also written in lower case in the text is a common word ("Cooperation" in a
    # title, "cooperation" in the body), not a name. (Dropping every capitalised word of a
    # Title Case headline as well was tried: train recall 0.756 -> 0.714.)
    common = {latin[k] for k, (_s, w) in enumerate(words) if w[:1].islower()}
    keys = _gaz_key(latin)
    found: set[str] = set()
    head_places: set[str] = set()
    used: set[int] = set()
    j = 0
    while j < len(words):
        for n in range(min(_GAZ_MAX, len(words) - j), 0, -1):
            key = keys[j : j + n]
            name = _GAZ.get(key)
            if name and not any(
                all(
                    _skeleton(t).startswith(p) for t, p in zip(latin[j : j + n], alias, strict=True)
                )
                for alias in _GAZ_PREFIX[key]
            ):
                name = None
            # Short aliases ("UN", "Nga", "SOM", "Xi") count only when written with a capital
            # (or in a script without capitals: "شی"), and not as a Roman numeral in capitals
            # ("XI саммит" is the 11th).
            if name and n == 1 and _ROMAN_WORD.fullmatch(words[j][1]):
                name = None
            if name and (len(latin[j]) > 3 or not words[j][1][:1].islower()):
                found.add(name)
                used.update(range(j, j + n))
                if words[j][0] < head_chars and name in _HEAD_NAMES:
                    head_places.add(name)
                j += n - 1
                break
        j += 1
    if _UNSPACED.search(text):
        for match in _UNSPACED_NAME.finditer(text):
            name = UNSPACED_NAMES[match.group(0)]
            found.add(name)
            if match.start() < head_chars and name in _HEAD_NAMES:
                head_places.add(name)
    for k, (start, word) in enumerate(words):
        token = latin[k]
        if k in used or not word[:1].isupper() or len(token) < 3 or token in _STOP:
            continue
        if token in _NOT_NAMES or token in common:
            continue
        if token in _MONTHS or token.isdigit():
            continue
        before = _previous_char(text, start)
        if (not before or before in '.!?:;"“«–—•\n') and not word.isupper():
            continue  # a capital at the start of a sentence is not evidence of a name
        found.add("=" + _skeleton(token)[:STEM])
    return found, head_places


def _previous_char(text: str, start: int) -> str:
    """The last non-space character before `start` ("" if none; a line break counts as one),
    without copying the text."""
    i = start - 1
    while i >= 0 and text[i].isspace():
        if text[i] == "\n":
            return "\n"
        i -= 1
    return text[i] if i >= 0 else ""


def _numbers(text: str) -> set[str]:
    out: set[str] = set()
    for match in _NUMBER.finditer(text):
        raw = match.group(0)
        if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", raw):
            raw = re.sub(r"[.,]", "", raw)  # thousands separators
        value = raw.replace(",", ".")
        digits = value.replace(".", "")
        if "." not in value and (len(digits) < 3 or re.fullmatch(r"(?:19|20)\d\d", value)):
            continue  # small counts and years say little; years are handled as dates
        out.add(value.lstrip("0") or "0")
    return out


def _dates(text: str, tokens: list[str]) -> tuple[set[str], set[int]]:
    """Day mentions ("MM-DD") and the years of dated mentions (day or month + year)."""
    dates: set[str] = set()
    years: set[int] = set()
    for m in _NUMERIC_DATE.finditer(text):
        y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else m.group(6, 5, 4)
        if 1 <= int(mo) <= 12 and 1 <= int(d) <= 31:
            dates.add(f"{int(mo):02d}-{int(d):02d}")
            years.add(int(y))
    for m in _VI_DAY.finditer(latinise(text)):
        if 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(1)) <= 31:
            dates.add(f"{int(m.group(2)):02d}-{int(m.group(1)):02d}")
    for i, token in enumerate(tokens):
        month = _MONTHS.get(token)
        if token == "thang" and i + 1 < len(tokens) and tokens[i + 1].isdigit():
            month = int(tokens[i + 1]) if 1 <= int(tokens[i + 1]) <= 12 else None
            i += 1
        if month is None:
            continue
        near = tokens[max(0, i - 2) : i] + tokens[i + 1 : i + 4]
        day = next((t for t in near if t.isdigit() and 1 <= int(t) <= 31 and len(t) <= 2), None)
        year = next((t for t in near if re.fullmatch(r"(?:19|20)\d\d", t)), None)
        if day:
            dates.add(f"{month:02d}-{int(day):02d}")
        if year and (day or token in _MONTHS):
            years.add(int(year))
    return dates, years


_ROMAN_WORD = re.compile(r"[IVXLC]{2,7}")
_ROMAN = re.compile(r"\b(?=[IVXLC]{2,7}\b)(C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})\b")
_ROMAN_VALUE = {"C": 100, "L": 50, "X": 10, "V": 5, "I": 1}
_PHRASES = [(re.compile(re.escape(k)), f" {v} ") for k, v in EVENT_PHRASES.items()]


def _roman(numeral: str) -> int:
    total = 0
    for i, ch in enumerate(numeral):
        value = _ROMAN_VALUE[ch]
        nxt = _ROMAN_VALUE[numeral[i + 1]] if i + 1 < len(numeral) else 0
        total += -value if value < nxt else value
    return total


def _roman_mark(match: re.Match[str], text: str) -> str:
    """A Roman numeral as an ordinal, unless it stands in an all-caps line ("XI JINPING
    ATTENDS", "WORLD WAR II"): more capitals than small letters around it."""
    around = text[max(0, match.start() - 30) : match.end() + 30]
    upper = sum(ch.isupper() for ch in around) - len(match.group(0))
    if upper > sum(ch.islower() for ch in around):
        return match.group(0)
    return f" ordinal{_roman(match.group(0))} "


def _ordinals(text: str) -> set[str]:
    """Numbered events: '16th ... Meeting', '16-е совещание', 'Hội nghị ... lần thứ 16',
    'XVI саммит' (upper-case Roman numerals of two letters or more)."""
    text = _ROMAN.sub(lambda m: _roman_mark(m, text), text)
    low = text.casefold()
    for phrase, noun in _PHRASES:  # several words naming one kind ("hội nghị cấp cao")
        low = phrase.sub(noun, low)
    marked = low
    for pattern in _ORDINAL_PATTERNS:
        marked = pattern.sub(lambda m: f" ordinal{m.group(1)} ", marked)
    tokens = _tokens(marked)
    out: set[str] = set()
    for i, token in enumerate(tokens):
        if not token.startswith("ordinal") or not token[7:].isdigit():
            continue
        if any(t in _MONTHS for t in tokens[max(0, i - 1) : i + 2]):
            continue  # a date: "22-24th August", "August 24th"
        best: tuple[int, str] | None = None
        for j in range(max(0, i - 10), min(len(tokens), i + 7)):  # vi/id: noun first
            kind = _EVENT_NOUNS.get(tokens[j])
            if kind and j != i:
                distance = abs(j - i) * 2 + (j < i)  # ties: the noun after the number
                if best is None or distance < best[0]:
                    best = (distance, kind)
        if best:
            out.add(f"{best[1]}:{int(token[7:])}")
    return out


# -- similarity -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoryScore:
    score: float  # 0..1; 0 when a hard-negative guard fired
    reasons: list[str]
    parts: dict[str, float] = field(default_factory=dict)


def _cosine(a: Iterable[str], b: Iterable[str]) -> tuple[float, set[str]]:
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0, set()
    common = sa & sb
    return len(common) / math.sqrt(len(sa) * len(sb)), common


def _entity_weight(name: str) -> float:
    return _GAZ_WEIGHT.get(name, 1.0)


def _entity_norm(entities: Iterable[str]) -> float:
    return math.sqrt(sum(_entity_weight(e) ** 2 for e in entities))


def _entity_cosine(a: StoryFeatures, b: StoryFeatures) -> tuple[float, set[str]]:
    if not a.entity_norm or not b.entity_norm:
        return 0.0, set()
    common = set(a.entities).intersection(b.entities)
    shared = sum(_entity_weight(e) ** 2 for e in common)
    return shared / (a.entity_norm * b.entity_norm), common


# A summit is a meeting: "the 47th ASEAN Summit" and "Hội nghị ... lần thứ 32" (APEC) are
# numbered in one series of gatherings when vetoing, whichever noun the report used.
_KIND_FAMILY = {"summit": "meeting"}


def _by_kind(ordinals: Iterable[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in ordinals:
        kind, number = item.split(":")
        out.setdefault(_KIND_FAMILY.get(kind, kind), set()).add(number)
    return out


def _hard_negative(a: StoryFeatures, b: StoryFeatures) -> str | None:
    """Why two articles cannot be the same story, whatever their words say; None if they can."""
    if a.published_at and b.published_at:
        days = abs((a.published_at - b.published_at).total_seconds()) / 86400
        if days > WINDOW_DAYS:
            return f"published {days:.0f} days apart (window {WINDOW_DAYS} d)"
    elif a.ref_year and b.ref_year and a.ref_year != b.ref_year:
        return f"different event years: {a.ref_year} vs {b.ref_year}"
    meeting = _other_meeting(a, b) or _other_meeting(b, a)
    if meeting:  # the same city and days, but another meeting (a bilateral on the sidelines)
        return meeting
    ka, kb = _by_kind(a.ordinals), _by_kind(b.ordinals)
    for kind in sorted(ka.keys() & kb.keys()):
        if not ka[kind] & kb[kind]:
            first, second = ",".join(sorted(ka[kind])), ",".join(sorted(kb[kind]))
            return f"different numbered {kind}: {first} vs {second}"
    return None


def story_similarity(a: StoryFeatures, b: StoryFeatures) -> StoryScore:
    """How likely two articles report the same event, with the reasons in words."""
    title, _ = _cosine(a.title_terms, b.title_terms)
    body, _ = _cosine(a.terms, b.terms)
    ents, common_ents = _entity_cosine(a, b)
    nums, common_nums = _cosine(a.numbers, b.numbers)
    dates, common_dates = _cosine(a.dates, b.dates)
    facts = max(nums, dates)
    parts = {"title": title, "body": body, "entities": ents, "facts": facts}
    guard = _hard_negative(a, b)
    if guard:
        return StoryScore(0.0, [guard], parts)
    reasons: list[str] = []
    same_language = a.language is None or b.language is None or a.language == b.language
    if same_language:
        score = W_TITLE * title + W_BODY * body + W_ENTITIES * ents + W_FACTS * facts
    else:  # words cannot be compared across languages; names, numbers and dates can
        score = X_BODY * body + X_ENTITIES * ents + X_FACTS * facts
    if a.places and b.places and not set(a.places) & set(b.places):
        score *= PLACE_PENALTY
        reasons.append(
            f"different places in the lead: {', '.join(a.places)} vs {', '.join(b.places)} "
            f"(x{PLACE_PENALTY})"
        )
    other = other_signature(a, b)
    if other:
        score *= SIGNATURE_PENALTY
        reasons.append(f"other gatherings of one kind: {other} (x{SIGNATURE_PENALTY})")
    elif _other_series(a, b) or _other_series(b, a):
        score *= GROUPING_PENALTY
        reasons.append(
            f"gatherings of other groupings: {', '.join(a.groupings)} vs "
            f"{', '.join(b.groupings)} (x{GROUPING_PENALTY})"
        )
    signature = same_signature(a, b)
    if signature:
        score += SIGNATURE_BONUS
        reasons.append(f"same event signature: {signature} (+{SIGNATURE_BONUS:.2f})")
    if same_language:
        reasons.append(f"title+lead overlap {title:.2f}, text overlap {body:.2f}")
    shown = sorted(e.lstrip("=") for e in common_ents)[:8]
    reasons.append(f"shared names {ents:.2f}: {', '.join(shown) or 'none'}")
    if common_nums or common_dates:
        reasons.append(
            f"shared numbers/dates {facts:.2f}: {', '.join(sorted(common_nums | common_dates)[:6])}"
        )
    return StoryScore(round(min(1.0, score), 4), reasons, parts)


def _other_meeting(a: StoryFeatures, b: StoryFeatures) -> str | None:
    """Why `a`, the report of two people's meeting, is not about the same event as `b`: `b`'s
    head names a grouping's gathering or a meeting of its own, not both people. Against the
    report of a visit (no grouping, no pair) the meeting may be part of its programme (Blinken
    received by Xi on his Beijing visit), and the score decides (issue 12)."""
    if a.pair and (b.groupings or b.pair) and not set(a.pair) <= set(b.people):
        missing = ", ".join(p for p in a.pair if p not in b.people)
        pair = " and ".join(a.pair)
        return f"one reports the meeting of {pair}; the other's lead does not name {missing}"
    return None


def _other_series(a: StoryFeatures, b: StoryFeatures) -> bool:
    """Whether `a`'s head names a gathering (a signature) of groupings none of which `b`'s
    head names, while `b`'s head names other groupings."""
    if not a.signature or not b.groupings:
        return False
    return not {o[4:] for o in a.signature if o.startswith("org:")} & set(b.groupings)


def _lead_chars(text: str) -> str:
    words = text.split()[:LEAD_WORDS]
    if not words:
        return ""
    end = 0
    for word in words:
        end = text.index(word, end) + len(word)
    return text[:end]


# -- story assignment ------------------------------------------------------------------------

Kind = Literal["seed", "item"]
_DAY = 86400.0
MAX_SPAN_DAYS = 14  # a story never spans more than this (first to last member)
MEMBER_SAMPLE = 8  # members of a large story compared: the first and last in story order
# Pair scores the index keeps (about 100 bytes each; judgements, about 300 bytes, an eighth
# as many; candidate lists, about 400 bytes, a thirty-second): about 20 MB in all when full.
# An article that arrives before others in the decision order has them decided again,
# against the same members: without the memos a cold poll of 2,000 articles computed each
# pair about 15 times (issue 14).
PAIR_MEMO = 1 << 17
_PAIR_KEY = 1 << 40  # rows below this (never reused) make one int key per ordered pair
_K = TypeVar("_K")
MEAN_THRESHOLD = 0.13  # the mean score over the story's members compared must reach this
SUPPORT_FLOOR = 0.10  # more than half of the members compared must score at least this


@dataclass(frozen=True, slots=True)
class StoryMatch:
    """The story an article was put in, and why (with the time evidence)."""

    story_id: int
    is_new: bool  # no story matched as a whole: a story of its own
    score: float  # the best single-member score of the best story (also when not linked)
    threshold: float
    matched_key: str | None  # the story's best-matching member (None for a new story)
    compared_with: str | None  # the best candidate, linked or not
    reasons: tuple[str, ...]
    seed_refs: tuple[str, ...]  # seed file names in the story
    date: datetime | None = None  # the date the decision used
    date_basis: str = ""  # "published", "first seen" (no publication date), or a seed's source
    span: tuple[datetime, datetime] | None = None  # the story's dated span, this article included
    mean: float = 0.0  # the mean score over the members compared
    mean_threshold: float = MEAN_THRESHOLD
    members_compared: int = 0
    refused: tuple[str, ...] = ()  # candidate stories turned down, each with the rule
    window_days: int = WINDOW_DAYS
    max_span_days: int = MAX_SPAN_DAYS
    merged: str = ""  # the second step's merge of whole stories (`merge`), in words
    part: int | None = None  # its first-step story, when a merge put that in `story_id`
    # Only the story changed: an article indexed from the store (`StoryIndex.add`) whose
    # story a merge changed; its stored decision stands.
    restored: bool = False

    def explain(self) -> str:
        """The decision in plain words."""
        when = _time_words(self)
        refused = f"; refused: {'; '.join(self.refused)}" if self.refused else ""
        if self.merged:
            refused += f"; {self.merged}"
        why = "; ".join(self.reasons)
        if not self.is_new:
            return (
                f"same story as {self.matched_key} (story {self.story_id}): best member "
                f"{self.score:.2f} >= {self.threshold:.2f}, mean over {self.members_compared} "
                f"{'member' if self.members_compared == 1 else 'members'} {self.mean:.2f} >= "
                f"{self.mean_threshold:.2f}; {when}; {why}{refused}"
            )
        if self.compared_with is None:
            return (
                f"new story {self.story_id}: no candidate story in the window shared a name or "
                f"title word; {when}{refused}"
            )
        return (
            f"new story {self.story_id}: best candidate {self.compared_with} scored "
            f"{self.score:.2f} (threshold {self.threshold:.2f}, story mean {self.mean:.2f} vs "
            f"{self.mean_threshold:.2f}); {when}; {why}{refused}"
        )


def _day_text(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _span_text(span: tuple[datetime, datetime]) -> str:
    first, last = span
    return (
        _day_text(first)
        if first.date() == last.date()
        else f"{_day_text(first)} – {_day_text(last)}"
    )


def _time_words(match: StoryMatch) -> str:
    date = f"{match.date_basis or 'dated'} {_day_text(match.date)}" if match.date else "undated"
    span = f", story span {_span_text(match.span)}" if match.span else ""
    return f"{date}{span}"


@dataclass(slots=True)
class _Entry:
    key: str
    features: StoryFeatures
    when: float | None  # the decision's date (timestamp); None only for an undated seed
    story_id: int
    seed_ref: str | None
    basis: str
    order: tuple[int, float, str]  # seeds first, then by date, then by key
    keys: tuple[str, ...] = ()  # its index keys (`_index_keys`)
    match: StoryMatch | None = None

    @property
    def day(self) -> int | None:
        return None if self.when is None else int(self.when // _DAY)


@dataclass(frozen=True, slots=True)
class StoryMove:
    """An article already indexed whose story changed because of a later arrival."""

    key: str
    seed_ref: str | None
    match: StoryMatch


@dataclass(slots=True)
class _Judgement:
    story_id: int
    ok: bool
    best: float
    best_row: int | None
    mean: float
    compared: int
    rule: str | None


@dataclass(slots=True)
class StoryTrial:
    """A journal of what a `StoryIndex` did since `begin_trial` (cluster mode decides a story
    ahead of the decision lock): the rows inserted (with the row their key had before), the
    rows decided again or moved by the second step (with the story and match they had), the
    stories judged, the second step's own journal, and what the caller asked to be done
    when the trial is taken back (`on_undo`)."""

    next_id: int  # the next free story id when the trial began
    moves: int  # how many moves were waiting then
    merger: MergeJournal  # the second step's changes (`StoryMerger.start_journal`)
    inserted: list[tuple[int, str, int | None]] = field(default_factory=list)
    detached: list[tuple[int, int, StoryMatch | None]] = field(default_factory=list)
    judged: set[int] = field(default_factory=set)
    undo: list[Callable[[], None]] = field(default_factory=list)


class StoryIndex:
    """Articles of the retention window plus all seeds, grouped into stories (events).

    The partition does not depend on arrival order: it is defined as if articles were
    decided one by one in a fixed order (seeds first, then by date, then by key), each
    against the stories formed by the articles before it. An article that arrives out of
    that order is decided in its place, and the articles after it that it could affect are
    decided again (`take_moves` returns those whose story changed). An article joins a story
    only when it matches the story as a whole (its best member reaches `threshold` and the
    mean over the members compared reaches `mean_threshold`), its date lies within the
    story's span plus or minus `window_days`, and the story would not then span more than
    `max_span_days`. The date is the publication date, else the first-seen time; a seed's
    comes from the corpus (an undated seed never takes an article into its story).
    """

    def __init__(
        self,
        *,
        threshold: float = STORY_THRESHOLD,
        mean_threshold: float = MEAN_THRESHOLD,
        window_days: int = WINDOW_DAYS,
        max_span_days: int = MAX_SPAN_DAYS,
        next_story_id: int = 1,
        max_candidates: int = 32,
        pair_memo: int = PAIR_MEMO,
    ) -> None:
        self.threshold = threshold
        self.mean_threshold = mean_threshold
        self.window_days = window_days
        self.max_span_days = max_span_days
        self._next_id = next_story_id
        self._max_candidates = max_candidates
        self._entries: dict[int, _Entry] = {}
        self._rows: dict[str, int] = {}  # key -> its row
        self._seeds: list[int] = []
        self._postings: dict[int, dict[str, list[int]]] = {}  # day -> index key -> rows
        self._by_day: dict[int, list[int]] = {}
        self._stories: dict[int, set[int]] = {}  # story id -> rows
        self._moves: list[StoryMove] = []
        self._row = 0
        self._apart: dict[str, set[str]] = {}  # key -> keys it never shares a story with
        # story_similarity(row, other).score by `row * _PAIR_KEY + other` (-0.0 for a
        # "different numbered ..." veto), emptied when full or when features change.
        self._pair_scores: dict[int, float] = {}
        # 0: no memo and no skipping, every affected article decided again from scratch
        # (the reference the tests hold the memos to).
        self._pair_memo = pair_memo
        # A story's version changes with its members; a judgement of (row, story) holds
        # while the story's version does (`_judge`).
        self._versions: dict[int, int] = {}
        self._clock = 0
        self._judged: dict[int, tuple[int, _Judgement]] = {}
        self._detached: tuple[int, int] | None = None  # (row, story) between detach and attach
        # A row's candidate articles: (rows indexed before they were found, the rows, the
        # rank of the last when there are max_candidates of them).
        self._candidates: dict[
            int, tuple[int, list[int], tuple[int, tuple[int, float, str]] | None]
        ] = {}
        # The second step: stories of the first that match as wholes are merged (issue 12).
        self._merger = StoryMerger(
            self._merge_members,
            _merge_names,
            self._merge_score,
            lambda key: self._apart.get(key, ()),
            MergeRules(threshold, mean_threshold, SUPPORT_FLOOR, max_span_days),
        )
        self._trial: StoryTrial | None = None  # the changes being journaled (`begin_trial`)

    def set_apart(self, constraints: Mapping[str, Iterable[str]]) -> None:
        """Cannot-link constraints from corrections (issue 16): a key never shares a story
        with the keys given for it. Symmetric, and checked in every decision, so the stories
        still do not depend on arrival order. Replaces the constraints set before."""
        apart: dict[str, set[str]] = {}
        for key, others in constraints.items():
            for other in others:
                if other != key:
                    apart.setdefault(key, set()).add(other)
                    apart.setdefault(other, set()).add(key)
        self._apart = apart
        # Judgements, skips and candidate lists were made under the old constraints.
        self._judged.clear()
        self._candidates.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def seed_refs(self, story_id: int) -> tuple[str, ...]:
        """The seeds of a story (as `story_of` and the matches number them)."""
        rows = self._story_rows(story_id)
        return tuple(sorted({ref for r in rows if (ref := self._entries[r].seed_ref)}))

    def span(self, story_id: int) -> tuple[datetime, datetime] | None:
        """The dated span of a story's indexed members (None when none is dated)."""
        dates = [w for r in self._story_rows(story_id) if (w := self._entries[r].when)]
        return (_utc(min(dates)), _utc(max(dates))) if dates else None

    def story_of(self, key: str) -> int | None:
        """The story of the indexed article `key` (None when not indexed)."""
        row = self._rows.get(key)
        return None if row is None else self._merger.merged_id(self._entries[row].story_id)

    def _merge_members(self, story_id: int) -> list[Member]:
        entries = self._entries
        rows = sorted(self._stories.get(story_id, ()), key=lambda r: entries[r].order)
        return [
            Member(r, e.key, e.when, e.features, e.seed_ref is not None)
            for r in rows
            if (e := entries[r])
        ]

    def _merge_score(self, a: Member, b: Member) -> float:
        """The pair score, the later article in the order scored against the earlier, as
        the first step scores it (and from the same memo)."""
        if self._entries[a.row].order < self._entries[b.row].order:
            a, b = b, a
        return self._pair_score(a.row, b.row)

    def _story_rows(self, story_id: int) -> list[int]:
        """The rows of a story as the outside sees it: its first-step stories' rows."""
        parts = self._merger.parts(story_id)
        return [r for part in parts for r in self._stories.get(part, ())]

    def _base_seed_refs(self, story_id: int) -> tuple[str, ...]:
        rows = self._stories.get(story_id, ())
        return tuple(sorted({ref for r in rows if (ref := self._entries[r].seed_ref)}))

    def _base_span(self, story_id: int) -> tuple[datetime, datetime] | None:
        dates = [w for r in self._stories.get(story_id, ()) if (w := self._entries[r].when)]
        return (_utc(min(dates)), _utc(max(dates))) if dates else None

    def date_seed(self, key: str, features: StoryFeatures, basis: str) -> None:
        """Give an undated seed the date its story found for it (`features.published_at`)."""
        row = self._rows.get(key)
        entry = None if row is None else self._entries[row]
        if entry is not None and entry.seed_ref is not None and features.published_at:
            entry.features = features
            self._pair_scores.clear()  # scores against its old features
            self._judged.clear()  # judgements against its old date
            entry.when = features.published_at.timestamp()
            entry.order = (0, entry.when, key)
            entry.basis = basis

    def take_moves(self) -> list[StoryMove]:
        """Articles whose story changed since the last call (an earlier article arrived late)."""
        moves, self._moves = self._moves, []
        return moves

    def assign(
        self,
        key: str,
        features: StoryFeatures,
        at: datetime,
        *,
        seed_ref: str | None = None,
        date_basis: str | None = None,
    ) -> StoryMatch:
        """Put an article in its story (or a new one) and index it.

        `at` is when it was first seen; the decision uses `features.published_at` when there
        is one, else `at`. For a seed, `features.published_at` is its corpus date (None:
        undated) and `date_basis` says where that date came from.
        """
        row = self._insert(key, features, at, -1, seed_ref, date_basis)
        entry = self._entries[row]
        before: dict[int, int] = {}
        fresh: set[int] = set()
        touched: set[int] = set()
        touched_keys: set[str] = set()
        entry.match = self._decide(row, fresh, founder_id=None)
        self._touch(entry.story_id, touched, touched_keys)
        horizon = self._reach(entry)
        for later in self._later(entry):
            other = self._entries[later]
            beyond = other.when is not None and (horizon is None or other.when > horizon)
            if beyond and other.seed_ref is None:
                break  # articles come in date order: nothing later can be affected
            if beyond:
                continue
            if not self._affected(later, touched, touched_keys):
                continue
            candidates = self._changed_inputs(later, row, touched)
            if candidates is None:
                continue
            old = other.story_id
            self._detach(later)
            founder = old if not self._has_member_before(old, later) else None
            other.match = self._decide(later, fresh, founder_id=founder, candidates=candidates)
            if other.story_id != old:
                before.setdefault(later, old)
                self._touch(old, touched, touched_keys)
                self._touch(other.story_id, touched, touched_keys)
                reach = self._reach(other)
                if reach is not None and (horizon is None or reach > horizon):
                    horizon = reach
        self._relabel(fresh, before)
        self._merge_step(row, before)
        assert entry.match is not None
        return entry.match

    def _merge_step(self, row: int, before: dict[int, int]) -> None:
        """The second step (`merge`) around the stories this decision changed; the articles
        whose story changed either way, but for `row`, become moves."""
        entry = self._entries[row]
        merger = self._merger
        changed = {entry.story_id, *before.values()}
        changed.update(self._entries[r].story_id for r in before)
        previous = {s: merger.merged_id(s) for s in changed}
        shifted = merger.update(changed)
        old_of = {r: previous[old] for r, old in before.items()}
        for story_id, old in shifted.items():
            for r in self._stories.get(story_id, ()):
                old_of.setdefault(r, old)
        old_of.pop(row, None)
        for r in sorted(old_of, key=lambda r: self._entries[r].order):
            other = self._entries[r]
            story_id = merger.merged_id(other.story_id)
            # Moved within a merged story: the store keeps its first-step story too.
            regrouped = r in before and before[r] != other.story_id
            if story_id != old_of[r] or regrouped:
                if self._trial is not None:  # as one decided again: its match is put back
                    self._trial.detached.append((r, other.story_id, other.match))
                if other.match is None:  # indexed from the store: a story change only
                    other.match = self._restored(other)
                other.match = self._outside(other.match, other.story_id)
                self._moves.append(StoryMove(other.key, other.seed_ref, other.match))
        assert entry.match is not None
        entry.match = self._outside(entry.match, entry.story_id)

    def _restored(self, entry: _Entry) -> StoryMatch:
        """The match of an article indexed from the store, when a merge changes its story:
        the decision stored with it stands, only its story is new."""
        return StoryMatch(
            story_id=entry.story_id,
            is_new=False,
            score=0.0,
            threshold=self.threshold,
            matched_key=None,
            compared_with=None,
            reasons=(),
            seed_refs=(),
            date=None if entry.when is None else _utc(entry.when),
            date_basis=entry.basis,
            restored=True,
        )

    def _outside(self, match: StoryMatch, base_id: int) -> StoryMatch:
        """A match as the outside sees it: numbered by the merged story, with its seeds, and
        the merge said in words."""
        story_id = self._merger.merged_id(base_id)
        match = _with_story(match, story_id, self.seed_refs(story_id))
        part = None if base_id == story_id else base_id
        if match.part != part:
            match = replace(match, part=part)
        merged = ""
        if story_id != base_id or len(self._merger.parts(story_id)) > 1:
            others = [p for p in self._merger.parts(story_id) if p != base_id]
            merged = (
                f"its story matched {len(others)} other "
                f"{'story' if len(others) == 1 else 'stories'} as a whole and was merged "
                f"into story {story_id}"
            )
        if merged != match.merged:
            match = replace(match, merged=merged, span=self.span(story_id) or match.span)
        return match

    def add(
        self,
        key: str,
        features: StoryFeatures,
        at: datetime,
        *,
        story_id: int,
        part: int | None = None,
        seed_ref: str | None = None,
        date_basis: str | None = None,
    ) -> None:
        """Index an article whose story is already known (rebuilding from the store):
        `story_id` as the outside knows it and `part`, its first-step story when a merge
        made that part of `story_id` (`StoryMatch.part`). With the parts as they were, the
        index is the one that decided them: what follows is decided as it would have been
        without the restart."""
        first = story_id if part is None else part
        if (
            part is None
            and story_id in self._stories
            and self._merger.merged_id(story_id) != story_id
        ):
            # A story merged into another is known by the other's id outside this index:
            # this id is another process's new story (cluster mode). Ours takes a fresh id.
            self._renumber(story_id, max(self._next_id, story_id + 1))
        self._insert(key, features, at, first, seed_ref, date_basis)
        if first != story_id:
            self._merger.restore(first, story_id)
            self._next_id = max(self._next_id, story_id + 1)
        self._merger.note(first)

    def _renumber(self, old: int, new: int) -> None:
        """Give a first-step story that is merged into another a fresh id."""
        rows = self._stories.pop(old)
        self._stories[new] = rows
        for r in rows:
            self._entries[r].story_id = new
        self._next_id = new + 1
        self._changed(old)
        self._changed(new)
        self._judged.clear()
        self._merger.rename(old, new)

    def evict_before(self, at: datetime) -> int:
        """Forget articles (never seeds) dated before the cut-off; returns how many."""
        cutoff = int(at.timestamp() // _DAY)
        count = 0
        # The memos may name evicted rows; emptied here too, they hold at most what one
        # retention sweep's interval (an hour in the daemon) decided, not up to their bound.
        self._candidates.clear()
        self._pair_scores.clear()
        self._judged.clear()
        for day in [d for d in self._by_day if d < cutoff]:
            for row in self._by_day.pop(day):
                entry = self._entries.pop(row)
                if self._rows.get(entry.key) == row:
                    del self._rows[entry.key]
                members = self._stories.get(entry.story_id)
                if members is not None:
                    self._changed(entry.story_id)
                    members.discard(row)
                    if not members:
                        del self._stories[entry.story_id]
                        self._merger.forget(entry.story_id)
                    else:
                        self._merger.note(entry.story_id)
                count += 1
            self._postings.pop(day, None)
        return count

    # -- trials (cluster mode: a story decided ahead of the lock, kept or taken back) --------

    def begin_trial(self) -> StoryTrial:
        """Journal the changes that follow (`assign`, `add`) until `end_trial`, so that
        `undo_trial` can take them back."""
        self._trial = StoryTrial(self._next_id, len(self._moves), self._merger.start_journal())
        return self._trial

    def end_trial(self) -> None:
        """Stop journaling (the trial's changes stay until `undo_trial`)."""
        self._trial = None
        self._merger.stop_journal()

    def on_undo(self, action: Callable[[], None]) -> None:
        """While a trial is open: `action` takes back a change made outside the index for the
        trial's decision (a follower noted); `undo_trial` runs it."""
        if self._trial is not None:
            self._trial.undo.append(action)

    def undo_trial(self, trial: StoryTrial) -> None:
        """Take back every change made since `begin_trial` returned `trial` (and nothing made
        after it may remain): the index then decides as if the trial never happened."""
        self._trial = None
        self._merger.stop_journal()
        for action in reversed(trial.undo):
            action()
        changed: set[int] = set()
        for row, story_id, match in reversed(trial.detached):
            entry = self._entries.get(row)
            if entry is None:
                continue
            if entry.story_id != story_id:
                changed |= {entry.story_id, story_id}
                self._leave(row, entry.story_id)
                self._stories.setdefault(story_id, set()).add(row)
                entry.story_id = story_id
            entry.match = match
        for row, key, previous in reversed(trial.inserted):
            entry = self._entries.pop(row)
            if previous is None:
                self._rows.pop(key, None)
            else:
                self._rows[key] = previous
            if entry.story_id >= 0:
                changed.add(entry.story_id)
                self._leave(row, entry.story_id)
            if entry.seed_ref is not None:
                self._seeds.remove(row)
                continue
            day = entry.day
            assert day is not None
            if _drop(self._by_day, day, row):
                postings = self._postings[day]
                for k in entry.keys:
                    _drop(postings, k, row)
                if not postings:
                    del self._postings[day]
        for story_id in sorted(changed):
            self._changed(story_id)  # judgements made during the trial no longer hold
        self._next_id = trial.next_id
        del self._moves[trial.moves :]
        self._candidates.clear()  # they may name the rows taken out
        self._detached = None
        self._merger.undo(trial.merger)  # its profiles and merges as they were

    def trial_holds(self, trial: StoryTrial, others: Iterable[tuple[StoryFeatures, int]]) -> bool:
        """Whether the trial's decisions come out the same had these articles (features and
        story id, as another decider indexed them) been indexed before it began. True only
        when none of them shares an index key with an article the trial decided (it would be
        a candidate) or with a member of a story the trial changed (it would be decided
        again), none is in a story the trial judged or changed, and no story the trial changed
        holds a seed. A story id from `trial.next_id` on was made after the trial began: not
        one the trial read (its id is what `renumber_trial` is for).

        The second step (`merge`) read more: the stories around those changed, and those
        sharing two profile names with them. None of the articles may be in one of these (by
        the merged id it was stored with: any of its parts) or name a profile name of a story
        whose neighbours it looked up: a story's profile names are names most of its members
        name, so an article naming none of them cannot make its story (new or not) a new
        neighbour of one the step read."""
        others = list(others)
        if not others:
            return True
        decided = [r for r, _, _ in trial.inserted] + [r for r, _, _ in trial.detached]
        keys: set[str] = set()
        touched = {story_id for _, story_id, _ in trial.detached}
        for row in decided:
            entry = self._entries.get(row)
            if entry is not None:
                keys.update(entry.keys)
                touched.add(entry.story_id)
        for story_id in touched:
            for row in self._stories.get(story_id, ()):
                entry = self._entries[row]
                if entry.seed_ref is not None:
                    return False  # every later article has the seeds among its candidates
                keys.update(entry.keys)
        keys |= trial.merger.names  # names are index keys
        read = trial.judged | touched | trial.merger.read
        for features, story_id in others:
            if story_id < trial.next_id and (
                story_id in read or not read.isdisjoint(self._merger.parts(story_id))
            ):
                return False
            if not keys.isdisjoint(_index_keys(features)):
                return False
        return True

    def renumber_trial(self, trial: StoryTrial, next_id: int) -> dict[int, int] | None:
        """Give the stories the trial made the ids they would have had if `next_id` had been
        the next free one when it began (other deciders took the ids between), and move the
        next free id as far: returns the ids changed, or None when the trial also decided
        earlier articles again or merged a story it made (ids it took may then be named in
        their reasons: decide again instead)."""
        shift = next_id - trial.next_id
        if shift <= 0 or self._next_id == trial.next_id:
            return {}  # no id taken by the trial (or none by the others)
        if trial.detached:
            return None
        fresh = sorted(
            {
                entry.story_id
                for row, _, _ in trial.inserted
                if (entry := self._entries.get(row)) is not None and entry.story_id >= trial.next_id
            }
        )
        merger = self._merger
        if any(merger.merged_id(s) != s or len(merger.parts(s)) > 1 for s in fresh):
            return None
        renamed = {story_id: story_id + shift for story_id in fresh}
        for old, new in sorted(renamed.items(), reverse=True):
            members = self._stories.pop(old)
            self._stories[new] = members
            self._changed(old)
            self._changed(new)
            for row in members:
                entry = self._entries[row]
                entry.story_id = new
                if entry.match is not None:
                    entry.match = _with_story(entry.match, new, entry.match.seed_refs)
            merger.rename(old, new)  # its profile, under the new id
        self._next_id += shift
        return renamed

    def _leave(self, row: int, story_id: int) -> None:
        members = self._stories.get(story_id)
        if members is not None:
            members.discard(row)
            if not members:
                del self._stories[story_id]

    # -- internals ---------------------------------------------------------------------------

    def _insert(
        self,
        key: str,
        features: StoryFeatures,
        at: datetime,
        story_id: int,
        seed_ref: str | None,
        basis: str | None,
    ) -> int:
        row = self._row
        self._row += 1
        if seed_ref is not None:
            when = features.published_at.timestamp() if features.published_at else None
            order = (0, when if when is not None else math.inf, key)
            basis = basis or ("published" if when is not None else "")
        else:
            dated = features.published_at or at
            when = dated.timestamp()
            order = (1, when, key)
            basis = "published" if features.published_at else "first seen"
        entry = _Entry(key, features, when, story_id, seed_ref, basis, order, _index_keys(features))
        if self._trial is not None:
            self._trial.inserted.append((row, key, self._rows.get(key)))
        self._entries[row] = entry
        self._rows[key] = row
        if story_id >= 0:
            self._stories.setdefault(story_id, set()).add(row)
            self._changed(story_id)
            self._next_id = max(self._next_id, story_id + 1)
        if seed_ref is not None:
            self._seeds.append(row)
            return row
        day = entry.day
        assert day is not None
        self._by_day.setdefault(day, []).append(row)
        postings = self._postings.setdefault(day, {})
        for k in entry.keys:
            postings.setdefault(k, []).append(row)
        return row

    def _changed(self, story_id: int) -> None:
        """Note that a story's members changed: its judgements no longer hold."""
        self._clock += 1
        self._versions[story_id] = self._clock

    def _detach(self, row: int) -> None:
        """Take an article out of its story to decide it again. Its story's version holds
        until `_attach` puts it elsewhere: nothing else is judged in between, and its own
        judgements read only the members before it."""
        entry = self._entries[row]
        if self._trial is not None:
            self._trial.detached.append((row, entry.story_id, entry.match))
        self._detached = (row, entry.story_id)
        members = self._stories.get(entry.story_id)
        if members is not None:
            members.discard(row)
            if not members:
                del self._stories[entry.story_id]

    def _attach(self, row: int, story_id: int) -> None:
        self._entries[row].story_id = story_id
        self._stories.setdefault(story_id, set()).add(row)
        detached, self._detached = self._detached, None
        if detached != (row, story_id):  # not back where it was
            self._changed(story_id)
            if detached is not None:
                self._changed(detached[1])

    def _has_member_before(self, story_id: int, row: int) -> bool:
        order = self._entries[row].order
        return any(self._entries[r].order < order for r in self._stories.get(story_id, ()))

    def _reach(self, entry: _Entry) -> float | None:
        """The latest date a change at `entry` can influence (None: no article, undated)."""
        if entry.when is None:
            return None
        return entry.when + (self.max_span_days + self.window_days) * _DAY

    def _later(self, entry: _Entry) -> Iterable[int]:
        """Indexed articles after `entry` in the decision order that it could affect, in order."""
        seeds = sorted(
            (r for r in self._seeds if self._entries[r].order > entry.order),
            key=lambda r: self._entries[r].order,
        )
        yield from seeds
        if entry.when is None or not self._by_day:
            return
        first = entry.day
        assert first is not None
        if entry.seed_ref is not None:  # every item comes after a seed in the order
            first -= self.max_span_days + self.window_days
        last = max(self._by_day)
        for day in range(max(first, min(self._by_day)), last + 1):
            rows = self._by_day.get(day)
            if rows:
                yield from sorted(
                    (r for r in rows if self._entries[r].order > entry.order),
                    key=lambda r: self._entries[r].order,
                )

    def _touch(self, story_id: int, touched: set[int], touched_keys: set[str]) -> None:
        """Note a changed story and the index keys of its members. A story with a seed is
        noted under the key "" as well: every article has the seeds among its candidates."""
        touched.add(story_id)
        for r in self._stories.get(story_id, ()):
            entry = self._entries[r]
            touched_keys.update(entry.keys)
            if entry.seed_ref is not None:
                touched_keys.add("")

    def _affected(self, row: int, touched: set[int], touched_keys: set[str]) -> bool:
        """Whether a story changed that this article's decision looked at, or could now: its
        own, or one it shares an index key with (its candidates are found by shared keys)."""
        entry = self._entries[row]
        if entry.story_id in touched or "" in touched_keys:
            return True
        return not touched_keys.isdisjoint(entry.keys)

    def _changed_inputs(self, row: int, new: int, touched: set[int]) -> list[int] | None:
        """The candidates of the article at `row` when what its decision reads changed since
        it was made (`new` came in before it, the `touched` stories changed); else None.

        A decision reads its own story, its candidate rows and the stories they are in (their
        members, dates and seeds): with none of these changed it would come out the same,
        so deciding it again is skipped (issue 14: a cold poll of 2,000 articles arriving in
        reverse date order decided each again hundreds of times)."""
        candidates = self._candidate_rows(row)
        if not self._pair_memo or self._entries[row].story_id in touched or new in candidates:
            return candidates
        entries = self._entries
        return candidates if any(entries[r].story_id in touched for r in candidates) else None

    def _candidate_rows(self, row: int) -> list[int]:
        """Articles before `row` in the order that share a name or title word with it within
        the window (the most shared first), then the seeds before it."""
        entry = self._entries[row]
        out = self._item_candidates(row, entry) if entry.day is not None else []
        seeds = sorted(
            (r for r in self._seeds if r != row and self._entries[r].order < entry.order),
            key=lambda r: self._entries[r].order,
        )
        return out + seeds

    def _item_candidates(self, row: int, entry: _Entry) -> list[int]:
        """The articles among `row`'s candidates. They are ranked by the index keys they
        share, then by order; an article indexed since they were found changes them only
        when it is before `row`, within the window and ranks above the last of them, so
        the list found earlier is kept until one does (or an eviction)."""
        held = self._candidates.get(row) if self._pair_memo else None
        if held is not None:
            since, out, last = held
            if not any(self._outranks(new, entry, last) for new in range(since, self._row)):
                self._candidates[row] = (self._row, out, last)
                return out
        day = entry.day
        assert day is not None
        keys = entry.keys
        lists = []
        for d in range(day - self.window_days, day + self.window_days + 1):
            postings = self._postings.get(d)
            if postings:
                lists += [rows for k in keys if (rows := postings.get(k))]
        votes = Counter(chain.from_iterable(lists))  # one count, not one per list
        out = heapq.nsmallest(  # sorted(...)[:n], without sorting them all
            self._max_candidates,
            (r for r in votes if r != row and self._entries[r].order < entry.order),
            key=lambda r: (-votes[r], self._entries[r].order),
        )
        if self._pair_memo:
            if len(self._candidates) >= max(1, self._pair_memo >> 5):
                self._candidates.clear()
            full = len(out) == self._max_candidates
            last = (-votes[out[-1]], self._entries[out[-1]].order) if full else None
            self._candidates[row] = (self._row, out, last)
        return out

    def _outranks(
        self, new: int, entry: _Entry, last: tuple[int, tuple[int, float, str]] | None
    ) -> bool:
        """Whether the article at row `new` is now among `entry`'s candidate articles."""
        other = self._entries.get(new)
        if other is None or other.seed_ref is not None or other.order >= entry.order:
            return False
        day, other_day = entry.day, other.day  # articles are dated
        assert day is not None
        assert other_day is not None
        if abs(other_day - day) > self.window_days:
            return False
        shared = len(set(other.keys).intersection(entry.keys))
        return shared > 0 and (last is None or (-shared, other.order) < last)

    def _decide(
        self,
        row: int,
        fresh: set[int],
        *,
        founder_id: int | None,
        candidates: list[int] | None = None,
    ) -> StoryMatch:
        """Decide one article against the stories formed by the articles before it
        (`candidates`: its `_candidate_rows`, when just found)."""
        entry = self._entries[row]
        if candidates is None:
            candidates = self._candidate_rows(row)
        scores: dict[int, float] = {}
        stories: list[int] = []
        for r in candidates:
            sid = self._entries[r].story_id
            if sid not in stories:
                stories.append(sid)
        judgements = [self._judge(row, sid, scores) for sid in stories]
        passed = [j for j in judgements if j.ok]
        chosen = min(
            passed,
            key=lambda j: (-j.mean, -j.best, self._first_order(j.story_id)),
            default=None,
        )
        if chosen is not None:
            story_id = chosen.story_id
        elif founder_id is not None:
            story_id = founder_id
        else:
            story_id = self._next_id
            self._next_id += 1
            fresh.add(story_id)
        self._attach(row, story_id)
        shown = chosen or max(
            (j for j in judgements if j.best_row is not None),
            key=lambda j: (j.best, j.mean),
            default=None,
        )
        refused = tuple(
            f"story {j.story_id}{self._story_label(j.story_id)}: {j.rule}"
            for j in judgements
            if j.rule and j is not chosen
        )[:4]
        best_row = shown.best_row if shown else None
        other = self._entries[best_row].key if best_row is not None else None
        reasons = (
            story_similarity(entry.features, self._entries[best_row].features).reasons
            if best_row is not None
            else ()
        )
        span = self._base_span(story_id) if chosen is not None else None
        if span is None and entry.when is not None:
            span = (_utc(entry.when), _utc(entry.when))
        return StoryMatch(
            story_id=story_id,
            is_new=chosen is None,
            score=shown.best if shown else 0.0,
            threshold=self.threshold,
            matched_key=other if chosen is not None else None,
            compared_with=other,
            reasons=tuple(reasons),
            seed_refs=self._base_seed_refs(story_id),
            date=_utc(entry.when) if entry.when is not None else None,
            date_basis=entry.basis,
            span=span,
            mean=shown.mean if shown else 0.0,
            mean_threshold=self.mean_threshold,
            members_compared=shown.compared if shown else 0,
            refused=refused,
            window_days=self.window_days,
            max_span_days=self.max_span_days,
        )

    def _first_order(self, story_id: int) -> tuple[int, float, str]:
        return min(self._entries[r].order for r in self._stories[story_id])

    def _story_label(self, story_id: int) -> str:
        refs = self._base_seed_refs(story_id)
        return f" (seed {', '.join(refs)})" if refs else ""

    def _pair_score(self, row: int, other: int) -> float:
        """story_similarity(row, other).score, computed once per pair while the memo holds
        it (the function is pure: the same features give the same score). A "different
        numbered ..." veto is -0.0, which compares and adds up as 0.0."""
        key = row * _PAIR_KEY + other
        score = self._pair_scores.get(key) if self._pair_memo else None
        if score is None:
            result = story_similarity(self._entries[row].features, self._entries[other].features)
            score = result.score
            if score == 0.0 and "numbered" in result.reasons[0]:
                score = -0.0
            if len(self._pair_scores) >= self._pair_memo:
                self._pair_scores.clear()
            if self._pair_memo:
                self._pair_scores[key] = score
        return score

    def _judge(self, row: int, story_id: int, scores: dict[int, float]) -> _Judgement:
        """Whether the article at `row` matches story `story_id` as a whole, in time and words.

        It reads the article and the story's members, so it holds while the story's version
        does (an article's features and date never change; a seed's date does, and that
        empties the memo): deciding an article again mostly judges unchanged stories."""
        if self._trial is not None:
            self._trial.judged.add(story_id)
        key = row * _PAIR_KEY + story_id
        version = self._versions.get(story_id, 0)
        held = self._judged.get(key) if self._pair_memo else None
        if held is not None and held[0] == version:
            return held[1]
        judgement = self._judge_afresh(row, story_id, scores)
        if len(self._judged) >= max(1, self._pair_memo >> 3):
            self._judged.clear()
        if self._pair_memo:
            self._judged[key] = (version, judgement)
        return judgement

    def _judge_afresh(self, row: int, story_id: int, scores: dict[int, float]) -> _Judgement:
        entry = self._entries[row]
        members = sorted(
            (r for r in self._stories.get(story_id, ()) if self._entries[r].order < entry.order),
            key=lambda r: self._entries[r].order,
        )
        dates = [w for r in members if (w := self._entries[r].when) is not None]
        span = (min(dates), max(dates)) if dates else None
        no = _Judgement(story_id, False, 0.0, None, 0.0, 0, None)
        if not members:
            return no
        apart = self._apart.get(entry.key)
        if apart:
            kept = sorted(k for r in members if (k := self._entries[r].key) in apart)
            if kept:
                no.rule = f"a correction keeps it apart from {kept[0]}"
                return no
        if entry.when is not None:
            if span is None:
                no.rule = "the story has no date (an undated seed takes no article)"
                return no
            window = self.window_days * _DAY
            if entry.when < span[0] - window or entry.when > span[1] + window:
                no.rule = (
                    f"{entry.basis} {_day_text(_utc(entry.when))} is outside the story's span "
                    f"{_span_text((_utc(span[0]), _utc(span[1])))} ± {self.window_days} d"
                )
                return no
            width = (max(span[1], entry.when) - min(span[0], entry.when)) / _DAY
            if width > self.max_span_days:
                no.rule = f"the story would span {width:.0f} days, more than {self.max_span_days}"
                return no
        sample = members
        if len(members) > MEMBER_SAMPLE:
            half = MEMBER_SAMPLE // 2
            sample = members[:half] + members[-half:]
        compared = dict.fromkeys(sample)
        compared.update(dict.fromkeys(r for r in members if r in scores))
        results: list[tuple[float, int]] = []
        for r in compared:
            score = scores.get(r)
            if score is None:
                score = scores[r] = self._pair_score(row, r)
            results.append((score, r))
        best_score, best_row = max(results, key=lambda t: (t[0], -self._entries[t[1]].order[1]))
        best_score += 0.0  # a veto's -0.0 shows as 0.0
        mean = sum(t[0] for t in results) / len(results)
        judgement = _Judgement(story_id, False, best_score, best_row, mean, len(results), None)
        veto = next((r for score, r in results if math.copysign(1.0, score) < 0), None)
        if veto is not None:
            features = self._entries[veto].features
            judgement.rule = story_similarity(entry.features, features).reasons[0]
        elif best_score < self.threshold:
            judgement.rule = f"best member {best_score:.2f} < {self.threshold:.2f}"
        elif mean < self.mean_threshold:
            judgement.rule = (
                f"matches one member ({best_score:.2f}) but not the story as a whole: mean "
                f"{mean:.2f} over {len(results)} members < {self.mean_threshold:.2f}"
            )
        elif 2 * sum(t[0] >= SUPPORT_FLOOR for t in results) <= len(results):
            supported = sum(t[0] >= SUPPORT_FLOOR for t in results)
            judgement.rule = (
                f"matches one member ({best_score:.2f}) but not the story as a whole: only "
                f"{supported} of {len(results)} members score {SUPPORT_FLOOR:.2f} or more"
            )
        elif (name := _unnamed(entry, [self._entries[r] for r in compared])) is not None:
            judgement.rule = f"its head names {name}, which none of the story's reports name"
        else:
            judgement.ok = True
        return judgement

    def _relabel(self, fresh: set[int], before: dict[int, int]) -> None:
        """A story made in this call that took over an earlier story's members keeps that
        story's id, so ids stay stable when an article arrives before its story's others."""
        for story_id in sorted(fresh):
            rows = self._stories.get(story_id)
            if not rows:
                continue
            olds = Counter(before[r] for r in rows if r in before)
            for old, _ in sorted(olds.items(), key=lambda kv: (-kv[1], kv[0])):
                if old not in self._stories:
                    self._changed(old)
                    self._changed(story_id)
                    self._stories[old] = self._stories.pop(story_id)
                    for r in self._stories[old]:
                        self._entries[r].story_id = old
                    break


def _drop(lists: dict[_K, list[int]], key: _K, row: int) -> bool:
    """Remove `row` from `lists[key]` (the last one, as a rule) and an emptied list; False
    when there was no list."""
    rows = lists.get(key)
    if rows is None:
        return False
    if rows and rows[-1] == row:
        rows.pop()
    elif row in rows:
        rows.remove(row)
    if not rows:
        del lists[key]
    return True


def _with_story(match: StoryMatch, story_id: int, seed_refs: tuple[str, ...]) -> StoryMatch:
    """`match` numbered `story_id` (with the story's seeds); its `part` is left to the caller."""
    if match.story_id == story_id and match.seed_refs == seed_refs:
        return match
    return replace(match, story_id=story_id, seed_refs=seed_refs)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _unnamed(entry: _Entry, members: list[_Entry]) -> str | None:
    one = Member(0, entry.key, entry.when, entry.features, entry.seed_ref is not None)
    return unnamed(one, [Member(0, e.key, e.when, e.features, False) for e in members])


def _merge_names(member: Member) -> list[str]:
    """The names a story's profile is made of: gazetteer names, not the ubiquitous ones."""
    return [e for e in member.features.entities if e[:1] != "=" and _entity_weight(e) >= 0.8]


def _index_keys(features: StoryFeatures) -> tuple[str, ...]:
    """Names (not the ubiquitous ones) and title words: what a same-story article shares."""
    names = [e for e in features.entities if _entity_weight(e) >= 0.8]
    return tuple(sorted(set(names) | set(features.title_terms[:24])))
