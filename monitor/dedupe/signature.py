"""Event signatures of news reports: the groupings, partners and kind of gathering a headline
and lead name, and the dateline; what reports of one meeting share in any language. No I/O.

"Саммит БРИКС открылся в Йоханнесбурге" and "BRICS leaders gather in Johannesburg" have
few words in common, but one signature (a summit of BRICS) and one venue. Another edition of
the series differs in venue or number, a bilateral on its sidelines in kind, and a grouping's
summits with two partners in one city ("ASEAN-India", "ASEAN-Japan") in partner.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Protocol

from monitor.dedupe.lexicon import (
    GAZETTEER,
    GROUPINGS,
    MEETING_KINDS,
    PARTNER_ABBREVIATIONS,
    UNSPACED_NAMES,
)

Fold = Callable[[str], str]  # the story layer's latinise: 'Саммит' -> 'sammit'
Lookup = Callable[[list[str]], str | None]  # folded words -> a gazetteer name, or None

# A dateline: up to six words before the first dash of the lead ("Bisnis.com, JAKARTA –"),
# or a word in capitals and a comma or parenthesis ("АСТАНА, 4 июля. /ТАСС/.").
_DATELINE = re.compile(
    r"^\s*(?:(?:[^\s-]+\s){0,5}?[^\s-]+\s?(?:--|[-–—|])\s|[^\W\d_a-zа-я]{3,}[ ,(])"
)


# Japanese kana, CJK ideographs and Hangul (syllables, and the jamo they fold to).
_WIDE = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


class SignatureReader:
    """Reads the signature of a head (title and lead), with the story layer's folding and
    gazetteer, so that names and kinds match as they do everywhere else in it."""

    def __init__(self, fold: Fold, lookup: Lookup) -> None:
        self._fold = fold
        self._lookup = lookup
        self._kinds = [
            (kind, re.compile("|".join(_word_start(fold(p.strip())) for p in ps)))
            for kind, ps in ((k, v.split(";")) for k, v in MEETING_KINDS.items())
        ]
        aliases = sorted(
            {fold(a) for name in GROUPINGS for a in (name, *GAZETTEER[name][2])},
            key=len,
            reverse=True,
        )
        words = "|".join(re.escape(a) for a in aliases)
        # "ASEAN-India", "АСЕАН–Япония", "ASEAN-Ấn Độ": a grouping's meeting with one partner;
        # "Russia-ASEAN", "Россия – АСЕАН": the partner written first.
        self._partner_after = re.compile(r"(?<!\w)(?:" + words + r")\s?[-–—]\s?(\w+(?: \w+)?)")
        self._partner_before = re.compile(r"(\w+(?: \w+)?)\s?[-–—]\s?(?:" + words + r")(?!\w)")
        # "KTT ASEAN-AS", "U.S.-ASEAN Summit": an abbreviated partner, matched as written.
        written = "|".join(
            re.escape(a)
            for a in sorted(
                {a for name in GROUPINGS for a in (name, *GAZETTEER[name][2])},
                key=len,
                reverse=True,
            )
        )
        short = "|".join(re.escape(a) for a in sorted(PARTNER_ABBREVIATIONS, key=len, reverse=True))
        self._abbreviated = re.compile(
            rf"(?<![\w.])({short})\s?[-–—]\s?(?:{written})(?!\w)"
            rf"|(?<!\w)(?:{written})\s?[-–—]\s?({short})(?![\w])"
        )
        # "日本とASEAN", "中国－东盟", "ASEAN・日本": a partner in Japanese, Chinese or Korean
        # text, joined to the grouping by "と" (and), "・" or a dash, with no space between.
        self._unspaced = {fold(a): n for a, n in UNSPACED_NAMES.items() if n not in GROUPINGS}
        grouping = "|".join(
            re.escape(a)
            for a in sorted(
                {*aliases, *(fold(a) for a, n in UNSPACED_NAMES.items() if n in GROUPINGS)},
                key=len,
                reverse=True,
            )
        )
        partner = "|".join(re.escape(a) for a in sorted(self._unspaced, key=len, reverse=True))
        join = r"\s?(?:と|・|-|–|—)\s?"
        self._unspaced_partner = re.compile(
            f"({partner}){join}(?:{grouping})|(?:{grouping}){join}({partner})"
        )

    def read(self, head: str, named: Iterable[str]) -> tuple[str, ...]:
        """("kind:summit", "org:ASEAN", "with:India") for "ASEAN-India Summit opens …": the
        kind of gathering named first, the groupings of `named` (the gazetteer names of the
        head) and the partners; () without a kind or a grouping."""
        low = self._fold(head).replace("’", "'")
        found = [(m.start(), kind) for kind, pattern in self._kinds if (m := pattern.search(low))]
        orgs = sorted(f"org:{name}" for name in GROUPINGS.intersection(named))
        if not found or not orgs:
            return ()
        partners = {
            f"with:{name}"
            for m in self._partner_after.finditer(low)
            if (name := self._partner(m[1].split(), first=True))
        }
        partners.update(
            f"with:{name}"
            for m in self._partner_before.finditer(low)
            if (name := self._partner(m[1].split(), first=False))
        )
        partners.update(
            f"with:{PARTNER_ABBREVIATIONS[m[1] or m[2]]}" for m in self._abbreviated.finditer(head)
        )
        if _WIDE.search(low):
            partners.update(
                f"with:{self._unspaced[m[1] or m[2]]}" for m in self._unspaced_partner.finditer(low)
            )
        return (f"kind:{min(found)[1]}", *orgs, *sorted(partners))

    def _partner(self, tokens: list[str], *, first: bool) -> str | None:
        """The gazetteer name the words after a dash begin with ("japan summit"), or the
        words before it end with ("the south korea")."""
        for n in (2, 1):
            if len(tokens) >= n:
                name = self._lookup(tokens[:n] if first else tokens[-n:])
                if name:
                    return name
        return None


def _word_start(phrase: str) -> str:
    """A pattern for `phrase` at the start of a word; inside a run of Japanese, Chinese or
    Korean (wide characters, no spaces between words) anywhere: "日本とASEAN特別首脳会議"."""
    if unicodedata.east_asian_width(phrase[0]) in ("W", "F"):
        return re.escape(phrase)
    return r"\b" + re.escape(phrase)


def dateline_end(lead: str) -> int | None:
    """Where the lead's dateline ends ("Bisnis.com, JAKARTA – " -> 21), or None."""
    match = _DATELINE.match(lead)
    return match.end() if match else None


