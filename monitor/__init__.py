"""monitor: polls news feeds, dedupes against a seed corpus, tags and mails digests. No I/O."""

import sys

# httpx imports its own command line (rich, pygments: about 20 ms) whenever it is imported;
# monitor never runs it (issue 14). A None entry makes that import fail as it does without
# httpx's `cli` extra, and httpx then puts a stub in its place.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

__version__ = "0.1.0"
__all__ = ["__version__"]
