"""Where the edges meet the pure core; the only place they do. I/O: network, database, files.

sources | fetch | parse | extract | dedupe | tag | store        (pipeline.poll)
store.window | digest | deliver | store.mark_sent                (pipeline.digest)
"""

from monitor.pipeline.poll import Poller, PollOutcome, init_worker, make_pool, poll_once, warm_up

__all__ = ["PollOutcome", "Poller", "init_worker", "make_pool", "poll_once", "warm_up"]
