"""Load and validate monitor.toml and the files it names into a frozen Config. I/O: reads files."""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.durations import parse_duration
from monitor.errors import ConfigError, Problem
from monitor.models import HttpConfig, Source
from monitor.resources import default_config_dir, user_cache_dir, user_data_dir
from monitor.sources import parse_sources
from monitor.topics import TopicRules, check_rules

if TYPE_CHECKING:
    from monitor.tag import Taxonomy

SECURITY = ("none", "starttls", "ssl")
FORMATS = ("markdown", "email")
LOG_FORMATS = ("text", "json")
DEFAULT_HOST = "127.0.0.1"  # the pages need no token here (DESIGN §8)


def serving_notes(config: Config) -> list[str]:
    """What `run` and `check-config` should tell about serving the pages (DESIGN §8): bound
    beyond this machine without a token, the daemon runs but its pages stay shut."""
    server = config.server
    if not server.pages_locked:
        return []
    return [
        f"{config.path}: server.host: bound to {server.host!r}, beyond this machine, without "
        "MONITOR_WEB_TOKEN: the pages answer 403 until it is set (or bind 127.0.0.1); "
        "/healthz, /metrics and the signed correction links still answer"
    ]


def is_loopback(host: str) -> bool:
    """Is `host` this machine only (127.0.0.0/8, ::1, localhost)?"""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


@dataclass(frozen=True, slots=True)
class PollConfig:
    backfill: timedelta = timedelta(days=7)
    workers: int = 0  # extraction processes; 0 = one per core
    fast_extraction: bool = True
    backoff_base: timedelta = timedelta(minutes=5)
    backoff_cap: timedelta = timedelta(hours=6)
    max_pages_per_poll: int = 100  # article pages fetched per source per poll
    min_interval: timedelta = timedelta(minutes=1)  # the shortest source interval accepted
    # Sources polled at once (their pages share the HTTP limits); by default [http] concurrency.
    parallel_sources: int = 100
    # New articles decided together, in date order, and stored in one transaction: at most
    # this many, decided as soon as no other article is being fetched or extracted, else
    # after waiting at most `decide_window_ms` for more (1 = each on its own; issue 14).
    decide_batch: int = 2000
    decide_window_ms: int = 300000


