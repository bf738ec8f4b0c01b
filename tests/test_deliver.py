"""Delivery: the digest email through a real SMTP server on 127.0.0.1, and the archive files."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from monitor.config import SmtpConfig
from monitor.deliver import (
    PartialDeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    build_message,
    message_id_for,
    send_message,
    write_archive,
)
from monitor.digest import (
    DigestInput,
    RenderedDigest,
    build_digest,
    make_environment,
    render_digest,
)
from monitor.digest.text import text_width
from monitor.errors import DeliveryError
from monitor.message import clean_subject, domain_of, parse_address
from monitor.models import Item, TopicTag
from tests.smtp_server import SmtpServer, TlsFiles, make_tls_files

ROOT = Path(__file__).parents[1]
TEMPLATES = ROOT / "templates"
CORPUS = ROOT / "config" / "corpus"
WINDOW_START = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
SENT_AT = datetime(2026, 11, 22, 0, 5, 12, tzinfo=UTC)
SENDER = "Monitor <monitor@example.org>"
ANALYST = "analyst@example.org"
PASSWORD = "s3cr3t-Pa55word"
# A digest name in Russian and Vietnamese puts both scripts in the subject.
DIGEST_NAME = "Дайджест Россия–АСЕАН · Bản tin Nga–ASEAN"
RU_TITLE = "Лавров во Вьентьяне обсудил с коллегами из АСЕАН стратегическое партнерство"
VI_TITLE = "Ngoại trưởng Nga Sergei Lavrov dự Hội nghị Bộ trưởng ASEAN - Nga tại Viêng Chăn"
RU_TEXT = (
    "ВЬЕНТЬЯН, 26 июля. /ТАСС/. Министр иностранных дел России Сергей Лавров принял участие "
    "в министерской встрече Россия – АСЕАН во Вьентьяне. Стороны обсудили выполнение "
    "Комплексного плана действий по развитию стратегического партнерства."
)
VI_TEXT = (
    "Viêng Chăn (TTXVN) - Ngày 26/7, Bộ trưởng Ngoại giao Nga Sergei Lavrov đã tham dự Hội "
    "nghị Bộ trưởng Ngoại giao ASEAN - Nga tại thủ đô Viêng Chăn của Lào. Hai bên nhất trí "
    "tăng cường hợp tác trong các lĩnh vực an ninh, kinh tế và giáo dục."
)
MESSAGE_ID = re.compile(
    r"<digest\.[a-z0-9-]+\.\d{8}T\d{4}Z-\d{8}T\d{4}Z\.[0-9a-f]{12}@[a-z0-9.-]+>"
)


# --- a real digest -------------------------------------------------------------------------


def _seed(name: str) -> tuple[str, str]:
    """Title (first non-empty line) and text of a seed corpus file."""
    text = (CORPUS / name).read_text(encoding="utf-8")
    title = next(line.strip() for line in text.splitlines() if line.strip())
    return title, text


def _item(item_id: int, source: str, title: str, url: str, text: str, **extra: Any) -> Item:
    published = WINDOW_START + timedelta(hours=item_id)
    return Item(
        id=item_id,
        source=source,
        url=url,
        canonical_url=url,
        guid=None,
        title=title,
        published_at=published,
        fetched_at=published + timedelta(minutes=15),
        language=extra.pop("language", "en"),
        status="new",
        extraction="full_text",
        text=text,
        summary=None,
        text_chars=len(text),
        topics=(TopicTag("russia-asean", 6.0, 2.0, (("ASEAN", "en", 4), ("Lavrov", "en", 2))),),
        **extra,
    )


def _digest_input() -> DigestInput:
    press_title, press_text = _seed("003_24ad2f7826d9acd6.txt")
    som_title, som_text = _seed("004_77ff1506fea45f61.txt")
    items = [
        _item(
            1,
            "Russian MFA",
            press_title,
            "https://mid.ru/en/foreign_policy/news/1962001/",
            press_text,
            source_priority=1,
            story_id=7,
        ),
        _item(
            2,
            "TASS (ru)",
            RU_TITLE,
            "https://tass.ru/politika/21452001",
            RU_TEXT,
            language="ru",
            story_id=7,
            source_priority=3,
        ),
        _item(
            3,
            "VietnamPlus (vi)",
            VI_TITLE,
            "https://www.vietnamplus.vn/ngoai-truong-nga-du-hoi-nghi-post968812.vnp",
            VI_TEXT,
            language="vi",
            source_priority=2,
        ),
        _item(
            4,
            "ASEAN Secretariat",
            som_title,
            "https://asean.org/asean-russia-commit-to-deepen-cooperation/",
            som_text,
            source_priority=1,
        ),
    ]
    return DigestInput(
        name=DIGEST_NAME,
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        timezone="Asia/Jakarta",
        generated_at=SENT_AT,
        items=items,
        stories={7: items[:2]},
        topic_order=("russia-asean",),
        topic_labels={"russia-asean": "Russia–ASEAN relations"},
    )


@pytest.fixture(scope="module")
def digest() -> RenderedDigest:
    return render_digest(build_digest(_digest_input()), make_environment(None, TEMPLATES))


def _message(
    digest: RenderedDigest, recipients: list[str] | None = None, **kw: Any
) -> EmailMessage:
    return build_message(
        digest,
        sender=SENDER,
        recipients=recipients or [ANALYST],
        message_id=kw.pop("message_id", _message_id()),
        date=kw.pop("date", SENT_AT),
        **kw,
    )


def _message_id(name: str = DIGEST_NAME) -> str:
    return message_id_for(name, WINDOW_START, WINDOW_END, domain=domain_of(SENDER))


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


# --- SMTP server fixtures ------------------------------------------------------------------


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Start real SMTP servers with options; all are closed (thread joined) after the test."""
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = SmtpServer(**options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    files = make_tls_files(tmp_path_factory.mktemp("tls"))
    if files is None:
        pytest.skip("the openssl command is not installed: cannot make a test certificate")
    return files


def _smtp(server: SmtpServer | int, **changes: Any) -> SmtpConfig:
    port = server if isinstance(server, int) else server.port
    config = SmtpConfig(host="127.0.0.1", port=port, security="none", sender=SENDER, timeout=5.0)
    return replace(config, **changes)


def _trusting(tls: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.cert))


