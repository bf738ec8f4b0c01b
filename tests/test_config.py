"""Config loading and validation: every problem is listed with its file, key and reason."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import find_config, load_config
from monitor.errors import ConfigError
from monitor.resources import default_config_dir

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def write(tmp_path: Path, monitor: str, sources: str | None = None) -> Path:
    (tmp_path / "topics.toml").write_text((CONFIG_DIR / "topics.toml").read_text("utf-8"), "utf-8")
    (tmp_path / "sources.toml").write_text(
        sources
        if sources is not None
        else '[[sources]]\nname = "Local"\nurl = "http://127.0.0.1:1/feed"\n',
        "utf-8",
    )
    path = tmp_path / "monitor.toml"
    path.write_text(monitor, "utf-8")
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return [(p.file, p.key, p.reason) for p in info.value.problems]


def test_shipped_config_has_the_design_sources_ministries_first() -> None:
    config = load_config(default_config_dir() / "monitor.toml", {"MONITOR_DATA_DIR": "/nowhere"})
    urls = {s.url for s in config.sources}
    for expected in (
        "https://asean.org/feed/",
        "https://asean.org/category/news/feed/",
        "https://en.vietnamplus.vn/rss/news.rss",
        "https://tass.com/rss/v2.xml",
    ):
        assert expected in urls
    assert any(s.url.startswith("https://mid.ru/en/") for s in config.sources)
    assert any(s.language == "vi" and "vietnamplus" in s.url for s in config.sources)
    official = [s.priority for s in config.sources if "asean.org" in s.url or "mid.ru" in s.url]
    agencies = [s.priority for s in config.sources if "tass" in s.url or "vietnamplus" in s.url]
    assert max(official) < min(agencies)
    # No storage URL in the shipped file: the per-user data directory is the default.
    assert config.storage_url == "sqlite:////nowhere/monitor.db"


def test_example_config_documents_every_key_and_loads() -> None:
    config = load_config(CONFIG_DIR / "monitor.example.toml", {})
    assert config.storage_url == f"sqlite:///{(CONFIG_DIR / 'data' / 'monitor.db').resolve()}"
    assert config.poll.backfill == timedelta(days=7)
    assert config.http.max_redirects == 5
    assert config.digests[0].output_dir == CONFIG_DIR / "digests"
    assert config.digests[0].formats == ("markdown", "email")
    assert config.dedupe.retention == timedelta(days=90)
    assert config.dedupe.story_retention == timedelta(days=30)


def test_example_config_states_the_request_limits_the_code_defaults_to(tmp_path: Path) -> None:
    """The limits a user gets without an [http] table are the ones the example documents:
    100 requests in all, 2 to one host (issue 14), and as many sources in flight."""
    text = (CONFIG_DIR / "monitor.example.toml").read_text("utf-8")
    http = tomllib.loads(text)["http"]
    commented = re.search(r"(?m)^# parallel_sources = (\d+) ", text)
    assert commented is not None
    defaults = load_config(write(tmp_path, ""), {})
    assert (http["per_host"], http["concurrency"], int(commented.group(1))) == (2, 100, 100)
    assert (defaults.http.per_host, defaults.http.concurrency) == (2, 100)
    assert defaults.poll.parallel_sources == 100


def test_design_keys_are_accepted_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[storage]
url = "sqlite:///data/monitor.db"
[sources]
file = "sources.toml"
[topics]
file = "topics.toml"
[poll]
backfill = "3d"
[smtp]
host = "127.0.0.1"
port = 2525
security = "starttls"
sender = "monitor@example.org"
[server]
host = "127.0.0.1"
port = 8080
[[digests]]
name = "daily"
schedule = "0 7 * * *"
timezone = "Asia/Jakarta"
recipients = ["analyst@example.org"]
formats = ["markdown", "email"]
output_dir = "digests"
send_empty = false
topics = []
""",
    )
    config = load_config(path, {"MONITOR_SMTP_PASSWORD": "s3cret", "MONITOR_SMTP_USERNAME": "u"})
    assert config.storage_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'monitor.db'}"
    assert config.poll.backfill == timedelta(days=3)
    assert config.smtp.password == "s3cret"
    assert "s3cret" not in repr(config)
    assert config.server.port == 8080
    assert config.digests[0].output_dir == tmp_path / "digests"
    assert config.sources[0].name == "Local"


