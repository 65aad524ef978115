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
source bench/common.sh
rm -rf "$DIR" && mkdir -p "$DIR"
"$BIN" generate "$DIR/crm.csv" --rows "$ROWS" --distinct-ratio 0.6 --seed 5
sandbox_job "$DIR/job.toml" "$DIR/crm.csv" "$DIR" 300 "1000000/1s" "0s"
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
