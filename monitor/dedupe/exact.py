"""Exact dedupe keys: canonical URL and normalised-text fingerprint. No I/O."""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from functools import cache
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Query parameters that only say where a click came from (analytics, newsletters, ads).
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "mc_cid", "mc_eid", "_ga", "_gl", "igshid", "ref", "ref_src", "ref_url", "referrer",
        "cmpid", "ito", "xtor", "ncid", "ocid", "icid", "s_cid", "smid", "sr_share", "spm",
        "_hsenc", "_hsmi", "hsctatracking", "mkt_tok", "oly_enc_id", "oly_anon_id", "vero_id",
        "wt.mc_id", "wt_mc", "rb_clickid", "soc_src", "soc_trk", "guccounter", "guce_referrer",
        "guce_referrer_sig", "__twitter_impression", "maca", "rss",
    }
)  # fmt: skip
# utm_* (Google), pk_*/mtm_* (Matomo), hsa_* (HubSpot ads), at_* (AT Internet: at_medium...).
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_")
_AMP_QUERY = {"amp": {"", "1", "true"}, "outputtype": {"amp"}, "output": {"amp"}}
_HOST_PREFIXES = ("www.", "amp.", "m.", "mobile.")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
ENTRY_FRAGMENT = "monitor-entry-"


def canonical_url(url: str) -> str:
    """A dedupe key for `url`: the same article under tracking, AMP or mobile variants.

    Lower-cases scheme and host (IDNA to ASCII), folds `www.`, `m.`, `mobile.` and `amp.`
    hosts (safe for a key: sites serve one article under those twins, never two different
    ones), drops default ports, user info, fragments, tracking parameters and AMP markers,
    sorts the query, normalises percent-encoding and dot segments, and drops a trailing
    slash. Idempotent. Non-http(s) or unparseable input comes back stripped, unchanged.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return url
        host = _host(parts.hostname)
        port = parts.port
    except ValueError:
        return url
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    # An entry without a link of its own is the feed URL plus `#monitor-entry-<hash>`
    # (parse.py): that fragment is its identity, so it stays.
    fragment = parts.fragment if parts.fragment.startswith(ENTRY_FRAGMENT) else ""
    return urlunsplit((scheme, netloc, _path(parts.path), _query(parts.query), fragment))


def _host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    with contextlib.suppress(UnicodeError):  # not IDNA-encodable: keep it, lower-cased
        host = host.encode("idna").decode("ascii")
    stripped = True
    while stripped:
        stripped = False
        for prefix in _HOST_PREFIXES:
            rest = host.removeprefix(prefix)
            if rest != host and "." in rest:
                host, stripped = rest, True
    return host


def _path(path: str) -> str:
    segments: list[str] = []
    for segment in _normalise_escapes(path).split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", "", "amp"):
            segments.append(segment)
    if segments:
        last = segments[-1]
        if last.endswith(".amp.html"):
            segments[-1] = last.removesuffix(".amp.html") + ".html"
        elif last.endswith(".amp"):
            segments[-1] = last.removesuffix(".amp")
    return "/" + "/".join(segment for segment in segments if segment)


def _normalise_escapes(value: str) -> str:
    """Decode escapes of unreserved characters, upper-case the rest, escape what must be."""

    def fold(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return quote(_ESCAPE.sub(fold, value), safe=_PATH_SAFE)


def _query(query: str) -> str:
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        name = key.lower()
        if name in _TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES):
            continue
        if value.lower() in _AMP_QUERY.get(name, ()):
            continue
        kept.append((key, value))
    return urlencode(sorted(kept), quote_via=quote, safe="-._~")


def normalise_text(text: str) -> str:
    """Text reduced for exact comparison: NFKC, case-folded, punctuation and quotes removed,
    whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = folded.translate(_strip_table())
    if _ASTRAL.search(stripped):  # outside the table: the (rare) characters beyond the BMP
        stripped = "".join(_strip_char(c) if ord(c) > 0xFFFF else c for c in stripped)
    return " ".join(stripped.split())


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@cache
def _strip_table() -> dict[int, str | None]:
    """Punctuation becomes a space ("end.Next" -> "end next"); format characters (soft hyphen,
    zero-width space) go. Built once per process for the BMP: str.translate runs in C."""
    table: dict[int, str | None] = {}
    for code in range(0x10000):
        replacement = _strip_char(chr(code))
        if replacement != chr(code):
            table[code] = replacement or None
    return table


def _strip_char(char: str) -> str:
    category = unicodedata.category(char)
    if category[0] == "P":
        return " "
    return "" if category == "Cf" else char


def text_fingerprint(text: str) -> str:
    """sha256 hex of the normalised text; "" when nothing is left of it."""
    normalised = normalise_text(text)
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest() if normalised else ""