def test_every_problem_is_listed_with_file_key_and_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[poll]
backfil = "7d"
workers = -1
[smtp]
security = "tls"
password = "in the file"
[[digests]]
name = "daily"
schedule = "every morning"
timezone = "Mars/Olympus"
formats = ["pdf"]
""",
        sources='[[sources]]\nname = "Bad"\nurl = "ftp://example.org/feed"\ninterval = "soon"\n',
    )
    found = problems_of(path)
    keys = {key for _file, key, _reason in found}
    assert "poll.backfil" in keys
    assert "poll.workers" in keys
    assert "smtp.security" in keys
    assert "smtp.password" in keys
    assert "digests[0] (daily).timezone" in keys
    assert "digests[0] (daily).formats" in keys
    assert "sources[0] (Bad).url" in keys
    assert "sources[0] (Bad).interval" in keys
    reasons = {key: reason for _f, key, reason in found}
    assert "did you mean 'backfill'" in reasons["poll.backfil"]
    assert "MONITOR_SMTP_PASSWORD" in reasons["smtp.password"]
    files = {file for file, key, _r in found if key.startswith("sources[")}
    assert files == {str(tmp_path / "sources.toml")}


def test_bad_cron_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, '[[digests]]\nname = "d"\nschedule = "61 7 * * *"\n')
    assert [k for _f, k, _r in problems_of(path)] == ["digests[0] (d).schedule"]


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[poll\nbackfill = 1\n")
    [(file, key, _reason)] = problems_of(path)
    assert (file, key) == (str(path), "(syntax)")


def test_missing_sources_file_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[sources]\nfile = "nope.toml"\n')
    [(_file, key, reason)] = problems_of(path)
    assert key == "sources.file"
    assert "nope.toml" in reason


def test_storage_url_from_environment_wins(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\nurl = "sqlite:///a.db"\n')
    config = load_config(path, {"MONITOR_STORAGE_URL": "sqlite:////tmp/elsewhere.db"})
    assert config.storage_url == "sqlite:////tmp/elsewhere.db"


def test_find_config_order(tmp_path: Path) -> None:
    assert find_config("x.toml", {"MONITOR_CONFIG": "y.toml"}, tmp_path) == Path("x.toml")
    assert find_config(None, {"MONITOR_CONFIG": "y.toml"}, tmp_path) == Path("y.toml")
    assert find_config(None, {}, tmp_path) == default_config_dir() / "monitor.toml"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "monitor.toml").write_text("", "utf-8")
    assert find_config(None, {}, tmp_path) == tmp_path / "config" / "monitor.toml"


def test_dedupe_retention_windows_are_read_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path, '[dedupe]\nretention = "14d"\nstory_retention = "72h"\n')
    config = load_config(path, {})
    assert (config.dedupe.retention, config.dedupe.story_retention) == (
        timedelta(days=14),
        timedelta(hours=72),
    )
    bad = write(
        tmp_path, '[dedupe]\nretention = "forever"\nstory_retention = "0s"\nwindow = "7d"\n'
    )
    keys = {key: reason for _f, key, reason in problems_of(bad)}
    assert set(keys) == {"dedupe.retention", "dedupe.story_retention", "dedupe.window"}
    assert "unknown key" in keys["dedupe.window"]
    assert "longer than zero" in keys["dedupe.story_retention"]


def test_parallel_sources_follows_http_concurrency_unless_set(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), {}).poll.parallel_sources == 100
    narrow = load_config(write(tmp_path, "[http]\nconcurrency = 16\n"), {})
    assert (narrow.http.concurrency, narrow.poll.parallel_sources) == (16, 16)
    pinned = write(tmp_path, "[http]\nconcurrency = 100\n[poll]\nparallel_sources = 8\n")
    assert load_config(pinned, {}).poll.parallel_sources == 8
    keys = [key for _f, key, _r in problems_of(write(tmp_path, "[poll]\nparallel_sources = 0\n"))]
    assert keys == ["poll.parallel_sources"]


def test_a_story_span_over_thirty_days_is_refused_by_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[dedupe]\nstory_max_span = "10d"\n'), {})
    assert config.dedupe.story_max_span == timedelta(days=10)
    keys = {
        key: reason
        for _f, key, reason in problems_of(write(tmp_path, '[dedupe]\nstory_max_span = "45d"\n'))
    }
    assert set(keys) == {"dedupe.story_max_span"}
    assert "30 days or less" in keys["dedupe.story_max_span"]
