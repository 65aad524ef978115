#!/usr/bin/env bash
# Object storage (issue 19): a 1-million-row export enriched from a bucket to a bucket against
# the same run on local files, every number cached, on a local S3 server (moto, as .ci/test
# starts it); and the spool's peak disk use during the bucket run.
#
# Usage: bench/object_store.sh [ROWS] [DIR]   (from the repository's root; needs python3)
set -euo pipefail
ROWS="${1:-1000000}"
DIR="${2:-$(mktemp -d)}"
REPS="${REPS:-3}"
source bench/common.sh

venv="${PHONE_ENRICH_VENV:-$HOME/.cache/phone-enrich-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r .ci/requirements.txt
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$DIR/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null && break
    sleep 0.2
done
eval "$("$venv/bin/python" .ci/s3_users.py "http://127.0.0.1:$port")"
export PHONE_ENRICH_S3_ENDPOINT PHONE_ENRICH_S3_KEY_ID PHONE_ENRICH_S3_SECRET
export AWS_ACCESS_KEY_ID="$PHONE_ENRICH_S3_KEY_ID" AWS_SECRET_ACCESS_KEY="$PHONE_ENRICH_S3_SECRET"
export AWS_ENDPOINT_URL="$PHONE_ENRICH_S3_ENDPOINT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
s3() { "$venv/bin/python" tests/it/s3.py "$@"; }

"$BIN" generate "$DIR/crm.csv.gz" --rows "$ROWS" --seed 19 2>/dev/null
sandbox_job "$DIR/job.toml" "$DIR/crm.csv.gz" "$DIR" 300 "100000/1s" "0ms"
echo "filling the cache: $("$BIN" run "$DIR/job.toml" --progress log 2>&1 | tail -c 300 | tr '\n' ' ')"
s3 mkbucket bench
s3 put bench exports/crm.csv.gz "$DIR/crm.csv.gz"

# Wall time of a run, in seconds.
timed() {
    local start end
    start=$(date +%s.%N)
    "$BIN" run "$DIR/job.toml" --progress log "$@" 2>>"$DIR/runs.log"
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
# The spool directory's largest size while a command runs, in bytes.
peak_of() {
    local peak=0 size
    "$@" &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        size=$(du -sb "$DIR/state/spool" 2>/dev/null | cut -f1 || echo 0)
        [ "${size:-0}" -gt "$peak" ] && peak=$size
        sleep 0.05
    done
    wait "$pid"
    echo "$peak"
}

local_s=()
bucket_s=()
for _ in $(seq 1 "$REPS"); do
    local_s+=("$(timed)")
    bucket_s+=("$(timed --input s3://bench/exports/crm.csv.gz --output s3://bench/enriched/crm.parquet)")
done
peak=$(peak_of "$BIN" run "$DIR/job.toml" --progress log --input s3://bench/exports/crm.csv.gz --output s3://bench/enriched/crm.parquet 2>>"$DIR/runs.log")
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
l=$(median "${local_s[@]}")
b=$(median "${bucket_s[@]}")
input_bytes=$(stat -c %s "$DIR/crm.csv.gz")
output_bytes=$(stat -c %s "$DIR/enriched.parquet")
echo "rows: $ROWS, input $input_bytes bytes (csv.gz), output $output_bytes bytes (parquet)"
echo "local files:   ${local_s[*]} s (median $l)"
echo "bucket→bucket: ${bucket_s[*]} s (median $b)"
echo "ratio: $(echo "scale=3; $b / $l" | bc) x"
echo "spool peak: $peak bytes"
