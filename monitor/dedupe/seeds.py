"""Seed-corpus articles: title, date and a boilerplate-free body from scraped text. No I/O."""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Seed:
    """One seed article as the dedupe layers see it."""

    name: str  # the file name, e.g. "000_51428d13349f6c0f.txt"; `duplicate_of.ref` for seeds
    title: str
    published_at: datetime | None  # aware UTC; a date without a time is midnight UTC
    text: str  # the body with scraping boilerplate removed (the title is not repeated)
    language: str | None
    # Where `published_at` came from: "metadata" (the corpus: `corpus add --date` or a sidecar
    # file), "header" (a date line above the body), "text" (the first full date in the body:
    # day, month and year together), "story" (its story's dated members); None: undated.
    date_source: str | None = None


_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH = r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"  # noqa: E501
_MONTH_ANY = _MONTH.replace("(?P<month>", "(?:")
# The year may be glued to a time ("3 February 202014:15"), so no \b after it.
_DATE_PATTERNS = (
    re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<mnum>[01]\d)-(?P<day>[0-3]\d)\b"),
    re.compile(rf"\b(?P<day>[0-3]?\d)\s+{_MONTH}\s*,?\s+(?P<year>(?:19|20)\d\d)", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+(?P<day>[0-3]?\d)\s*,\s*(?P<year>(?:19|20)\d\d)", re.IGNORECASE),
)
# A line that is nothing but a date (possibly with a glued time): header, not title.
_DATE_ONLY_LINE = re.compile(
    rf"^\s*(?:date\s+)?(?:(?:19|20)\d\d-[01]\d-[0-3]\d|[0-3]?\d\s+{_MONTH_ANY}\s*,?\s+(?:19|20)\d\d"
    rf"|{_MONTH_ANY}\s+[0-3]?\d\s*,\s*(?:19|20)\d\d)(?:\s*[0-2]?\d:[0-5]\d)?\s*$",
    re.IGNORECASE,
)
# " date 2020-02-03 Moscow (VNA) – ..." : a date label glued in front of the first paragraph.
_DATE_PREFIX = re.compile(r"^\s*date\s+((?:19|20)\d\d-[01]\d-[0-3]\d)\s+", re.IGNORECASE)
# "Moscow (VNA) – " : a news-agency dateline; dropped from a title derived from the lead.
_DATELINE = re.compile(r"^[A-Z][\w .'-]{1,40}\s*\([A-Z][A-Za-z/]{1,12}\)\s*[–—-]\s*")
# Language switchers: "• de-DE1 en-GB1 es-ES1 ru-RU1" (locale codes, optionally counted).
_LOCALE_LINE = re.compile(r"^[\s•·|*-]*(?:[a-z]{2}-[A-Z]{2}\d*[\s|•·,]*){2,}$")
# Lines after which a page only has navigation: the MFA's "Additional materials" block.
_TAIL_MARKERS = ("additional materials", "related materials", "advanced settings")
# Single boilerplate lines seen in the seeds and their sources' page templates.
_BOILERPLATE_LINES = re.compile(
    r"^(?:travel page|print|share|source:.*|vna|tass|photo:.*|\./\.)$", re.IGNORECASE
)


def parse_seed(name: str, text: str) -> Seed:
    """Derive title, date, body and language from a seed file's text (already decoded)."""
    lines = [_clean_line(line) for line in text.splitlines()]
    header_date: datetime | None = None
    body: list[str] = []
    title = ""
    for raw in lines:
        line = raw
        if not line:
            continue
        if line.casefold() in _TAIL_MARKERS:
            break
        if _LOCALE_LINE.match(line) or _BOILERPLATE_LINES.match(line):
            continue
        prefix = _DATE_PREFIX.match(line)
        if prefix:
            header_date = header_date or _find_date(prefix.group(1))
            line = line[prefix.end() :].strip()
        elif _DATE_ONLY_LINE.match(line):
            header_date = header_date or _find_date(line)
            continue
        if not title:
            title = _title_from(line)
            if title == line:  # a real title line; otherwise it is also the lead paragraph
                if header_date is None:
                    header_date = _find_date(line)
                continue
        if line == title:  # pages that repeat the headline above the body
            continue
        body.append(line)
    body_text = "\n\n".join(body)
    if header_date is None:
        # A dated first paragraph ("BALI, 21 February 2019 – ...") when no header had one.
        header_date = _find_date(body[0]) if body else None
    source = "header" if header_date else None
    if header_date is None:
        # A date mentioned in the lead (title and first two paragraphs): a full date, or a
        # day and month with the one year the lead names. Dates further down are background
        # ("on December 18, 2023 ..."), and the years a whole text mentions are often other
        # events' ("in 2018, relations reached ..."): a wrong year links the seed to the wrong
        # event, which is worse than no date (then its story's dated seeds give one).
        header_date = _lead_date("\n".join([title, *body[:2]]))
        source = "text" if header_date else None
    return Seed(
        name=name,
        title=title,
        published_at=header_date,
        text=body_text,
        language=_language(title + "\n" + body_text),
        date_source=source,
    )


def _clean_line(line: str) -> str:
    line = unicodedata.normalize("NFKC", line)
    line = re.sub(r"\s*\./\.\s*$", ".", line)  # VNA's end-of-story mark "./."
    return re.sub(r"\s+", " ", line).strip()


def _title_from(line: str) -> str:
    """The line itself if it reads like a headline; else the lead's first sentence, undated."""
    if len(line) <= 200 and not line.endswith("."):
        return line
    lead = _DATELINE.sub("", line)
    sentence = re.split(r"(?<=[.!?])\s", lead, maxsplit=1)[0]
    return sentence.rstrip(".")


def _find_date(text: str) -> datetime | None:
    for pattern in _DATE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        groups = match.groupdict()
        month = int(groups["mnum"]) if groups.get("mnum") else _MONTHS[groups["month"][:3].lower()]
        try:
            return datetime(int(groups["year"]), month, int(groups["day"]), tzinfo=UTC)
        except ValueError:
            continue
    return None


_DAY_MONTH = (
    re.compile(rf"\b(?P<day>[0-3]?\d)(?:\s*[-–]\s*[0-3]?\d)?\s+{_MONTH}", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+(?P<day>[0-3]?\d)\b", re.IGNORECASE),
)
_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")


def _lead_date(lead: str) -> datetime | None:
    """The first full date of the lead, else its first day and month in the one year it names."""
    found: list[tuple[int, datetime]] = []
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(lead):
            date = _find_date(match.group(0))
            if date is not None:
                found.append((match.start(), date))
                break
    if found:
        return min(found)[1]
    years = set(_YEAR.findall(lead))
    if len(years) != 1:
        return None
    year = int(years.pop())
    for pattern in _DAY_MONTH:
        for match in pattern.finditer(lead):
            try:
                month = _MONTHS[match.group("month")[:3].lower()]
                found.append(
                    (match.start(), datetime(year, month, int(match.group("day")), tzinfo=UTC))
                )
            except ValueError:
                continue
            break
    return min(found)[1] if found else None


def _language(text: str) -> str | None:
    if not text.strip():
        return None
    import py3langid  # its model loads on first use; most commands never need it

    lang, _score = py3langid.classify(text)
    return str(lang)


def release_language_model() -> None:
    """Drop py3langid's lazily loaded model (about 75 MB). The daemon's parent process needs
    it only to read new seed files; the extraction workers load their own."""
    langid = sys.modules.get("py3langid.langid")
    if langid is not None:
        setattr(langid, "IDENTIFIER", None)  # noqa: B010 - the module's lazy global
