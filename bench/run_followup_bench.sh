#!/usr/bin/env bash
# What the worker's follow-up work after ingest costs (bench/followup_bench.py), on a
# throwaway durable PostgreSQL (or, with --sqlite, the embedded default) and a Redis broker with
# no worker: the bench runs each request's follow-up tasks itself, as the worker would. Every
# figure is CPU per 1,000 spans, so other load on the machine changes it less than a rate.
#
#   bash bench/run_followup_bench.sh                          # the soak's traffic, 100 requests
#   bash bench/run_followup_bench.sh -- --session-traces 16   # longer sessions
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
make_tmp_dir followup --data-dir
if [ "$db" = postgres ]; then
    start_bench_postgres durable "durable: fsync=on, synchronous_commit=on"
else
    export DATABASE_URL="sqlite:///$OBSERVATORY_DATA_DIR/db.sqlite3"
fi
redis_port=$(free_port)
start_redis "$redis_port"
export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
export DEBUG=false SECRET_KEY=bench LOG_LEVEL=WARNING
python manage.py migrate --no-input -v 0
print_bench_date
python bench/followup_bench.py ${bench_args[@]+"${bench_args[@]}"}
