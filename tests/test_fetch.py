"""Tests for monitor.fetch: real requests to the local server through Fetcher."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from monitor.errors import FetchError
from monitor.fetch import FEED_ACCEPT, PAGE_ACCEPT, Fetcher, make_client
from monitor.models import FetchResult, HttpConfig
from monitor.transport import Proxied
from tests.servers import SMALL_FEED, LocalServer, gzip_bomb, redirect_to, send_body

LAST_MODIFIED = "Mon, 01 Jul 2024 08:00:00 GMT"


async def _fetch_async(
    config: HttpConfig, url: str, client: httpx.AsyncClient | None = None, **kwargs: str
) -> FetchResult:
    async with client or make_client(config) as http:
        return await Fetcher(http, config).fetch(url, **kwargs)


def fetch(
    config: HttpConfig, url: str, client: httpx.AsyncClient | None = None, **kwargs: str
) -> FetchResult:
    return asyncio.run(_fetch_async(config, url, client, **kwargs))


def fetch_error(
    config: HttpConfig, url: str, client: httpx.AsyncClient | None = None, **kwargs: str
) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(config, url, client, **kwargs)
    return caught.value


class _CountingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, owner: CountingTransport) -> None:
        self._inner = inner
        self._owner = owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._owner.received += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """The real httpx transport, counting the raw body bytes the client actually read."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.received = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CountingStream(response.stream, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def counting_client(config: HttpConfig, transport: CountingTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        headers={"User-Agent": config.user_agent},
        timeout=config.timeout,
        follow_redirects=False,
    )


# -- success and conditional GET ---------------------------------------------------------------


