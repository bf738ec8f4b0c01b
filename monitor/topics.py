"""The topic rule file, parsed when first needed; a clean check is remembered. I/O: files.

Parsing and compiling the rules (about 3,000 terms in the packaged file) took 0.07-0.14 s
of every start, also of a poll of unchanged feeds that tags nothing (issue 14). A rule file
is still checked at start, with every problem reported, unless the very same text already
passed the check with the very same rule code: then a marker in the cache directory
(`MONITOR_CACHE_DIR`, else ~/.cache/monitor) says so and the rules are parsed only when an
article needs tags (or `check-config` counts them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monitor import __version__

if TYPE_CHECKING:
    from monitor.tag import Taxonomy

CHECKED = "topics-checked"  # in the cache directory: one empty file per rule text that passed
# The modules whose code decides whether a rule text is valid: a change to any of them (a
# new check, another version) invalidates the marker.
_RULE_CODE = ("tagging/rules.py", "tagging/normalise.py", "tagging/engine.py", "tag.py")


@dataclass(frozen=True, slots=True, eq=False)
class TopicRules:
    """A rule file's text and, once parsed, its Taxonomy (pickled to workers as text)."""

    file: Path
    text: str
    _parsed: list[Taxonomy] = field(default_factory=list, repr=False)

    @property
    def parsed(self) -> bool:
        return bool(self._parsed)

    @property
    def taxonomy(self) -> Taxonomy:
        """The parsed rules. Raises ConfigError for a file whose check was skipped and that
        no longer parses (only a changed rule code with an unchanged key could do that)."""
        if not self._parsed:
            from monitor.tag import parse_taxonomy

            self._parsed.append(parse_taxonomy(self.text, file=str(self.file)))
        return self._parsed[0]

    def __getstate__(self) -> tuple[Path, str, list[Taxonomy]]:
        # A worker parses the text itself: compiled patterns are recompiled when unpickled
        # anyway, and a taxonomy the parent never needed stays unparsed there.
        return (self.file, self.text, self._parsed if not self.text else [])

    def __setstate__(self, state: tuple[Path, str, list[Taxonomy]]) -> None:
        for name, value in zip(("file", "text", "_parsed"), state, strict=True):
            object.__setattr__(self, name, value)


def check_rules(path: Path, text: str, cache_dir: Path) -> TopicRules:
    """The rules of the file at `path` (its `text`), checked now unless a marker in
    `cache_dir` says this very text passed; a clean check is recorded there.

    Raises:
        ConfigError: listing every problem in the file.
    """
    rules = TopicRules(path, text)
    marker = cache_dir / CHECKED / _key(text)
    if marker.is_file():
        return rules
    rules.taxonomy  # noqa: B018 - the check: raises ConfigError listing every problem
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # no writable cache: the check simply runs at every start
    return rules


def _key(text: str) -> str:
    digest = hashlib.sha256(__version__.encode())
    here = Path(__file__).parent
    for name in _RULE_CODE:
        try:
            stat = (here / name).stat()
        except OSError:
            continue
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
