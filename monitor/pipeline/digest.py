"""Digests: store.window | digest | deliver | store.mark_sent. I/O: database, files, SMTP."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from monitor.backoff import backoff_delay
from monitor.config import Config, DigestConfig
from monitor.deliver import PartialDeliveryError, send_message, write_archive
from monitor.digest import (
    DigestInput,
    RenderedDigest,
    build_digest,
    make_environment,
    render_digest,
)
from monitor.errors import DeliveryError
from monitor.message import build_message, domain_of, message_id_for
from monitor.resources import default_templates_dir
from monitor.store import DigestRecord, Store
from monitor.web.links import LinkMaker
from monitor.web.secret import load_secret

log = logging.getLogger("monitor.digest")

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
    short = {t.id: t.short for t in config.taxonomy.topics if t.short}
    # A new item in the same story as a seed is a follow-up of a known story (DESIGN §2).
    story_seeds = {
        sid: info.seed_refs for sid, info in store.story_info(story_ids).items() if info.seed_refs
    }
    return DigestInput(
        name=digest.name,
        window_start=window.start,
        window_end=window.end,
        timezone=digest.timezone,
        generated_at=now,
        items=new,
        suppressed=suppressed,
        stories=store.story_members(story_ids),
        seed_titles={**store.seed_titles(), **(seed_titles or {})},
        story_seed_refs=story_seeds,
        health=store.failures_between(window.start, window.end),
        topic_order=config.taxonomy.topic_ids,
        topic_labels=labels,
        topic_short=short,
        min_score=digest.min_score,
        topics=digest.topics,
        links=digest_links(config, now),
    )


def digest_links(config: Config, now: datetime) -> LinkMaker | None:
    """With `[server] public_url`, the links a digest carries to the pages and the signed
    corrections (valid `link_days` from `now`); None without it."""
    server = config.server
    if server.public_url is None:
        return None
    secret = load_secret(server.secret, config.data_dir)
    return LinkMaker(server.public_url, secret, now + timedelta(days=server.link_days))


def render(digest: DigestConfig, inp: DigestInput) -> RenderedDigest:
    env = make_environment(digest.templates_dir, default_templates_dir())
    return render_digest(build_digest(inp), env)


# -- sending through the outbox -----------------------------------------------------------------

RETRY_CAP = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What `send_digest` did: `sent`, `already_sent`, `empty` (nothing new, not mailed) or
    `pending` (a channel failed; the outbox retries at `record.next_attempt_at`)."""

    record: DigestRecord
    status: Literal["sent", "already_sent", "empty", "pending"]
    errors: tuple[DeliveryError, ...] = ()


def send_digest(
    store: Store,
    config: Config,
    digest: DigestConfig,
    window: Window,
    *,
    now: datetime,
    ssl_context: ssl.SSLContext | None = None,
    seed_titles: Mapping[str, str] | None = None,
) -> SendOutcome:
    """Render the window once, store it in the outbox, then deliver it. The same (name,
    window) is never rendered or sent twice; a retry reuses the stored rendering and its
    Message-ID."""
    staged = stage_digest(store, config, digest, window, now=now, seed_titles=seed_titles)
    if isinstance(staged, SendOutcome):
        return staged
    return deliver(store, config, digest, staged, now=now, ssl_context=ssl_context)


