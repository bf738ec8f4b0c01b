"""Digests: store.window | digest | deliver | store.mark_sent. I/O: database, files, SMTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import Config, DigestConfig
from monitor.digest import (
    DigestInput,
    RenderedDigest,
    build_digest,
    make_environment,
    render_digest,
)
from monitor.resources import default_templates_dir
from monitor.store import Store

DEFAULT_FIRST_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def next_window(store: Store, name: str, now: datetime) -> Window:
    """Since the last recorded digest of this name (or the last 24 hours the first time)."""
    start = store.last_window_end(name) or now - DEFAULT_FIRST_WINDOW
    return Window(min(start, now), now)


def collect(
    store: Store,
    config: Config,
    digest: DigestConfig,
    window: Window,
    *,
    for_sending: bool,
    now: datetime,
    seed_titles: Mapping[str, str] | None = None,
) -> DigestInput:
    """Everything a digest of `window` shows. For sending, items that an earlier digest of the
    same name carried are left out; a preview shows every item of the window."""
    new = [
        item
        for item in store.list_items(
            since=window.start,
            until=window.end,
            statuses=["new"],
            not_in_digest=digest.name if for_sending else None,
        )
        if not item.baseline
    ]
    suppressed = [
        item
        for item in store.list_items(
            since=window.start, until=window.end, statuses=["known", "duplicate"]
        )
        if not item.baseline
    ]
    story_ids = sorted({i.story_id for i in new if i.story_id is not None})
    labels = {t.id: t.label for t in config.taxonomy.topics}
    return DigestInput(
        name=digest.name,
        window_start=window.start,
        window_end=window.end,
        timezone=digest.timezone,
        generated_at=now,
        items=new,
        suppressed=suppressed,
        stories=store.story_members(story_ids),
        seed_titles=dict(seed_titles or {}),
        story_seed_refs={},
        health=store.failures_between(window.start, window.end),
        topic_order=config.taxonomy.topic_ids,
        topic_labels=labels,
        min_score=digest.min_score,
        topics=digest.topics,
    )


def render(digest: DigestConfig, inp: DigestInput) -> RenderedDigest:
    env = make_environment(digest.templates_dir, default_templates_dir())
    return render_digest(build_digest(inp), env)
