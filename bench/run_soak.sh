#!/usr/bin/env bash
# Scale-out soak (issue 15): the topology of docs/deployment.md on this machine. A throwaway
# durable PostgreSQL (fsync=on, synchronous_commit=on) and Redis, two gunicorn web servers, two
# Celery workers (one on the ingest and analytics queues, one on alerts and reports) and beat;
# bench/soak.py sends OTLP small traces to both web servers at a steady rate for --minutes, waits
# for the workers to catch up and prints the counts, latencies, queue lengths and CPU per process.
#
#   bash bench/run_soak.sh                          # 10 minutes at half the measured capacity
#   bash bench/run_soak.sh -- --rate 400 --minutes 2
#
# Options (before --): --keep (leave the temp dir, with every process's log). Everything after --
# goes to bench/soak.py (--rate spans/s, default: half of what a 20 s burst measured first;
# --minutes, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

web_pids=()
celery_pids=()
stop_soak() {
    local pid
    for pid in ${web_pids[@]+"${web_pids[@]}"} ${celery_pids[@]+"${celery_pids[@]}"}; do
        stop_pid "$pid" 30
    done
    cleanup_bench
}

parse_bench_args "--keep" "$@"
trap stop_soak EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ensure_apt_packages postgresql redis-server python3-venv
ensure_venv requirements.txt

make_tmp_dir soak --data-dir
start_bench_postgres durable "durable: fsync=on, synchronous_commit=on"
redis_port=$(free_port)
log "Starting Redis (Celery broker) on 127.0.0.1:$redis_port"
start_redis "$redis_port"
export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
export DEBUG=false SECRET_KEY=bench LOG_LEVEL=WARNING
# Alert rules are judged every 15 s, so the soak sees forty evaluations in ten minutes.
export OBSERVATORY_ALERT_SECONDS=15

log "Migrating a fresh database"
python manage.py migrate --no-input -v 0
api_key=$(python manage.py create_project soak | tail -n 1)

roots=()
ports=()
for name in web1 web2; do
    port=$(free_port)
    gunicorn config.wsgi --bind "127.0.0.1:$port" --workers 2 --worker-class gthread \
        --threads 2 --timeout 120 --no-control-socket --log-level warning \
        >"$tmp_dir/$name.log" 2>&1 &
    web_pids+=($!)
    roots+=("$name=$!")
    ports+=("$port")
    wait_for_port "$port" "$!" gunicorn "$tmp_dir/$name.log"
done
# The heavy queues share one worker of two processes; alerts (and the rare reports) have their
# own, so no summary or refresh ever sits in front of an alert.
for spec in "ingest-analytics:ingest,analytics:2" "alerts-reports:alerts,reports:1"; do
    IFS=: read -r name queues concurrency <<<"$spec"
    celery -A config worker -Q "$queues" --concurrency "$concurrency" --hostname "$name@%h" \
        --loglevel WARNING >"$tmp_dir/$name.log" 2>&1 &
    celery_pids+=($!)
    roots+=("$name=$!")
done
celery -A config beat --loglevel WARNING >"$tmp_dir/beat.log" 2>&1 &
celery_pids+=($!)
roots+=("beat=$!" "postgres=$(head -n 1 "$tmp_dir/pg/data/postmaster.pid")" "redis=$redis_pid")
log "Web servers on :${ports[0]} and :${ports[1]}; workers ingest+analytics, alerts+reports; beat"

print_bench_date --load
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench' || echo ' (+ uncommitted changes)')"
status=0
python bench/soak.py --urls "http://127.0.0.1:${ports[0]},http://127.0.0.1:${ports[1]}" \
    --api-key "$api_key" --redis-url "$CELERY_BROKER_URL" \
    --cpu-roots "$(IFS=,; echo "${roots[*]}")" ${bench_args[@]+"${bench_args[@]}"} || status=$?
print_bench_date --load
for log_file in "$tmp_dir"/web*.log "$tmp_dir"/*-*.log "$tmp_dir/beat.log"; do
    if grep -q -E 'Traceback|ERROR' "$log_file"; then
        log "$(basename "$log_file") logged errors (first lines):"
        grep -m 10 -E 'Traceback|Error|ERROR' "$log_file" >&2
    fi
done
exit "$status"
