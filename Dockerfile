# monitor in a container: slim Python 3.11, a non-root user, /data for the database and the
# digest archive, the daemon (`monitor run`) with /healthz and /metrics on port 8080.
#
#   docker build -t monitor .
#
# With the packaged default config (the endpoint listens on all interfaces of the container,
# so its pages need an access token; without one they stay shut and /healthz, /metrics and the
# signed correction links still answer):
#   docker run -d --name monitor --stop-timeout 40 -p 8080:8080 \
#       -e MONITOR_WEB_TOKEN="$(python3 -c 'import secrets; print(secrets.token_urlsafe())')" \
#       -v monitor-data:/data monitor
#
# With your own config folder (monitor.toml, sources.toml, topics.toml, corpus/), mounted
# read-only at /config and named by MONITOR_CONFIG; SMTP secrets from an env file:
#   docker run -d --name monitor --stop-timeout 40 -p 8080:8080 \
#       -v monitor-data:/data -v "$PWD/my:/config:ro" -e MONITOR_CONFIG=/config/monitor.toml \
#       --env-file monitor.env monitor
# (or pass it as an argument instead: ... monitor monitor --config /config/monitor.toml run).
# Leave `[storage] url` and the digests' `output_dir` unset in that config, so the database and
# the archive go to /data and not into the read-only /config.
#
# --stop-timeout: `docker stop` sends SIGTERM and the daemon drains in-flight work for up to
# `[daemon] drain_timeout` (30 s by default); Docker's own default of 10 s would SIGKILL it
# first. Nothing stored is lost either way, but a poll in progress would be redone.
#
# Other commands run beside the daemon: docker exec monitor monitor sources list
FROM python:3.11-slim

# The endpoint listens on all interfaces inside the container so that `-p 8080:8080` and a
# Prometheus scraper outside can reach it (the HEALTHCHECK itself uses 127.0.0.1). These two
# override `[server]` in any config; publish the port only where the scraper can reach it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MONITOR_DATA_DIR=/data \
    MONITOR_SERVER_HOST=0.0.0.0 \
    MONITOR_SERVER_PORT=8080

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY config ./config
COPY templates ./templates
RUN pip install --no-compile '.[postgres]' \
    && cd / && rm -rf /src \
    && useradd --system --create-home --home-dir /home/monitor monitor \
    && mkdir -p /data && chown monitor /data

USER monitor
WORKDIR /home/monitor
VOLUME ["/data"]
EXPOSE 8080

# Healthy while the scheduler runs and the database answers (/healthz says 200; 503 or no
# answer is unhealthy). The slim image has no curl, so Python does the request. The start
# period covers loading the dedupe index from a large database.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('MONITOR_SERVER_PORT', '8080') + '/healthz'; sys.exit(0 if urllib.request.urlopen(url, timeout=5).status == 200 else 1)"]

# SIGTERM: stop scheduling, drain, exit 0. SIGHUP (docker kill -s HUP monitor): reload config.
STOPSIGNAL SIGTERM
CMD ["monitor", "run"]
