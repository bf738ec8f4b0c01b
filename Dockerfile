# monitor in a container: slim Python 3.11, a non-root user, /data for the database and archive.
#   docker build -t monitor .
#   docker run --rm -v monitor-data:/data monitor                  # packaged default config
#   docker run --rm -v monitor-data:/data -v "$PWD/config:/config:ro" \
#       -e MONITOR_CONFIG=/config/monitor.toml monitor             # your own config, read-only
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MONITOR_DATA_DIR=/data

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

CMD ["monitor", "poll"]
