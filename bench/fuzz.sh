#!/usr/bin/env bash
# Fuzz every endpoint of a throwaway server (issue 14): schemathesis over the OpenAPI schema
# (/api/v1/schema/, every operation) once with a key of each scope, then seeded mutations of
# the committed OTLP captures posted to /v1/* (bench/fuzz_otlp.py, checked against the
# database). Prints the counts; exits non-zero on any 500 or lost data. schemathesis lives in
# its own venv (.venv/fuzz), kept out of the test suite's requirements.
#
#   bash bench/fuzz.sh                          # 3,000 OTLP cases, schemathesis defaults
#   bash bench/fuzz.sh -- --cases 500 --seed 7  # arguments after -- go to fuzz_otlp.py
#
# SCHEMATHESIS_MAX_EXAMPLES (default 50) bounds the cases schemathesis makes per operation;
# FUZZ_SCOPES (default "ingest read actions poll") picks the keys.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

parse_bench_args "--sqlite --workers --keep" "$@"
trap_cleanup_bench

fuzz_venv=.venv/fuzz
if [ ! -x "$fuzz_venv/bin/schemathesis" ]; then
    log "Installing schemathesis into $fuzz_venv"
    python3 -m venv "$fuzz_venv"
    "$fuzz_venv/bin/pip" install -q "schemathesis==4.32.5"
fi

start_ingest_server fuzz
base="http://127.0.0.1:$port"
print_bench_date

status=0
for scope in ${FUZZ_SCOPES:-ingest read actions poll}; do
    key=$(python manage.py create_api_key bench --name "fuzz-$scope" --scope "$scope" | tail -n 1)
    log "schemathesis, a key with scope $scope"
    "$fuzz_venv/bin/schemathesis" run "$base/api/v1/schema/?format=json" \
        --header "Authorization: Bearer $key" --url "$base" \
        --checks not_a_server_error --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
        --no-color >"$tmp_dir/schemathesis-$scope.log" 2>&1 || status=1
    # The failures (each with a curl command to reproduce it) and the summary.
    sed -n '/^=* FAILURES =*$/,$p; /^=* SUMMARY =*$/,$p' "$tmp_dir/schemathesis-$scope.log" |
        awk '!seen[$0]++ || /^$/' | head -n 300
done

log "OTLP corpus against /v1/*"
python bench/fuzz_otlp.py --url "$base" ${bench_args[@]+"${bench_args[@]}"} || status=1
report_gunicorn_errors
exit "$status"
