#!/usr/bin/env bash
# What keeping the search index costs beside ingest (bench/search_index_bench.py), on a
# throwaway durable PostgreSQL (or, with --sqlite, the embedded default) and a Redis broker with
# no worker: the bench indexes the stored sessions itself, as the summary task would. Every
# figure is CPU per 1,000 spans, so other load on the machine changes it less than a rate.
#
#   bash bench/run_search_index_bench.sh                       # small-traces, 200 requests
#   bash bench/run_search_index_bench.sh --sqlite -- --requests 100
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args "--sqlite --keep" "$@"
trap_cleanup_bench
packages=(redis-server python3-venv)
[ "$db" = postgres ] && packages+=(postgresql)
ensure_apt_packages "${packages[@]}"
ensure_venv requirements.txt
make_tmp_dir search-index --data-dir
if [ "$db" = postgres ]; then
    start_bench_postgres durable "durable: fsync=on, synchronous_commit=on"
else
    export DATABASE_URL="sqlite:///$OBSERVATORY_DATA_DIR/db.sqlite3"
fi
start_bench_broker_and_migrate
python bench/search_index_bench.py ${bench_args[@]+"${bench_args[@]}"}
