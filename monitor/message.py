"""Build the digest email (one multipart/alternative) and its stable Message-ID. Pure: no I/O.

Header safety (DESIGN §5): nothing untrusted reaches a header unchecked. The subject has every
control or line-break character turned into a space; addresses, the Message-ID and the
List-Unsubscribe URI are refused with ValueError if they contain one. The stdlib SMTP policy
then encodes non-ASCII header text as RFC 2047 encoded words and folds long lines at 78
(with two repairs, see `_DigestPolicy`).

Bodies are UTF-8 and quoted-printable, so the message is 7-bit clean: it needs neither
8BITMIME nor SMTPUTF8 from the server, and lines over 998 octets (inlined-CSS HTML) are safe.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr

from monitor.digest import RenderedDigest

_SUBJECT_FALLBACK = "(no subject)"
_SLUG_MAX = 40
_HASH_CHARS = 12
# RFC 5322 msg-id: "<" id-left "@" id-right ">", printable ASCII without specials we never emit.
_MESSAGE_ID = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+>")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_UNSUBSCRIBE_SCHEMES = ("mailto:", "https://")
_UNSUBSCRIBE_MAX = 900  # the whole header line stays under RFC 5322's 998 octets
# Identifiers that stay on one physical line: parsers keep the fold's leading space in the
# value, and the outbox and mail threading compare Message-IDs as strings.
_UNFOLDED = frozenset({"message-id", "list-unsubscribe"})


class _DigestPolicy(EmailPolicy):
    """`email.policy.SMTP` (CRLF, RFC 2047, folding at 78) with two repairs.

    - Message-ID and List-Unsubscribe are never folded (see `_UNFOLDED`).
    - A non-ASCII Subject is encoded by `email.header.Header`: Python 3.11's folder puts the
      space between two adjacent encoded words outside them, where RFC 2047 §6.2 tells
      decoders to drop it ("Россия–АСЕАН · Bản" came back as "Россия–АСЕАН· Bản").
    """

    def fold(self, name: str, value: str) -> str:
        key, text = name.lower(), str(value)
        if key in _UNFOLDED:
            return f"{name}: {text.strip()}{self.linesep}"
        if key == "subject" and not text.isascii():
            header = Header(text, "utf-8", maxlinelen=self.max_line_length, header_name=name)
            words = header.encode(linesep=self.linesep)
            return f"{name}: {words}{self.linesep}"
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _UNFOLDED or name.lower() == "subject":
            return self.fold(name, value).encode("ascii")
        folded: bytes = super().fold_binary(name, value)
        return folded


POLICY = _DigestPolicy(linesep="\r\n")  # == email.policy.SMTP plus the rule above


def build_message(
    digest: RenderedDigest,
    *,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    date: datetime,
    unsubscribe: str | None = None,
) -> EmailMessage:
    """The digest as one multipart/alternative email: text/plain first, then text/html.

    `sender` and each recipient are "addr@example.org" or "Name <addr@example.org>"; all
    recipients go in To. `date` must be aware. `unsubscribe` is a mailto: or https: URI; an
    https one also gets `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).

    Raises:
        ValueError: an address, the Message-ID or the unsubscribe URI is malformed or contains
            a control character (the message names it); `date` is naive; no recipients.
    """
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError(f"message date must be timezone-aware, got {date!r}")
    if not recipients:
        raise ValueError("a digest email needs at least one recipient")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"invalid Message-ID {message_id!r}: expected <id@domain>")

    message = EmailMessage(policy=POLICY)
    message["Subject"] = clean_subject(digest.subject)
    message["From"] = parse_address(sender)
    message["To"] = [parse_address(r) for r in recipients]
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    # RFC 3834: an automatic message; well-behaved autoresponders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe is not None:
        uri = _unsubscribe_uri(unsubscribe)
        message["List-Unsubscribe"] = f"<{uri}>"
        if uri.startswith("https://"):
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(digest.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(digest.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def clean_subject(subject: str) -> str:
    """One line: control, line and paragraph separator characters become spaces, runs collapse."""
    chars = [" " if _is_break_or_control(c) else c for c in subject]
    return " ".join("".join(chars).split()) or _SUBJECT_FALLBACK


def parse_address(value: str) -> Address:
    """`value` as an Address; ValueError (naming it) on control characters or bad syntax.

    Only ASCII addr-specs: a non-ASCII mailbox would need SMTPUTF8, which we do not assume.
    The display name may be any text (RFC 2047 encodes it).
    """
    if any(_is_break_or_control(c) for c in value):
        raise ValueError(f"invalid email address {value!r}: contains a control character")
    try:
        header = SMTP.header_factory("To", value)
        groups, defects = header.groups, header.defects
    except (HeaderParseError, ValueError, IndexError) as exc:  # the stdlib parser's complaints
        raise ValueError(f"invalid email address {value!r}: expected local@domain") from exc
    if len(groups) != 1 or groups[0].display_name is not None or len(groups[0].addresses) != 1:
        raise ValueError(f"invalid email address {value!r}: expected exactly one mailbox")
    address: Address = groups[0].addresses[0]
    if defects or not (address.username and address.domain) or not address.addr_spec.isascii():
        raise ValueError(f"invalid email address {value!r}: expected local@domain (ASCII)")
    return address


def message_id_for(name: str, window_start: datetime, window_end: datetime, *, domain: str) -> str:
    """The Message-ID of one digest issue; the same name and window always give the same id.

    `<digest.{slug}.{start}-{end}.{hash}@{domain}>` with UTC minutes; the hash covers the
    exact name and both instants to the microsecond, so names that slug alike ("Daily",
    "daily") or windows that differ below a minute still get different ids. An unusable
    `domain` becomes "localhost".
    """
    start, end = _utc(window_start), _utc(window_end)
    key = f"{name}\x00{start.isoformat()}\x00{end.isoformat()}".encode()
    digest = hashlib.sha256(key).hexdigest()[:_HASH_CHARS]
    stamp = f"{start:%Y%m%dT%H%M}Z-{end:%Y%m%dT%H%M}Z"
    return f"<digest.{_slug(name)}.{stamp}.{digest}@{_clean_domain(domain)}>"


def domain_of(sender: str) -> str:
    """The domain of an email address ("monitor@example.org" -> "example.org"), or "localhost"."""
    _, addr_spec = parseaddr(sender)
    _, at, domain = addr_spec.rpartition("@")
    return _clean_domain(domain) if at else "localhost"


def _unsubscribe_uri(value: str) -> str:
    uri = value.strip()
    if uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1]
    bad = any(_is_break_or_control(c) or c.isspace() or c in "<>," for c in uri)
    if len(uri) > _UNSUBSCRIBE_MAX:
        raise ValueError(f"List-Unsubscribe URI too long ({len(uri)} characters)")
    if bad or not uri.isascii() or not uri.lower().startswith(_UNSUBSCRIBE_SCHEMES):
        raise ValueError(f"invalid List-Unsubscribe URI {value!r}: expected mailto: or https:")
    return uri


def _is_break_or_control(char: str) -> bool:
    # Cc: C0/C1 controls incl. CR, LF, TAB, NEL; Zl/Zp: U+2028/U+2029 line/paragraph breaks.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"digest window bounds must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


def _slug(name: str) -> str:
    """ASCII letters and digits of `name` (accents dropped: "Bản tin" -> "ban-tin"), dashed."""
    decomposed = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:_SLUG_MAX].strip("-")
    return slug or "digest"


def _clean_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return "localhost"
    return domain if _DOMAIN.fullmatch(domain) else "localhost"