# --- the digest through a real SMTP server -------------------------------------------------


def test_digest_arrives_as_one_multipart_alternative_message_intact(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp()
    message = _message(digest, unsubscribe="mailto:monitor@example.org?subject=unsubscribe")
    send_message(message, _smtp(server))

    [received] = server.messages
    assert received.mail_from == "monitor@example.org"
    assert received.rcpt_tos == (ANALYST,)
    got = _parse(received.data)
    assert got.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in got.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in got.iter_parts())
    assert got["Subject"] == digest.subject
    assert "Дайджест Россия–АСЕАН" in got["Subject"]
    assert "Bản tin Nga–ASEAN" in got["Subject"]
    assert got["Message-ID"] == _message_id()
    assert MESSAGE_ID.fullmatch(got["Message-ID"])
    assert got["List-Unsubscribe"] == "<mailto:monitor@example.org?subject=unsubscribe>"
    assert got["List-Unsubscribe-Post"] is None  # one-click is for https only (RFC 8058)
    assert got["Auto-Submitted"] == "auto-generated"
    assert got["Date"].datetime == SENT_AT
    assert got["From"].addresses[0].addr_spec == "monitor@example.org"

    html, text = _body(got, "html"), _body(got, "plain")
    assert RU_TITLE in html
    assert VI_TITLE in html
    assert "Press release on Foreign Minister Sergey Lavrov" in html
    assert text == digest.text
    assert html == digest.html
    for line in text.splitlines():
        if re.fullmatch(r"\[\d+\] https?://\S+", line):
            continue  # the link list: one unbreakable URL per line
        assert text_width(line) <= 72, line


