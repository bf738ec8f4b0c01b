"""A new item, its tags, signature, decisions and decision-log entry in ONE statement
(PostgreSQL data-modifying CTEs): the insert inside the cluster's decision lock costs one
round trip instead of one per table. I/O: database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from monitor.store.dedupe import decision_values, signature_values
from monitor.store.rows import tag_rows
from monitor.store.schema import decisions, index_log, item_facets, item_topics, items, signatures

if TYPE_CHECKING:
    from monitor.store.dedupe import NewItem


def insert_in_one_statement(
    conn: Connection, values: dict[str, Any], new: NewItem
) -> tuple[int, int]:
    """Insert the `items` row `values` of `new` with its other rows and its "insert" log
    entry; returns (item id, log id). The foreign keys are checked at the statement's end,
    when every row is in."""
    assert new.dedupe is not None
    item = items.insert().values(**values).returning(items.c.id).cte("new_item")
    topics, facets = tag_rows(new.tags) if new.tags is not None else ([], [])
    children = [
        _rows_of(item, table, rows, name)
        for table, rows, name in (
            (item_topics, topics, "new_topics"),
            (item_facets, facets, "new_facets"),
            (signatures, [signature_values(new.dedupe.signature)], "new_signature"),
            (decisions, [decision_values(new.dedupe)], "new_decision"),
        )
        if rows
    ]
    logged = (
        index_log.insert()
        .from_select(["item_id", "kind"], sa.select(item.c.id, sa.literal("insert")))
        .returning(index_log.c.id)
        .cte("new_log")
    )
    query = (
        sa.select(item.c.id, logged.c.id.label("log_id"))
        .select_from(item.join(logged, sa.true()))
        .add_cte(*children)
    )
    row = conn.execute(query).one()
    return int(row[0]), int(row[1])


def _rows_of(item: sa.CTE, table: sa.Table, rows: list[dict[str, Any]], name: str) -> sa.CTE:
    """An INSERT of `rows` (each without the item id) into `table` for the new item."""
    columns = list(rows[0])
    given = sa.values(*(sa.column(c, table.c[c].type) for c in columns), name=f"{name}_rows").data(
        [tuple(r[c] for c in columns) for r in rows]
    )
    chosen = sa.select(item.c.id, *(given.c[c] for c in columns)).select_from(
        item.join(given, sa.true())
    )
    return table.insert().from_select(["item_id", *columns], chosen).cte(name)
