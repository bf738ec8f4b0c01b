"""Hostile feed and page text, end to end: a local feed is polled by the real command line, then
listed, explained, rendered in every format and mailed to a real SMTP server. Nothing hostile
may reach the HTML, the mail headers or the terminal unescaped."""

from __future__ import annotations

import email
import email.policy
import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from html.parser import HTMLParser
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import pytest

from tests.chromium_check import dump_dom, find_chromium
from tests.servers import LocalServer
from tests.smtp_server import SmtpServer
from tests.test_cli import run
from tests.test_digest_send import write_config
from tests.web_server import PagesServer

WHEN = format_datetime(datetime.now(UTC) - timedelta(hours=1))
PAGE = b"""<html><head><title>x</title><script>alert('page')</script></head><body><article>
<h1>Ministers meet in Vientiane</h1>
<p>ASEAN foreign ministers met Russia's foreign minister in Vientiane on Thursday to discuss
cooperation on counter-terrorism, energy and education, and agreed to meet again next year.</p>
<p><a href="javascript:alert('link')">Read more</a> <img src="x" onerror="alert('img')"></p>
<p>The talks covered the ASEAN-Russia strategic partnership and regional security.</p>
<script>document.write('injected')</script>
</article></body></html>"""
HUGE_TITLE = "ASEAN " * 175_000  # about 1 MB
TITLES = {
    "script": "<script>alert('title')</script> ASEAN talks",
    "crlf": "Breaking\r\nBcc: victim@example.org\r\nX-Injected: yes",
    "bidi": "Invoice \u202egpj.exe and \u2066isolate\u2069 text",
}


def hostile_feed(server: LocalServer) -> bytes:
    items = [
        (TITLES["script"], server.url("/page.html"), "<img src=x onerror=alert('summary')>"),
        (TITLES["crlf"], "javascript:alert('feed-link')", "A link with a script scheme"),
        (
            TITLES["bidi"],
            "data:text/html,<script>alert('data')</script>",
            "A link with a data scheme",
        ),
        (HUGE_TITLE, server.url("/huge-title"), "A one-megabyte title"),
    ]
    body = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<guid isPermaLink='false'>h{i}</guid><pubDate>{WHEN}</pubDate>"
        f"<description>{escape(summary)}</description></item>"
        for i, (title, link, summary) in enumerate(items)
    )
    xml = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Evil</title>'
        f"{body}</channel></rss>"
    )
    # XML cannot carry CR and ESC as characters; as references they reach the parser.
    return xml.replace("\r\n", "&#13;&#10;").encode()


TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def assert_terminal_safe(output: str) -> None:
    assert not TERMINAL_UNSAFE.search(output), repr(TERMINAL_UNSAFE.search(output))


