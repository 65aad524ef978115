#!/usr/bin/env bash
# The state store over a week of nightly reruns (issue 5): night 1 fills the store from a
# generated export of ROWS rows; nights 2 to 7 run with --refresh, the worst case, every answer
# asked again and rewritten. Prints the state directory's size after each night and the time a
# load of the store takes (an all-cached run's `cache_s`).
#
#   bench/week.sh [ROWS] [NIGHTS]   (default 1000000 rows, 7 nights)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
NIGHTS=${2:-7}
DIR=${BENCH_DIR:-$PWD/.bench}/week
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/phone-enrich-target}"
cargo build --release -q
BIN="$CARGO_TARGET_DIR/release/phone-enrich"
rm -rf "$DIR" && mkdir -p "$DIR"
"$BIN" generate "$DIR/crm.csv" --rows "$ROWS" --distinct-ratio 0.6 --seed 5
cat > "$DIR/job.toml" <<TOML
[input]
path = "$DIR/crm.csv"
phone_columns = ["phone"]
[output]
path = "$DIR/enriched.parquet"
[state]
dir = "$DIR/state"
[provider]
kind = "sandbox"
batch_size = 300
request_limit = "1000000/1s"
identical_limit = "3/1s"
concurrency = 14
[provider.sandbox]
request_limit = "1000000/1s"
identical_limit = "3/1s"
latency = "0s"
TOML
for night in $(seq "$NIGHTS"); do
  flags=()
  [ "$night" -gt 1 ] && flags=(--refresh)
  "$BIN" run "$DIR/job.toml" --progress log "${flags[@]}" > "$DIR/night$night.log" 2>&1
  "$BIN" run "$DIR/job.toml" --progress log --report "$DIR/report.json" > /dev/null 2>&1
  cache_s=$(python3 -c "import json; print(json.load(open('$DIR/report.json'))['summary']['stages']['cache_s'])")
  printf 'night %d: %6.1f MB on disk, %s answers, load %s s\n' "$night" \
    "$(du -sb "$DIR/state" | awk '{print $1 / 1e6}')" \
    "$("$BIN" cache stats --state "$DIR/state" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')" \
    "$cache_s"
done
