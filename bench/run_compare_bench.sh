#!/usr/bin/env bash
# Server time of comparing two sessions of 2,000 steps on a throwaway PostgreSQL (the
# production database): starts the server, runs bench/compare_bench.py against an empty
# database in it, prints the figures and deletes everything. --sqlite runs it on SQLite instead.
#
#   bash bench/run_compare_bench.sh                  # PostgreSQL
#   bash bench/run_compare_bench.sh --sqlite -- --requests 3
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args --sqlite "$@"
trap_cleanup_bench
prepare_read_bench compare-bench
print_bench_date --load
python bench/compare_bench.py "${bench_args[@]}"
