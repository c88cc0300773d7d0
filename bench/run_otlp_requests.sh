#!/usr/bin/env bash
# The CPU, statements and transactions of single OTLP requests, whole (bench/otlp_requests.py),
# against a throwaway durable PostgreSQL and Redis broker (no worker), as run_otlp_bench.sh sets
# them up, without gunicorn: every figure is per request, so other load on the machine does not
# change it.
#
#   bash bench/run_otlp_requests.sh                                   # one-span, 2,000 requests
#   bash bench/run_otlp_requests.sh -- --profile small-traces --requests 100 --profile-top 40
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args "--keep" "$@"
trap_cleanup_bench
ensure_apt_packages postgresql redis-server python3-venv
ensure_venv requirements.txt
make_tmp_dir otlp-requests --data-dir
start_bench_postgres durable "durable: fsync=on, synchronous_commit=on"
start_bench_broker_and_migrate
python bench/otlp_requests.py ${bench_args[@]+"${bench_args[@]}"}