@dataclass(frozen=True, slots=True)
class DedupeConfig:
    """In-memory index windows (config `[dedupe]`); everything stays in the store regardless."""

    retention: timedelta = timedelta(days=90)  # near-duplicate index: items first seen since
    story_retention: timedelta = timedelta(days=30)  # story index: items first seen since
    # A story (one event) never spans more than this, first report to last (docs/dedupe.md).
    story_max_span: timedelta = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"
    sender: str = "monitor@localhost"
    timeout: float = 30.0
    username: str | None = field(default=None, repr=False)  # environment only
    password: str | None = field(default=None, repr=False)  # environment only


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The daemon's HTTP endpoint and web pages (config `[server]`, DESIGN §8)."""

    host: str = DEFAULT_HOST
    port: int = 0  # 0: off
    public_url: str | None = None  # base of the links in mailed digests; None: no links
    link_days: int = 30  # a correction link in a digest works this many days
    token: str | None = field(default=None, repr=False)  # MONITOR_WEB_TOKEN (environment only)
    secret: str | None = field(default=None, repr=False)  # MONITOR_SECRET (environment only)

    @property
    def loopback(self) -> bool:
        """Bound to this machine only: pages need no token."""
        return is_loopback(self.host)

    @property
    def pages_locked(self) -> bool:
        """Served beyond this machine without a token: the pages stay shut (403) until one is
        set; `/healthz`, `/metrics` and the signed correction links still answer."""
        return bool(self.port) and not self.loopback and self.token is None


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """`monitor run` (config `[daemon]`)."""

    drain_timeout: timedelta = timedelta(seconds=30)  # SIGTERM: in-flight work gets this long
    outbox_interval: timedelta = timedelta(minutes=1)  # how often the outbox is looked at
    retry_base: timedelta = timedelta(minutes=1)  # first retry delay of a failed delivery
    log_format: str = "text"  # text | json


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Several `monitor run` nodes on one PostgreSQL database (config `[cluster]`, DESIGN §7)."""

    enabled: bool = False
    concurrency: int = 8  # jobs this node's worker runs at once
    heartbeat: timedelta = timedelta(seconds=10)  # how often a worker says it is alive
    stalled_after: timedelta = timedelta(seconds=30)  # silent this long: its jobs go elsewhere


@dataclass(frozen=True, slots=True)
class DigestConfig:
    name: str
    schedule: str = "0 7 * * *"
    timezone: str = "UTC"
    recipients: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("markdown",)
    output_dir: Path | None = None
    send_empty: bool = False
    topics: tuple[str, ...] = ()
    min_score: float = 0.0
    templates_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # the monitor.toml that was read
    storage_url: str
    sources_file: Path
    sources: tuple[Source, ...]
    topics_file: Path
    corpus_dir: Path
    data_dir: Path
    rules: TopicRules  # `taxonomy` parses them when first asked for
    poll: PollConfig = field(default_factory=PollConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    digests: tuple[DigestConfig, ...] = ()
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    @property
    def taxonomy(self) -> Taxonomy:
        return self.rules.taxonomy

    def source(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)


def find_config(explicit: str | None, env: Mapping[str, str], cwd: Path) -> Path:
    """--config, then MONITOR_CONFIG, then ./config/monitor.toml, then the packaged default."""
    if explicit:
        return Path(explicit).expanduser()
    if env.get("MONITOR_CONFIG"):
        return Path(env["MONITOR_CONFIG"]).expanduser()
    local = cwd / "config" / "monitor.toml"
    if local.is_file():
        return local
    return default_config_dir() / "monitor.toml"


def load_config(path: Path, env: Mapping[str, str]) -> Config:
    """Read and validate `path` and the files it names; ConfigError lists every problem."""
    file = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([Problem(file, "(file)", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(file, "(file)", f"cannot read: {exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(file, "(syntax)", str(exc))]) from exc
    return _Reader(path, env).read(data)


class _Reader:
    """Walks the parsed TOML once, collecting every problem before giving up."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.base = path.parent
        self.env = env
        self.file = str(path)
        self.problems: list[Problem] = []

    def problem(self, key: str, reason: str) -> None:
        self.problems.append(Problem(self.file, key, reason))

    def read(self, data: dict[str, Any]) -> Config:
        sections: dict[str, Callable[[Any], Any]] = {
            "storage": self._table,
            "sources": self._table,
            "topics": self._table,
            "corpus": self._table,
            "poll": self._table,
            "dedupe": self._table,
            "http": self._table,
            "smtp": self._table,
            "server": self._table,
            "daemon": self._table,
            "cluster": self._table,
            "digests": self._array,
        }
        self._unknown(data, sections, "")
        data_dir = user_data_dir(self.env)
        storage = self._section(data, "storage", {"url": str})
        storage_url = self.env.get("MONITOR_STORAGE_URL") or storage.get("url")
        if storage_url is None:
            storage_url = f"sqlite:///{data_dir / 'monitor.db'}"
        else:
            storage_url = self._resolve_sqlite(storage_url)

        poll = self._poll(data)
        sources_sec = self._section(data, "sources", {"file": str})
        sources_file = self.base / sources_sec.get("file", "sources.toml")
        sources = self._load_sources(sources_file, poll.min_interval)
        topics_sec = self._section(data, "topics", {"file": str})
        topics_file = self.base / topics_sec.get("file", "topics.toml")
        rules = self._load_rules(topics_file, user_cache_dir(self.env))
        corpus_sec = self._section(data, "corpus", {"dir": str})
        corpus_dir = self.base / corpus_sec.get("dir", "corpus")
        if "dir" in corpus_sec and not corpus_dir.is_dir():
            self.problem("corpus.dir", f"{corpus_dir} is not a directory")

        dedupe = self._dedupe(data)
        http = self._http(data)
        poll_sec = data.get("poll")
        if not isinstance(poll_sec, Mapping) or "parallel_sources" not in poll_sec:
            # As many sources in flight as requests: fewer would leave connections idle.
            poll = replace(poll, parallel_sources=http.concurrency)
        smtp = self._smtp(data)
        server = self._server(data)
        daemon = self._daemon(data)
        digests = self._digests(data, data_dir)
        cluster = self._cluster(data, storage_url)
        if self.problems or rules is None:  # no rules always come with a problem
            raise ConfigError(self.problems)
        return Config(
            path=self.path,
            storage_url=storage_url,
            sources_file=sources_file,
            sources=tuple(sources),
            topics_file=topics_file,
            corpus_dir=corpus_dir,
            data_dir=data_dir,
            rules=rules,
            poll=poll,
            dedupe=dedupe,
            http=http,
            smtp=smtp,
            server=server,
            daemon=daemon,
            digests=digests,
            cluster=cluster,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _table(self, value: Any) -> Any:
        return value

    def _array(self, value: Any) -> Any:
        return value

    def _unknown(self, table: Mapping[str, Any], known: Mapping[str, Any], prefix: str) -> None:
        for key in table:
            if key not in known:
                hint = difflib.get_close_matches(key, list(known), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                self.problem(f"{prefix}{key}", f"unknown key{extra}")

    def _section(
        self, data: Mapping[str, Any], name: str, spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            self.problem(name, "must be a table")
            return {}
        return self._typed(raw, spec, f"{name}.")

    def _typed(
        self, raw: Mapping[str, Any], spec: Mapping[str, Any], prefix: str
    ) -> dict[str, Any]:
        self._unknown(raw, spec, prefix)
        out: dict[str, Any] = {}
        for key, kind in spec.items():
            if key not in raw:
                continue
            value = raw[key]
            if kind == "duration":
                try:
                    if not isinstance(value, str):
                        raise ValueError(f"{value!r} is not a duration string like '30m'")
                    out[key] = parse_duration(value)
                except ValueError as exc:
                    self.problem(prefix + key, str(exc))
                continue
            ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok:
                names = {
                    str: "a string",
                    int: "an integer",
                    float: "a number",
                    bool: "true or false",
                    list: "an array",
                }
                self.problem(prefix + key, f"must be {names.get(kind, kind)}, got {value!r}")
                continue
            out[key] = value
        return out

    def _resolve_sqlite(self, url: str) -> str:
        # DESIGN §4: relative paths are relative to the file that names them.
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str((self.base / rest).resolve())
        if not url.split(":", 1)[0].startswith(("sqlite", "postgresql")):
            self.problem("storage.url", f"unsupported database URL {url!r} (sqlite or postgresql)")
        return url

    def _load_sources(self, path: Path, min_interval: timedelta) -> list[Source]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.problem("sources.file", f"cannot read {path}: {exc.strerror or exc}")
            return []
        try:
            return parse_sources(text, file=str(path), min_interval=min_interval)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return []

    def _load_rules(self, path: Path, cache_dir: Path) -> TopicRules | None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.problem("topics.file", f"cannot read {path}: {exc.strerror or exc}")
            return None
        try:
            return check_rules(path, text, cache_dir)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None

    def _positive(self, values: Mapping[str, Any], prefix: str, *keys: str) -> None:
        for key in keys:
            value = values.get(key)
            if value is not None and value <= 0:
                self.problem(prefix + key, f"must be greater than zero, got {value!r}")

    def _poll(self, data: Mapping[str, Any]) -> PollConfig:
        spec = {
            "backfill": "duration",
            "workers": int,
            "fast_extraction": bool,
            "backoff_base": "duration",
            "backoff_cap": "duration",
            "max_pages_per_poll": int,
            "min_interval": "duration",
            "parallel_sources": int,
            "decide_batch": int,
            "decide_window_ms": int,
        }
        values = self._section(data, "poll", spec)
        self._positive(values, "poll.", "parallel_sources")
        self._positive(values, "poll.", "decide_batch")
        if values.get("decide_window_ms", 0) < 0:
            self.problem("poll.decide_window_ms", "must be 0 or more")
        if "min_interval" in values and values["min_interval"] < timedelta(seconds=1):
            self.problem("poll.min_interval", "must be at least 1s")
        self._positive(values, "poll.", "max_pages_per_poll")
        if values.get("workers", 0) < 0:
            self.problem("poll.workers", "must be 0 (one per core) or more")
        return PollConfig(**values)

    def _dedupe(self, data: Mapping[str, Any]) -> DedupeConfig:
        spec = {
            "retention": "duration",
            "story_retention": "duration",
            "story_max_span": "duration",
        }
        values = self._section(data, "dedupe", spec)
        for key, value in values.items():
            if value <= timedelta(0):
                self.problem(f"dedupe.{key}", "must be longer than zero")
        span = values.get("story_max_span")
        if span is not None and span > timedelta(days=30):
            self.problem("dedupe.story_max_span", "must be 30 days or less: a story is one event")
        return DedupeConfig(**values)

    def _http(self, data: Mapping[str, Any]) -> HttpConfig:
        spec = {
            "user_agent": str,
            "timeout": float,
            "deadline": float,
            "max_bytes": int,
            "max_redirects": int,
            "per_host": int,
            "concurrency": int,
        }
        values = self._section(data, "http", spec)
        self._positive(
            values, "http.", "timeout", "deadline", "max_bytes", "per_host", "concurrency"
        )
        if values.get("max_redirects", 0) < 0:
            self.problem("http.max_redirects", "must be 0 or more")
        return HttpConfig(**values)

    def _smtp(self, data: Mapping[str, Any]) -> SmtpConfig:
        spec = {"host": str, "port": int, "security": str, "sender": str, "timeout": float}
        values = self._section(data, "smtp", spec)
        if values.get("security", "none") not in SECURITY:
            self.problem("smtp.security", f"must be one of {SECURITY}, got {values['security']!r}")
        if "port" in values and not 0 < values["port"] < 65536:
            self.problem("smtp.port", f"must be a TCP port, got {values['port']}")
        for secret in ("username", "password"):
            if secret in data.get("smtp", {}):
                self.problem(
                    f"smtp.{secret}", f"secrets come only from MONITOR_SMTP_{secret.upper()}"
                )
        return SmtpConfig(
            **values,
            username=self.env.get("MONITOR_SMTP_USERNAME") or None,
            password=self.env.get("MONITOR_SMTP_PASSWORD") or None,
        )

    def _server(self, data: Mapping[str, Any]) -> ServerConfig:
        spec = {"host": str, "port": int, "public_url": str, "link_days": int}
        values = self._section(data, "server", spec)
        # A container sets these without a config file of its own (see the Dockerfile).
        if self.env.get("MONITOR_SERVER_HOST"):
            values["host"] = self.env["MONITOR_SERVER_HOST"]
        if self.env.get("MONITOR_SERVER_PORT"):
            try:
                values["port"] = int(self.env["MONITOR_SERVER_PORT"])
            except ValueError:
                self.problem("server.port", "MONITOR_SERVER_PORT is not a number")
        if "port" in values and not 0 <= values["port"] < 65536:
            self.problem("server.port", f"must be a TCP port or 0 (off), got {values['port']}")
        if "public_url" in values:
            values["public_url"] = self._public_url(values["public_url"])
        if "link_days" in values and not 1 <= values["link_days"] <= 366:
            self.problem("server.link_days", f"must be 1 to 366 days, got {values['link_days']}")
        token = self.env.get("MONITOR_WEB_TOKEN") or None
        if token is not None and len(token) < 16:
            self.problem("server.host", "MONITOR_WEB_TOKEN must be at least 16 characters")
        return ServerConfig(**values, token=token, secret=self.env.get("MONITOR_SECRET") or None)

    def _public_url(self, value: str) -> str | None:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem("server.public_url", f"must be an http(s) URL, got {value!r}")
            return None
        if parts.query or parts.fragment or parts.username or parts.password:
            self.problem(
                "server.public_url", f"must not carry a query, fragment or user: {value!r}"
            )
            return None
        return value.strip().rstrip("/")

    def _daemon(self, data: Mapping[str, Any]) -> DaemonConfig:
        spec = {
            "drain_timeout": "duration",
            "outbox_interval": "duration",
            "retry_base": "duration",
            "log_format": str,
        }
        values = self._section(data, "daemon", spec)
        for key in ("drain_timeout", "outbox_interval", "retry_base"):
            if key in values and values[key] <= timedelta(0):
                self.problem(f"daemon.{key}", "must be longer than zero")
        if values.get("log_format", "text") not in LOG_FORMATS:
            self.problem(
                "daemon.log_format", f"must be one of {LOG_FORMATS}, got {values['log_format']!r}"
            )
        return DaemonConfig(**values)

    def _cluster(self, data: Mapping[str, Any], storage_url: str) -> ClusterConfig:
        spec = {
            "enabled": bool,
            "concurrency": int,
            "heartbeat": "duration",
            "stalled_after": "duration",
        }
        values = self._section(data, "cluster", spec)
        if values.get("enabled") and not storage_url.startswith("postgresql"):
            self.problem(
                "cluster.enabled",
                "cluster mode needs a PostgreSQL [storage] url: the nodes share its job queue "
                "and its advisory locks, which SQLite does not have",
            )
        if values.get("enabled") and importlib.util.find_spec("procrastinate") is None:
            self.problem(
                "cluster.enabled",
                "cluster mode needs the job queue of the `cluster` extra: "
                "pip install 'monitor[postgres,cluster]'",
            )
        if "concurrency" in values and values["concurrency"] < 1:
            self.problem("cluster.concurrency", "must be at least 1")
        for key in ("heartbeat", "stalled_after"):
            if key in values and values[key] <= timedelta(0):
                self.problem(f"cluster.{key}", "must be longer than zero")
        cluster = ClusterConfig(**values)
        if cluster.stalled_after < 2 * cluster.heartbeat:
            self.problem(
                "cluster.stalled_after",
                "must be at least twice the heartbeat, or a slow node is taken for a dead one",
            )
        return cluster

    def _digests(self, data: Mapping[str, Any], data_dir: Path) -> tuple[DigestConfig, ...]:
        raw = data.get("digests", [])
        if not isinstance(raw, list):
            self.problem("digests", "must be an array of tables: [[digests]]")
            return ()
        spec = {
            "name": str,
            "schedule": str,
            "timezone": str,
            "recipients": list,
            "formats": list,
            "output_dir": str,
            "send_empty": bool,
            "topics": list,
            "min_score": float,
            "templates_dir": str,
        }
        out: list[DigestConfig] = []
        names: set[str] = set()
        for index, entry in enumerate(raw):
            label = f"digests[{index}]"
            if not isinstance(entry, dict):
                self.problem(label, "must be a table")
                continue
            if isinstance(entry.get("name"), str):
                label = f"digests[{index}] ({entry['name']})"
            before = len(self.problems)
            values = self._typed(entry, spec, f"{label}.")
            name = values.get("name")
            if not name:
                self.problem(f"{label}.name", "required: a non-empty string")
            elif name in names:
                self.problem(f"{label}.name", "duplicate digest name")
            names.add(name or "")
            self._check_schedule(values, label)
            for key in ("recipients", "formats", "topics"):
                if key in values and not all(isinstance(v, str) for v in values[key]):
                    self.problem(f"{label}.{key}", "must be an array of strings")
            for fmt in values.get("formats", []):
                if fmt not in FORMATS:
                    self.problem(f"{label}.formats", f"unknown format {fmt!r} (known: {FORMATS})")
            if "email" in values.get("formats", []) and not values.get("recipients"):
                self.problem(f"{label}.recipients", "format 'email' needs at least one recipient")
            if len(self.problems) > before or not name:
                continue
            output_dir = (
                self.base / values["output_dir"] if "output_dir" in values else data_dir / "digests"
            )
            templates_dir = (
                self.base / values["templates_dir"] if "templates_dir" in values else None
            )
            if templates_dir is not None and not templates_dir.is_dir():
                self.problem(f"{label}.templates_dir", f"{templates_dir} is not a directory")
            out.append(
                DigestConfig(
                    name=name,
                    schedule=values.get("schedule", "0 7 * * *"),
                    timezone=values.get("timezone", "UTC"),
                    recipients=tuple(values.get("recipients", ())),
                    formats=tuple(values.get("formats", ("markdown",))),
                    output_dir=output_dir,
                    send_empty=values.get("send_empty", False),
                    topics=tuple(values.get("topics", ())),
                    min_score=values.get("min_score", 0.0),
                    templates_dir=templates_dir,
                )
            )
        return tuple(out)

    def _check_schedule(self, values: Mapping[str, Any], label: str) -> None:
        timezone = values.get("timezone", "UTC")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(f"{label}.timezone", f"unknown IANA time zone {timezone!r}")
            return
        schedule = values.get("schedule")
        if schedule is None:
            return
        from monitor.schedule import cron_trigger  # APScheduler: only with a digest

        try:
            cron_trigger(schedule, timezone)
        except ValueError as exc:
            self.problem(f"{label}.schedule", f"not a cron expression ({exc}): {schedule!r}")
