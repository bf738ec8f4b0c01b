"""Signed correction links: HMAC-SHA256 over item, action, topic and expiry. No I/O.

A token is `ITEM.ACTION.EXPIRY.TOPIC.MAC`, every part URL-safe: the item id, the action
(`split`, `untag`, or `topics` for the page that lists an item's tags), the expiry in Unix
seconds, the topic id in unpadded base64url (empty for `split` and `topics`) and the first
128 bits of the HMAC of everything before it, also base64url. Tokens are compared in
constant time; a bad, tampered or expired one raises `LinkError` and is never half-trusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

ACTIONS = ("split", "untag", "topics")
_MAC_BYTES = 16
_TOKEN = re.compile(
    r"^(\d{1,12})\.([a-z]{1,10})\.(\d{1,12})\.([A-Za-z0-9_-]{0,400})\.([A-Za-z0-9_-]{22})$"
)


class LinkError(ValueError):
    """A link that is malformed, not ours, or expired; the message says which, never why
    a MAC differed."""


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid token vouches for."""

    item_id: int
    action: str
    topic: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return _b64(digest[:_MAC_BYTES])


def sign_link(
    secret: bytes, item_id: int, action: str, *, expires: datetime, topic: str = ""
) -> str:
    """A token for `action` on `item_id` (and `topic`), valid until `expires`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown link action {action!r}; known: {', '.join(ACTIONS)}")
    if expires.tzinfo is None:
        raise ValueError("link expiry must be timezone-aware")
    payload = f"{item_id}.{action}.{int(expires.timestamp())}.{_b64(topic.encode('utf-8'))}"
    return f"{payload}.{_mac(secret, payload)}"


def verify_link(secret: bytes, token: str, *, now: datetime) -> LinkClaim:
    """The claim of a token we signed that has not expired.

    Raises:
        LinkError: malformed, signed with another secret or altered, or expired.
    """
    match = _TOKEN.match(token)
    if match is None:
        raise LinkError("malformed link")
    item, action, expiry, topic_b64, mac = match.groups()
    payload = token[: token.rindex(".")]
    if not hmac.compare_digest(_mac(secret, payload), mac):
        raise LinkError("link signature does not match")
    if action not in ACTIONS:
        raise LinkError("unknown link action")  # signed by us: only if ACTIONS shrank
    try:
        topic = _unb64(topic_b64).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise LinkError("malformed link") from exc
    expires = datetime.fromtimestamp(int(expiry), UTC)
    if now >= expires:
        raise LinkError(f"link expired at {expires:%Y-%m-%d %H:%M} UTC")
    return LinkClaim(int(item), action, topic, expires)
