"""The web pages of DESIGN §8: digest archive, digests, stories, items, sources, Atom, login
and the signed corrections. I/O: database (through the views and the corrections API).

Each handler takes a parsed `Request` and returns a `Response`; the server runs them off the
event loop. Pages are jinja2 templates with autoescape and no script; the data comes from
`monitor.views`, the same functions the command line prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
import markupsafe

from monitor.config import Config
from monitor.digest.model import format_datetime
from monitor.digest.text import neutral, safe_url
from monitor.durations import iso
from monitor.errors import CorrectionError
from monitor.models import rank_tags
from monitor.pipeline.corrections import remove_tag, split_item
from monitor.server import (
    COOKIE,
    Endpoint,
    Request,
    Response,
    Route,
    session_value,
    token_matches,
)
from monitor.store import Store
from monitor.views import explain_item, source_health, story_page
from monitor.web.links import LinkMaker
from monitor.web.sign import LinkClaim, LinkError, verify_link

HTML = "text/html; charset=utf-8"
ATOM_ITEMS = 50
# The stored email: its <head> gets the served stylesheet (inline <style> is refused by the
# pages' CSP), its <body> a bar linking back to the archive.
_HEAD = re.compile(r"<head>", re.IGNORECASE)
_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a recorded correction did, for the result page."""

    message: str
    item_id: int
    story_id: int | None


# A correction: the verified claim and the store -> what it did. Raises CorrectionError
# naming the item or topic when it cannot be done.
Corrector = Callable[[Store, LinkClaim], Outcome]


def record_correction(store: Store, claim: LinkClaim) -> Outcome:
    """Record what a signed link asks for through the corrections API (DESIGN §8)."""
    if claim.action == "split":
        done = split_item(store, claim.item_id, via="web")
        return Outcome(
            f"Recorded: item {done.item_id} is not the same story as story {done.story_id}. "
            f"It now has story {done.new_story_id} of its own; story {done.story_id} keeps "
            "the other reports, and the item will not be grouped with them again.",
            done.item_id,
            done.new_story_id,
        )
    if claim.action == "untag":
        done = remove_tag(store, claim.item_id, claim.topic, via="web")
        item = store.get_item(str(done.item_id))
        return Outcome(
            f"Recorded: the topic {done.topic!r} is removed from item {done.item_id}, and "
            "re-tagging keeps it removed.",
            done.item_id,
            item.story_id if item is not None else None,
        )
    raise CorrectionError(f"item {claim.item_id}: {claim.action!r} is not a correction")


def make_environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir / "web"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "atom.j2"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Every string a page shows: no bidi overrides or control characters (DESIGN §5).
        finalize=_neutral,
    )
    env.filters["iso"] = iso
    env.filters["url"] = safe_url
    return env


def _neutral(value: Any) -> Any:
    if isinstance(value, markupsafe.Markup):  # already escaped: removing controls keeps it so
        return markupsafe.Markup(neutral(str(value)))
    return neutral(value) if isinstance(value, str) else value


