#!/usr/bin/env bash
# Server time of the test heatmap at 500 tests x 200 runs on a throwaway PostgreSQL (the
# production database): starts the server, runs bench/heatmap_bench.py against an empty
# database in it, prints the figures and deletes everything. --sqlite runs it on SQLite instead.
#
#   bash bench/run_heatmap_bench.sh                  # PostgreSQL
#   bash bench/run_heatmap_bench.sh --sqlite -- --requests 20
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args --sqlite "$@"
trap_cleanup_bench
prepare_read_bench heatmap-bench
print_bench_date --load
python bench/heatmap_bench.py "${bench_args[@]}"
