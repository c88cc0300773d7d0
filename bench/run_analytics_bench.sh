#!/usr/bin/env bash
# The analytics benchmark with one command: the anomaly detector's precision and recall on
# synthetic data (no database), then rollup timings on a throwaway PostgreSQL (durable settings,
# as in production) loaded with synthetic spans. Prints figures; see bench/analytics_bench.py.
#
#   bash bench/run_analytics_bench.sh                      # 1M spans, 5 detector seeds
#   bash bench/run_analytics_bench.sh --spans 200000 --seeds 2
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

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
trap_cleanup_bench

ensure_apt_packages postgresql python3-venv
ensure_venv requirements.txt
make_tmp_dir analytics-bench --data-dir
export DEBUG=false SECRET_KEY=bench LOG_LEVEL=WARNING

print_bench_date
log "python bench/analytics_bench.py detect --seeds $seeds"
DATABASE_URL="sqlite:///$OBSERVATORY_DATA_DIR/unused.sqlite3" \
    python bench/analytics_bench.py detect --seeds "$seeds"

start_bench_postgres durable durable
python manage.py migrate --no-input -v 0
log "python bench/analytics_bench.py rollups --spans $spans"
python bench/analytics_bench.py rollups --spans "$spans"
