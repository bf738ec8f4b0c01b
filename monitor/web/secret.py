"""The key that signs correction links: MONITOR_SECRET, else a file in the data directory.
I/O: files.

The file is created once with 32 random bytes (hex), mode 0600, and read at every start, so
links in digests already mailed keep working across restarts. The key is never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from monitor.errors import ConfigError, Problem

SECRET_FILE = "web-secret"


def load_secret(env_secret: str | None, data_dir: Path) -> bytes:
    """The signing key: `env_secret` if set, else the data directory's key file (made now
    if missing).

    Raises:
        ConfigError: the key file cannot be read or written, or is empty.
    """
    if env_secret:
        return env_secret.encode("utf-8")
    path = data_dir / SECRET_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
        else:
            key = secrets.token_hex(32)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(key + "\n")
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem(str(path), "MONITOR_SECRET", f"cannot read or create the link key: {exc}")
        raise ConfigError([problem]) from exc
    if len(key) < 32:
        raise ConfigError([Problem(str(path), "MONITOR_SECRET", "the link key file is too short")])
    return key.encode("ascii")
