"""Deliver a digest: send the email over SMTP, write the Markdown archive file. EDGE: network, disk.

Every failure is a DeliveryError subclass with `.temporary`, so the outbox can decide:

- `TemporaryDeliveryError` (`temporary = True`): worth retrying later with the same
  Message-ID. Cannot connect, timeouts, a dropped connection, TLS handshake failures other
  than an untrusted certificate, any 4xx reply (including 421 and 454), and archive writes
  that failed for want of space (ENOSPC, EDQUOT) or with EIO.
- `PermanentDeliveryError` (`temporary = False`): retrying will not help until someone acts.
  Any 5xx reply, authentication failures (535), a server that does not offer STARTTLS when
  `security = "starttls"`, an untrusted certificate, a missing half of the credentials,
  other archive write errors (permission, not a directory, EFBIG...).
- `PartialDeliveryError(PermanentDeliveryError)`: the server accepted the message for some
  recipients and refused others. The message WAS delivered to `.accepted`, so the caller
  must record the digest as sent (retrying would send it twice to them) and report
  `.refused` (recipient -> "550 5.1.1 ..."); `.recipient` names the refused ones.

`str(err)` is "<recipients or path>: <class of problem>: <detail>"; the SMTP password never
appears in it (it is also scrubbed from server replies we quote).
"""

from __future__ import annotations

import contextlib
import errno
import os
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Sequence
from datetime import date
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from monitor.config import SmtpConfig
from monitor.errors import DeliveryError
from monitor.message import build_message as build_message
from monitor.message import message_id_for as message_id_for
from monitor.message import parse_address

# Errors on the archive write that may clear up by themselves (space freed, disk back).
_TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR})
_MAX_COLLISIONS = 99


class PermanentDeliveryError(DeliveryError):
    """Delivery failed and a retry will not help until the configuration or data changes."""

    temporary = False


class TemporaryDeliveryError(DeliveryError):
    """Delivery failed for now (connection, timeout, 4xx, disk full); the outbox retries."""

    temporary = True


class PartialDeliveryError(PermanentDeliveryError):
    """Delivered to `accepted`, refused for the recipients in `refused`; do not resend."""

    def __init__(self, accepted: Sequence[str], refused: dict[str, str]) -> None:
        self.accepted = tuple(accepted)
        self.refused = dict(refused)
        reasons = "; ".join(f"{rcpt} ({why})" for rcpt, why in self.refused.items())
        detail = f"recipient refused: {reasons}; delivered to {', '.join(self.accepted)}"
        super().__init__(", ".join(self.refused), detail)


# -- SMTP -------------------------------------------------------------------------------------


def send_message(
    message: EmailMessage, smtp: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None
) -> None:
    """Send `message` to everyone in its To/Cc/Bcc through the configured server.

    `security`: "ssl" is implicit TLS (SMTPS, usually port 465); "starttls" upgrades a plain
    connection and refuses to go on if the server does not offer it; "none" sends in clear.
    The envelope sender is `smtp.sender`. Logs in when both username and password are set.
    `ssl_context` (default: `ssl.create_default_context()`, the system's trusted CAs and
    hostname checks) is how tests trust a self-signed certificate.

    Raises:
        TemporaryDeliveryError, PermanentDeliveryError, PartialDeliveryError: see the module
            docstring; every smtplib/socket/ssl exception is turned into one of these.
    """
    recipients = _envelope_recipients(message)
    label = ", ".join(recipients) or "(no recipients)"
    where = f"{smtp.host}:{smtp.port}"
    if not recipients:
        raise PermanentDeliveryError(label, "the message has no To, Cc or Bcc recipients")
    if bool(smtp.username) != bool(smtp.password):
        missing = "MONITOR_SMTP_PASSWORD" if smtp.username else "MONITOR_SMTP_USERNAME"
        raise PermanentDeliveryError(label, f"SMTP credentials incomplete: {missing} is not set")
    if smtp.security not in ("none", "starttls", "ssl"):
        raise PermanentDeliveryError(label, f"unknown smtp.security {smtp.security!r}")
    try:
        sender = parse_address(smtp.sender).addr_spec
    except ValueError as exc:
        raise PermanentDeliveryError(label, f"smtp.sender: {exc}") from exc
    context = ssl_context if ssl_context is not None else ssl.create_default_context()

    client = _connect(smtp, context, label, where)
    try:
        refused = _transact(client, message, smtp, context, sender, recipients, where)
    except smtplib.SMTPResponseException as exc:
        client.close()
        raise _reply_error(exc, label, where, smtp.password) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        client.close()
        raise _all_refused(exc.recipients, label, smtp.password) from exc
    except (smtplib.SMTPException, OSError) as exc:
        client.close()
        raise _transport_error(
            exc, label, where, "connection to SMTP server", smtp.password
        ) from exc
    except DeliveryError:
        client.close()
        raise
    _quit(client)
    if refused:
        reasons = {
            rcpt: _reply_text(code, text, smtp.password) for rcpt, (code, text) in refused.items()
        }
        raise PartialDeliveryError([r for r in recipients if r not in refused], reasons)


