#!/usr/bin/env bash
# Server time of the test heatmap at 500 tests x 200 runs on a throwaway PostgreSQL (the
# production database): starts the server, runs bench/heatmap_bench.py against an empty
# database in it, prints the figures and deletes everything. --sqlite runs it on SQLite instead.
#
#   bash bench/run_heatmap_bench.sh                  # PostgreSQL
#   bash bench/run_heatmap_bench.sh --sqlite -- --requests 20
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

db=postgres
bench_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --sqlite) db=sqlite ;;
        --) shift; bench_args=("$@"); break ;;
        *) die "unknown option $1 (bench options go after --)" ;;
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

[ "$db" = postgres ] && ensure_apt_packages postgresql
ensure_venv requirements.txt
if [ "$db" = postgres ]; then
    tmp_dir=$(mktemp -d /tmp/observatory-heatmap-bench.XXXXXX)
    chmod 755 "$tmp_dir"
    pg_port=$(free_port)
    log "Starting PostgreSQL on 127.0.0.1:$pg_port"
    start_postgres "$pg_port" fast  # the bench measures reads; the seed need not be durable
    export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/observatory"
fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python bench/heatmap_bench.py "${bench_args[@]}"
