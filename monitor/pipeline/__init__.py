"""Where the edges meet the pure core; the only place they do. I/O: network, database, files.

sources | fetch | parse | extract | dedupe | tag | store        (pipeline.poll)
store.window | digest | deliver | store.mark_sent                (pipeline.digest)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.pipeline.poll import (
        Poller,
        PollOutcome,
        init_worker,
        make_pool,
        poll_once,
        warm_up,
    )

__all__ = ["PollOutcome", "Poller", "init_worker", "make_pool", "poll_once", "warm_up"]


def __getattr__(name: str) -> Any:
    """Load `pipeline.poll` (trafilatura, datasketch, the language model: about a second) on
    first use, so commands that only read the store start fast."""
    if name in __all__:
        from monitor.pipeline import poll

        return getattr(poll, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
