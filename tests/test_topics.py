"""Topic rules: checked at start unless the same text passed before, parsed when needed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.topics import CHECKED, check_rules

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
RULES = (CONFIG_DIR / "topics.toml").read_text("utf-8")
BROKEN = '[topics.a]\nlabel = "A"\nterms = { en = ["x*"] }\n'  # a wildcard needs 3 letters


def test_a_clean_rule_file_is_checked_once_then_parsed_only_when_needed(tmp_path: Path) -> None:
    first = check_rules(tmp_path / "topics.toml", RULES, tmp_path)
    assert first.parsed  # checked (parsed) at the first start
    assert len(list((tmp_path / CHECKED).iterdir())) == 1
    second = check_rules(tmp_path / "topics.toml", RULES, tmp_path)
    assert not second.parsed  # the same text passed: nothing parsed at start
    assert second.taxonomy.topic_ids == first.taxonomy.topic_ids  # parsed when asked for


def test_a_changed_rule_file_is_checked_again(tmp_path: Path) -> None:
    check_rules(tmp_path / "topics.toml", RULES, tmp_path)
    changed = check_rules(tmp_path / "topics.toml", RULES + "\n# edited\n", tmp_path)
    assert changed.parsed
    assert len(list((tmp_path / CHECKED).iterdir())) == 2


def test_a_broken_rule_file_is_reported_at_every_start_and_never_remembered(
    tmp_path: Path,
) -> None:
    for _ in range(2):
        with pytest.raises(ConfigError) as info:
            check_rules(tmp_path / "topics.toml", BROKEN, tmp_path)
        assert any("topics.a.terms.en[0]" in p.key for p in info.value.problems)
    assert not (tmp_path / CHECKED).exists()


def test_an_unwritable_cache_still_checks_every_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", "utf-8")
    for _ in range(2):
        assert check_rules(tmp_path / "topics.toml", RULES, blocker).parsed


def test_rules_travel_to_a_worker_as_text(tmp_path: Path) -> None:
    rules = check_rules(tmp_path / "topics.toml", RULES, tmp_path)
    copy = pickle.loads(pickle.dumps(rules))
    assert not copy.parsed
    assert copy.text == RULES
    assert copy.file == rules.file
    assert copy.taxonomy.topic_ids == rules.taxonomy.topic_ids


def test_config_reports_a_broken_rule_file_whatever_the_cache(tmp_path: Path) -> None:
    (tmp_path / "topics.toml").write_text(BROKEN, "utf-8")
    (tmp_path / "sources.toml").write_text(
        '[[sources]]\nname = "Local"\nurl = "http://127.0.0.1:1/feed"\n', "utf-8"
    )
    (tmp_path / "monitor.toml").write_text('[topics]\nfile = "topics.toml"\n', "utf-8")
    env = {"MONITOR_DATA_DIR": str(tmp_path / "data"), "MONITOR_CACHE_DIR": str(tmp_path)}
    with pytest.raises(ConfigError):
        load_config(tmp_path / "monitor.toml", env)
    (tmp_path / "topics.toml").write_text(RULES, "utf-8")
    config = load_config(tmp_path / "monitor.toml", env)
    assert config.rules.parsed  # a new text: checked at start
    again = load_config(tmp_path / "monitor.toml", env)
    assert not again.rules.parsed
    assert again.taxonomy.topic_ids == config.taxonomy.topic_ids
