#!/usr/bin/env bash
# Scale (issue 15) on a throwaway durable PostgreSQL (fsync=on, synchronous_commit=on: the server
# defaults): load 1M spans through the OTLP parser and the store, build the summaries and the
# analytics, then time every page, the events CSV and the bytes per span (bench/scale.py).
#
#   bash bench/run_scale.sh                              # 1M spans, then delete everything
#   bash bench/run_scale.sh -- --spans 10000000          # 10M
#   bash bench/run_scale.sh --keep -- --spans 100000     # keep the loaded database, print its dir
#   bash bench/run_scale.sh --reuse /tmp/observatory-scale.XXXXXX   # time again, no new load
#
# Options (before --): --keep (leave the temp dir and its database), --reuse DIR (start the
# PostgreSQL a --keep run left in DIR instead of a new one; implies --keep). Everything after --
# goes to bench/scale.py.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

reuse=""
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --reuse) reuse=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
parse_bench_args "--keep" ${args[@]+"${args[@]}"}
trap_cleanup_bench
ensure_apt_packages postgresql python3-venv
ensure_venv requirements.txt
if [ -n "$reuse" ]; then
    keep=true
    tmp_dir=$reuse
    [ -f "$tmp_dir/pg/data/PG_VERSION" ] || die "$tmp_dir holds no PostgreSQL cluster"
    bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
    pg_ctl=$bin/pg_ctl
    pg_port=$(free_port)
    log "Starting the kept PostgreSQL in $tmp_dir on 127.0.0.1:$pg_port"
    runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -l "$tmp_dir/pg/server.log" -w -t 120 start \
        -o "-p $pg_port -k $tmp_dir/pg -c listen_addresses=127.0.0.1" >/dev/null \
        || { tail "$tmp_dir/pg/server.log" >&2; die "PostgreSQL did not start"; }
    export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/observatory"
else
    make_tmp_dir scale
    start_bench_postgres durable "durable: fsync=on, synchronous_commit=on"
fi
export OBSERVATORY_DATA_DIR="$tmp_dir/data" LOG_LEVEL=WARNING DEBUG=false SECRET_KEY=bench
mkdir -p "$OBSERVATORY_DATA_DIR"
log "Migrating"
python manage.py migrate --no-input -v 0
print_bench_date --load
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench' || echo ' (+ uncommitted changes)')"
python bench/scale.py ${bench_args[@]+"${bench_args[@]}"}
print_bench_date --load
