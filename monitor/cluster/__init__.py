"""Cluster mode (DESIGN §7): many `monitor run` nodes on one PostgreSQL database, a procrastinate
job queue between them and one advisory lock around every dedupe decision. I/O: database.

`gate` holds the decision lock, `foresight` says which answers looked up before it still
hold inside it, `queue` runs the jobs, `status` reads the queue for `monitor cluster status`
and `/metrics`.
"""
