"""A real local SMTP server for tests (aiosmtpd on an asyncio loop in a thread). I/O: network.

`SmtpServer` serves aiosmtpd's `SMTP` protocol with `loop.create_server(..., port=0)` on
127.0.0.1 from an event loop running in a daemon thread (aiosmtpd 1.4's threaded
`Controller` rejects port 0). Every message accepted is kept as a `Received` record with the
raw bytes as they arrived, so tests parse real MIME.

Options:
- `fail_first=N`: the first N DATA commands get `451 4.3.0 try again`.
- `reject_rcpt={"a@x", ...}`: RCPT TO for these gets `550 5.1.1 ... recipient rejected`.
- `require_auth=(user, password)`: AUTH PLAIN/LOGIN offered (also without TLS) and MAIL
  FROM answered `530 5.7.0 Authentication required` until a login succeeded.
- `tls=TlsFiles(...)` with `starttls=True`: offers STARTTLS with that certificate; with
  `implicit_tls=True`: the whole connection is TLS (SMTPS).

`close()` closes the listener and every open connection, cancels the protocol tasks, stops
the loop and joins the thread; it raises if the thread is still alive, so a leak fails the
test that caused it. `make_tls_files()` writes a self-signed certificate for 127.0.0.1 with
the `openssl` command (None when it is not installed: callers skip).
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
START_TIMEOUT = 5.0
JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class Received:
    """One accepted message as the server saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the message bytes exactly as received (after SMTP dot-unstuffing)
    tls: bool  # the DATA went over TLS (STARTTLS or SMTPS)
    auth_user: str | None  # who logged in, if anyone


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # PEM certificate; also the CA file a client must trust
    key: Path


def make_tls_files(directory: Path) -> TlsFiles | None:
    """A self-signed certificate for 127.0.0.1 valid for a day; None without `openssl`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={HOST}"),
            *("-addext", f"subjectAltName=IP:{HOST}"),  # Python checks IP SANs, not the CN
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return TlsFiles(cert=cert, key=key)


class _Handler:
    """aiosmtpd hooks: refusals, the auth gate, 451s, and the record of what arrived."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.owner._count("mail_commands")
        if self.owner.require_auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.owner.reject_rcpt:
            return f"550 5.1.1 <{address}>: recipient rejected"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.owner.data(server, session, envelope)


class SmtpServer:
    """A real SMTP server on 127.0.0.1:`port`; use as a context manager or call close()."""

    def __init__(
        self,
        *,
        fail_first: int = 0,
        reject_rcpt: Iterable[str] = (),
        require_auth: tuple[str, str] | None = None,
        tls: TlsFiles | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
    ) -> None:
        if (starttls or implicit_tls) and tls is None:
            raise ValueError("starttls/implicit_tls need tls=TlsFiles(...)")
        self.fail_first = fail_first
        self.reject_rcpt = frozenset(r.lower() for r in reject_rcpt)
        self.require_auth = require_auth
        self.host = HOST
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._counters = {"mail_commands": 0, "data_commands": 0, "connections": 0}
        self._protocols: list[SMTP] = []
        self._tls_context: ssl.SSLContext | None = None
        if tls is not None:
            self._tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls_context.load_cert_chain(tls.cert, tls.key)
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._server: asyncio.Server | None = None
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="SmtpServer-loop", daemon=True)
        self._thread.start()
        try:
            future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
            self.port: int = future.result(START_TIMEOUT)
        except BaseException:
            self.close()
            raise

    # -- what the tests read -----------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def mail_commands(self) -> int:
        """MAIL FROM commands seen, accepted or not: 0 means nothing was even attempted."""
        with self._lock:
            return self._counters["mail_commands"]

    @property
    def connections(self) -> int:
        with self._lock:
            return self._counters["connections"]

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            future.result(JOIN_TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)
        else:  # the loop never started running: let the thread finish on its own
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(JOIN_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError("SmtpServer loop thread still running after close()")
        self._loop.close()

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _count(self, name: str) -> int:
        with self._lock:
            self._counters[name] += 1
            return self._counters[name]

    def _store(self, message: Received) -> None:
        with self._lock:
            self._messages.append(message)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            asyncio.set_event_loop(None)

    async def data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """The DATA command: a 451 for the first `fail_first`, else store and accept.
        Subclasses extend it to record or delay what arrives."""
        if self._count("data_commands") <= self.fail_first:
            return "451 4.3.0 try again"
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        login = session.auth_data  # what _authenticate returned: the LoginPassword
        user = login.login.decode() if isinstance(login, LoginPassword) else None
        # session.ssl is set by STARTTLS only; an SMTPS transport carries its ssl_object.
        implicit = server.transport is not None and server.transport.get_extra_info("ssl_object")
        self._store(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=raw,
                tls=session.ssl is not None or implicit is not None,
                auth_user=user,
            )
        )
        return "250 2.0.0 OK queued"

    def _make_protocol(self) -> SMTP:
        self._count("connections")
        options: dict[str, Any] = {}
        if self.require_auth is not None:
            # The auth gate is in handle_MAIL, not `auth_required=True`: that flag together
            # with auth_require_tls=False makes aiosmtpd 1.4 emit a UserWarning per session.
            options |= {"authenticator": self._authenticate, "auth_require_tls": False}
        if self._starttls:
            options["tls_context"] = self._tls_context
        protocol = SMTP(
            _Handler(self),
            hostname="localhost",  # skips socket.getfqdn(), a reverse DNS lookup
            loop=self._loop,
            timeout=30,
            **options,
        )
        self._protocols.append(protocol)
        return protocol

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.require_auth is not None
        user, password = self.require_auth
        ok = (
            isinstance(data, LoginPassword)
            and data.login == user.encode()
            and data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    async def _start(self) -> int:
        ssl_context = self._tls_context if self._implicit_tls else None
        self._server = await self._loop.create_server(
            self._make_protocol, host=HOST, port=0, ssl=ssl_context
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for protocol in self._protocols:
            transport = protocol.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()  # no graceful TLS close_notify wait: the test is over
            elif transport is not None:
                transport.close()
        await asyncio.sleep(0)
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
