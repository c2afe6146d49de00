# syntax=docker/dockerfile:1.7
#
# notionsync images: one build, one target per process.
#
#   docker build --target worker         -t notionsync/worker .
#   docker build --target scheduler      -t notionsync/scheduler .
#   docker build --target notion-sandbox -t notionsync/notion-sandbox .
#
# docker-compose.yml builds all three. The binaries are built by `make build`,
# the command the README and CI use, so the image runs the binaries the tests
# build (static: CGO_ENABLED=0; -trimpath and -ldflags "-s -w" come through
# GOFLAGS, which go build reads). Every binary under cmd/ is in every image;
# each target only picks the entrypoint and the healthcheck.
#
# Runtime base: debian:bookworm-slim rather than distroless, because the
# healthcheck needs an HTTP client (curl) and a shell, and the Notion API needs
# CA certificates. The processes run as the unprivileged user notionsync
# (uid 10001), never as root. See docs/runbook.md, "Deploying with docker
# compose".

ARG GO_VERSION=1.26

# ---------------------------------------------------------------------------
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath '-ldflags=-s -w'"
# Module downloads are cached in their own layer (and in a cache mount).
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    make build BIN_DIR=/out

# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 notionsync \
    && useradd --system --uid 10001 --gid notionsync --home-dir /var/lib/notionsync \
       --shell /usr/sbin/nologin notionsync \
    && install -d -o notionsync -g notionsync -m 0750 /var/lib/notionsync /var/lib/notionsync/data

# healthcheck worker|scheduler|notion-sandbox: exits 0 when the process in
# this container answers its liveness endpoint on the port it was configured
# to listen on (NOTIONSYNC_HTTP_ADDR, NOTIONSYNC_CONTROL_ADDR,
# NOTION_SANDBOX_ADDR; the defaults otherwise).
COPY --chmod=0755 <<'EOF' /usr/local/bin/healthcheck
#!/bin/sh
set -eu
case "${1:-}" in
worker) addr=${NOTIONSYNC_HTTP_ADDR:-127.0.0.1:8081} path=/healthz ;;
scheduler) addr=${NOTIONSYNC_CONTROL_ADDR:-:8080} path=/healthz ;;
notion-sandbox) addr=${NOTION_SANDBOX_ADDR:-127.0.0.1:8787} path=/_sandbox/health ;;
*) echo "usage: healthcheck worker|scheduler|notion-sandbox" >&2; exit 2 ;;
esac
host=${addr%:*}
case "$host" in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; esac
exec curl -fsS -o /dev/null --max-time 3 "http://$host:${addr##*:}$path"
EOF

COPY --from=build /out/ /usr/local/bin/
USER notionsync:notionsync
# The file sink's default, file://./data, is /var/lib/notionsync/data.
WORKDIR /var/lib/notionsync
STOPSIGNAL SIGTERM

# ---------------------------------------------------------------------------
FROM runtime AS notion-sandbox
# Inside a container the sandbox must listen on every interface; publish its
# port on the host's loopback only (its admin API has no authentication).
ENV NOTION_SANDBOX_ADDR=0.0.0.0:8787
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["healthcheck", "notion-sandbox"]
ENTRYPOINT ["notion-sandbox"]

# ---------------------------------------------------------------------------
FROM runtime AS scheduler
# Control plane: OAuth, admin API, /admin/asynqmon/, webhooks. /metrics is
# on NOTIONSYNC_METRICS_ADDR (127.0.0.1:9090 by default), not exposed.
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["healthcheck", "scheduler"]
ENTRYPOINT ["scheduler"]

# ---------------------------------------------------------------------------
# Last, so that a plain `docker build .` builds the worker.
FROM runtime AS worker
# /healthz, /readyz and /metrics on NOTIONSYNC_HTTP_ADDR, 127.0.0.1:8081 by
# default: inside the container only (the healthcheck), so nothing is exposed.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["healthcheck", "worker"]
ENTRYPOINT ["worker"]
