"""The exception tree every layer raises; callers never see third-party exception types. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

# The error classes recorded on a source (DESIGN §4 `last_error_class`).
ERROR_CLASSES = ("timeout", "dns", "connect", "tls", "http", "too_large", "not_a_feed", "parse")


class MonitorError(Exception):
    """Base of everything monitor raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: which file, which key, what is wrong."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class ConfigError(MonitorError, ValueError):
    """Invalid configuration; lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s):\n{lines}")


class SourceError(MonitorError):
    """A source could not be polled; `error_class` is one of ERROR_CLASSES."""

    error_class = "parse"

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"{url}: {detail}")


class FetchError(SourceError):
    """Transport failure, HTTP status >= 400, or a body over the size cap."""

    def __init__(
        self,
        url: str,
        detail: str,
        *,
        error_class: str,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(url, detail)
        self.error_class = error_class
        self.status = status
        self.retry_after = retry_after  # raw Retry-After header of a 429/503, if any


class ParseError(SourceError):
    """The body is not a feed (HTML or challenge page) or cannot be parsed at all."""

    def __init__(self, url: str, detail: str, *, error_class: str = "parse") -> None:
        super().__init__(url, detail)
        self.error_class = error_class


class ExtractError(MonitorError):
    """An article page yielded no text."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        super().__init__(f"{url}: {detail}")


class CorpusError(MonitorError):
    """A seed file cannot be used: wrong type, unreadable, no text, or a folder not writable.
    `str(err)` names the file."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(f"{path}: {detail}")


class StoreError(MonitorError):
    """The database could not be opened, migrated or written."""


class CorrectionError(MonitorError):
    """A correction cannot be made or undone: unknown item or correction, a topic not on the
    item, an item already alone in its story, a correction already undone. `str(err)` names
    the item, topic or correction at fault."""


class DeliveryError(MonitorError):
    """A digest could not be delivered (connect, auth, refused, disk). `temporary` errors are
    retried by the outbox; permanent ones need the operator."""

    temporary = False

    def __init__(self, recipient: str, detail: str) -> None:
        self.recipient = recipient
        super().__init__(f"{recipient}: {detail}")
