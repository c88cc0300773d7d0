# Shell helpers shared by the bench/run_*_bench.sh scripts; sources scripts/lib.sh (log, die,
# ensure_venv, start_postgres, start_redis, ...). Source it from the repository root; do not run it.
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# Globals shared with the cleanup trap: the temp dir, the throwaway servers (see scripts/lib.sh)
# and the processes a bench starts; keep=true leaves the temp dir in place.
tmp_dir=""
pg_ctl=""
redis_pid=""
gunicorn_pid=""
celery_pid=""
keep=false

# parse_bench_args "ALLOWED" ARGS...: parse the options before -- into globals; ALLOWED lists
# the options the script accepts, out of --sqlite (db=sqlite, default postgres), --keep
# (keep=true), and for the ingest servers --workers N (default 2 x cores + 1), --threads N
# (default 1), --broker redis|filesystem (default redis), --celery-worker (celery_worker=true),
# --pg-option NAME=VALUE (repeatable: a postgres setting, in pg_options).
# Everything after -- goes to bench_args.
parse_bench_args() {
    local allowed=" $1 "
    shift
    db=postgres
    workers=$((2 * $(nproc) + 1))
    threads=1
    broker=redis
    celery_worker=false
    pg_options=""
    bench_args=()
    while [ $# -gt 0 ]; do
        if [ "$1" = -- ]; then
            shift
            bench_args=("$@")
            break
        fi
        [[ $allowed == *" $1 "* ]] || die "unknown option $1 (bench options go after --)"
        case $1 in
            --sqlite) db=sqlite ;;
            --workers) workers=$2; shift ;;
            --threads) threads=$2; shift ;;
            --broker) broker=$2; shift ;;
            --celery-worker) celery_worker=true ;;
            --pg-option) pg_options+=" -c $2"; shift ;;
            --keep) keep=true ;;
        esac
        shift
    done
    [ "$broker" = redis ] || [ "$broker" = filesystem ] || die "--broker is redis or filesystem"
}

# On exit, stop whatever the bench started and delete the temp dir (unless keep=true); the
# script's exit status is kept. INT and TERM exit with 130 and 143 through the same path.
cleanup_bench() {
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

trap_cleanup_bench() {
    trap cleanup_bench EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# make_tmp_dir NAME: create /tmp/observatory-NAME.XXXXXX (world-readable, for the postgres user)
# as tmp_dir; with --data-dir also export OBSERVATORY_DATA_DIR=$tmp_dir/data and create it.
make_tmp_dir() {
    tmp_dir=$(mktemp -d "/tmp/observatory-$1.XXXXXX")
    chmod 755 "$tmp_dir"
    if [ "${2:-}" = --data-dir ]; then
        export OBSERVATORY_DATA_DIR="$tmp_dir/data"
        mkdir -p "$OBSERVATORY_DATA_DIR"
    fi
}

# start_bench_postgres durable|fast [NOTE]: a throwaway PostgreSQL in $tmp_dir on a free port
# (pg_port), logged as "Starting PostgreSQL (NOTE) on ..."; exports DATABASE_URL for it.
start_bench_postgres() {
    pg_port=$(free_port)
    log "Starting PostgreSQL${2:+ ($2)} on 127.0.0.1:$pg_port"
    start_postgres "$pg_port" "$1" "${pg_options:-}"
    export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/observatory"
}

# prepare_read_bench NAME: for the benches that seed their own data and time page reads
# (heatmap, messages): the venv and, unless db=sqlite, a throwaway PostgreSQL without
# durability (the bench measures reads; the seed need not be durable) in a temp dir.
prepare_read_bench() {
    if [ "$db" = postgres ]; then
        ensure_apt_packages postgresql
    fi
    ensure_venv requirements.txt
    if [ "$db" = postgres ]; then
        make_tmp_dir "$1"
        start_bench_postgres fast
    fi
}

# start_ingest_server NAME: for the ingest benches, from the globals parse_bench_args sets:
# install what is missing, make the temp dir, start the database (durable PostgreSQL or
# SQLite) and the broker (Redis or the filesystem transport), migrate, create the "bench"
# project (api_key), optionally start a Celery worker (celery_pid), and start gunicorn on a
# free port (port, gunicorn_pid, worker_class; log in $tmp_dir/gunicorn.log).
start_ingest_server() {
    local packages=(python3-venv)
    if [ "$db" = postgres ]; then
        packages+=(postgresql)
    fi
    if [ "$broker" = redis ]; then
        packages+=(redis-server)
    fi
    ensure_apt_packages "${packages[@]}"
    ensure_venv requirements.txt

    make_tmp_dir "$1" --data-dir
    if [ "$db" = postgres ]; then
        start_bench_postgres durable "durable: fsync=on, synchronous_commit=on"
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
    if [ "$threads" -gt 1 ]; then
        worker_class=gthread
    fi
    log "Starting gunicorn config.wsgi: $workers $worker_class workers x $threads threads on :$port"
    gunicorn config.wsgi --bind "127.0.0.1:$port" --workers "$workers" --threads "$threads" \
        --worker-class "$worker_class" --timeout 120 --log-level warning \
        >"$tmp_dir/gunicorn.log" 2>&1 &
    gunicorn_pid=$!
    wait_for_port "$port" "$gunicorn_pid" gunicorn "$tmp_dir/gunicorn.log"
}

# start_bench_broker_and_migrate: for the benches that call the application in process (no
# worker): a Redis broker on a free port, the settings they run with, the migrated database,
# and the first line of the figures.
start_bench_broker_and_migrate() {
    redis_port=$(free_port)
    start_redis "$redis_port"
    export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
    export DEBUG=false SECRET_KEY=bench LOG_LEVEL=WARNING
    python manage.py migrate --no-input -v 0
    print_bench_date
}

# The first line of a bench's figures: date, cores, and the CPU model or (--load) the load.
print_bench_date() {
    if [ "${1:-}" = --load ]; then
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores," \
            "load $(cut -d' ' -f1-3 /proc/loadavg)"
    else
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores, $(uname -m)" \
            "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    fi
}

# The "server:" line of the ingest benches: what start_ingest_server started.
print_ingest_server() {
    local pg_note=""
    if [ "$db" = postgres ]; then
        pg_note=" (fsync=on synchronous_commit=on full_page_writes=on${pg_options:+;$pg_options})"
    fi
    echo "server: gunicorn $workers $worker_class workers x $threads threads;" \
        "database $db$pg_note; broker $broker; celery worker running: $celery_worker"
}

# The --cpu-roots argument of the ingest benches: name=pid,... of the server processes.
ingest_cpu_roots() {
    local roots=("gunicorn=$gunicorn_pid")
    if [ "$db" = postgres ]; then
        roots+=("postgres=$(head -n 1 "$tmp_dir/pg/data/postmaster.pid")")
    fi
    if [ -n "$redis_pid" ]; then
        roots+=("redis=$redis_pid")
    fi
    if [ -n "$celery_pid" ]; then
        roots+=("celery=$celery_pid")
    fi
    (IFS=,; echo "${roots[*]}")
}

# Show the first error lines gunicorn logged, if any.
report_gunicorn_errors() {
    if grep -q -E 'Traceback|ERROR' "$tmp_dir/gunicorn.log"; then
        log "gunicorn logged errors (first lines):"
        grep -m 20 -E 'Traceback|Error|ERROR' "$tmp_dir/gunicorn.log" >&2
    fi
}
