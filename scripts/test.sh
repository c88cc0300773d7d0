#!/usr/bin/env bash
# The whole check, as CI runs it (.ci/run calls this and nothing else). On a fresh Debian as
# root: install PostgreSQL, Redis and Chromium if missing, start throwaway PostgreSQL and Redis
# servers on free ports, lint, then run the whole pytest suite against them.
#
#   bash scripts/test.sh                     # lint + every test
#   bash scripts/test.sh tests/ingest -x     # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

started_at=$(date +%s)
tmp_dir=""
pg_ctl=""
redis_pid=""

cleanup() {
    local status=$?
    set +e
    if [ -n "$pg_ctl" ] && [ -f "$tmp_dir/pg/data/postmaster.pid" ]; then
        runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -m immediate stop >/dev/null 2>&1
    fi
    [ -n "$redis_pid" ] && stop_pid "$redis_pid" 5
    [ -n "$tmp_dir" ] && rm -rf "$tmp_dir"
    local elapsed=$(($(date +%s) - started_at))
    printf 'test.sh: finished in %dm%02ds, exit status %d\n' $((elapsed / 60)) $((elapsed % 60)) \
        "$status" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# initdb and postgres refuse to run as root, so the server runs as the postgres user.
runuser_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    local bin port=$1
    bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
    [ -x "$bin/initdb" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
    pg_ctl=$bin/pg_ctl
    mkdir -p "$tmp_dir/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$tmp_dir/pg"
    runuser_pg "$bin/initdb" -D "$tmp_dir/pg/data" -U postgres --auth=trust --encoding=UTF8 \
        --no-locale >"$tmp_dir/pg/initdb.log" 2>&1 \
        || { cat "$tmp_dir/pg/initdb.log" >&2; die "initdb failed"; }
    # Durability is pointless for a server that is deleted after the run; skipping it is faster.
    runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -l "$tmp_dir/pg/server.log" -w -t 60 start -o \
        "-p $port -k $tmp_dir/pg -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
        || { cat "$tmp_dir/pg/server.log" >&2; die "PostgreSQL did not start"; }
    runuser_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres observatory
}

start_redis() {
    local port=$1 tries=0
    mkdir -p "$tmp_dir/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$tmp_dir/redis" >"$tmp_dir/redis/server.log" 2>&1 &
    redis_pid=$!
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ] || ! kill -0 "$redis_pid" 2>/dev/null; then
            cat "$tmp_dir/redis/server.log" >&2
            die "Redis did not start"
        fi
        sleep 0.1
    done
}

ensure_apt_packages postgresql redis-server chromium python3-venv
ensure_venv requirements-dev.txt

tmp_dir=$(mktemp -d /tmp/observatory-test.XXXXXX)
chmod 755 "$tmp_dir"
pg_port=$(free_port)
redis_port=$(free_port)
log "Starting PostgreSQL on 127.0.0.1:$pg_port and Redis on 127.0.0.1:$redis_port"
start_postgres "$pg_port"
start_redis "$redis_port"

export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/observatory"
export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
export DJANGO_ALLOW_ASYNC_UNSAFE=true
export SECRET_KEY="test-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export DEBUG=false
export OBSERVATORY_DATA_DIR="$tmp_dir/data"
mkdir -p "$OBSERVATORY_DATA_DIR"

lint_failed=false
log "ruff check ."
ruff check . || lint_failed=true
log "ruff format --check ."
ruff format --check . || lint_failed=true

log "python -m pytest $*"
pytest_status=0
python -m pytest "$@" || pytest_status=$?

if [ "$pytest_status" -eq 5 ]; then
    die "pytest collected no tests (exit code 5): check the paths or -k expression: $*"
elif [ "$pytest_status" -ne 0 ]; then
    die "tests failed (pytest exit code $pytest_status)"
elif [ "$lint_failed" = true ]; then
    die "the tests passed but lint failed: run 'make format' or fix the ruff errors above"
fi
log "Lint and tests passed"
