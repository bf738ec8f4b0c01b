"""The web pages over a real socket: every page, security headers, statuses, signed links and
the access token. A local feed is polled and a digest mailed to a real SMTP server first."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest

from monitor.config import load_config, serving_notes
from monitor.errors import ConfigError
from monitor.server import MAX_BODY
from monitor.web.secret import load_secret
from monitor.web.sign import LinkError, sign_link, verify_link
from tests.servers import LocalServer
from tests.smtp_server import SmtpServer
from tests.test_cli import run
from tests.test_daemon import write_config
from tests.test_digest_send import seed_page
from tests.test_ops import write
from tests.web_server import PagesServer

PUBLIC = "https://monitor.example.org"
NOW = datetime.now(UTC)
# Two reports of one event (the Lim Jock Hoi visit to Moscow): one story of two.
REPORTS = {
    "lim": ("Lim Jock Hoi visits Moscow", "000_51428d13349f6c0f.txt"),
    "mfa": ("Lavrov remarks at talks with ASEAN Secretary-General", "001_81123ee9e5c26968.txt"),
}
SECRET = b"k" * 32


def serve_reports(server: LocalServer, guids: list[str], path: str = "/feed.xml") -> str:
    items = ""
    for guid in guids:
        title, seed = REPORTS[guid] if guid in REPORTS else EXTRA[guid]
        server.add(f"/{guid}.html", seed_page(seed), content_type="text/html")
        items += (
            f"<item><title>{title}</title><link>{server.url(f'/{guid}.html')}</link>"
            f"<guid>{guid}</guid><pubDate>{format_datetime(NOW - timedelta(hours=1))}</pubDate>"
            "</item>"
        )
    rss = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>A</title>{items}</channel></rss>'
    )
    return server.add(path, rss.encode())


EXTRA = {"vna": ("ASEAN chief in Moscow for talks", "002_3b70ce0ad9d51632.txt")}


@dataclass
class Site:
    config: Path
    mailed_html: str
    mailed_text: str


def make_site(tmp: Path, http: LocalServer, smtp: SmtpServer, *, extra: str = "") -> Site:
    url = serve_reports(http, ["lim", "mfa"])
    config = write_config(tmp, {"MFA": url}, smtp_port=smtp.port)
    text = config.read_text("utf-8").replace("[server]\n", f'[server]\npublic_url = "{PUBLIC}"\n')
    config.write_text(text + extra, "utf-8")
    run(config, "poll")
    run(config, "digest", "--no-poll", "--send")
    message = email.message_from_bytes(smtp.messages[-1].data, policy=email.policy.default)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None
    assert text_part is not None
    return Site(config, html_part.get_content(), text_part.get_content())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with LocalServer() as http, SmtpServer() as smtp:
        yield make_site(tmp_path_factory.mktemp("site"), http, smtp)


@pytest.fixture
def pages(site: Site) -> Iterator[PagesServer]:
    with PagesServer(site.config) as server:
        yield server


def items_json(config: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in run(config, "items", "--json").stdout.splitlines()]


def fix_links(html: str) -> list[str]:
    """The signed links in a mailed HTML digest, as paths."""
    return [m.replace("&amp;", "&") for m in re.findall(rf'href="{PUBLIC}(/fix/[^"]+)"', html)]


# -- signed links (pure) ---------------------------------------------------------------------------


def test_a_signed_link_carries_item_action_topic_and_expiry() -> None:
    expires = NOW + timedelta(days=30)
    token = sign_link(SECRET, 42, "untag", expires=expires, topic="arms-control")
    claim = verify_link(SECRET, token, now=NOW)
    assert (claim.item_id, claim.action, claim.topic) == (42, "untag", "arms-control")
    assert claim.expires == datetime.fromtimestamp(int(expires.timestamp()), UTC)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", token)


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t.replace("42.", "43.", 1), "signature"),
        (lambda t: t.replace("split", "untag", 1), "signature"),
        (lambda t: _flip(t, len(t) - 3), "signature"),
        (lambda t: t[:-1], "malformed"),
        (lambda t: t + "x", "malformed"),
        (lambda t: "", "malformed"),
        (lambda t: t.replace(".", "/"), "malformed"),
    ],
    ids=["other-item", "other-action", "mac", "short", "long", "empty", "slashes"],
)
def test_a_tampered_link_is_refused(mangle: object, reason: str) -> None:
    token = sign_link(SECRET, 42, "split", expires=NOW + timedelta(days=1))
    with pytest.raises(LinkError, match=reason):
        verify_link(SECRET, mangle(token), now=NOW)  # type: ignore[operator]


def test_an_expired_link_and_one_signed_with_another_key_are_refused() -> None:
    token = sign_link(SECRET, 7, "split", expires=NOW + timedelta(days=1))
    with pytest.raises(LinkError, match="expired"):
        verify_link(SECRET, token, now=NOW + timedelta(days=1, seconds=1))
    with pytest.raises(LinkError, match="signature"):
        verify_link(b"another key of 32 bytes or so...", token, now=NOW)


def test_the_link_key_is_made_once_with_mode_0600_and_the_environment_wins(
    tmp_path: Path,
) -> None:
    first = load_secret(None, tmp_path)
    assert load_secret(None, tmp_path) == first
    assert (tmp_path / "web-secret").stat().st_mode & 0o777 == 0o600
    assert load_secret("from the environment", tmp_path) == b"from the environment"
    (tmp_path / "web-secret").write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        load_secret(None, tmp_path)


# -- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "env", "problem"),
    [
        ('public_url = "ftp://x.example"', {}, r"server\.public_url: must be an http\(s\) URL"),
        ('public_url = "https://x.example/?a=1"', {}, r"server\.public_url: must not carry"),
        ("link_days = 0", {}, r"server\.link_days: must be 1 to 366"),
        ('host = "10.1.2.3"\nport = 8080', {"MONITOR_WEB_TOKEN": "short"}, r"at least 16"),
    ],
    ids=["scheme", "query", "days", "short-token"],
)
def test_server_config_problems_name_the_key(
    tmp_path: Path, server: str, env: dict[str, str], problem: str
) -> None:
    path = write(tmp_path, f"[server]\n{server}\n")
    with pytest.raises(ConfigError, match=problem):
        load_config(path, env)


def test_bound_beyond_loopback_without_a_token_check_config_says_the_pages_are_shut(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, '[server]\nhost = "0.0.0.0"\nport = 8080\n')
    done = run(config, "check-config", check=False)
    assert done.returncode == 0, done.stderr
    assert "note: " in done.stderr
    assert "server.host: bound to '0.0.0.0', beyond this machine, without MONITOR_WEB_TOKEN" in (
        done.stderr
    )
    assert "the pages answer 403" in done.stderr
    assert not serving_notes(load_config(config, {"MONITOR_WEB_TOKEN": "x" * 24}))
    loopback = write(tmp_path, "[server]\nport = 8080\n")
    assert not serving_notes(load_config(loopback, {}))


def test_bound_beyond_loopback_without_a_token_the_pages_are_shut(site: Site) -> None:
    config = site.config.parent / "shut.toml"
    text = site.config.read_text("utf-8").replace("[server]\n", '[server]\nhost = "0.0.0.0"\n')
    config.write_text(text.replace("port = 0", "port = 8080"), "utf-8")
    split = fix_links(site.mailed_html)[0]
    with PagesServer(config) as pages:
        for path in ("/", "/digests/1", "/items/1", "/sources", "/digests.atom", "/login"):
            status, _, body = pages.request("GET", path)
            assert status == 403, path
            assert b"These pages are shut" in body
        # No token can open them: a login attempt is refused the same way.
        status, _, body = pages.request("POST", "/login", form={"token": ""})
        assert status == 403
        assert b"These pages are shut" in body
        assert pages.request("GET", split)[0] == 200  # the signed link is its own proof
        assert pages.request("GET", "/static/style.css")[0] == 200


def test_public_url_and_link_days_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[server]\nport = 8080\npublic_url = "https://m.example/"\nlink_days = 7\n'
    )
    server = load_config(path, {}).server
    assert (server.public_url, server.link_days, server.loopback) == ("https://m.example", 7, True)


# -- pages ----------------------------------------------------------------------------------------


def test_every_page_answers_with_the_security_headers_and_no_script(
    site: Site, pages: PagesServer
) -> None:
    story = items_json(site.config)[0]["story"]
    assert isinstance(story, dict)
    for path in (
        "/",
        "/digests/1",
        f"/stories/{story['id']}",
        "/items/1",
        "/sources",
        "/digests.atom",
        "/login",
        fix_links(site.mailed_html)[0],
    ):
        status, headers, body = pages.request("GET", path)
        assert status == 200, path
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp
        assert "form-action 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert b"<script" not in body.lower(), path


def test_the_archive_links_the_digest_whose_page_is_the_mailed_html(
    site: Site, pages: PagesServer
) -> None:
    _, _, archive = pages.request("GET", "/")
    assert b'href="/digests/1"' in archive
    assert b"[monitor] daily" in archive
    _, _, page = pages.request("GET", "/digests/1")
    body = page.decode()
    assert '<link rel="stylesheet" href="/static/style.css">' in body
    # The mailed email's body, unchanged: every story, link and signed correction.
    mailed = site.mailed_html.replace("\r\n", "\n")  # the mail's line ends
    mailed_body = mailed.split("<body", 1)[1].split(">", 1)[1]
    assert mailed_body.split("</body>")[0].strip() in body
    assert len(fix_links(body)) == 4


def test_the_digest_links_in_every_format(site: Site) -> None:
    """HTML: the item page, "Not the same story" on both reports of the story of two, and
    "Wrong topic?" on each; the text part carries the same links as plain URLs."""
    html_links = fix_links(site.mailed_html)
    assert [p.split(".")[1] for p in html_links] == ["split", "topics", "split", "topics"]
    assert f'href="{PUBLIC}/items/1"' in site.mailed_html
    assert f'href="{PUBLIC}/items/2"' in site.mailed_html
    for path in html_links:
        assert f"{PUBLIC}{path}" in site.mailed_text
    assert f"Details: {PUBLIC}/items/" in site.mailed_text
    markdown = run(site.config, "digest", "--no-poll", "--since", "2d").stdout
    assert markdown.count(f"<{PUBLIC}/fix/") == 4
    assert f"Details: <{PUBLIC}/items/" in markdown


def test_the_atom_feed_parses_and_links_each_sent_digest(pages: PagesServer) -> None:
    status, headers, body = pages.request("GET", "/digests.atom")
    assert status == 200
    assert headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert len(parsed.entries) == 1
    entry = parsed.entries[0]
    assert entry.link == f"{PUBLIC}/digests/1"
    assert entry.title.startswith("[monitor] daily")
    assert entry.updated_parsed is not None


def test_the_story_page_shows_members_span_and_why_each_joined(
    site: Site, pages: PagesServer
) -> None:
    found = items_json(site.config)
    story = found[0]["story"]
    assert isinstance(story, dict)
    assert story["size"] == 2
    _, _, body = pages.request("GET", f"/stories/{story['id']}")
    page = body.decode()
    assert "2 reports from 1 source" in page
    assert "span" in page
    for item in found:
        assert f'href="/items/{item["id"]}"' in page
        assert str(item["title"]) in page
    first, second = sorted(found, key=lambda r: (r["fetched_at"], r["id"]))
    assert page.count("started the story") == 1
    assert "joined: score" in page
    assert f"against item {first['id']} (MFA: {first['title']})" in page
    assert page.index(str(first["title"])) < page.index(str(second["title"]))


def test_the_item_page_is_the_explain_view(site: Site, pages: PagesServer) -> None:
    explained = run(site.config, "explain", "1").stdout
    _, _, body = pages.request("GET", "/items/1")
    page = body.decode()
    for line in explained.splitlines():
        if line.startswith(("exact layer", "near-duplicate layer", "story layer", "  text:")):
            assert line.strip() in page
    assert "characters of text" in page
    assert "Facets" in page
    assert "countries" in page


def test_the_sources_page_shows_health(site: Site, pages: PagesServer) -> None:
    listed = json.loads(run(site.config, "sources", "list", "--json").stdout.splitlines()[0])
    _, _, body = pages.request("GET", "/sources")
    assert listed["name"] in body.decode()
    assert f'data-label="Status">{listed["status"]}</td>' in body.decode()


# -- protocol -------------------------------------------------------------------------------------


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_bad_requests_get_clear_statuses(pages: PagesServer) -> None:
    assert pages.request("GET", "/items/999999")[0] == 404
    assert pages.request("GET", "/items/abc")[0] == 404
    assert pages.request("GET", "/stories/999999")[0] == 404
    assert pages.request("GET", "/digests/7777")[0] == 404
    assert pages.request("GET", "/no/such/page")[0] == 404
    assert pages.request("GET", "/?" + "&".join(f"q{i}=1" for i in range(50)))[0] == 400
    many = "&".join(f"f{i}=1" for i in range(50)).encode()
    assert pages.request("POST", "/fix", body=many)[0] == 403  # no token among them
    status, headers, _ = pages.request("DELETE", "/items/1")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    assert pages.request("GET", "/fix")[0] == 405
    assert pages.request("POST", "/fix", body=b"x" * (MAX_BODY + 1))[0] == 413
    assert raw(pages.port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    chunked = b"POST /fix HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert raw(pages.port, chunked).startswith(b"HTTP/1.1 400 ")
    assert raw(pages.port, b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 "
    )


def test_head_answers_the_headers_of_get_without_a_body(pages: PagesServer) -> None:
    status, headers, body = pages.request("HEAD", "/items/1")
    _, got, full = pages.request("GET", "/items/1")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == len(full) == int(got["content-length"])


# -- signed links over HTTP -----------------------------------------------------------------------


def test_a_signed_link_get_shows_a_post_form_and_changes_nothing(
    site: Site, pages: PagesServer
) -> None:
    before = items_json(site.config)
    split, topics = fix_links(site.mailed_html)[:2]
    status, _, body = pages.request("GET", split)
    page = body.decode()
    assert status == 200
    assert '<form class="form" method="post" action="/fix">' in page
    assert f'name="token" value="{split.removeprefix("/fix/")}"' in page
    status, _, body = pages.request("GET", topics)
    assert status == 200
    choices = re.findall(r'name="token" value="([^"]+)"', body.decode())
    assert choices
    assert all(".untag." in c for c in choices)
    assert items_json(site.config) == before


def test_tampered_expired_and_foreign_links_get_403_and_change_nothing(
    site: Site, pages: PagesServer
) -> None:
    before = items_json(site.config)
    split = fix_links(site.mailed_html)[0].removeprefix("/fix/")
    key = load_secret(None, site.config.parent / "data")
    expired = sign_link(key, 1, "split", expires=NOW - timedelta(seconds=1))
    foreign = sign_link(b"not the server's key, 32 bytes..", 1, "split", expires=NOW + timedelta(1))
    for token in (_flip(split, len(split) - 2), split.replace("1.", "2.", 1), expired, foreign):
        assert pages.request("GET", f"/fix/{token}")[0] == 403
        status, _, body = pages.request("POST", "/fix", form={"token": token})
        assert status == 403
        assert b"nothing was changed" in body
    assert items_json(site.config) == before


def test_a_post_from_another_site_is_refused(site: Site, pages: PagesServer) -> None:
    before = items_json(site.config)
    split = fix_links(site.mailed_html)[0].removeprefix("/fix/")
    status, _, body = pages.request(
        "POST", "/fix", form={"token": split}, headers={"Origin": "https://evil.example"}
    )
    assert status == 403
    assert b"another site" in body
    assert items_json(site.config) == before


# -- access ---------------------------------------------------------------------------------------

TOKEN = "a-long-enough-web-token-for-tests"


def test_bound_beyond_loopback_every_page_but_the_signed_links_needs_the_token(
    site: Site,
) -> None:
    config = site.config.parent / "beyond.toml"
    text = site.config.read_text("utf-8").replace("[server]\n", '[server]\nhost = "0.0.0.0"\n')
    config.write_text(text.replace("port = 0", "port = 8080"), "utf-8")
    assert serving_notes(load_config(config, {}))  # the pages are shut without a token
    split = fix_links(site.mailed_html)[0]
    with PagesServer(config, env={"MONITOR_WEB_TOKEN": TOKEN}) as pages:
        for path in ("/", "/digests/1", "/items/1", "/sources", "/digests.atom"):
            status, _, body = pages.request("GET", path)
            assert status == 403, path
            assert b'action="/login"' in body
            wrong = {"Authorization": f"Bearer {TOKEN}x"}
            assert pages.request("GET", path, headers=wrong)[0] == 403
            ok = {"Authorization": f"Bearer {TOKEN}"}
            assert pages.request("GET", path, headers=ok)[0] == 200
        assert pages.request("GET", split)[0] == 200  # the signed link is its own proof
        assert pages.request("GET", "/static/style.css")[0] == 200

        status, _, _ = pages.request("POST", "/login", form={"token": "wrong"})
        assert status == 403
        status, headers, _ = pages.request("POST", "/login", form={"token": TOKEN})
        assert (status, headers["location"]) == (303, "/")
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Secure" in cookie
        assert TOKEN not in cookie
        session = cookie.split(";", 1)[0]
        assert pages.request("GET", "/", headers={"Cookie": session})[0] == 200
        assert pages.request("GET", "/", headers={"Cookie": session + "0"})[0] == 403


def test_a_correction_that_cannot_be_made_gets_400_naming_the_item_and_changes_nothing(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    own = make_site(tmp_path, http_server, smtp_server)
    key = load_secret(None, tmp_path / "data")
    later = NOW + timedelta(days=1)
    with PagesServer(own.config) as pages:
        first, second = (p.removeprefix("/fix/") for p in fix_links(own.mailed_html)[::2])
        status, _, body = pages.request("POST", "/fix", form={"token": first})
        assert status == 200
        assert b"Correction recorded" in body
        before = items_json(own.config)
        # The other report is now alone in its story: nothing to split it from.
        status, _, body = pages.request("POST", "/fix", form={"token": second})
        assert status == 400
        assert f"item {second.split('.')[0]}".encode() in body
        wrong = sign_link(key, 1, "untag", expires=later, topic="no-such-topic")
        status, _, body = pages.request("POST", "/fix", form={"token": wrong})
        assert status == 400
        assert b"no-such-topic" in body
        topics = sign_link(key, 1, "topics", expires=later)
        assert pages.request("POST", "/fix", form={"token": topics})[0] == 400
        assert items_json(own.config) == before