def _envelope_recipients(message: EmailMessage) -> list[str]:
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    seen: dict[str, None] = {}
    for _, addr in getaddresses(fields):
        if addr:
            seen.setdefault(addr, None)
    return list(seen)


def _connect(smtp: SmtpConfig, context: ssl.SSLContext, label: str, where: str) -> smtplib.SMTP:
    try:
        if smtp.security == "ssl":
            return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        return smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    except smtplib.SMTPResponseException as exc:  # a 421/554 greeting
        raise _reply_error(exc, label, where, smtp.password) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise _transport_error(
            exc, label, where, "cannot connect to SMTP server", smtp.password
        ) from exc


def _transact(
    client: smtplib.SMTP,
    message: EmailMessage,
    smtp: SmtpConfig,
    context: ssl.SSLContext,
    sender: str,
    recipients: list[str],
    where: str,
) -> dict[str, tuple[int, bytes]]:
    client.ehlo_or_helo_if_needed()
    if smtp.security == "starttls":
        if not client.has_extn("starttls"):
            raise PermanentDeliveryError(
                ", ".join(recipients),
                f"server does not offer STARTTLS ({where}); refusing to send in clear text",
            )
        client.starttls(context=context)
        client.ehlo()
    if smtp.username and smtp.password:
        try:
            client.login(smtp.username, smtp.password)
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(
                ", ".join(recipients),
                f"authentication failed: server {where} does not offer AUTH"
                + (" before STARTTLS" if smtp.security == "none" else ""),
            ) from exc
    refused: dict[str, tuple[int, bytes]] = client.send_message(
        message, from_addr=sender, to_addrs=recipients
    )
    return refused


