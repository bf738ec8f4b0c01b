"""An installed, non-editable wheel carries its config, templates and seeds, and runs anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("monitor-*.whl"))


def test_wheel_contains_the_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "monitor/_data/config/monitor.toml",
        "monitor/_data/config/monitor.example.toml",
        "monitor/_data/config/sources.toml",
        "monitor/_data/config/topics.toml",
    }
    expected |= {
        f"monitor/_data/config/corpus/{p.name}" for p in (ROOT / "config/corpus").iterdir()
    }
    expected |= {
        f"monitor/_data/templates/{p.name}" for p in (ROOT / "templates").iterdir() if p.is_file()
    }
    expected |= {
        f"monitor/{p.relative_to(ROOT / 'monitor').as_posix()}"
        for p in (ROOT / "monitor" / "demo_data").rglob("*")
        if p.is_file()
    }
    assert expected <= names
    assert not any(n.startswith(("tests/", ".venv/")) for n in names)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return site


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m monitor ARGS` importing the installed wheel, from a folder without config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env |= {"PYTHONPATH": str(site), "MONITOR_DATA_DIR": str(cwd / "data")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_installed_wheel_finds_its_packaged_config(installed: Path, tmp_path: Path) -> None:
    done = run_installed(installed, tmp_path, "check-config")
    assert done.returncode == 0, done.stderr
    assert str(installed / "monitor" / "_data" / "config" / "monitor.toml") in done.stdout


def test_demo_runs_offline_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    done = run_installed(installed, tmp_path, "demo", "--dir", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Serving recorded sources at http://127.0.0.1:" in out
    assert "Ministry behind bot protection (recorded): failed (not_a_feed)" in out
    assert "Regional wire (recorded): ok, 0 new, 1 duplicate" in out
    assert "Vietnam News Agency (recorded): ok, 1 new, 1 known" in out
    assert (tmp_path / "demo" / "monitor.db").is_file()
    items = run_installed(
        installed, tmp_path, "--config", str(tmp_path / "demo" / "monitor.toml"), "items", "--json"
    )
    assert items.returncode == 0, items.stderr
    records = [json.loads(line) for line in items.stdout.splitlines()]
    assert len(records) == 5
    by_path = {r["url"].split("/", 3)[3]: r for r in records}
    reprint = by_path["vna/lavrov-to-attend-asean-ministerial-meetings/"]
    assert reprint["status"] == "known"
    assert reprint["duplicate_of"]["kind"] == "seed"
    assert reprint["duplicate_of"]["ref"] == "003_24ad2f7826d9acd6.txt"
    twin = next(r for path, r in by_path.items() if path.startswith("vna/") and "/amp/" in path)
    assert twin["status"] == "duplicate"
    assert twin["source"] == "Regional wire (recorded)"
    remarks = by_path["mfa/news/lavrov-lim-jock-hoi-remarks/"]  # seed 001
    talks = by_path["vna/asean-secretary-general-russian-fm-hold-talks/"]  # seed 002
    assert remarks["status"] == talks["status"] == "new"
    assert remarks["story"]["id"] == talks["story"]["id"]
    assert "000_51428d13349f6c0f.txt" in talks["story"]["seed_refs"]
    assert {"Russian MFA (recorded)", "Vietnam News Agency (recorded)"} <= set(
        talks["story"]["sources"]
    )
    assert by_path["asean/asean-russia-commit-to-deepen-cooperation/"]["status"] == "new"
    assert "linked to known seed 000_51428d13349f6c0f.txt" in out
    # Tags with the words that triggered them.
    assert "diplomacy: score" in out
    assert "secretary general (en)" in out
    # The Markdown digest: a story from several outlets that follows up a seed, tags, the
    # suppressed reprint and twin, the broken source in the health block; then the HTML path.
    digest = out[out.index("The digest (Markdown") :]
    assert "Follow-up to: “ASEAN Secretary General to visit Russia and hold talks with Lavrov”" in (
        digest
    )
    assert "Also covered by: [Vietnam News Agency (recorded)]" in digest
    assert "Tags: **Diplomacy" in digest
    assert "## Suppressed: 2 known or duplicate items" in digest
    assert "## Source health" in digest
    assert "**Ministry behind bot protection (recorded)**" in digest
    html_path = tmp_path / "demo" / "digest.html"
    assert f"The HTML email version: {html_path}" in out
    assert "Follow-up to:" in html_path.read_text("utf-8")


def test_corpus_add_refuses_the_packaged_corpus(installed: Path, tmp_path: Path) -> None:
    seed = tmp_path / "mine.txt"
    seed.write_text("A title\n\n" + "Lavrov met ASEAN ministers in Vientiane. " * 20, "utf-8")
    done = run_installed(installed, tmp_path, "corpus", "add", str(seed))
    assert done.returncode == 2
    assert "[corpus] dir" in done.stderr
    assert "not writable" in done.stderr
    assert not (installed / "monitor" / "_data" / "config" / "corpus" / "mine.txt").exists()
