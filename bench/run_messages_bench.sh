#!/usr/bin/env bash
# Messages between agents on a throwaway PostgreSQL (the production database): native ingest
# rate, and server time of the sequence diagram and the agent graph with 5,000 messages in a
# session and 1M in the project. Prints the figures and deletes everything; --sqlite runs it on
# SQLite instead (with 100k messages in the project unless told otherwise).
#
#   bash bench/run_messages_bench.sh                 # PostgreSQL, 1M messages in the project
#   bash bench/run_messages_bench.sh --sqlite -- --requests 10
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args --sqlite "$@"
trap_cleanup_bench
prepare_read_bench messages-bench
print_bench_date --load
if [ "$db" = postgres ] && [ ${#bench_args[@]} -eq 0 ]; then
    bench_args=(--project-messages 1000000)
fi
python bench/messages_bench.py "${bench_args[@]}"