class Pages:
    """The routes of the web pages over one store; `config` gives the current config (the
    daemon's changes on reload)."""

    def __init__(
        self,
        config: Callable[[], Config],
        store: Store,
        secret: bytes,
        *,
        clock: Callable[[], datetime],
        correct: Corrector = record_correction,
        templates_dir: Path,
    ) -> None:
        self._config = config
        self.store = store
        self.secret = secret
        self.clock = clock
        self.correct = correct
        self.env = make_environment(templates_dir)
        self.stylesheet = (templates_dir / "digest.css").read_bytes() + (
            templates_dir / "web" / "web.css"
        ).read_bytes()

    @property
    def config(self) -> Config:
        return self._config()

    def endpoint(self, *routes: Route) -> Endpoint:
        """An endpoint serving `routes` and the pages, with the access rules of `[server]`:
        a token beyond loopback, every page shut when it is missing there."""
        server = self.config.server
        return Endpoint(
            [*routes, *self.routes()],
            token=None if server.loopback else server.token,
            locked=server.pages_locked,
            denied=self.denied,
        )

    def routes(self) -> list[Route]:
        page = ("GET",)
        return [
            Route("/", self.archive, page, blocking=True),
            Route("/digests/{id}", self.digest, page, blocking=True),
            Route("/digests.atom", self.atom, page, blocking=True),
            Route("/stories/{id}", self.story, page, blocking=True),
            Route("/items/{id}", self.item, page, blocking=True),
            Route("/sources", self.sources, page, blocking=True),
            Route("/static/style.css", self.css, page, public=True),
            Route("/login", self.login, ("GET", "POST"), public=True),
            Route("/fix/{token}", self.confirm, page, blocking=True, public=True),
            Route("/fix", self.apply, ("POST",), blocking=True, public=True),
        ]

    # -- rendering -------------------------------------------------------------------------------

    def _page(self, template: str, status: int = 200, **context: Any) -> Response:
        body = self.env.get_template(template).render(**context).encode("utf-8")
        return Response(status, body, HTML)

    def _error(self, status: int, message: str) -> Response:
        return self._page("error.html.j2", status, title=f"{status}", message=message)

    def _when(self, value: datetime | None) -> str:
        if value is None:
            return "unknown"
        return format_datetime(value, self._tz())

    def _tz(self) -> ZoneInfo:
        zone = self.config.digests[0].timezone if self.config.digests else "UTC"
        return ZoneInfo(zone)

    def links(self, expires: datetime | None = None) -> LinkMaker:
        """Links within the pages (relative), signed until `expires` (default: link_days)."""
        until = expires or self.clock() + timedelta(days=self.config.server.link_days)
        return LinkMaker("", self.secret, until)

    # -- pages -----------------------------------------------------------------------------------

    def archive(self, _request: Request) -> Response:
        digests = self.store.list_digests()
        return self._page("archive.html.j2", title="Digests", digests=digests, when=self._when)

    def digest(self, request: Request) -> Response:
        number = _number(request.params["id"])
        record = None if number is None else self.store.get_digest(number)
        if record is None:
            return self._error(404, f"no digest {request.params['id']!r}")
        bar = self.env.get_template("_bar.html.j2").render(title=record.subject)
        html = _HEAD.sub('<head>\n<link rel="stylesheet" href="/static/style.css">', record.html, 1)
        html = _BODY.sub(lambda m: m.group(0) + bar, html, 1)
        return Response(200, html.encode("utf-8"), HTML)

    def atom(self, request: Request) -> Response:
        base = self._base(request)
        digests = [d for d in self.store.list_digests(limit=ATOM_ITEMS) if d.status == "sent"]
        updated = max((d.sent_at or d.created_at for d in digests), default=self.clock())
        body = self.env.get_template("digests.atom.j2").render(
            base=base, digests=digests, updated=updated
        )
        return Response(200, body.encode("utf-8"), "application/atom+xml; charset=utf-8")

    def story(self, request: Request) -> Response:
        number = _number(request.params["id"])
        found = None if number is None else story_page(self.store, number)
        if found is None:
            return self._error(404, f"no story {request.params['id']!r}")
        links = self.links()
        multi = len(found.members) > 1
        actions = {
            m.item.id: links.actions(m.item.id, multi_report=multi, tagged=bool(m.item.topics))
            for m in found.members
        }
        return self._page(
            "story.html.j2",
            title=f"Story {found.id}",
            story=found,
            actions=actions,
            when=self._when,
        )

    def item(self, request: Request) -> Response:
        number = _number(request.params["id"])
        item = None if number is None else self.store.get_item(str(number))
        if item is None:
            return self._error(404, f"no item {request.params['id']!r}")
        explanation = explain_item(self.store, self.config, item)
        multi = False
        if item.story_id is not None:
            info = self.store.story_info([item.story_id]).get(item.story_id)
            multi = info is not None and info.size > 1
        actions = self.links().actions(item.id, multi_report=multi, tagged=bool(item.topics))
        return self._page(
            "item.html.j2",
            title=f"Item {item.id}",
            e=explanation,
            item=item,
            actions=actions,
            when=self._when,
        )

    def sources(self, _request: Request) -> Response:
        health = source_health(self.store, self.config)
        return self._page("sources.html.j2", title="Sources", health=health, when=self._when)

    def css(self, _request: Request) -> Response:
        return Response(200, self.stylesheet, "text/css; charset=utf-8")

    # -- login -----------------------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        token = self.config.server.token
        if self.config.server.pages_locked:
            return self.denied(request)
        if request.method != "POST":
            return self._page("login.html.j2", title="Log in", failed=False, needed=bool(token))
        if not self._same_origin(request):
            return self._error(403, "the form came from another site")
        given = request.form().get("token", "")
        if token is None:
            return self._redirect("/")
        if not token_matches(given, token):
            return self._page("login.html.j2", 403, title="Log in", failed=True, needed=True)
        secure = "; Secure" if (self.config.server.public_url or "").startswith("https:") else ""
        cookie = f"{COOKIE}={session_value(token)}; Path=/; HttpOnly; SameSite=Strict{secure}"
        return self._redirect("/", (("Set-Cookie", cookie),))

    def denied(self, _request: Request) -> Response:
        if self.config.server.pages_locked:
            return self._page("login.html.j2", 403, title="Pages shut", locked=True)
        return self._page("login.html.j2", 403, title="Log in", failed=False, needed=True)

    def _redirect(self, to: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        return Response(303, b"", HTML, (("Location", to), *headers))

    # -- corrections -----------------------------------------------------------------------------

    def confirm(self, request: Request) -> Response:
        """GET of a signed link: a confirmation page with a POST form, nothing changed (mail
        scanners fetch links)."""
        token = request.params["token"]
        claim = self._claim(token)
        if isinstance(claim, Response):
            return claim
        item = self.store.get_item(str(claim.item_id))
        if item is None:
            return self._error(404, f"no item {claim.item_id}")
        links = self.links(claim.expires)
        names = {t.id: t.label for t in self.config.taxonomy.topics}
        choices = [
            (names.get(t.id, t.id), t.id, links.fix(item.id, "untag", t.id).rsplit("/", 1)[1])
            for t in rank_tags(item.topics)
        ]
        return self._page(
            "confirm.html.j2",
            title="Confirm a correction",
            claim=claim,
            item=item,
            token=token,
            choices=choices,
            topic_name=names.get(claim.topic, claim.topic),
        )

    def apply(self, request: Request) -> Response:
        """POST of the confirmation form: the signed token is the form's proof."""
        if not self._same_origin(request):
            return self._error(403, "the form came from another site; nothing was changed")
        claim = self._claim(request.form().get("token", ""))
        if isinstance(claim, Response):
            return claim
        if claim.action == "topics":
            return self._error(400, "choose a topic to remove on the previous page")
        try:
            outcome = self.correct(self.store, claim)
        except CorrectionError as exc:
            return self._error(400, f"{exc}; nothing was changed")
        return self._page("done.html.j2", title="Correction recorded", outcome=outcome)

    def _claim(self, token: str) -> LinkClaim | Response:
        try:
            return verify_link(self.secret, token, now=self.clock())
        except LinkError as exc:
            return self._error(403, f"{exc}: this link cannot be used; nothing was changed")

    def _same_origin(self, request: Request) -> bool:
        """A browser's Origin, when sent, is this server (its Host) or the public URL."""
        origin = request.headers.get("origin")
        if origin is None:
            return True
        allowed = {f"http://{request.headers.get('host', '')}"}
        allowed.add(f"https://{request.headers.get('host', '')}")
        public = self.config.server.public_url
        if public:
            parts = urlsplit(public)
            allowed.add(f"{parts.scheme}://{parts.netloc}")
        return origin in allowed

    def _base(self, request: Request) -> str:
        public = self.config.server.public_url
        if public:
            return public
        host = request.headers.get("host", "")
        return f"http://{host}" if re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,255}", host) else ""


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 12 else None
