#!/usr/bin/env bash
# The whole check, as CI runs it (.ci/run calls this and nothing else). On a fresh Debian as
# root: install PostgreSQL, Redis and Chromium if missing, start throwaway PostgreSQL and Redis
# servers on free ports, lint and type-check, then run the whole pytest suite against them.
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
pytest_log=""

cleanup() {
    local status=$?
    set +e
    if [ -n "$pg_ctl" ] && [ -f "$tmp_dir/pg/data/postmaster.pid" ]; then
        runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -m immediate stop >/dev/null 2>&1
    fi
    [ -n "$redis_pid" ] && stop_pid "$redis_pid" 5
    # The last line says how the run went: pytest's own count line, then the time taken.
    local summary="no test summary (pytest did not finish)"
    if [ -n "$pytest_log" ] && [ -f "$pytest_log" ]; then
        summary=$(sed 's/\x1b\[[0-9;]*m//g' "$pytest_log" |
            grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped|deselected).* in [0-9.]+s|no tests ran' |
            tail -1 | sed -E 's/^=+ //; s/ =+$//')
        [ -n "$summary" ] || summary="no test summary in the pytest output"
    fi
    [ -n "$tmp_dir" ] && rm -rf "$tmp_dir"
    local elapsed=$(($(date +%s) - started_at))
    printf 'test.sh: %s; finished in %dm%02ds, exit status %d\n' "$summary" \
        $((elapsed / 60)) $((elapsed % 60)) "$status" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_apt_packages postgresql redis-server chromium python3-venv
ensure_venv requirements-dev.txt

tmp_dir=$(mktemp -d /tmp/observatory-test.XXXXXX)
chmod 755 "$tmp_dir"
pg_port=$(free_port)
redis_port=$(free_port)
log "Starting PostgreSQL on 127.0.0.1:$pg_port and Redis on 127.0.0.1:$redis_port"
start_postgres "$pg_port" fast  # no durability: the server is deleted after the run
start_redis "$redis_port"

export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/observatory"
# The read replica is the primary itself (a TEST MIRROR): every page runs through the router.
export DATABASE_REPLICA_URL="$DATABASE_URL"
export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
export DJANGO_ALLOW_ASYNC_UNSAFE=true
export SECRET_KEY="test-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export DEBUG=false
export OBSERVATORY_DATA_DIR="$tmp_dir/data"
# CI also runs the live tests of the real frameworks whose venvs build and run in about 3.5 min
# from a cold pip cache (tests/fixtures/frameworks/README.md, "CI"); the others stay skipped
# unless asked for (scripts/frameworks_live.sh).
if [ "${CI:-}" = true ]; then
    export OBSERVATORY_FRAMEWORKS_BUILD="${OBSERVATORY_FRAMEWORKS_BUILD:-autogen,openai_agents,pydantic_ai,agentops_legacy}"
fi
mkdir -p "$OBSERVATORY_DATA_DIR"

lint_failed=false
log "ruff check ."
ruff check . || lint_failed=true
log "ruff format --check ."
ruff format --check . || lint_failed=true
# The settings import needs only the variables exported above (no database, no broker).
mypy_failed=false
log "mypy (pyproject.toml [tool.mypy])"
mypy || mypy_failed=true

log "python -m pytest $*"
pytest_log="$tmp_dir/pytest.log"
pytest_status=0
python -m pytest "$@" 2>&1 | tee "$pytest_log" || pytest_status=${PIPESTATUS[0]}

if [ "$pytest_status" -eq 5 ]; then
    die "pytest collected no tests (exit code 5): check the paths or -k expression: $*"
elif [ "$pytest_status" -ne 0 ]; then
    die "tests failed (pytest exit code $pytest_status)"
elif [ "$lint_failed" = true ]; then
    die "the tests passed but lint failed: run 'make format' or fix the ruff errors above"
elif [ "$mypy_failed" = true ]; then
    die "the tests passed but mypy failed: fix the type errors above"
fi
log "Lint, types and tests passed"
