"""`monitor demo`: serve recorded sources on 127.0.0.1 and run the pipeline. I/O: network, files."""

from __future__ import annotations

import hashlib
import html
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from monitor.corpus import SIDECAR_SUFFIX
from monitor.dedupe.seeds import parse_seed
from monitor.resources import default_config_dir

DATA = Path(__file__).resolve().parent / "demo_data"
# The analyst already knows these two seeds; the feeds carry the other three, a reprint of one
# of the known seeds, an AMP twin, and a broken source.
DEMO_SEEDS = ("000_51428d13349f6c0f.txt", "003_24ad2f7826d9acd6.txt")
# Polled after the others, as a wire picks stories up after the publishers: its AMP copy of the
# VNA article is then the duplicate, whatever order the pages happen to arrive in.
LATER_SOURCES = ("Regional wire (recorded)",)


@dataclass(frozen=True, slots=True)
class _Page:
    seed: str
    site: str
    title: str
    date: str
    lang: str = "en"


PAGES = {
    "/mfa/news/lavrov-lim-jock-hoi-remarks/": _Page(
        "001_81123ee9e5c26968.txt",
        "The Ministry of Foreign Affairs of the Russian Federation",
        "Foreign Minister Sergey Lavrov’s opening remarks during talks with ASEAN "
        "Secretary-General Lim Jock Hoi, Moscow, February 3, 2020",
        "2020-02-03",
    ),
    "/asean/asean-russia-commit-to-deepen-cooperation/": _Page(
        "004_77ff1506fea45f61.txt",
        "ASEAN Secretariat",
        "ASEAN, Russia commit to deepen cooperation",
        "2019-02-21",
    ),
    "/vna/asean-secretary-general-russian-fm-hold-talks/": _Page(
        "002_3b70ce0ad9d51632.txt",
        "Vietnam News Agency",
        "ASEAN Secretary General, Russian FM hold talks in Moscow",
        "2020-02-03",
    ),
    "/vna/lavrov-to-attend-asean-ministerial-meetings/": _Page(
        "003_24ad2f7826d9acd6.txt",
        "Vietnam News Agency",
        "Russian FM Lavrov to attend ASEAN ministerial meetings in Vientiane",
        "2024-07-25",
    ),
}
AMP_TWINS = {"/vna/asean-secretary-general-russian-fm-hold-talks/amp/"}
FEEDS = {
    "/mfa/rss.xml": ("mfa.xml", "application/rss+xml"),
    "/asean/feed/": ("asean.xml", "application/rss+xml"),
    "/vna/feed.atom": ("vna.atom", "application/atom+xml"),
    "/wire/feed.json": ("wire.json", "application/feed+json"),
}
BROKEN = "/broken/rss.xml"

SOURCES_TOML = """\
[[sources]]
name = "Russian MFA (recorded)"
url = "{base}/mfa/rss.xml"
language = "en"
priority = 1

[[sources]]
name = "ASEAN Secretariat (recorded)"
url = "{base}/asean/feed/"
language = "en"
priority = 1

[[sources]]
name = "Ministry behind bot protection (recorded)"
url = "{base}/broken/rss.xml"
language = "en"
priority = 1

[[sources]]
name = "Vietnam News Agency (recorded)"
url = "{base}/vna/feed.atom"
language = "en"
priority = 3

[[sources]]
name = "Regional wire (recorded)"
url = "{base}/wire/feed.json"
language = "en"
priority = 5
"""

MONITOR_TOML = """\
# Written by `monitor demo`: recorded sources served on 127.0.0.1.
[storage]
url = "sqlite:///monitor.db"

[sources]
file = "sources.toml"

[topics]
file = "{topics}"

[corpus]
dir = "corpus"

[poll]
# The recorded articles are from 2019-2024; treat them all as new rather than as baseline.
backfill = "36500d"

[[digests]]
name = "demo"
timezone = "Asia/Jakarta"
formats = ["markdown"]
output_dir = "digests"
"""


def render_page(path: str, base: str) -> bytes:
    """An article page: a seed's text in publisher-style boilerplate."""
    page = PAGES[path]
    seed = (default_config_dir() / "corpus" / page.seed).read_text("utf-8")
    # The seed's body as the parser reads it: a headline line is dropped, but a first line
    # that is already the lead (002: " date 2020-02-03 Moscow (VNA) – ...") is kept.
    body = parse_seed(page.seed, seed).text
    lines = [line.strip() for line in body.split("\n\n") if line.strip()]
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)
    template = (DATA / "page.html").read_text("utf-8")
    return template.format(
        lang=page.lang,
        title=html.escape(page.title),
        site=html.escape(page.site),
        canonical=html.escape(base + path),
        date=page.date,
        paragraphs=paragraphs,
    ).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server: _DemoServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        base = self.server.base_url
        if path in FEEDS:
            name, content_type = FEEDS[path]
            body = (DATA / "feeds" / name).read_text("utf-8").replace("{base}", base).encode()
        elif path in PAGES or path in AMP_TWINS:
            content_type = "text/html; charset=utf-8"
            body = render_page(path.removesuffix("amp/") if path in AMP_TWINS else path, base)
        elif path == BROKEN:
            content_type = "text/html; charset=utf-8"
            body = (DATA / "challenge.html").read_bytes()
        else:
            self.send_error(404)
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo prints its own summary."""


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@contextmanager
def serve() -> Iterator[str]:
    """Serve the recorded sources on 127.0.0.1 (a free port); yields the base URL."""
    server = _DemoServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
    thread.start()
    try:
        yield server.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def prepare(workdir: Path | None, base: str) -> Path:
    """Write the demo's config, sources and seed corpus; returns the config path."""
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="monitor-demo-"))
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    for name in DEMO_SEEDS:
        for file in (name, name + SIDECAR_SUFFIX):  # the seed and its date
            text = (default_config_dir() / "corpus" / file).read_text("utf-8")
            (root / "corpus" / file).write_text(text, "utf-8")
    topics = (default_config_dir() / "topics.toml").as_posix()
    (root / "monitor.toml").write_text(MONITOR_TOML.format(topics=topics), "utf-8")
    (root / "sources.toml").write_text(SOURCES_TOML.replace("{base}", base), "utf-8")
    return root / "monitor.toml"
