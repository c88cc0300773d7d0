#!/usr/bin/env bash
# Measure OTLP trace ingest (POST /v1/traces, protobuf) on this machine with one command. Starts a
# throwaway PostgreSQL (durable: fsync=on, synchronous_commit=on, full_page_writes=on, i.e. the
# server defaults) and a throwaway Redis as the Celery broker, migrates a fresh database, creates a
# project, starts gunicorn, runs bench/otlp_bench.py against it (which counts the Span rows back
# from the database and measures the in-process parse rate), prints the figures and stops
# everything. --sqlite measures the zero-config default (SQLite in WAL mode) instead.
#
#   bash bench/run_otlp_bench.sh                            # PostgreSQL, 204,800 spans, batch 512
#   bash bench/run_otlp_bench.sh --sqlite                   # zero-config SQLite
#   bash bench/run_otlp_bench.sh --workers 3 -- --spans 51200 --gzip
#
# Options (before --): --sqlite, --workers N (gunicorn workers, default 2 x cores + 1),
# --threads N (gunicorn gthread threads per worker, default 1 = sync worker),
# --broker redis|filesystem (default redis), --celery-worker (also run a Celery worker so the
# summary tasks compete for the same cores, as in production), --keep (leave the temp dir).
# Everything after -- goes to otlp_bench.py (default: --spans 204800 --batch 512).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

db=postgres
workers=$((2 * $(nproc) + 1))
threads=1
broker=redis
celery_worker=false
keep=false
bench_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --sqlite) db=sqlite ;;
        --workers) workers=$2; shift ;;
        --threads) threads=$2; shift ;;
        --broker) broker=$2; shift ;;
        --celery-worker) celery_worker=true ;;
        --keep) keep=true ;;
        --) shift; bench_args=("$@"); break ;;
        *) die "unknown option $1 (bench options go after --)" ;;
    esac
    shift
done
[ "$broker" = redis ] || [ "$broker" = filesystem ] || die "--broker is redis or filesystem"

tmp_dir=""
pg_ctl=""
redis_pid=""
gunicorn_pid=""
celery_pid=""

cleanup() {
    local status=$?
    set +e
    [ -n "$gunicorn_pid" ] && stop_pid "$gunicorn_pid" 20
    [ -n "$celery_pid" ] && stop_pid "$celery_pid" 20
    if [ -n "$pg_ctl" ] && [ -f "$tmp_dir/pg/data/postmaster.pid" ]; then
        runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -m fast stop >/dev/null 2>&1
    fi
    [ -n "$redis_pid" ] && stop_pid "$redis_pid" 5
    if [ "$keep" = true ]; then
        log "Kept $tmp_dir"
    elif [ -n "$tmp_dir" ]; then
        rm -rf "$tmp_dir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

packages=(python3-venv)
[ "$db" = postgres ] && packages+=(postgresql)
[ "$broker" = redis ] && packages+=(redis-server)
ensure_apt_packages "${packages[@]}"
ensure_venv requirements.txt

tmp_dir=$(mktemp -d /tmp/observatory-otlp-bench.XXXXXX)
chmod 755 "$tmp_dir"
export OBSERVATORY_DATA_DIR="$tmp_dir/data"
mkdir -p "$OBSERVATORY_DATA_DIR"
if [ "$db" = postgres ]; then
    pg_port=$(free_port)
    log "Starting PostgreSQL (durable: fsync=on, synchronous_commit=on) on 127.0.0.1:$pg_port"
    start_postgres "$pg_port" durable
    export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/observatory"
else
    export DATABASE_URL="sqlite:///$OBSERVATORY_DATA_DIR/db.sqlite3"
fi
if [ "$broker" = redis ]; then
    redis_port=$(free_port)
    log "Starting Redis (Celery broker) on 127.0.0.1:$redis_port"
    start_redis "$redis_port"
    export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
else
    unset CELERY_BROKER_URL  # settings fall back to the filesystem transport under DATA_DIR
fi
export DEBUG=false SECRET_KEY=bench LOG_LEVEL=WARNING

log "Migrating a fresh database"
python manage.py migrate --no-input -v 0
api_key=$(python manage.py create_project bench | tail -n 1)

if [ "$celery_worker" = true ]; then
    celery -A config worker --concurrency 1 --loglevel WARNING >"$tmp_dir/celery.log" 2>&1 &
    celery_pid=$!
fi

port=$(free_port)
worker_class=sync
[ "$threads" -gt 1 ] && worker_class=gthread
log "Starting gunicorn config.wsgi: $workers $worker_class workers x $threads threads on :$port"
gunicorn config.wsgi --bind "127.0.0.1:$port" --workers "$workers" --threads "$threads" \
    --worker-class "$worker_class" --timeout 120 --log-level warning \
    >"$tmp_dir/gunicorn.log" 2>&1 &
gunicorn_pid=$!
wait_for_port "$port" "$gunicorn_pid" gunicorn "$tmp_dir/gunicorn.log"

[ "${#bench_args[@]}" -eq 0 ] && bench_args=(--spans 204800 --batch 512)
log "python bench/otlp_bench.py ${bench_args[*]}"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores, $(uname -m)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
pg_note=""
[ "$db" = postgres ] && pg_note=" (fsync=on synchronous_commit=on full_page_writes=on)"
echo "server: gunicorn $workers $worker_class workers x $threads threads; database $db$pg_note;" \
    "broker $broker; celery worker running: $celery_worker"
roots=("gunicorn=$gunicorn_pid")
if [ "$db" = postgres ]; then
    roots+=("postgres=$(head -n 1 "$tmp_dir/pg/data/postmaster.pid")")
fi
[ -n "$redis_pid" ] && roots+=("redis=$redis_pid")
[ -n "$celery_pid" ] && roots+=("celery=$celery_pid")
bench_status=0
# --count-db: the bench counts Span rows through DATABASE_URL, exported above.
python bench/otlp_bench.py --url "http://127.0.0.1:$port" --api-key "$api_key" --count-db \
    --cpu-roots "$(IFS=,; echo "${roots[*]}")" "${bench_args[@]}" || bench_status=$?
python manage.py shell -v 0 -c "
from ingest.models import IngestRejection, ReceivedRecord, Session, Span, SpanPayload
print(f'rows stored: received={ReceivedRecord.objects.count()} sessions={Session.objects.count()}'
      f' spans={Span.objects.count()} payloads={SpanPayload.objects.count()}'
      f' rejections={IngestRejection.objects.count()}')"
if grep -q -E 'Traceback|ERROR' "$tmp_dir/gunicorn.log"; then
    log "gunicorn logged errors (first lines):"
    grep -m 20 -E 'Traceback|Error|ERROR' "$tmp_dir/gunicorn.log" >&2
fi
exit "$bench_status"
