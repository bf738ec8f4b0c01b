"""Command line: `cluster status`. I/O: terminal, database."""

from __future__ import annotations

import json

import click

from monitor.cli import EXIT_USAGE, _errors, _fail, _opened_store, _State, utcnow
from monitor.cluster.status import cluster_status


@click.group()
def cluster() -> None:
    """Several `monitor run` nodes on one PostgreSQL database ([cluster])."""


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def status(state: _State, as_json: bool) -> None:
    """Live nodes (by heartbeat), queue depth by job kind and status, and stalled jobs."""
    with _errors():
        config = state.config
        if not config.storage_url.startswith("postgresql"):
            _fail(
                f"{config.path}: cluster: the job queue lives in PostgreSQL; "
                "[storage] url is not a PostgreSQL database",
                EXIT_USAGE,
            )
        with _opened_store(config, sync=False) as store:
            found = cluster_status(store, config.cluster.stalled_after)
    if as_json:
        click.echo(json.dumps(found.to_json(), ensure_ascii=False))
        return
    now = utcnow()
    click.echo(f"nodes: {len(found.nodes)} live (heartbeat within {config.cluster.stalled_after})")
    for node in found.nodes:
        age = (now - node.last_heartbeat).total_seconds()
        click.echo(f"  worker {node.worker_id}: heartbeat {age:.0f}s ago, {node.running} running")
    click.echo("queue:")
    if not found.depth:
        click.echo("  empty")
    for (kind, job_status), count in sorted(found.depth.items()):
        click.echo(f"  {kind:<7} {job_status:<10} {count}")
    click.echo(f"stalled: {len(found.stalled)}")
    for job in found.stalled:
        click.echo(f"  job {job['id']} {job['kind']} {job['lock']} (worker {job['worker_id']})")