def stage_digest(
    store: Store,
    config: Config,
    digest: DigestConfig,
    window: Window,
    *,
    now: datetime,
    seed_titles: Mapping[str, str] | None = None,
) -> DigestRecord | SendOutcome:
    """The outbox record of (name, window), rendered and stored now if it is not there yet;
    a SendOutcome when there is nothing to deliver (already sent, or empty)."""
    record = store.find_digest(digest.name, window.start, window.end)
    if record is not None and record.status != "pending":
        return SendOutcome(record, "already_sent" if record.status == "sent" else "empty")
    if record is not None:
        return record
    inp = collect(store, config, digest, window, for_sending=True, now=now, seed_titles=seed_titles)
    rendered = render(digest, inp)
    empty = not inp.items and not digest.send_empty
    record = store.create_digest(
        name=digest.name,
        window_start=window.start,
        window_end=window.end,
        message_id=message_id_for(
            digest.name, window.start, window.end, domain=domain_of(config.smtp.sender)
        ),
        subject=rendered.subject,
        markdown=rendered.markdown,
        html=rendered.html,
        text=rendered.text,
        item_ids=[i.id for i in inp.items],
        status="empty" if empty else "pending",
        now=now,
    )
    if empty:
        return SendOutcome(record, "empty")
    return record


def deliver(
    store: Store,
    config: Config,
    digest: DigestConfig,
    record: DigestRecord,
    *,
    now: datetime,
    ssl_context: ssl.SSLContext | None = None,
) -> SendOutcome:
    """Deliver a stored digest on every configured channel; mark it sent only when all worked."""
    errors: list[DeliveryError] = []
    rendered = RenderedDigest(record.subject, record.markdown, record.html, record.text)
    for channel in digest.formats:
        try:
            if channel == "markdown":
                assert digest.output_dir is not None
                day = record.window_end.astimezone(ZoneInfo(digest.timezone)).date()
                write_archive(digest.output_dir, digest.name, day, record.markdown)
            else:
                message = build_message(
                    rendered,
                    sender=config.smtp.sender,
                    recipients=digest.recipients,
                    message_id=record.message_id,
                    date=record.created_at,
                    unsubscribe=f"mailto:{config.smtp.sender}?subject=unsubscribe%20{digest.name}",
                )
                send_message(message, config.smtp, ssl_context=ssl_context)
        except PartialDeliveryError as exc:
            # Delivered to the accepted recipients: retrying would send it to them twice.
            store.record_attempt(record.id, channel=channel, ok=True, error=str(exc), now=now)
            log.error("digest_partial name=%s error=%s", digest.name, exc)
            continue
        except DeliveryError as exc:
            errors.append(exc)
            store.record_attempt(
                record.id,
                channel=channel,
                ok=False,
                error=f"{'temporary' if exc.temporary else 'permanent'}: {exc}",
                now=now,
                next_attempt_at=now
                + _retry_delay(record.attempts + 1, exc, config.daemon.retry_base),
            )
            log.warning("digest_failed name=%s channel=%s error=%s", digest.name, channel, exc)
            continue
        store.record_attempt(record.id, channel=channel, ok=True, error=None, now=now)
    if errors:
        again = store.find_digest(digest.name, record.window_start, record.window_end)
        return SendOutcome(again or record, "pending", tuple(errors))
    store.mark_sent(record.id, now)
    sent = store.find_digest(digest.name, record.window_start, record.window_end)
    log.info("digest_sent name=%s message_id=%s", digest.name, record.message_id)
    return SendOutcome(sent or record, "sent")


def deliver_due(
    store: Store,
    config: Config,
    now: datetime,
    *,
    everything: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> list[SendOutcome]:
    """Retry every pending digest whose next attempt is due (the outbox); `everything` retries
    all pending ones now (an operator asked)."""
    by_name = {d.name: d for d in config.digests}
    outcomes = []
    for record in store.due_digests(None if everything else now):
        digest = by_name.get(record.name)
        if digest is None:
            log.warning("digest_orphan name=%s: no longer configured; left pending", record.name)
            continue
        outcomes.append(deliver(store, config, digest, record, now=now, ssl_context=ssl_context))
    return outcomes


def _retry_delay(attempts: int, exc: DeliveryError, base: timedelta) -> timedelta:
    # A permanent error (bad password, refused sender) needs the operator; still retry, slowly.
    if not exc.temporary:
        return RETRY_CAP
    return backoff_delay(attempts, base=base, cap=max(RETRY_CAP, base), rand=0.5)
