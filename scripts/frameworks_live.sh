#!/usr/bin/env bash
# The live tests of real agent frameworks (issue 11) against a fresh server, one command:
#
#   bash scripts/frameworks_live.sh                   # every framework
#   bash scripts/frameworks_live.sh autogen crewai    # some of them
#
# Builds each framework's venv from PyPI when it is missing (OBSERVATORY_FRAMEWORKS_BUILD=1;
# under $OBSERVATORY_FRAMEWORK_VENVS, default .venv/frameworks), then runs
# tests/e2e/test_frameworks_live.py through scripts/test.sh (real PostgreSQL and Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
selection=()
for name in "$@"; do
    selection+=("$name")
done
args=(tests/e2e/test_frameworks_live.py -m frameworks -v)
if [ ${#selection[@]} -gt 0 ]; then
    expression=$(printf ' or %s' "${selection[@]}")
    args+=(-k "${expression:4}")
fi
export OBSERVATORY_FRAMEWORKS_BUILD="${OBSERVATORY_FRAMEWORKS_BUILD:-1}"
exec bash scripts/test.sh "${args[@]}"
