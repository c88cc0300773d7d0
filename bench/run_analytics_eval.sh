#!/usr/bin/env bash
# The independent evaluation set of the anomaly engine (bench/analytics_eval.py) on a throwaway
# PostgreSQL: fourteen days of a support desk sent through OTLP, judged by the live analytics
# path, scored against the injected incidents beside a static-threshold baseline.
#
#   bash bench/run_analytics_eval.sh                 # low and medium traffic
#   bash bench/run_analytics_eval.sh --levels low
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

trap_cleanup_bench
ensure_apt_packages postgresql python3-venv
ensure_venv requirements-dev.txt  # the OpenTelemetry SDK and its OTLP encoder
make_tmp_dir analytics-eval --data-dir
# memory://: the tasks ingest queues go nowhere; the bench runs the same steps with its own clock.
export DEBUG=false SECRET_KEY=bench LOG_LEVEL=WARNING CELERY_BROKER_URL=memory://

print_bench_date --load
start_bench_postgres fast
python manage.py migrate --no-input -v 0
log "python bench/analytics_eval.py $*"
python bench/analytics_eval.py "$@"
