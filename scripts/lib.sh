# Shell helpers shared by scripts/demo.sh and scripts/test.sh. Source it; do not run it.
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