class Signed(Protocol):
    """What comparing two signatures reads of a report's features."""

    @property
    def signature(self) -> tuple[str, ...]: ...
    @property
    def places(self) -> tuple[str, ...]: ...
    @property
    def dateline(self) -> tuple[str, ...]: ...
    @property
    def ordinals(self) -> tuple[str, ...]: ...


def event_places(features: Signed) -> tuple[str, ...]:
    """The places of the head without those only its dateline names (where the outlet is),
    when it names another place; a dateline alone is often where the event is."""
    kept = tuple(p for p in features.places if p not in features.dateline)
    return kept or features.places


def same_signature(a: Signed, b: Signed) -> str:
    """The event signature both heads have, in words ("" if none): the same groupings,
    partners and kind of gathering, and the same venue in the head or numbered edition."""
    if not a.signature or a.signature != b.signature:
        return ""
    places = sorted(set(event_places(a)) & set(event_places(b)))
    ordinals = sorted(set(a.ordinals) & set(b.ordinals))
    if not places and not ordinals:
        return ""
    where = " in " + ", ".join(places) if places else ""
    number = " no. " + ", ".join(o.split(":")[1] for o in ordinals) if ordinals else ""
    return f"{_words(a.signature)}{number}{where}"


def other_signature(a: Signed, b: Signed) -> str:
    """Why two heads name different gatherings of one kind, in words ("" if they do not):
    a summit of ASEAN and a summit of ASEAN and the East Asia Summit, ASEAN-India and
    ASEAN-Japan."""
    if not a.signature or not b.signature or a.signature[0] != b.signature[0]:
        return ""
    if a.signature == b.signature:
        return ""
    return f"{_words(a.signature)} vs {_words(b.signature)}"


def _words(signature: tuple[str, ...]) -> str:
    kind, *rest = signature
    orgs = ", ".join(o[4:] for o in rest if o.startswith("org:"))
    partners = "".join(f"–{p[5:]}" for p in rest if p.startswith("with:"))
    return f"{kind[5:]} of {orgs}{partners}"


# Leaving a place: where a delegation sets out from is not where the event is ("Chủ tịch nước
# … rời Hà Nội, lên đường tham dự Tuần lễ cấp cao APEC", "Lavrov left Moscow for …").
_DEPARTURE = re.compile(
    r"(?<!\w)(?:left|leaves|leaving|departed(?: from)?|departs(?: from)?|departing from|"
    r"flew out of|вылетел[аи]? из|вылетает из|покинул[аи]?|отбыл[аи]? из|rời(?: khỏi)?|"
    r"bertolak dari|berangkat dari|meninggalkan|lepas landas dari)\s+",
    re.IGNORECASE,
)
_DEPARTURE_WORDS = 4  # the place follows within a few words ("rời Thủ đô Hà Nội")
_CLAUSE_END = re.compile(r"[,;:.!?()\n]")


def departure_places(head: str, find: Callable[[str], set[str]]) -> set[str]:
    """The places a head says someone leaves and names nowhere else: for each departure phrase,
    the first place that `find` (text -> gazetteer places) reads in the words after it, within
    its clause ("left Kazan after the summit in Kazan" keeps Kazan)."""
    out: set[str] = set()
    rest = head
    for match in _DEPARTURE.finditer(head):
        clause = _CLAUSE_END.split(head[match.end() :], maxsplit=1)[0]
        words = clause.split()[:_DEPARTURE_WORDS]
        for n in range(1, len(words) + 1):
            phrase = " ".join(words[:n])
            places = find(phrase)
            if places:
                out |= places
                end = head.index(words[n - 1], match.end()) + len(words[n - 1])
                rest = rest[: match.start()] + " " * (end - match.start()) + rest[end:]
                break
    return out - find(rest) if out else out
