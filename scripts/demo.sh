#!/usr/bin/env bash
# Run Agent Observatory with demo data on this machine, with no configuration: SQLite and the
# embedded Celery broker in data/, gunicorn on 127.0.0.1:${PORT:-8000} and one worker with beat.
# Safe to re-run: migrations, the admin user and the demo project are reused, and the demo data
# is sent only once (pass --reseed to send it again). Ctrl-C stops everything.
#
#   bash scripts/demo.sh [--reseed]
#
# DATABASE_URL, CELERY_BROKER_URL and the other settings in .env.example are used when set.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

reseed=false
for arg in "$@"; do
    case $arg in
        --reseed) reseed=true ;;
        -h | --help)
            sed -n '2,10s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *) die "unknown argument: $arg (try --help)" ;;
    esac
done

port=${PORT:-8000}
url="http://127.0.0.1:$port"
export OBSERVATORY_DATA_DIR=${OBSERVATORY_DATA_DIR:-$PWD/data}
data_dir=$OBSERVATORY_DATA_DIR
log_dir=$data_dir/logs
gunicorn_pid=""
worker_pid=""

stop_all() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "$gunicorn_pid$worker_pid" ]; then
        log "Stopping the web server and the worker (the worker can take ~15 s)"
        [ -n "$gunicorn_pid" ] && stop_pid "$gunicorn_pid" 30
        [ -n "$worker_pid" ] && stop_pid "$worker_pid" 60
    fi
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Answer 0 once $1 answers HTTP (any status: an error page still means the server is up).
answers_http() {
    python - "$1" <<'PYTHON'
import sys
import urllib.error
import urllib.request

try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
except OSError:
    sys.exit(1)
PYTHON
}

ensure_venv requirements-demo.txt
if port_in_use "$port"; then
    die "something already listens on 127.0.0.1:$port; stop it or run: PORT=8001 bash scripts/demo.sh"
fi
mkdir -p "$log_dir"
export DJANGO_SETTINGS_MODULE=config.settings

# Settings refuse to start without SECRET_KEY when DEBUG is false: keep one per data directory.
if [ -z "${SECRET_KEY:-}${SECRET_KEY_FILE:-}" ]; then
    if [ ! -s "$data_dir/secret_key" ]; then
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(50))' \
            >"$data_dir/secret_key")
    fi
    export SECRET_KEY_FILE="$data_dir/secret_key"
fi
export DEBUG=false
export SITE_URL=${SITE_URL:-$url}

log "Migrating the database"
python manage.py migrate --noinput
log "Collecting static files"
python manage.py collectstatic --noinput >/dev/null

if [ ! -s "$data_dir/admin_password" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(12))' \
        >"$data_dir/admin_password")
fi
admin_password=$(cat "$data_dir/admin_password")
log "Creating (or updating) the superuser admin"
DEMO_ADMIN_PASSWORD=$admin_password python - <<'PYTHON'
import os

import django

django.setup()
from django.contrib.auth import get_user_model

user, _ = get_user_model().objects.get_or_create(username="admin")
user.is_staff = user.is_superuser = user.is_active = True
user.set_password(os.environ["DEMO_ADMIN_PASSWORD"])
user.save()
PYTHON

log "Creating (or reusing) the project demo"
project_output=$(python manage.py create_project demo --owner admin)
printf '%s\n' "$project_output" | sed '$d'
api_key=$(printf '%s\n' "$project_output" | tail -n 1)
case $api_key in
    "" | *" "*) die "create_project did not print an API key on its last line" ;;
esac

has_sessions=$(python - <<'PYTHON'
import django

django.setup()
from ingest.models import Session

print(Session.objects.filter(project__slug="demo").exists())
PYTHON
)

log "Starting gunicorn on $url and a Celery worker with beat (logs in $log_dir)"
# --no-control-socket: gunicorn's control socket defaults to one path per user
# (~/.gunicorn/gunicorn.ctl), which another gunicorn on this machine may already hold.
# gthread: a sync worker busy with one response past --timeout (30 s) is killed, and a CSV export
# of millions of rows streams for longer; a gthread worker keeps answering the arbiter meanwhile.
gunicorn config.wsgi --workers 3 --worker-class gthread --threads 4 \
    --bind "127.0.0.1:$port" --no-control-socket \
    --access-logfile "$log_dir/access.log" --error-logfile "$log_dir/gunicorn.log" &
gunicorn_pid=$!
celery -A config worker -B -l info --concurrency 2 >>"$log_dir/worker.log" 2>&1 &
worker_pid=$!

deadline=$((SECONDS + 60))
until answers_http "$url/accounts/login/"; do
    if ! kill -0 "$gunicorn_pid" 2>/dev/null; then
        tail -n 30 "$log_dir/gunicorn.log" >&2
        die "gunicorn exited; its log is $log_dir/gunicorn.log"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "no answer from $url within 60 s; see $log_dir/gunicorn.log"
    sleep 0.2
done

if [ "$has_sessions" = True ] && [ "$reseed" = false ]; then
    log "The demo project already has sessions: not seeding again (use --reseed to send more)"
else
    log "Sending demo sessions through the ingest API"
    python manage.py seed_demo --url "$url" --api-key "$api_key"
    log "Sending the arena's messages between agents and a workflow per round"
    python manage.py seed_messages --url "$url" --api-key "$api_key"
    python manage.py seed_test_runs --url "$url" --api-key "$api_key"
    log "Sending demo sessions with the real agentops SDK (its own venv, a local fake LLM)"
    python manage.py seed_agentops_demo --url "$url" --api-key "$api_key" \
        || log "Warning: the agentops demo sessions were not all sent (see above); continuing"
    log "Sending a support workload with injected anomalies and failure patterns"
    python manage.py seed_analytics_demo --url "$url" --api-key "$api_key"
    log "Computing trends, anomalies and error clusters over the whole history"
    python manage.py recompute_analytics --project demo --wait-for-summaries 300
fi

cat <<EOF

  ============================================================================
   Agent Observatory is running at $url/

   Log in:    admin / $admin_password
   API key:   $api_key   (project "demo")
   Logs:      $log_dir/  (gunicorn.log, access.log, worker.log)

   Ctrl-C stops everything.
  ============================================================================

EOF

# Wait in the foreground; if either process dies on its own, stop the other one too.
set +e
wait -n "$gunicorn_pid" "$worker_pid"
status=$?
set -e
if kill -0 "$gunicorn_pid" 2>/dev/null; then
    die "the Celery worker stopped (exit $status); see $log_dir/worker.log"
fi
die "gunicorn stopped (exit $status); see $log_dir/gunicorn.log"
