# Shell helpers shared by scripts/demo.sh, scripts/test.sh and the bench scripts (through
# bench/lib.sh).
# Source it; do not run it.
# The scripts target a fresh Debian 12 run as root: they install only what is missing.

log() {
    printf '\033[1m==> %s\033[0m\n' "$*" >&2
}

die() {
    printf '\033[1;31mError: %s\033[0m\n' "$*" >&2
    exit 1
}

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

_apt_updated=false

# Install the given Debian packages, skipping those already installed. apt-get update runs at
# most once per script, and only when something is missing.
ensure_apt_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get"
    log "Installing Debian packages: ${missing[*]}"
    if [ "$_apt_updated" = false ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        _apt_updated=true
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# python3 with venv and ensurepip; Debian splits ensurepip into python3-venv.
ensure_python() {
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null
    then
        ensure_apt_packages python3-venv
    fi
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is required, found $(python3 --version)"
}

# Create .venv if missing, install the requirements file into it and put it first on PATH.
# The install is skipped when the requirement files have not changed since the last one that
# succeeded: pip would otherwise rebuild the editable sdk/ package on every run.
ensure_venv() {
    local requirements=$1 stamp=.venv/.installed-${1%.txt} digest
    ensure_python
    if [ ! -x .venv/bin/python ]; then
        log "Creating .venv"
        python3 -m venv .venv
    fi
    digest=$(cat requirements*.txt sdk/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
        log "Installing $requirements into .venv"
        .venv/bin/python -m pip install --disable-pip-version-check -q -r "$requirements"
        echo "$digest" >"$stamp"
    fi
    export PATH="$PWD/.venv/bin:$PATH"
    export VIRTUAL_ENV="$PWD/.venv"
}

# A TCP port that was free a moment ago on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True when something already accepts connections on 127.0.0.1:$1.
port_in_use() {
    python3 -c 'import socket, sys; sys.exit(socket.socket().connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$1"
}

# Stop a process by pid: TERM, wait up to $2 seconds (default 20), then KILL.
stop_pid() {
    local pid=$1 timeout=${2:-20} waited=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((timeout * 10)) ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    wait "$pid" 2>/dev/null || true
}

# --- Throwaway servers (scripts/test.sh, bench/lib.sh) -----------------------------------------
# These helpers share state with the caller through globals, which its cleanup trap relies on:
#   tmp_dir    read: the caller creates it (mktemp -d, chmod 755) before calling them; the
#              servers live in $tmp_dir/pg, $tmp_dir/redis.
#   pg_ctl     set by start_postgres to the pg_ctl binary; stop the server with
#              runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -m fast|immediate stop
#   redis_pid  set by start_redis; stop it with stop_pid "$redis_pid".

# initdb and postgres refuse to run as root, so the server runs as the postgres user.
runuser_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# start_postgres PORT [durable|fast] [OPTIONS]: initdb a cluster in $tmp_dir/pg/data, start it on
# 127.0.0.1:PORT (socket in $tmp_dir/pg, max_connections=200) and create the observatory
# database. durable (the default) keeps fsync, synchronous_commit and full_page_writes at the
# server defaults (on), so "accepted" means flushed to disk, as in production; fast turns them
# off, which is fine for a server that is deleted after the run. OPTIONS are more postgres
# options ("-c commit_delay=100"). Sets pg_ctl.
start_postgres() {
    local bin port=$1 mode=${2:-durable} options
    options="-p $port -k $tmp_dir/pg -c listen_addresses=127.0.0.1 -c max_connections=200"
    case $mode in
        durable) ;;
        fast) options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
        *) die "start_postgres: mode is durable or fast, not '$mode'" ;;
    esac
    options+=" ${3:-}"
    bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
    [ -x "$bin/initdb" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
    pg_ctl=$bin/pg_ctl
    mkdir -p "$tmp_dir/pg"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$tmp_dir/pg"
    fi
    runuser_pg "$bin/initdb" -D "$tmp_dir/pg/data" -U postgres --auth=trust --encoding=UTF8 \
        --no-locale >"$tmp_dir/pg/initdb.log" 2>&1 \
        || { cat "$tmp_dir/pg/initdb.log" >&2; die "initdb failed"; }
    runuser_pg "$pg_ctl" -D "$tmp_dir/pg/data" -l "$tmp_dir/pg/server.log" -w -t 60 start \
        -o "$options" >/dev/null \
        || { cat "$tmp_dir/pg/server.log" >&2; die "PostgreSQL did not start"; }
    runuser_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres observatory
}

# start_redis PORT: an in-memory Redis (no RDB, no AOF) on 127.0.0.1:PORT, data and log in
# $tmp_dir/redis; returns once it answers PING. Sets redis_pid.
start_redis() {
    local port=$1 tries=0
    mkdir -p "$tmp_dir/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$tmp_dir/redis" >"$tmp_dir/redis/server.log" 2>&1 &
    redis_pid=$!
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ] || ! kill -0 "$redis_pid" 2>/dev/null; then
            cat "$tmp_dir/redis/server.log" >&2
            die "Redis did not start"
        fi
        sleep 0.1
    done
}

# wait_for_port PORT PID NAME LOG: wait up to 30 s until 127.0.0.1:PORT accepts connections;
# if process PID exits first or time runs out, print LOG and die with "NAME did not start".
wait_for_port() {
    local port=$1 pid=$2 name=$3 log_file=$4 tries=0
    until port_in_use "$port"; do
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
            cat "$log_file" >&2
            die "$name did not start"
        fi
        sleep 0.1
    done
}