def test_200_returns_body_validators_cache_age_and_lowercase_headers(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    url = http_server.add(
        "/feed.xml",
        SMALL_FEED,
        etag='"v1"',
        last_modified=LAST_MODIFIED,
        headers={"Cache-Control": "public, max-age=600", "X-Feed-Note": "hello"},
    )
    result = fetch(http_config, url)
    assert result.status == 200
    assert not result.not_modified
    assert result.body == SMALL_FEED
    assert result.url == url
    assert result.final_url == url
    assert result.etag == '"v1"'
    assert result.last_modified == LAST_MODIFIED
    assert result.max_age == 600
    assert result.headers["x-feed-note"] == "hello"
    assert result.headers["content-type"] == "application/xml"
    assert result.bytes_received == len(SMALL_FEED)
    assert 0 <= result.elapsed_ms < 2000


def test_second_fetch_is_conditional_and_gets_not_modified(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    url = http_server.add("/feed.xml", SMALL_FEED, etag='"v1"', last_modified=LAST_MODIFIED)
    first = fetch(http_config, url)
    assert first.etag is not None
    assert first.last_modified is not None
    second = fetch(http_config, url, etag=first.etag, last_modified=first.last_modified)

    assert second.not_modified
    assert second.status == 304
    assert second.body == b""
    assert second.etag == '"v1"'
    assert second.last_modified == LAST_MODIFIED
    first_request, second_request = http_server.requests_for("/feed.xml")
    assert "if-none-match" not in first_request.headers
    assert second_request.headers["if-none-match"] == '"v1"'
    assert second_request.headers["if-modified-since"] == LAST_MODIFIED


def test_changed_feed_is_fetched_again_despite_old_validators(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    url = http_server.add("/feed.xml", SMALL_FEED, etag='"v1"')
    http_server.add("/feed.xml", SMALL_FEED + b"<!-- v2 -->", etag='"v2"')
    result = fetch(http_config, url, etag='"v1"')
    assert result.status == 200
    assert result.etag == '"v2"'
    assert result.body.endswith(b"<!-- v2 -->")


def test_if_modified_since_alone_gets_not_modified(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    url = http_server.add("/feed.xml", SMALL_FEED, last_modified=LAST_MODIFIED)
    result = fetch(http_config, url, last_modified=LAST_MODIFIED)
    assert result.not_modified
    assert result.last_modified == LAST_MODIFIED
    assert result.etag is None


@pytest.mark.parametrize(
    ("headers_304", "expected_etag", "expected_last_modified"),
    [
        pytest.param({}, '"old"', LAST_MODIFIED, id="304-without-validators-keeps-given"),
        pytest.param(
            {"ETag": '"new"', "Last-Modified": "Tue, 02 Jul 2024 08:00:00 GMT"},
            '"new"',
            "Tue, 02 Jul 2024 08:00:00 GMT",
            id="304-with-new-validators-updates",
        ),
    ],
)
def test_304_validators(
    http_server: LocalServer,
    http_config: HttpConfig,
    headers_304: dict[str, str],
    expected_etag: str,
    expected_last_modified: str,
) -> None:
    def always_304(handler: BaseHTTPRequestHandler) -> None:
        send_body(handler, 304, b"", headers=headers_304)

    url = http_server.add_handler("/feed.xml", always_304)
    result = fetch(http_config, url, etag='"old"', last_modified=LAST_MODIFIED)
    assert result.not_modified
    assert result.etag == expected_etag
    assert result.last_modified == expected_last_modified


def test_user_agent_and_accept_headers_are_sent(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    feed_url = http_server.add("/feed.xml", SMALL_FEED)
    page_url = http_server.add("/page.html", b"<html></html>", content_type="text/html")
    fetch(http_config, feed_url)
    fetch(http_config, page_url, accept=PAGE_ACCEPT)
    (feed_request,) = http_server.requests_for("/feed.xml")
    (page_request,) = http_server.requests_for("/page.html")
    assert feed_request.headers["user-agent"] == http_config.user_agent
    assert feed_request.headers["accept"] == FEED_ACCEPT
    assert page_request.headers["accept"] == PAGE_ACCEPT
    assert "gzip" in feed_request.headers["accept-encoding"]


def test_challenge_page_is_returned_as_html_for_the_parser_to_judge(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    result = fetch(http_config, http_server.url("/html-as-feed"))
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/html")
    assert b"Just a moment..." in result.body


# -- HTTP errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [404, 410, 500, 502], ids=lambda c: f"status-{c}")
def test_error_status_is_http_error_naming_url(
    http_server: LocalServer, http_config: HttpConfig, code: int
) -> None:
    url = http_server.url(f"/status/{code}")
    error = fetch_error(http_config, url)
    assert error.error_class == "http"
    assert error.status == code
    assert error.retry_after is None
    assert url in str(error)
    assert error.url == url


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        pytest.param(429, "120", "120", id="429-seconds"),
        pytest.param(503, "30", "30", id="503-seconds"),
        pytest.param(
            429, "Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT", id="429-date"
        ),
        pytest.param(
            503, "Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT", id="503-date"
        ),
        pytest.param(500, "30", None, id="500-retry-after-ignored"),
    ],
)
def test_retry_after_is_carried_for_429_and_503(
    http_server: LocalServer,
    http_config: HttpConfig,
    code: int,
    value: str,
    expected: str | None,
) -> None:
    target = http_server.url(f"/retry-after/{code}?value={value.replace(' ', '%20')}")
    error = fetch_error(http_config, target)
    assert error.error_class == "http"
    assert error.status == code
    assert error.retry_after == expected


def test_redirect_status_without_location_is_http_error(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    error = fetch_error(http_config, http_server.url("/status/300"))
    assert error.error_class == "http"
    assert error.status == 300


# -- deadlines and timeouts ----------------------------------------------------------------------


@pytest.mark.slow
def test_slow_drip_is_cut_at_the_deadline(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    # 100 bytes, one every 0.1 s: each read is quick (no read timeout) but the whole body
    # would take 10 s; the 2 s deadline must stop it.
    url = http_server.url("/slow-drip?bytes=100&interval=0.1")
    started = time.monotonic()
    error = fetch_error(http_config, url)
    elapsed = time.monotonic() - started
    assert error.error_class == "timeout"
    assert "deadline" in error.detail
    assert http_config.deadline <= elapsed < http_config.deadline + 1.0
    assert http_server.bytes_sent("/slow-drip") < 100


@pytest.mark.slow
def test_hanging_server_times_out(http_server: LocalServer, http_config: HttpConfig) -> None:
    started = time.monotonic()
    error = fetch_error(http_config, http_server.url("/hang"))
    elapsed = time.monotonic() - started
    assert error.error_class == "timeout"
    assert isinstance(error.__cause__, (httpx.TimeoutException, TimeoutError))
    assert elapsed < http_config.deadline + 1.0


# -- size caps ----------------------------------------------------------------------------------


def test_oversized_body_without_length_is_cut_near_the_cap(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    transport = CountingTransport()
    url = http_server.url("/oversized?mb=50")
    error = fetch_error(http_config, url, counting_client(http_config, transport))
    assert error.error_class == "too_large"
    # We read at most one network chunk past the cap, not the 50 MiB on offer.
    assert http_config.max_bytes < transport.received <= http_config.max_bytes + 128 * 1024


def test_declared_length_over_cap_is_refused_before_reading(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    transport = CountingTransport()
    url = http_server.add("/big.xml", b"x" * (http_config.max_bytes + 1))
    error = fetch_error(http_config, url, counting_client(http_config, transport))
    assert error.error_class == "too_large"
    assert str(http_config.max_bytes + 1) in error.detail
    assert transport.received == 0


def test_body_exactly_at_cap_is_accepted(http_server: LocalServer, http_config: HttpConfig) -> None:
    body = b"y" * http_config.max_bytes
    result = fetch(http_config, http_server.add("/exact.xml", body))
    assert result.body == body


def test_gzip_bomb_is_too_large_without_inflating_it_in_memory(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    gzip_bomb()  # build it before measuring
    url = http_server.url("/gzip-bomb")
    tracemalloc.start()
    try:
        error = fetch_error(http_config, url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.error_class == "too_large"
    assert "after decompression" in error.detail
    # The bomb inflates to 128 MiB (and a whole 64 KiB network read to ~64 MiB); we never
    # hold much more than the 1 MB cap.
    assert peak < 8 * 1024 * 1024


def test_gzip_body_is_decoded_and_wire_bytes_counted(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    result = fetch(http_config, http_server.url("/gzip"))
    assert result.body == SMALL_FEED
    assert result.headers["content-encoding"] == "gzip"
    assert result.bytes_received == len(gzip.compress(SMALL_FEED, mtime=0))
    assert result.bytes_received < len(SMALL_FEED)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(zlib.compress(SMALL_FEED), id="zlib-wrapped"),
        pytest.param(_raw_deflate(SMALL_FEED), id="raw-deflate"),
    ],
)
def test_deflate_body_is_decoded(
    http_server: LocalServer, http_config: HttpConfig, encoded: bytes
) -> None:
    url = http_server.add("/deflate.xml", encoded, headers={"Content-Encoding": "deflate"})
    assert fetch(http_config, url).body == SMALL_FEED


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        pytest.param("gzip", b"this is not gzip at all", id="corrupt-gzip"),
        pytest.param("br", b"\x0b\x02\x80hello\x03", id="unsupported-encoding"),
    ],
)
def test_undecodable_body_is_http_error(
    http_server: LocalServer, http_config: HttpConfig, encoding: str, body: bytes
) -> None:
    url = http_server.add("/weird.xml", body, headers={"Content-Encoding": encoding})
    error = fetch_error(http_config, url)
    assert error.error_class == "http"
    assert encoding in error.detail


def test_large_gzip_within_cap_decodes_completely(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    # Highly compressible: many 64 KiB output pieces per network read.
    body = b"<item>same</item>\n" * 50_000
    assert len(body) < http_config.max_bytes
    url = http_server.add("/big.xml.gz", gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert fetch(http_config, url).body == body


# -- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308], ids=lambda s: f"status-{s}")
def test_redirect_is_followed_and_final_url_reported(
    http_server: LocalServer, http_config: HttpConfig, status: int
) -> None:
    target = http_server.add("/moved/feed.xml", SMALL_FEED, etag='"m"')
    start = redirect_to(http_server, target, status)
    result = fetch(http_config, start)
    assert result.body == SMALL_FEED
    assert result.url == start
    assert result.final_url == target
    assert result.etag == '"m"'


def test_a_cookie_set_on_a_redirect_is_sent_to_its_target(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    """A cookie check (set a cookie, redirect, expect it back), as some sites do; and a
    response that sets none leaves the jar as it was."""

    def check(handler: BaseHTTPRequestHandler) -> None:
        target = http_server.url("/cookie-target")
        send_body(handler, 302, b"", headers={"Location": target, "Set-Cookie": "seen=1"})

    def target(handler: BaseHTTPRequestHandler) -> None:
        seen = "seen=1" in (handler.headers.get("Cookie") or "")
        send_body(handler, 200 if seen else 403, SMALL_FEED if seen else b"no cookie")

    url = http_server.add_handler("/cookie-check", check)
    http_server.add_handler("/cookie-target", target)
    plain = http_server.add("/plain.xml", SMALL_FEED)

    async def go() -> tuple[FetchResult, int, FetchResult, int]:
        async with make_client(http_config) as client:
            fetcher = Fetcher(client, http_config)
            checked = await fetcher.fetch(url)
            jar = len(client.cookies.jar)
            other = await fetcher.fetch(plain)
            return checked, jar, other, len(client.cookies.jar)

    checked, jar, other, after = asyncio.run(go())
    assert checked.body == SMALL_FEED
    assert jar == 1
    assert other.body == SMALL_FEED
    assert after == 1


def test_redirect_chain_within_limit_works(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    n = http_config.max_redirects
    result = fetch(http_config, http_server.url(f"/redirect-chain?n={n}"))
    assert result.status == 200
    assert result.final_url == http_server.url("/redirect-chain?n=0")
    assert len(http_server.requests_for("/redirect-chain")) == n + 1


def test_too_many_redirects_is_http_error(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    n = http_config.max_redirects + 1
    error = fetch_error(http_config, http_server.url(f"/redirect-chain?n={n}"))
    assert error.error_class == "http"
    assert f"more than {http_config.max_redirects} redirects" in error.detail


def test_redirect_to_unparseable_url_is_refused(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    error = fetch_error(http_config, redirect_to(http_server, "http://127.0.0.1:abc/feed"))
    assert error.error_class == "http"
    assert "invalid URL refused: http://127.0.0.1:abc/feed" in error.detail


def test_redirect_loop_is_http_error(http_server: LocalServer, http_config: HttpConfig) -> None:
    error = fetch_error(http_config, http_server.url("/redirect-loop"))
    assert error.error_class == "http"
    assert "loop" in error.detail
    assert len(http_server.requests_for("/redirect-loop")) == 2


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("ftp://127.0.0.1/feed.xml", id="ftp"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("data:text/xml,<rss/>", id="data"),
    ],
)
def test_redirect_to_non_http_scheme_is_refused(
    http_server: LocalServer, http_config: HttpConfig, target: str
) -> None:
    error = fetch_error(http_config, redirect_to(http_server, target))
    assert error.error_class == "http"
    assert error.status == 302
    assert f"non-http(s) URL refused: {target}" in error.detail
    assert len(http_server.requests) == 1


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("ftp://127.0.0.1/feed.xml", id="ftp"),
        pytest.param("http://127.0.0.1:abc/feed", id="unparseable"),
    ],
)
def test_bad_redirect_is_refused_with_a_client_not_made_by_make_client(
    http_server: LocalServer, http_config: HttpConfig, target: str
) -> None:
    plain = httpx.AsyncClient(timeout=http_config.timeout)
    error = fetch_error(http_config, redirect_to(http_server, target), plain)
    assert error.error_class == "http"
    assert "refused" in error.detail or "location" in error.detail.lower()
    assert len(http_server.requests) == 1


def test_non_http_url_is_refused_without_a_request(http_config: HttpConfig) -> None:
    error = fetch_error(http_config, "ftp://127.0.0.1/feed.xml")
    assert error.error_class == "http"
    assert "ftp://127.0.0.1/feed.xml" in str(error)


# -- transport errors ----------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connection_refused_is_connect_error(http_config: HttpConfig) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/feed.xml"
    error = fetch_error(http_config, url)
    assert error.error_class == "connect"
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert url in str(error)


def test_tls_to_a_plain_http_port_is_tls_error(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    url = http_server.url("/feed.xml").replace("http://", "https://")
    error = fetch_error(http_config, url)
    assert error.error_class == "tls"


def test_behind_a_proxy_no_proxy_hosts_go_direct_and_the_others_through_it(
    http_server: LocalServer, http_config: HttpConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = LocalServer()  # answers 404 to whatever it is asked for
    try:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy.url(""))
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.setenv(name, "127.0.0.1")
        client = make_client(http_config)
        assert isinstance(client._transport, Proxied)  # ours, and httpx's only via the proxy
        url = http_server.add("/feed.xml", SMALL_FEED)
        assert fetch(http_config, url).body == SMALL_FEED
        elsewhere = "http://feed.monitor-tests.invalid/feed.xml"
        error = fetch_error(http_config, elsewhere, client)
        assert (error.error_class, error.status) == ("http", 404)  # the proxy's answer
        asked = [(r.path, r.headers["host"]) for r in proxy.requests]
        assert asked == [("/feed.xml", "feed.monitor-tests.invalid")]
        assert [r.path for r in http_server.requests] == ["/feed.xml"]
    finally:
        proxy.close()


def test_unresolvable_host_is_dns_error(http_config: HttpConfig) -> None:
    # RFC 6761 reserves .invalid: no resolver may answer it, so nothing leaves the machine
    # beyond the query to the local resolver.
    url = "http://feed.monitor-tests.invalid/feed.xml"
    error = fetch_error(http_config, url)
    if error.error_class != "dns":
        pytest.skip(f"this environment reports an unresolvable name as {error.error_class!r}")
    assert url in str(error)
    assert not isinstance(error.__cause__, FetchError)


# -- per-host concurrency --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_host", "max_expected", "min_expected"),
    [
        pytest.param(2, 2, 2, id="capped-at-2"),
        pytest.param(6, 6, 3, id="control-cap-6-allows-more"),
    ],
)
def test_per_host_cap_limits_requests_in_flight(
    http_server: LocalServer,
    http_config: HttpConfig,
    per_host: int,
    max_expected: int,
    min_expected: int,
) -> None:
    config = dataclasses.replace(http_config, per_host=per_host)

    async def fetch_six() -> list[FetchResult]:
        async with make_client(config) as client:
            fetcher = Fetcher(client, config)
            urls = [http_server.url(f"/delay?s=0.25&n={i}") for i in range(6)]
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    results = asyncio.run(fetch_six())
    assert [r.body for r in results] == [SMALL_FEED] * 6
    assert min_expected <= http_server.in_flight_peak("/delay") <= max_expected


def test_deadline_does_not_count_waiting_for_the_host_slot(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    # Three 0.3 s requests through one slot take ~0.9 s, longer than the 0.6 s deadline; each
    # request's own time is well inside it.
    config = dataclasses.replace(http_config, per_host=1, deadline=0.6)

    async def fetch_three() -> list[FetchResult]:
        async with make_client(config) as client:
            fetcher = Fetcher(client, config)
            urls = [http_server.url(f"/delay?s=0.3&n={i}") for i in range(3)]
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    started = time.monotonic()
    results = asyncio.run(fetch_three())
    assert time.monotonic() - started > config.deadline
    assert [r.status for r in results] == [200, 200, 200]
    assert http_server.in_flight_peak("/delay") == 1


# -- the local server itself ---------------------------------------------------------------------


def test_local_server_closes_quickly_with_requests_in_flight() -> None:
    server = LocalServer()
    sockets = []
    for path in ("/hang", "/slow-drip?bytes=1000&interval=0.2", "/oversized?mb=50"):
        conn = socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        sockets.append(conn)
    deadline = time.monotonic() + 2
    while len(server.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(server.requests) == 3
    before = {t.name for t in threading.enumerate()}
    assert any(name.startswith("LocalServer-handler") for name in before)

    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 1.0
    for conn in sockets:
        conn.close()
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("LocalServer")]
    assert leftover == []
    assert server.errors == []


def test_local_server_serves_data_files_with_validators_and_gzip(
    tmp_path: Path, http_config: HttpConfig
) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "one.rss").write_bytes(SMALL_FEED)
    (tmp_path / "pages").mkdir()
    page = b"<html><body><p>Article text</p></body></html>"
    (tmp_path / "pages" / "story.html.gz").write_bytes(gzip.compress(page))

    with LocalServer(data_dir=tmp_path) as server:
        feed = fetch(http_config, server.url("/data/feeds/one.rss"))
        again = fetch(
            http_config,
            server.url("/data/feeds/one.rss"),
            etag=feed.etag or "",
            last_modified=feed.last_modified or "",
        )
        story = fetch(http_config, server.url("/data/pages/story.html"), accept=PAGE_ACCEPT)
        missing = fetch_error(http_config, server.url("/data/feeds/absent.rss"))
        escape = fetch_error(http_config, server.url("/data/..%2F..%2Fetc%2Fpasswd"))

    assert feed.body == SMALL_FEED
    assert feed.headers["content-type"] == "application/xml"
    assert feed.etag
    assert feed.last_modified
    assert again.not_modified
    assert story.body == page
    assert story.headers["content-type"].startswith("text/html")
    assert story.headers["content-encoding"] == "gzip"
    assert missing.status == 404
    assert escape.status in (403, 404)
