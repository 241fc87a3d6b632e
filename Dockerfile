# syntax=docker/dockerfile:1
#
# jobsync: the RabbitMQ -> PostgreSQL worker, as a container image.
#
#   docker build -t jobsync .
#   docker run --rm jobsync --help
#
# See docker-compose.yml for a complete local setup with RabbitMQ and PostgreSQL.

# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------
FROM rust:1.88-bookworm AS builder

# libpq-dev: diesel's postgres backend links libpq (pq-sys finds it through
# pkg-config / pg_config). cmake is only a fallback for aws-lc-sys (rustls'
# crypto), which normally builds with cc alone.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq-dev pkg-config cmake \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# 1. Dependencies only: build the locked dependency graph against stub sources,
#    so this layer stays cached until Cargo.toml or Cargo.lock changes.
#    Targets that Cargo.toml declares explicitly outside src/ ([[bench]],
#    [[test]], [[example]]) must exist for cargo to load the manifest at all,
#    so they get stubs too; nothing here builds them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && awk ' \
      function flush() { \
        if (kind != "") { \
          if (path == "") path = dir[kind] "/" name ".rs"; \
          print path; \
        } \
        kind = ""; name = ""; path = ""; \
      } \
      BEGIN { dir["bench"] = "benches"; dir["test"] = "tests"; dir["example"] = "examples" } \
      /^[ \t]*\[\[(bench|test|example)\]\]/ { flush(); kind = $0; sub(/^[ \t]*\[\[/, "", kind); sub(/\]\].*/, "", kind); next } \
      /^[ \t]*\[/ { flush(); next } \
      kind != "" && /^[ \t]*name[ \t]*=/ { name = $0; sub(/^[^"]*"/, "", name); sub(/".*/, "", name) } \
      kind != "" && /^[ \t]*path[ \t]*=/ { path = $0; sub(/^[^"]*"/, "", path); sub(/".*/, "", path) } \
      END { flush() }' Cargo.toml \
    | while read -r stub; do \
        mkdir -p "$(dirname "$stub")"; \
        [ -e "$stub" ] || echo 'fn main() {}' > "$stub"; \
      done \
 && cargo build --release --locked --bin jobsync \
 && rm -rf src \
      target/release/jobsync target/release/jobsync.d \
      target/release/.fingerprint/jobsync-* \
      target/release/deps/jobsync-* target/release/deps/libjobsync-*

# 2. The crate itself. migrations/ is embedded by diesel_migrations'
#    embed_migrations!, reference/municipalities.csv by include_str!, and
#    schemas/ holds the JSON Schemas the crate carries; all are read at compile
#    time, so they belong in the builder, not the runtime image.
COPY src/ src/
COPY migrations/ migrations/
COPY reference/ reference/
COPY schemas/ schemas/
RUN cargo build --release --locked --bin jobsync \
 && install -D -m 0755 target/release/jobsync /out/jobsync

# ---------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

LABEL org.opencontainers.image.title="jobsync" \
      org.opencontainers.image.description="Keeps Danish jobcentres and unemployment funds in sync on job orders (RabbitMQ -> PostgreSQL worker)." \
      org.opencontainers.image.licenses="MIT"

# libpq5: the client library the binary links. ca-certificates: amqps:// and
# TLS connections to PostgreSQL. curl: the health check on /readyz (see
# docker-compose.yml).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 jobsync \
 && useradd --system --uid 10001 --gid jobsync --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin jobsync

COPY --from=builder /out/jobsync /usr/local/bin/jobsync

# Listen on all interfaces inside the container (the built-in default,
# 127.0.0.1:8080, would be unreachable from outside it), and log JSON lines.
ENV JOBSYNC_HTTP_ADDR=0.0.0.0:8080 \
    JOBSYNC_API_ADDR=0.0.0.0:8081 \
    JOBSYNC_LOG_FORMAT=json

# Numeric, so that runtimes enforcing runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /

# /healthz, /readyz, /metrics
EXPOSE 8080
# the read API
EXPOSE 8081

# `jobsync run` stops cleanly on SIGTERM (Docker's default stop signal).
ENTRYPOINT ["jobsync"]
CMD ["run"]
