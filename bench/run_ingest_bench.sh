#!/usr/bin/env bash
# Measure native-ingest throughput on this machine with one command. Starts a throwaway
# PostgreSQL (durable: fsync=on, synchronous_commit=on, full_page_writes=on, i.e. the server
# defaults) and a throwaway Redis as the Celery broker, migrates a fresh database, creates a
# project, starts gunicorn, runs bench/ingest_bench.py against it, prints the figures and stops
# everything. --sqlite measures the zero-config default (SQLite in WAL mode) instead.
#
#   bash bench/run_ingest_bench.sh                          # PostgreSQL, 200k events, batch 500
#   bash bench/run_ingest_bench.sh --sqlite                 # zero-config SQLite
#   bash bench/run_ingest_bench.sh --workers 3 -- --events 50000 --gzip
#
# Options (before --): --sqlite, --workers N (gunicorn workers, default 2 x cores + 1),
# --threads N (gunicorn gthread threads per worker, default 1 = sync worker),
# --broker redis|filesystem (default redis), --celery-worker (also run a Celery worker so the
# summary tasks compete for the same cores, as in production), --keep (leave the temp dir).
# Everything after -- goes to ingest_bench.py (default: --events 200000 --batch 500).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args "--sqlite --workers --threads --broker --celery-worker --keep" "$@"
trap_cleanup_bench
start_ingest_server bench

[ "${#bench_args[@]}" -eq 0 ] && bench_args=(--events 200000 --batch 500)
log "python bench/ingest_bench.py ${bench_args[*]}"
print_bench_date
print_ingest_server
bench_status=0
python bench/ingest_bench.py --url "http://127.0.0.1:$port" --api-key "$api_key" \
    --cpu-roots "$(ingest_cpu_roots)" "${bench_args[@]}" || bench_status=$?
python manage.py shell -v 0 -c "
from ingest.models import ReceivedRecord, Session, Span, SpanPayload
print(f'rows stored: received={ReceivedRecord.objects.count()} sessions={Session.objects.count()}'
      f' spans={Span.objects.count()} payloads={SpanPayload.objects.count()}')"
report_gunicorn_errors
exit "$bench_status"
