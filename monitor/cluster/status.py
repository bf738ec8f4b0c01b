"""What the queue holds, read straight from procrastinate's tables: live nodes, jobs by kind and
status, stalled jobs. For `monitor cluster status` and `/metrics`. I/O: database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from monitor.errors import StoreError
from monitor.store import Store

_KIND = {
    "monitor.poll": "poll",
    "monitor.ingest": "ingest",
    "monitor.digest": "digest",
    "monitor.outbox": "outbox",
}


@dataclass(frozen=True, slots=True)
class Node:
    worker_id: int
    last_heartbeat: datetime
    running: int  # jobs it is doing now


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    nodes: tuple[Node, ...]  # live: a heartbeat within `stalled_after`
    depth: dict[tuple[str, str], int]  # (kind, status) -> jobs
    stalled: tuple[dict[str, Any], ...]  # running jobs of nodes that stopped sending heartbeats

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "worker_id": n.worker_id,
                    "last_heartbeat": n.last_heartbeat.isoformat(),
                    "running": n.running,
                }
                for n in self.nodes
            ],
            "queue": [
                {"kind": kind, "status": status, "jobs": count}
                for (kind, status), count in sorted(self.depth.items())
            ],
            "stalled": list(self.stalled),
        }


def queue_depth(store: Store) -> dict[tuple[str, str], int]:
    """Jobs by kind (poll, ingest, digest, outbox) and status (todo, doing, failed, ...). Finished
    jobs are deleted by the workers, so `succeeded` stays near zero."""
    query = sa.text(
        "SELECT task_name, status::text, count(*) FROM procrastinate_jobs "
        "GROUP BY task_name, status"
    )
    try:
        with store.engine.connect() as conn:
            rows = list(conn.execute(query))
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the job queue: {exc}") from exc
    return {(_KIND.get(task, task), status): int(n) for task, status, n in rows}


def cluster_status(store: Store, stalled_after: timedelta) -> ClusterStatus:
    seconds = stalled_after.total_seconds()
    nodes_query = sa.text(
        "SELECT w.id, w.last_heartbeat, "
        "(SELECT count(*) FROM procrastinate_jobs j WHERE j.worker_id = w.id "
        "AND j.status = 'doing') FROM procrastinate_workers w "
        "WHERE w.last_heartbeat >= now() - make_interval(secs => :s) ORDER BY w.id"
    )
    stalled_query = sa.text(
        "SELECT j.id, j.task_name, j.lock, j.args::text, j.attempts, j.worker_id "
        "FROM procrastinate_jobs j LEFT JOIN procrastinate_workers w ON w.id = j.worker_id "
        "WHERE j.status = 'doing' AND (j.worker_id IS NULL "
        "OR w.last_heartbeat < now() - make_interval(secs => :s)) ORDER BY j.id"
    )
    try:
        with store.engine.connect() as conn:
            nodes = tuple(
                Node(int(i), _aware(at), int(n))
                for i, at, n in conn.execute(nodes_query, {"s": seconds})
            )
            stalled = tuple(
                {
                    "id": int(job_id),
                    "kind": _KIND.get(task, task),
                    "lock": lock,
                    "args": args,
                    "attempts": int(attempts),
                    "worker_id": worker,
                }
                for job_id, task, lock, args, attempts, worker in conn.execute(
                    stalled_query, {"s": seconds}
                )
            )
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the job queue: {exc}") from exc
    return ClusterStatus(nodes, queue_depth(store), stalled)


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