def assert_html_safe(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert "javascript:" not in lowered
    assert "data:text/html" not in lowered
    assert "onerror=" not in lowered
    assert not re.search("[\u202a-\u202e\u2066-\u2069\x1b]", html)


def test_hostile_text_is_inert_in_terminal_html_markdown_text_and_mail(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    http_server.add("/page.html", PAGE, content_type="text/html")
    feed = http_server.add("/feed.xml", hostile_feed(http_server))
    config = write_config(tmp_path, feed, smtp_server.port)

    polled = run(config, "poll")
    assert_terminal_safe(polled.stdout + polled.stderr)

    listed = run(config, "items")
    assert_terminal_safe(listed.stdout)
    assert max(len(line) for line in listed.stdout.splitlines()) < 400  # the 1 MB title is cut
    as_json = run(config, "items", "--json").stdout
    assert_terminal_safe(as_json.replace("\n", " "))  # bidi characters as \u escapes
    records = [json.loads(line) for line in as_json.splitlines()]
    assert any("\u202e" in r["title"] for r in records)  # the same data, escaped
    assert len(records) == 4
    assert max(len(r["title"]) for r in records) <= 1000  # stored titles are capped
    by_guid = {r["title"][:8]: r for r in records}
    # Links that are not http(s) never become an item's link: the feed's URL stands in.
    assert all(r["url"].startswith("http://127.0.0.1:") for r in records)
    assert all(r["canonical_url"].startswith("http://127.0.0.1:") for r in records)
    page_item = next(r for r in records if r["url"].endswith("/page.html"))
    assert page_item["extraction"] == "full_text"
    text = run(config, "items", "--json", "--with-text").stdout
    assert "document.write" not in text  # scripts are not article text
    for record in records:
        explained = run(config, "explain", str(record["id"]))
        assert_terminal_safe(explained.stdout)
        assert len(explained.stdout) < 50_000
    assert by_guid  # the four titles were distinct

    window = ["--no-poll", "--since", "2000-01-01"]
    html = run(config, "digest", *window, "--format", "html").stdout
    assert_html_safe(html)
    # feedparser's sanitiser already removed the script from the title; what is left shows.
    assert "ASEAN talks" in html
    assert "Breaking Bcc: victim@example.org X-Injected: yes" in html
    assert len(html) < 200_000
    markdown = run(config, "digest", *window).stdout
    assert "<script" not in markdown
    assert "javascript:" not in markdown
    assert "data:text/html" not in markdown
    assert_terminal_safe(markdown.replace("\n", " "))
    plain = run(config, "digest", *window, "--format", "text").stdout
    assert "javascript:" not in plain
    assert_terminal_safe(plain.replace("\n", " "))
    assert all(len(line) <= 72 or "://" in line for line in plain.splitlines())

    sent = run(config, "digest", "--send", *window)
    assert_terminal_safe(sent.stderr)
    [received] = smtp_server.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    # No header was injected through a title, and every header is one logical line.
    names = [name.lower() for name in message]
    assert "bcc" not in names
    assert "x-injected" not in names
    assert received.rcpt_tos == ("analyst@example.org",)
    for name, value in message.items():
        assert "\r" not in str(value)
        assert "\n" not in str(value), name
    html_part = message.get_body(("html",))
    assert html_part is not None
    assert_html_safe(html_part.get_content())
    assert len(received.data) < 300_000


# -- the web pages --------------------------------------------------------------------------------

# Markup that would run if a page let it through: it sets a marker on the body and a global.
MARKER = '<img src=x onerror="document.body.dataset.owned=1;window.owned=1">'
SCRIPT = "<script>document.body.dataset.owned=2;window.owned=1</script>"


class _Markup(HTMLParser):
    """Collects what a browser would run: script elements, on* handlers, script links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.found.append(tag)
        for name, value in attrs:
            lowered = (value or "").strip().lower()
            if name.startswith("on") or lowered.startswith(("javascript:", "data:")):
                self.found.append(f"{tag} {name}={value}")


def assert_markup_inert(page: str) -> None:
    """Hostile text may show (escaped) but never becomes markup, and no bidi control shows."""
    parser = _Markup()
    parser.feed(page)
    assert not parser.found, parser.found
    assert not re.search("[\u202a-\u202e\u2066-\u2069\x1b]", page)


def hostile_pages_feed(server: LocalServer) -> bytes:
    """Two reports of one story whose titles and text carry markup as literal text."""
    for name, extra in (("a", "met on Thursday"), ("b", "also met the Lao deputy minister")):
        body = escape(f"{SCRIPT} {MARKER} ASEAN ministers and Lavrov {extra}.")
        page = PAGE.replace(b"</article>", f"<p>{body}</p></article>".encode())
        server.add(f"/{name}.html", page, content_type="text/html")
    titles = [f"ASEAN {MARKER} talks \u202eevil", f"Lavrov {SCRIPT} in Vientiane"]
    items = "".join(
        f"<item><title>{escape(escape(title))}</title><link>{server.url(f'/{name}.html')}</link>"
        f"<guid>{name}</guid><pubDate>{WHEN}</pubDate><description>{escape(escape(MARKER))}"
        "</description></item>"
        for name, title in zip("ab", titles, strict=True)
    )
    channel = f"<channel><title>E</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def test_hostile_text_is_inert_on_every_page_and_in_chromium(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    feed = http_server.add("/feed.xml", hostile_pages_feed(http_server))
    config = write_config(tmp_path, feed, smtp_server.port)
    with config.open("a", encoding="utf-8") as extra:
        extra.write('[server]\npublic_url = "http://127.0.0.1:9"\n')
    run(config, "poll")
    records = [json.loads(line) for line in run(config, "items", "--json").stdout.splitlines()]
    assert any("<img src=x onerror" in r["title"] for r in records)  # it did reach the store
    story = records[0]["story"]["id"]
    run(config, "digest", "--send", "--no-poll", "--since", "2000-01-01")
    with PagesServer(config) as pages:
        _, _, digest = pages.request("GET", "/digests/1")
        fixes = re.findall(r'href="http://127\.0\.0\.1:9(/fix/[^"]+)"', digest.decode())
        assert fixes
        paths = ["/", "/digests/1", f"/stories/{story}", "/sources", "/login", *fixes]
        paths += [f"/items/{r['id']}" for r in records]
        for path in paths:
            status, _, body = pages.request("GET", path)
            assert status == 200, path
            assert_markup_inert(body.decode())
        _, _, item = pages.request("GET", f"/items/{records[0]['id']}")
        assert "&lt;img src=x onerror=" in item.decode()  # shown as text
        atom = pages.request("GET", "/digests.atom")[2]
        assert not feedparser.parse(atom).bozo

        binary = find_chromium()
        if binary is None:
            pytest.skip("no Chromium on PATH")
        shown = ["/", "/digests/1", f"/stories/{story}", f"/items/{records[0]['id']}"]
        with ThreadPoolExecutor(len(shown)) as pool:
            doms = list(pool.map(lambda p: dump_dom(binary, pages.url(p)), shown))
    for path, dom in zip(shown, doms, strict=True):
        assert "</body>" in dom, f"{path}: Chromium rendered nothing"
        assert "data-owned" not in dom, path  # the marker never ran
        assert "<script" not in dom.lower(), path
        assert_markup_inert(dom)
    assert "window.owned=1" in doms[1]  # the digest shows the hostile text, as text
    assert "window.owned=1" in doms[3]
