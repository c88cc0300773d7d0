#!/usr/bin/env bash
# The analytics benchmark with one command: the anomaly detector's precision and recall on
# synthetic data (no database), then rollup timings on a throwaway PostgreSQL (durable settings,
# as in production) loaded with synthetic spans. Prints figures; see bench/analytics_bench.py.
#
#   bash bench/run_analytics_bench.sh                      # 1M spans, 5 detector seeds
#   bash bench/run_analytics_bench.sh --spans 200000 --seeds 2
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

spans=1000000
seeds=5
while [ $# -gt 0 ]; do
    case $1 in
        --spans) spans=$2; shift ;;
        --seeds) seeds=$2; shift ;;
        *) die "unknown option $1" ;;
    esac
    shift
done

tmp_dir=""
pg_ctl=""
cleanup() {
    local status=$?
    set +e
    if [ -n "$pg_ctl" ] && [ -f "$tmp_dir/pg/data/postmaster.pid" ]; then
        runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -m fast stop >/dev/null 2>&1
    fi
    [ -n "$tmp_dir" ] && rm -rf "$tmp_dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_apt_packages postgresql python3-venv
ensure_venv requirements.txt
tmp_dir=$(mktemp -d /tmp/observatory-analytics-bench.XXXXXX)
chmod 755 "$tmp_dir"
export OBSERVATORY_DATA_DIR="$tmp_dir/data"
mkdir -p "$OBSERVATORY_DATA_DIR"
export DEBUG=false SECRET_KEY=bench LOG_LEVEL=WARNING

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores, $(uname -m)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
log "python bench/analytics_bench.py detect --seeds $seeds"
DATABASE_URL="sqlite:///$OBSERVATORY_DATA_DIR/unused.sqlite3" \
    python bench/analytics_bench.py detect --seeds "$seeds"

pg_port=$(free_port)
log "Starting PostgreSQL (durable) on 127.0.0.1:$pg_port"
start_postgres "$pg_port" durable
export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/observatory"
python manage.py migrate --no-input -v 0
log "python bench/analytics_bench.py rollups --spans $spans"
python bench/analytics_bench.py rollups --spans "$spans"
