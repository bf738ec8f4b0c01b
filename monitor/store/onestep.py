"""A new item's rows (the item, its tags, signature, decisions and log rows) written in one
PostgreSQL statement: one round trip inside the cluster's decision lock. I/O: database."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from monitor.store.dedupe import DedupeRecord, decision_values, signature_values
from monitor.store.schema import decisions, index_log, item_facets, item_topics, items, signatures

_TEXTS = ARRAY(sa.Text)
_FLOATS = ARRAY(sa.Float)


def insert_one_step(
    conn: sa.Connection,
    values: Mapping[str, Any],
    topics: Sequence[Mapping[str, Any]],
    facets: Sequence[Mapping[str, Any]],
    dedupe: DedupeRecord | None,
    logged: Sequence[str],
) -> tuple[int, list[int]]:
    """Insert the `items` row `values` with its topic and facet rows, its signature and
    decisions (with `dedupe`) and a decision-log row of each kind in `logged`; returns the
    item's id and the log rows' ids."""
    params: dict[str, Any] = {f"item_{k}": v for k, v in values.items()}
    if topics:
        params["topic_ids"] = [t["topic_id"] for t in topics]
        params["scores"] = [t["score"] for t in topics]
        params["thresholds"] = [t["threshold"] for t in topics]
        params["evidence"] = [t["evidence"] for t in topics]
    if facets:
        params["kinds"] = [f["kind"] for f in facets]
        params["values"] = [f["value"] for f in facets]
    if dedupe is not None:
        params |= signature_values(dedupe.signature) | decision_values(dedupe)
    if logged:
        params["log_kinds"] = list(logged)
    query = _statement(tuple(values), bool(topics), bool(facets), dedupe is not None, bool(logged))
    found = conn.execute(query, params).all()
    return int(found[0][0]), sorted(int(r[1]) for r in found if r[1] is not None)


@functools.cache
def _statement(
    columns: tuple[str, ...], topics: bool, facets: bool, dedupe: bool, logged: bool
) -> sa.Select[Any]:
    """The statement for one shape of item, built once: its compiled form is then reused
    (building and keying a new one each time cost more than the round trips it saves)."""
    item = (
        items.insert()
        .values({c: sa.bindparam(f"item_{c}", type_=items.c[c].type) for c in columns})
        .returning(items.c.id)
        .cte("new_item")
    )
    parts: list[sa.CTE] = []
    if topics:
        rows = (
            sa.func.unnest(
                sa.bindparam("topic_ids", type_=_TEXTS),
                sa.bindparam("scores", type_=_FLOATS),
                sa.bindparam("thresholds", type_=_FLOATS),
                sa.bindparam("evidence", type_=_TEXTS),
            )
            .table_valued("topic_id", "score", "threshold", "evidence")
            .render_derived()
        )
        chosen = sa.select(item.c.id, rows.c.topic_id, rows.c.score, rows.c.threshold)
        parts.append(
            item_topics.insert()
            .from_select(
                ["item_id", "topic_id", "score", "threshold", "evidence"],
                chosen.add_columns(rows.c.evidence).select_from(_beside(item, rows)),
            )
            .cte("new_topics")
        )
    if facets:
        rows = (
            sa.func.unnest(
                sa.bindparam("kinds", type_=_TEXTS), sa.bindparam("values", type_=_TEXTS)
            )
            .table_valued("kind", "value")
            .render_derived()
        )
        parts.append(
            item_facets.insert()
            .from_select(
                ["item_id", "kind", "value"],
                sa.select(item.c.id, rows.c.kind, rows.c.value).select_from(_beside(item, rows)),
            )
            .cte("new_facets")
        )
    if dedupe:
        for table, names, label in (
            (signatures, ("signature", "shingles", "features"), "new_signature"),
            (decisions, ("near", "story"), "new_decisions"),
        ):
            bound = (sa.bindparam(n, type_=table.c[n].type) for n in names)
            parts.append(
                table.insert()
                .from_select(["item_id", *names], sa.select(item.c.id, *bound))
                .cte(label)
            )
    if logged:
        kinds = (
            sa.func.unnest(sa.bindparam("log_kinds", type_=_TEXTS))
            .table_valued("kind")
            .render_derived()
        )
        log_rows = (
            index_log.insert()
            .from_select(
                ["item_id", "kind"],
                sa.select(item.c.id, kinds.c.kind).select_from(_beside(item, kinds)),
            )
            .returning(index_log.c.id)
            .cte("new_log")
        )
        query = sa.select(item.c.id, log_rows.c.id).select_from(_beside(item, log_rows))
    else:
        query = sa.select(item.c.id, sa.null())
    return query.add_cte(*parts) if parts else query


def _beside(item: sa.CTE, rows: sa.FromClause) -> sa.Join:
    """The new item's row beside each of `rows` (a join on true: there is one item)."""
    return item.join(rows, sa.true())
