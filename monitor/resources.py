"""Find packaged defaults (config, templates, seeds) and the per-user data dir. No I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import platformdirs

_PACKAGE = Path(__file__).resolve().parent


def _data_root() -> Path:
    # A wheel carries config/ and templates/ inside the package (see pyproject force-include);
    # a source checkout has them at the repository root.
    packaged = _PACKAGE / "_data"
    return packaged if packaged.is_dir() else _PACKAGE.parent


def is_packaged(path: Path) -> bool:
    """Whether `path` lies inside an installed wheel's data (site-packages: not the user's)."""
    packaged = _PACKAGE / "_data"
    return packaged.is_dir() and path.resolve().is_relative_to(packaged)


def default_config_dir() -> Path:
    return _data_root() / "config"


def default_templates_dir() -> Path:
    return _data_root() / "templates"


def user_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the database and archive go when the config does not say: MONITOR_DATA_DIR or
    the platform's per-user data directory (~/.local/share/monitor on Linux)."""
    env = os.environ if env is None else env
    override = env.get("MONITOR_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("monitor", appauthor=False))


def user_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where what can be rebuilt at any time is kept: MONITOR_CACHE_DIR or the platform's
    per-user cache directory (~/.cache/monitor on Linux)."""
    env = os.environ if env is None else env
    override = env.get("MONITOR_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("monitor", appauthor=False))
