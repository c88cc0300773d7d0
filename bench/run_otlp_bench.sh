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
# summary tasks compete for the same cores, as in production), --pg-option NAME=VALUE (a
# PostgreSQL setting, repeatable: --pg-option commit_delay=100), --keep (leave the temp dir).
# Everything after -- goes to otlp_bench.py (default: --spans 204800 --batch 512).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args "--sqlite --workers --threads --broker --celery-worker --pg-option --keep" "$@"
trap_cleanup_bench
start_ingest_server otlp-bench

# No options: otlp_bench.py runs its headline profile, small-traces (see --profile).
log "python bench/otlp_bench.py ${bench_args[*]:-}"
print_bench_date
print_ingest_server
bench_status=0
# --count-db: the bench counts Span rows through DATABASE_URL, exported by start_ingest_server.
python bench/otlp_bench.py --url "http://127.0.0.1:$port" --api-key "$api_key" --count-db \
    --cpu-roots "$(ingest_cpu_roots)" ${bench_args[@]+"${bench_args[@]}"} || bench_status=$?
python manage.py shell -v 0 -c "
from ingest.models import IngestRejection, ReceivedRecord, Session, Span, SpanPayload
print(f'rows stored: received={ReceivedRecord.objects.count()} sessions={Session.objects.count()}'
      f' spans={Span.objects.count()} payloads={SpanPayload.objects.count()}'
      f' rejections={IngestRejection.objects.count()}')"
report_gunicorn_errors
exit "$bench_status"
