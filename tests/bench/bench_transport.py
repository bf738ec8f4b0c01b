"""Benchmark: CPU per 304 of `Fetcher` over httpx's transport options, in one run. I/O.

Does network I/O (127.0.0.1-127.0.0.N only) and runs the feed server of bench_compare in a
process of its own (`--feeds` feeds on `--hosts` loopback hosts, `--latency` ms each, 304
for a matching If-None-Match). In this process, on uvloop where installed, one `Fetcher`
per transport fetches every feed once (untimed: connections and validators), then
`--rounds` times conditionally, all feeds at once under the default `[http]` limits; the
transports alternate within each round. Reported: the median CPU time (user+sys of this
process) per 304 and its ratio to ours, with the spread of the rounds.

Transports: `lean` (monitor.transport.HostPools, ours), `httpcore` (httpx's default,
one pool), `aiohttp` (the `httpx-aiohttp` transport: aiohttp's C parser; measured only when
that package is installed, with its import time), and `--source NAME=PATH`: the `HostPools`
of another source tree's monitor/transport.py (an export of an earlier commit).

    .venv/bin/python tests/bench/bench_transport.py [--feeds 1000] [--hosts 50]
        [--latency 20] [--rounds 5] [--source NAME=PATH]...
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from monitor.fetch import Fetcher, make_client
from monitor.loop import run
from monitor.models import HttpConfig
from monitor.transport import HostPools
from tests.bench.bench_compare import CORPUS, ServerProcess


def _with_transport(config: HttpConfig, transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    """`make_client`'s client (hooks, headers, timeouts), over `transport`."""
    client = make_client(config)
    client._transport = transport  # the only difference between the rows
    return client


def _load_pools(name: str, path: Path) -> Any:
    """The HostPools class of another tree's monitor/transport.py."""
    spec = importlib.util.spec_from_file_location(f"transport_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.HostPools


def transports(
    config: HttpConfig, sources: dict[str, Path]
) -> dict[str, Callable[[], httpx.AsyncBaseTransport]]:
    keep = httpx.Limits(max_connections=None, max_keepalive_connections=512)
    found: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
        "lean": lambda: HostPools(config.per_host),
        "httpcore": lambda: httpx.AsyncHTTPTransport(limits=keep),
    }
    for name, root in sources.items():
        pools = _load_pools(name, root / "monitor" / "transport.py")
        found[name] = lambda pools=pools: pools(config.per_host)
    if importlib.util.find_spec("httpx_aiohttp") is not None:
        started = time.process_time()
        from httpx_aiohttp import AiohttpTransport

        print(f"httpx_aiohttp import: {time.process_time() - started:.3f} s CPU", file=sys.stderr)
        found["aiohttp"] = lambda: AiohttpTransport(limits=keep)
    return found


async def measure(urls: list[str], rounds: int, sources: dict[str, Path]) -> dict[str, list[float]]:
    config = HttpConfig()
    made = transports(config, sources)
    clients = {name: _with_transport(config, make()) for name, make in made.items()}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    try:
        fetchers = {name: Fetcher(client, config) for name, client in clients.items()}
        etags: dict[str, list[str | None]] = {}
        for name, fetcher in fetchers.items():
            first = await asyncio.gather(*(fetcher.fetch(u) for u in urls))
            etags[name] = [r.etag for r in first]
        names = list(fetchers)
        for rnd in range(rounds):
            shift = rnd % len(names)
            for name in names[shift:] + names[:shift]:
                fetcher = fetchers[name]
                started = time.process_time()
                results = await asyncio.gather(
                    *(fetcher.fetch(u, etag=e) for u, e in zip(urls, etags[name], strict=True))
                )
                cpu[name].append(time.process_time() - started)
                statuses = {r.status for r in results}
                if statuses != {304}:
                    raise SystemExit(f"{name}: statuses {sorted(statuses)}, not all 304")
    finally:
        for client in clients.values():
            await client.aclose()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency", type=float, default=20.0, help="milliseconds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--source", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    sources = {n: Path(p) for n, _, p in (spec.partition("=") for spec in args.source)}
    server = ServerProcess(args.feeds, 0, args.hosts, CORPUS, args.latency / 1000)
    try:
        cpu = run(measure(server.feed_urls(args.feeds), args.rounds, sources))
    finally:
        server.close()
    ours = statistics.median(cpu["lean"])
    print(f"| transport | CPU per 304, median ({args.rounds} rounds, min–max) | ÷ lean |")
    print("|---|---|---|")
    for name, values in cpu.items():
        per = [1000 * v / args.feeds for v in values]
        median = statistics.median(values)
        print(
            f"| {name} | {1000 * median / args.feeds:.3f} ms "
            f"({min(per):.3f}–{max(per):.3f}) | {median / ours:.2f}× |"
        )


if __name__ == "__main__":
    main()