def _quit(client: smtplib.SMTP) -> None:
    """QUIT politely; the message is already accepted, so no error here may surface."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def _reply_error(
    exc: smtplib.SMTPResponseException, label: str, where: str, password: str | None
) -> DeliveryError:
    reply = _reply_text(exc.smtp_code, exc.smtp_error, password)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        if 400 <= exc.smtp_code < 500:  # RFC 4954 454: temporary authentication failure
            return TemporaryDeliveryError(label, f"authentication failed for now ({reply})")
        return PermanentDeliveryError(label, f"authentication failed ({reply})")
    what = "sender refused" if isinstance(exc, smtplib.SMTPSenderRefused) else "server said"
    if 400 <= exc.smtp_code < 500:
        return TemporaryDeliveryError(label, f"temporary failure ({reply}): will retry")
    if exc.smtp_code == -1:  # smtplib's code for an unreadable reply
        return TemporaryDeliveryError(label, f"connection to SMTP server {where} broke: {reply}")
    return PermanentDeliveryError(label, f"{what}: permanent failure ({reply})")


def _all_refused(
    refused: dict[str, tuple[int, bytes]], label: str, password: str | None
) -> DeliveryError:
    reasons = "; ".join(
        f"{rcpt} ({_reply_text(code, text, password)})" for rcpt, (code, text) in refused.items()
    )
    if all(400 <= code < 500 for code, _ in refused.values()):
        return TemporaryDeliveryError(label, f"recipient refused for now: {reasons}: will retry")
    return PermanentDeliveryError(label, f"recipient refused: {reasons}")


def _transport_error(
    exc: BaseException, label: str, where: str, context: str, password: str | None
) -> DeliveryError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        return PermanentDeliveryError(label, f"TLS certificate of {where} not trusted: {reason}")
    if isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, socket.gaierror):
        reason = f"cannot resolve host: {exc.strerror or exc}"
    elif isinstance(exc, ssl.SSLError):
        reason = f"TLS failed: {exc.reason or exc}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        reason = f"server closed the connection ({exc or 'no reason given'})"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
    else:
        reason = str(exc) or type(exc).__name__
    detail = _scrub(f"{context} {where}: {reason}", password)
    if isinstance(exc, smtplib.SMTPException) and not isinstance(
        exc, smtplib.SMTPServerDisconnected
    ):
        return PermanentDeliveryError(label, detail)  # protocol misuse, e.g. SMTPUTF8 needed
    return TemporaryDeliveryError(label, detail)


def _reply_text(code: int, text: bytes | str, password: str | None) -> str:
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return _scrub(f"{code} {' '.join(raw.split())}".strip(), password)


def _scrub(text: str, password: str | None) -> str:
    return text.replace(password, "********") if password else text


# -- archive ----------------------------------------------------------------------------------


def write_archive(directory: Path, name: str, day: date, markdown: str) -> Path:
    """Write the Markdown digest to `directory/<name>/<YYYY-MM-DD>.md` atomically; its path.

    The file appears complete or not at all: a temporary file in the same folder is written,
    flushed and fsynced, then renamed over the target with `os.replace`, and the folder is
    fsynced so the rename survives a crash. On failure the temporary file is removed and an
    existing archive file is left untouched.

    A second digest of the same name and day: if `<date>.md` already holds exactly these
    bytes, nothing is written (a retried delivery is idempotent) and that path is returned;
    otherwise the digest goes to the first of `<date>-2.md`, `<date>-3.md`, ... that is free
    or identical. An archive is never overwritten with different content.

    Raises:
        ValueError: `name` is not usable as one folder name.
        TemporaryDeliveryError, PermanentDeliveryError: the OS refused (`recipient` is the
            path; the detail names the OS error, e.g. "No space left on device (ENOSPC)").
    """
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"digest name {name!r} cannot be used as an archive folder name")
    folder = directory / name
    data = markdown.encode("utf-8")
    target = folder / f"{day.isoformat()}.md"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target, needed = _archive_target(folder, day, data)
        if needed:
            _write_atomically(target, data)
    except OSError as exc:
        raise _archive_error(exc, target) from exc
    return target


def _archive_target(folder: Path, day: date, data: bytes) -> tuple[Path, bool]:
    """The path to write and whether writing is needed (False: identical file exists)."""
    for n in range(1, _MAX_COLLISIONS + 1):
        path = folder / (f"{day.isoformat()}.md" if n == 1 else f"{day.isoformat()}-{n}.md")
        try:
            existing = path.read_bytes()
        except FileNotFoundError:
            return path, True
        if existing == data:
            return path, False
    raise OSError(errno.EEXIST, f"{_MAX_COLLISIONS} archive files for one day", str(folder))


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o644)  # mkstemp makes 0600; an archive is a normal file
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):  # best effort; the original error matters
            os.unlink(tmp_name)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(folder: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:  # platforms (Windows) where a folder cannot be opened: nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems without dir fsync
            raise
    finally:
        os.close(fd)


def _archive_error(exc: OSError, path: Path) -> DeliveryError:
    code = errno.errorcode.get(exc.errno or 0, "")
    detail = f"cannot write archive file: {exc.strerror or exc}" + (f" ({code})" if code else "")
    if exc.filename and str(exc.filename) != str(path):
        detail += f" at {exc.filename}"
    if exc.errno in _TRANSIENT_ERRNOS:
        return TemporaryDeliveryError(str(path), detail)
    return PermanentDeliveryError(str(path), detail)
