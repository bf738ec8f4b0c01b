"""The database schema: tables, column types and versioned migrations. No I/O of its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SCHEMA_VERSION = 8
# Advisory lock key of the decision step ("mon" + 2): cluster nodes decide under it
# (`monitor.cluster.gate`) and corrections are recorded under it, so no two take a story id.
DECISION_LOCK = 0x6D6F6E02


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=5),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("first_polled_at", UTCDateTime),
    sa.Column("last_attempt_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("last_error_class", sa.String(32)),
    sa.Column("last_error", sa.Text),
    sa.Column("next_check_at", UTCDateTime),
    sa.Column("retry_after_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("guid", sa.Text),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("canonical_url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("text_chars", sa.Integer, nullable=False),
    sa.Column("language", sa.String(8)),
    sa.Column("extraction", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("baseline", sa.Boolean, nullable=False, default=False),
    sa.Column("published_at", UTCDateTime),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("dup_kind", sa.String(8)),
    sa.Column("dup_ref", sa.Text),
    sa.Column("dup_similarity", sa.Float),
    sa.Column("dup_method", sa.String(32)),
    sa.Column("story_id", sa.Integer),
    # The story layer's first-step story when the item's story (`story_id`) is a merge of
    # several (schema version 8); NULL when the two are the same. A restart rebuilds the
    # first step from it, so the stories do not depend on where the polls were cut.
    sa.Column("story_part", sa.Integer),
    sa.Index("ix_items_source_guid", "source_id", "guid"),
    sa.Index("ix_items_canonical_url", "canonical_url"),
    sa.Index("ix_items_text_hash", "text_hash"),
    sa.Index("ix_items_fetched_at", "fetched_at"),
    sa.Index("ix_items_story_id", "story_id"),  # schema version 4
)

# An item whose text or title changed later keeps its identity; the change is recorded here.
item_revisions = sa.Table(
    "item_revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False, index=True),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("old_title", sa.Text, nullable=False),
    sa.Column("old_text_hash", sa.String(64), nullable=False),
    sa.Column("new_text_hash", sa.String(64), nullable=False),
    sa.Column("old_text", sa.Text, nullable=False),
)

# One row per poll of a source: what the digest's health block and `sources list` read.
fetch_log = sa.Table(
    "fetch_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # ok | not_modified | failed
    sa.Column("http_status", sa.Integer),
    sa.Column("error_class", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("bytes_received", sa.Integer, nullable=False, default=0),
    sa.Column("elapsed_ms", sa.Integer, nullable=False, default=0),
    sa.Column("new_items", sa.Integer, nullable=False, default=0),
    sa.Index("ix_fetch_log_source_at", "source_id", "at"),
)

# Topic tags with their evidence, and facet values, per item (schema version 2).
item_topics = sa.Table(
    "item_topics",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("topic_id", sa.String(64), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON [[term, lang, count], ...]
    sa.Index("ix_item_topics_topic", "topic_id"),
)

item_facets = sa.Table(
    "item_facets",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # countries | organisations | officials
    sa.Column("value", sa.String(200), primary_key=True),
    sa.Index("ix_item_facets_value", "kind", "value"),
)


# The digest outbox (schema version 3): a rendered digest is stored before it is sent, so an
# SMTP outage loses nothing and a retry reuses the same Message-ID.
digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("message_id", sa.String(300), nullable=False, unique=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("markdown", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | empty
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("name", "window_start", "window_end", name="uq_digests_window"),
)

# Which items a digest included: "seen" (items) stays separate from "included in digest N".
digest_items = sa.Table(
    "digest_items",
    metadata,
    sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Index("ix_digest_items_item", "item_id"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # email | markdown
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
)


# The dedupe layers (schema version 4). Seeds: the corpus as last signed, so an unchanged file
# is not signed again and keeps its story.
seeds = sa.Table(
    "seeds",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),  # the file name: duplicate_of.ref
    sa.Column("text_hash", sa.String(64), nullable=False),  # sha256 of the file's bytes
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("published_at", UTCDateTime),
    sa.Column("language", sa.String(8)),
    sa.Column("text_chars", sa.Integer, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),  # near.signature_to_bytes
    sa.Column("shingles", sa.Integer, nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # story.features_to_json
    sa.Column("story_id", sa.Integer, nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),  # when this version was signed
    # Where published_at came from (schema version 5): metadata | header | text | story.
    sa.Column("date_source", sa.String(16)),
)

# One row per item, written with the item: a restart rebuilds both indexes from these rows
# without signing or extracting anything again.
signatures = sa.Table(
    "signatures",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("signature", sa.LargeBinary, nullable=False),
    sa.Column("shingles", sa.Integer, nullable=False),
    sa.Column("features", sa.Text, nullable=False),
)

# What the near-duplicate and story layers decided for an item, for `monitor explain`.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("near", sa.Text),  # JSON; null when the exact layer had already decided
    sa.Column("story", sa.Text, nullable=False),  # JSON
)


# Cluster mode (schema version 6, DESIGN §7): every decision of the dedupe and story layers
# that another node must replay, in the order the decisions were taken. Rows are written in
# the transaction of the decision, under the decision lock, so ids follow commit order.
index_log = sa.Table(
    "index_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # insert | update | moves
)

# An analyst's corrections of the story and tag layers (schema version 7, issue 16): a split
# ("not the same story") keeps the item apart from the members its story had, an untag
# ("wrong topic") keeps one topic off one item. Undone corrections stay, with `undone_at`.
corrections = sa.Table(
    "corrections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # split | untag
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("story_id", sa.Integer),  # split: the story the item was split from
    sa.Column("new_story_id", sa.Integer),  # split: the item's own new story
    sa.Column("topic", sa.String(64)),  # untag: the topic removed
    # split: JSON list of the keys (item URLs, seed file names) of the story's other members,
    # which the item must never share a story with again (a cannot-link constraint).
    sa.Column("apart", sa.Text),
    sa.Column("removed_tag", sa.Text),  # untag: the tag as it was (JSON), restored by undo
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("via", sa.String(8), nullable=False),  # web | cli
    sa.Column("undone_at", UTCDateTime),
    sa.Index("ix_corrections_item", "item_id", "kind"),
)

# The job queue's tables (procrastinate's own schema) on PostgreSQL, when the `cluster` extra
# is installed. Its version follows the installed procrastinate; see `queue_schema_sql`.
QUEUE_TABLE = "procrastinate_jobs"


def queue_schema_sql() -> str | None:
    """procrastinate's schema as SQL, or None when the `cluster` extra is not installed."""
    try:
        from procrastinate.schema import SchemaManager
    except ImportError:
        return None
    return str(SchemaManager.get_schema())


