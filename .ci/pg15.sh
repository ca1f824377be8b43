#!/usr/bin/env bash
# Starts a throwaway Debian PostgreSQL 15 (with pg_cron preloaded) on 127.0.0.1:$PG15_PORT and
# prints its URL. Installs the packages first if they are missing. Used by .ci/run.
set -euo pipefail
PG15_PORT="${PG15_PORT:-54329}"
PG15_DIR="${PG15_DIR:-/tmp/secret-audit-pg15}"
BIN=/usr/lib/postgresql/15/bin

if [ ! -x "$BIN/postgres" ] || [ ! -f /usr/lib/postgresql/15/lib/pg_cron.so ]; then
  echo "installing postgresql-15 and postgresql-15-cron from Debian..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-15-cron >&2
fi

# Postgres will not run as root: the cluster belongs to the postgres user the package created.
RUN=(runuser -u postgres --)
[ "$(id -u)" -ne 0 ] && RUN=()
if [ -f "$PG15_DIR/postmaster.pid" ]; then "${RUN[@]}" "$BIN/pg_ctl" -D "$PG15_DIR" stop -m fast >&2 || true; fi
rm -rf "$PG15_DIR"
mkdir -p "$PG15_DIR"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG15_DIR"
"${RUN[@]}" "$BIN/initdb" -D "$PG15_DIR" -U postgres --auth=trust >/dev/null
# cron.database_name: the one database pg_cron lives in; the schedule test migrates it.
"${RUN[@]}" "$BIN/pg_ctl" -D "$PG15_DIR" -l "$PG15_DIR/server.log" -w start -o "\
  -p $PG15_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG15_DIR \
  -c shared_preload_libraries=pg_cron -c cron.database_name=secret_audit_cron \
  -c cron.use_background_workers=on -c max_worker_processes=32 -c max_connections=200 \
  -c fsync=off -c synchronous_commit=off" >&2
"${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PG15_PORT" -U postgres secret_audit_cron
echo "postgres://postgres@127.0.0.1:$PG15_PORT/postgres"
