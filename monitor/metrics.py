"""The daemon's Prometheus metrics, kept in a registry of its own. No I/O (the endpoint serves
them, see `monitor.server`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.pipeline import PollOutcome

CONTENT_TYPE = CONTENT_TYPE_LATEST
_STATUSES = ("new", "known", "duplicate", "baseline", "updated")


class Metrics:
    """Counters and gauges for `/metrics`. `queue_depth` and `outbox_pending` are read at
    scrape time from the callables the daemon gives."""

    def __init__(
        self,
        *,
        queue_depth: Callable[[], float] = lambda: 0.0,
        outbox_pending: Callable[[], float] = lambda: 0.0,
        cluster_jobs: Callable[[], dict[tuple[str, str], int]] | None = None,
    ) -> None:
        """`cluster_jobs` (cluster mode) gives the shared queue's jobs by kind and status."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("monitor_polls", "Source polls by outcome.", ["outcome"], registry=r)
        self.items = Counter(
            "monitor_items_stored",
            "Items stored by this process, by status.",
            ["status"],
            registry=r,
        )
        self.failures = Counter(
            "monitor_source_failures",
            "Failed polls by source and error class.",
            ["source", "error_class"],
            registry=r,
        )
        self.page_failures = Counter(
            "monitor_page_failures", "Article pages that could not be fetched.", registry=r
        )
        self.extraction = Histogram(
            "monitor_extraction_seconds",
            "Time to extract, tag and sign one article in a worker.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.bytes = Counter(
            "monitor_received_bytes", "Feed bytes received (after decompression).", registry=r
        )
        self.digests = Counter(
            "monitor_digest_sends", "Digest jobs by outcome.", ["name", "status"], registry=r
        )
        self.skipped_runs = Counter(
            "monitor_job_runs_skipped",
            "Scheduled runs skipped because the previous run of the job was still going.",
            ["job"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "monitor_worker_restarts",
            "Extraction process pools replaced after a worker died.",
            registry=r,
        )
        self.reloads = Counter(
            "monitor_config_reloads", "SIGHUP reloads by result.", ["result"], registry=r
        )
        depth = Gauge("monitor_queue_depth", "Poll and digest jobs running now.", registry=r)
        depth.set_function(queue_depth)
        pending = Gauge("monitor_outbox_pending", "Digests waiting to be delivered.", registry=r)
        pending.set_function(outbox_pending)
        self.last_poll = Gauge(
            "monitor_last_poll_timestamp_seconds", "When the last poll finished.", registry=r
        )
        self.cluster_jobs_done = Counter(
            "monitor_cluster_jobs_done",
            "Queue jobs this node finished, by kind (cluster mode).",
            ["kind"],
            registry=r,
        )
        self.decision_lock = Histogram(
            "monitor_cluster_decision_lock_seconds",
            "How long this node held the decision lock per article (cluster mode).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.cluster_jobs_recovered = Counter(
            "monitor_cluster_jobs_recovered",
            "Running jobs of dead nodes this node put back in the queue (cluster mode).",
            registry=r,
        )
        if cluster_jobs is not None:
            r.register(_QueueCollector(cluster_jobs))
            for kind in ("poll", "ingest", "digest", "outbox"):
                self.cluster_jobs_done.labels(kind)
        for status in _STATUSES:  # present from the start, so a rate() has a baseline
            self.items.labels(status)
        for outcome in ("ok", "not_modified", "failed", "skipped"):
            self.polls.labels(outcome)

    def observe_poll(self, outcome: PollOutcome, finished_at: float) -> None:
        self.polls.labels(outcome.outcome).inc()
        if outcome.outcome == "failed":
            self.failures.labels(outcome.source, outcome.error_class or "unknown").inc()
        self.observe_articles(outcome)
        self.bytes.inc(outcome.bytes_received)
        self.last_poll.set(finished_at)

    def observe_articles(self, outcome: PollOutcome) -> None:
        """What the articles of a poll (or of a cluster ingest job) came to."""
        for status in _STATUSES:
            count = getattr(outcome, status)
            if count:
                self.items.labels(status).inc(count)
        if outcome.page_failures:
            self.page_failures.inc(outcome.page_failures)
        for seconds in outcome.extract_seconds:
            self.extraction.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _QueueCollector(Collector):
    """`monitor_cluster_queue_jobs{kind,status}`, read from the shared queue at scrape time."""

    def __init__(self, read: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "monitor_cluster_queue_jobs",
            "Jobs in the shared queue by kind and status (all nodes).",
            labels=["kind", "status"],
        )
        try:
            depth = self._read()
        except Exception:  # a scrape must not fail because the database is away
            depth = {}
        for (kind, status), count in sorted(depth.items()):
            family.add_metric([kind, status], float(count))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