def apply_queue_schema(conn: Connection) -> bool:
    """Create the job queue's tables on PostgreSQL unless they exist; True when created."""
    if conn.dialect.name != "postgresql":
        return False
    if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": QUEUE_TABLE}).scalar() is not None:
        return False
    sql = queue_schema_sql()
    if sql is None:
        return False
    # Through the driver without parameters: the schema has `%` signs and many statements.
    conn.connection.dbapi_connection.cursor().execute(sql)  # type: ignore[union-attr]
    return True


def _create_tables(*names: str) -> Callable[[Connection], None]:
    """A migration that adds whole tables. Tables are never changed in place: a later change
    to one of them is a migration of its own that checks what already exists."""

    def migrate(conn: Connection) -> None:
        metadata.create_all(conn, tables=[metadata.tables[n] for n in names], checkfirst=True)

    return migrate


def _create_index(table: str, name: str) -> Callable[[Connection], None]:
    """A migration that adds an index (stories are looked up by `items.story_id`)."""

    def migrate(conn: Connection) -> None:
        index = next(i for i in metadata.tables[table].indexes if i.name == name)
        index.create(conn, checkfirst=True)

    return migrate


def _add_column(table: str, column: str) -> Callable[[Connection], None]:
    """A migration that adds one nullable column, unless it is already there."""

    def migrate(conn: Connection) -> None:
        if column in {c["name"] for c in sa.inspect(conn).get_columns(table)}:
            return
        col = metadata.tables[table].c[column]
        kind = col.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))

    return migrate


def _steps(*steps: Callable[[Connection], object]) -> Callable[[Connection], None]:
    def migrate(conn: Connection) -> None:
        for step in steps:
            step(conn)

    return migrate


# Upgrades from each stored version to the next: MIGRATIONS[v] takes a database from v to v+1.
# A new database is created at SCHEMA_VERSION directly from `metadata`.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_tables("item_topics", "item_facets"),
    2: _create_tables("digests", "digest_items", "delivery_attempts"),
    3: _steps(
        _create_tables("seeds", "signatures", "decisions"),
        _create_index("items", "ix_items_story_id"),
    ),
    4: _add_column("seeds", "date_source"),
    5: _steps(_create_tables("index_log"), apply_queue_schema),
    6: _create_tables("corrections"),
    7: _add_column("items", "story_part"),
}
