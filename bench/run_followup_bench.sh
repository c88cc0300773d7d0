#!/usr/bin/env bash
# What the worker's follow-up work after ingest costs (bench/followup_bench.py), on a
# throwaway durable PostgreSQL and a Redis broker with no worker: the bench runs each request's
# follow-up tasks itself, as the worker would. Every figure is CPU per 1,000 spans, so other
# load on the machine changes it less than a rate.
#
#   bash bench/run_followup_bench.sh                          # the soak's traffic, 100 requests
#   bash bench/run_followup_bench.sh -- --session-traces 16   # longer sessions
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args "--keep" "$@"
trap_cleanup_bench
ensure_apt_packages postgresql redis-server python3-venv
ensure_venv requirements.txt
make_tmp_dir followup --data-dir
start_bench_postgres durable "durable: fsync=on, synchronous_commit=on"
start_bench_broker_and_migrate
python bench/followup_bench.py ${bench_args[@]+"${bench_args[@]}"}