def test_message_on_the_wire_is_7bit_with_short_lines(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    """No 8BITMIME or SMTPUTF8 needed; lines within RFC 5322's 78, the Message-ID apart."""
    server = start_smtp()
    send_message(_message(digest), _smtp(server))
    raw = server.messages[0].data
    assert raw.isascii()
    long_lines = [line for line in raw.split(b"\r\n") if len(line) > 78]
    assert long_lines == [f"Message-ID: {_message_id()}".encode()]  # never folded, by design


def test_server_down_is_a_temporary_error_naming_host_and_port(digest: RenderedDigest) -> None:
    # A bound socket that is not listening: connecting gets a RST, like a stopped server.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        with pytest.raises(TemporaryDeliveryError) as caught:
            send_message(_message(digest), _smtp(port))
    err = caught.value
    assert err.temporary is True
    assert f"cannot connect to SMTP server 127.0.0.1:{port}: connection refused" in str(err)
    assert err.recipient == ANALYST


def test_a_server_that_never_greets_times_out_as_temporary(digest: RenderedDigest) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever says 220
        port = silent.getsockname()[1]
        with pytest.raises(TemporaryDeliveryError, match="timed out"):
            send_message(_message(digest), _smtp(port, timeout=0.3))


def test_451_is_temporary_and_the_retry_delivers_exactly_once(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp(fail_first=1)
    message = _message(digest)
    with pytest.raises(TemporaryDeliveryError) as caught:
        send_message(message, _smtp(server))
    assert "temporary failure (451 4.3.0 try again): will retry" in str(caught.value)
    assert server.messages == []

    send_message(message, _smtp(server))
    [received] = server.messages
    assert _parse(received.data)["Message-ID"] == _message_id()


def test_refused_recipient_is_a_permanent_error_listing_it(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp(reject_rcpt={"gone@example.org"})
    with pytest.raises(PermanentDeliveryError) as caught:
        send_message(_message(digest, ["gone@example.org"]), _smtp(server))
    err = caught.value
    assert err.temporary is False
    assert "recipient refused: gone@example.org (550 5.1.1" in str(err)
    assert server.messages == []


def test_partial_refusal_delivers_to_the_others_and_reports_the_refused(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp(reject_rcpt={"gone@example.org"})
    recipients = [ANALYST, "gone@example.org", "desk@example.org"]
    with pytest.raises(PartialDeliveryError) as caught:
        send_message(_message(digest, recipients), _smtp(server))
    err = caught.value
    assert err.temporary is False
    assert err.accepted == (ANALYST, "desk@example.org")
    assert list(err.refused) == ["gone@example.org"]
    assert err.recipient == "gone@example.org"
    [received] = server.messages
    assert received.rcpt_tos == (ANALYST, "desk@example.org")


def test_login_with_the_right_credentials_delivers(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp(require_auth=("monitor", PASSWORD))
    send_message(_message(digest), _smtp(server, username="monitor", password=PASSWORD))
    [received] = server.messages
    assert received.auth_user == "monitor"


def test_without_login_the_server_refuses_the_sender_permanently(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp(require_auth=("monitor", PASSWORD))
    with pytest.raises(PermanentDeliveryError, match=r"sender refused.*530"):
        send_message(_message(digest), _smtp(server))
    assert server.messages == []


def test_wrong_password_is_permanent_and_never_shown(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp(require_auth=("monitor", PASSWORD))
    wrong = "wrong-" + PASSWORD
    with pytest.raises(PermanentDeliveryError) as caught:
        send_message(_message(digest), _smtp(server, username="monitor", password=wrong))
    err = caught.value
    assert "authentication failed" in str(err)
    assert err.temporary is False
    for text in (str(err), repr(err), str(err.__cause__), repr(err.args)):
        assert wrong not in text
        assert PASSWORD not in text
    assert server.messages == []
    assert server.mail_commands == 0


def test_half_the_credentials_is_refused_before_connecting(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp()
    with pytest.raises(PermanentDeliveryError, match="MONITOR_SMTP_PASSWORD is not set"):
        send_message(_message(digest), _smtp(server, username="monitor"))
    assert server.connections == 0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sender": "monitor@example.org\r\nBcc: evil@x"}, "smtp.sender: invalid email address"),
        ({"security": "tls"}, "unknown smtp.security 'tls'"),
    ],
    ids=["injected-sender", "unknown-security"],
)
def test_bad_smtp_settings_are_permanent_and_nothing_is_sent(
    start_smtp: Callable[..., SmtpServer],
    digest: RenderedDigest,
    changes: dict[str, str],
    expected: str,
) -> None:
    server = start_smtp()
    with pytest.raises(PermanentDeliveryError, match=re.escape(expected)):
        send_message(_message(digest), _smtp(server, **changes))
    assert server.connections == 0


def test_starttls_with_a_trusted_certificate_delivers_over_tls(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest, tls_files: TlsFiles
) -> None:
    server = start_smtp(tls=tls_files, starttls=True, require_auth=("monitor", PASSWORD))
    config = _smtp(server, security="starttls", username="monitor", password=PASSWORD)
    send_message(_message(digest), config, ssl_context=_trusting(tls_files))
    [received] = server.messages
    assert received.tls is True
    assert received.auth_user == "monitor"
    assert _parse(received.data)["Subject"] == digest.subject


def test_starttls_with_an_untrusted_certificate_is_permanent_and_sends_nothing(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest, tls_files: TlsFiles
) -> None:
    server = start_smtp(tls=tls_files, starttls=True)
    with pytest.raises(PermanentDeliveryError, match="not trusted"):
        send_message(_message(digest), _smtp(server, security="starttls"))  # system CAs
    assert server.mail_commands == 0


def test_starttls_required_but_not_offered_sends_nothing(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp()
    with pytest.raises(PermanentDeliveryError) as caught:
        send_message(
            _message(digest),
            _smtp(server, security="starttls", username="monitor", password=PASSWORD),
        )
    assert "server does not offer STARTTLS" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert server.mail_commands == 0
    assert server.messages == []


def test_implicit_tls_delivers(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest, tls_files: TlsFiles
) -> None:
    server = start_smtp(tls=tls_files, implicit_tls=True)
    send_message(_message(digest), _smtp(server, security="ssl"), ssl_context=_trusting(tls_files))
    [received] = server.messages
    assert received.tls is True


def test_header_injection_through_the_subject_adds_no_header(
    start_smtp: Callable[..., SmtpServer], digest: RenderedDigest
) -> None:
    server = start_smtp()
    hostile = replace(digest, subject="Лавров\r\nBcc: evil@x\r\n\r\nbody?")
    send_message(_message(hostile), _smtp(server))
    [received] = server.messages
    got = _parse(received.data)
    assert got["Bcc"] is None
    assert received.rcpt_tos == (ANALYST,)
    assert got["Subject"] == "Лавров Bcc: evil@x body?"
    assert got.get_content_type() == "multipart/alternative"


# --- building the message (pure) -----------------------------------------------------------


def test_long_subject_is_folded_and_decodes_exactly(digest: RenderedDigest) -> None:
    subject = f"{DIGEST_NAME} — {RU_TITLE} — {VI_TITLE}"
    raw = _message(replace(digest, subject=subject)).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    subject_lines = re.search(rb"^Subject:.*?(?=\r\n\S)", head, re.DOTALL | re.MULTILINE)
    assert subject_lines is not None
    physical = subject_lines.group(0).split(b"\r\n")
    assert len(physical) > 1
    assert all(len(line) <= 78 for line in physical)
    assert _parse(raw)["Subject"] == subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Digest\r\nBcc: evil@x", "Digest Bcc: evil@x"),
        ("Digest\nX-Evil: 1", "Digest X-Evil: 1"),
        ("Digest\rX", "Digest X"),
        ("a\u2028b\u2029c\x85d", "a b c d"),
        ("tab\tand\x00nul\x1b[31m", "tab and nul [31m"),
        ("\r\n", "(no subject)"),
    ],
    ids=["crlf-bcc", "lf", "cr", "unicode-line-breaks", "c0-controls", "only-breaks"],
)
def test_subject_control_characters_become_spaces(subject: str, expected: str) -> None:
    assert clean_subject(subject) == expected


@pytest.mark.parametrize(
    "address",
    [
        "evil@x\r\nBcc: victim@example.org",
        "analyst@example.org\n",
        "Name\r <a@example.org>",
        "a@example.org\x00",
    ],
    ids=["crlf", "trailing-lf", "cr-in-name", "nul"],
)
@pytest.mark.parametrize("role", ["sender", "recipient"])
def test_an_address_with_a_control_character_is_refused_by_name(
    digest: RenderedDigest, address: str, role: str
) -> None:
    kwargs: dict[str, Any] = {"sender": SENDER, "recipients": [ANALYST]}
    if role == "sender":
        kwargs["sender"] = address
    else:
        kwargs["recipients"] = [ANALYST, address]
    with pytest.raises(ValueError, match="control character") as caught:
        build_message(digest, message_id=_message_id(), date=SENT_AT, **kwargs)
    assert repr(address) in str(caught.value)


@pytest.mark.parametrize(
    "address",
    ["a@example.org, evil@x", "noat", "x@y@z", "a@", "", "group:;", "тест@example.org"],
    ids=["two-addresses", "no-at", "two-ats", "no-domain", "empty", "group", "non-ascii"],
)
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="invalid email address"):
        parse_address(address)


def test_display_names_in_any_script_are_encoded(digest: RenderedDigest) -> None:
    message = _message(digest, ["Ле Тхань Ан <an@example.org>", ANALYST])
    got = _parse(message.as_bytes())
    names = [(a.display_name, a.addr_spec) for a in got["To"].addresses]
    assert names == [("Ле Тхань Ан", "an@example.org"), ("", ANALYST)]


def test_https_unsubscribe_gets_one_click_post(digest: RenderedDigest) -> None:
    got = _parse(_message(digest, unsubscribe="https://example.org/u/abc?d=1").as_bytes())
    assert got["List-Unsubscribe"] == "<https://example.org/u/abc?d=1>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_no_unsubscribe_means_no_list_headers(digest: RenderedDigest) -> None:
    got = _parse(_message(digest).as_bytes())
    assert got["List-Unsubscribe"] is None
    assert got["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.org/u",
        "javascript:alert(1)",
        "https://example.org/u\r\nBcc: evil@x",
        "https://example.org/a b",
        "mailto:a@x>, <https://evil.example",
    ],
    ids=["http", "javascript", "crlf", "space", "breaks-out-of-brackets"],
)
def test_bad_unsubscribe_uris_are_refused(digest: RenderedDigest, uri: str) -> None:
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        _message(digest, unsubscribe=uri)


def test_date_must_be_aware_and_keeps_its_offset(digest: RenderedDigest) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _message(digest, date=datetime(2026, 11, 22, 7, 0))
    jakarta = SENT_AT.astimezone(timezone(timedelta(hours=7)))
    got = _parse(_message(digest, date=jakarta).as_bytes())
    assert got["Date"] == "Sun, 22 Nov 2026 07:05:12 +0700"


def test_message_id_is_kept_exactly_on_one_line(digest: RenderedDigest) -> None:
    long_id = message_id_for(
        "a very long digest name " * 4, WINDOW_START, WINDOW_END, domain="mail.example.org"
    )
    raw = _message(digest, message_id=long_id).as_bytes()
    assert f"\r\nMessage-ID: {long_id}\r\n".encode() in raw
    assert _parse(raw)["Message-ID"] == long_id


@pytest.mark.parametrize(
    "message_id",
    ["no-brackets@example.org", "<a@b>\r\nBcc: evil@x", "<no-at>", "<a b@c>"],
    ids=["no-brackets", "crlf", "no-at", "space"],
)
def test_malformed_message_ids_are_refused(digest: RenderedDigest, message_id: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        _message(digest, message_id=message_id)


def test_no_recipients_is_refused(digest: RenderedDigest) -> None:
    with pytest.raises(ValueError, match="recipient"):
        build_message(digest, sender=SENDER, recipients=[], message_id=_message_id(), date=SENT_AT)


# --- message ids ---------------------------------------------------------------------------


def test_message_id_is_deterministic_and_well_formed() -> None:
    first = message_id_for("daily", WINDOW_START, WINDOW_END, domain="example.org")
    again = message_id_for(
        "daily",
        WINDOW_START.astimezone(timezone(timedelta(hours=7))),  # the same instants
        WINDOW_END,
        domain="example.org",
    )
    assert first == again
    assert first.startswith("<digest.daily.20261121T0000Z-20261122T0000Z.")
    assert first.endswith("@example.org>")
    assert MESSAGE_ID.fullmatch(first)


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("weekly", WINDOW_START, WINDOW_END),
        ("Daily", WINDOW_START, WINDOW_END),  # slugs alike, still a different digest
        ("daily", WINDOW_START + timedelta(days=1), WINDOW_END + timedelta(days=1)),
        ("daily", WINDOW_START, WINDOW_END + timedelta(seconds=30)),  # same minute
    ],
    ids=["other-name", "other-case", "next-window", "sub-minute"],
)
def test_different_names_or_windows_get_different_ids(
    name: str, start: datetime, end: datetime
) -> None:
    base = message_id_for("daily", WINDOW_START, WINDOW_END, domain="example.org")
    assert message_id_for(name, start, end, domain="example.org") != base


def test_message_id_slugs_any_script_and_refuses_naive_windows() -> None:
    assert MESSAGE_ID.fullmatch(_message_id())
    assert _message_id("Дайджест").startswith("<digest.digest.")
    assert _message_id("Bản tin Nga").startswith("<digest.ban-tin-nga.")
    assert _message_id("Đối tác ASEAN–Nga").startswith("<digest.doi-tac-asean-nga.")
    assert _message_id(DIGEST_NAME).startswith("<digest.ban-tin-nga-asean.")
    with pytest.raises(ValueError, match="timezone-aware"):
        message_id_for("daily", datetime(2026, 11, 21), WINDOW_END, domain="example.org")


@pytest.mark.parametrize(
    ("sender", "domain"),
    [
        ("monitor@example.org", "example.org"),
        ("Monitor <monitor@Mail.Example.ORG>", "mail.example.org"),
        ("monitor", "localhost"),
        ("", "localhost"),
        ("monitor@bad_domain!", "localhost"),
        ("monitor@bücher.de", "xn--bcher-kva.de"),
    ],
    ids=["plain", "display-name", "no-domain", "empty", "invalid", "idn"],
)
def test_domain_comes_from_the_sender_with_a_localhost_fallback(sender: str, domain: str) -> None:
    assert domain_of(sender) == domain


# --- archive files -------------------------------------------------------------------------

DAY = date(2026, 11, 22)


def test_archive_is_written_whole_under_name_and_date(tmp_path: Path) -> None:
    path = write_archive(tmp_path, "daily", DAY, "# Дайджест\n\nNgoại trưởng\n")
    assert path == tmp_path / "daily" / "2026-11-22.md"
    assert path.read_text(encoding="utf-8") == "# Дайджест\n\nNgoại trưởng\n"
    assert sorted(p.name for p in (tmp_path / "daily").iterdir()) == ["2026-11-22.md"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_same_day_archives_never_overwrite_a_different_digest(tmp_path: Path) -> None:
    first = write_archive(tmp_path, "daily", DAY, "morning\n")
    again = write_archive(tmp_path, "daily", DAY, "morning\n")  # a retried delivery
    second = write_archive(tmp_path, "daily", DAY, "evening\n")
    third = write_archive(tmp_path, "daily", DAY, "late\n")
    second_again = write_archive(tmp_path, "daily", DAY, "evening\n")
    assert first == again == tmp_path / "daily" / "2026-11-22.md"
    assert second == second_again == tmp_path / "daily" / "2026-11-22-2.md"
    assert third == tmp_path / "daily" / "2026-11-22-3.md"
    assert [p.read_text() for p in (first, second, third)] == ["morning\n", "evening\n", "late\n"]
    assert len(list((tmp_path / "daily").iterdir())) == 3


def test_archive_under_a_regular_file_is_a_permanent_error_naming_the_path(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "digests"
    blocker.write_text("not a folder\n")
    with pytest.raises(PermanentDeliveryError) as caught:
        write_archive(blocker, "daily", DAY, "# digest\n")
    err = caught.value
    expected = str(blocker / "daily" / "2026-11-22.md")
    assert err.recipient == expected
    assert str(err).startswith(f"{expected}: cannot write archive file: Not a directory (ENOTDIR)")
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "..\\x", "nul\x00"])
def test_archive_names_that_are_not_one_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="archive folder"):
        write_archive(tmp_path, name, DAY, "x\n")
    assert list(tmp_path.iterdir()) == []


_FULL_DISK_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from datetime import date
    from pathlib import Path
    from monitor.deliver import write_archive
    from monitor.errors import DeliveryError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write() instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        write_archive(Path(sys.argv[1]), "daily", date(2026, 11, 22), "x" * 100_000)
    except DeliveryError as err:
        print(json.dumps({"type": type(err).__name__, "str": str(err),
                          "recipient": err.recipient, "temporary": err.temporary}))
    else:
        print(json.dumps({"type": None}))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX only")
def test_a_failing_write_leaves_no_partial_or_temp_file(tmp_path: Path) -> None:
    """A real OS write failure (EFBIG from RLIMIT_FSIZE, in a child process)."""
    folder = tmp_path / "daily"
    old = write_archive(tmp_path, "daily", DAY, "the earlier digest\n")
    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["type"] == "PermanentDeliveryError"
    assert outcome["temporary"] is False
    assert outcome["recipient"] == str(folder / "2026-11-22-2.md")
    assert "EFBIG" in outcome["str"]
    assert old.read_text() == "the earlier digest\n"
    assert sorted(p.name for p in folder.iterdir()) == ["2026-11-22.md"]


def test_delivery_errors_are_monitor_delivery_errors() -> None:
    """Callers catch DeliveryError; `.temporary` tells the outbox whether to retry."""
    assert issubclass(TemporaryDeliveryError, DeliveryError)
    assert issubclass(PartialDeliveryError, PermanentDeliveryError)
    assert TemporaryDeliveryError("a@x", "d").temporary is True
    assert PermanentDeliveryError("a@x", "d").temporary is False
