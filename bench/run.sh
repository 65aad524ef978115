#!/usr/bin/env bash
# The scale benchmark (issue 5): a generated CRM export of ROWS rows, enriched with every number
# already cached, against polars' and DuckDB's own CSV-to-Parquet conversion of the same file,
# all measured in this run on this machine. Prints wall time, peak memory and the ratios.
#
#   bench/run.sh [ROWS]            (default 10000000; needs ~3 GB of disk in $BENCH_DIR)
#
# Each timed command runs REPEAT times (default 3), alternating, and the median counts.
#
# Installs polars and duckdb from PyPI into a virtual environment ($BENCH_DIR/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
DIR=${BENCH_DIR:-$PWD/.bench}
mkdir -p "$DIR"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
if [ ! -x "$DIR/venv/bin/python" ]; then
  python3 -m venv "$DIR/venv"
  "$DIR/venv/bin/pip" install -q polars duckdb
fi
PY="$DIR/venv/bin/python"
source bench/common.sh

CSV="$DIR/crm_$ROWS.csv"
[ -f "$CSV" ] || "$BIN" generate "$CSV" --rows "$ROWS" --distinct-ratio 0.6 --seed 5
sandbox_job "$DIR/job.toml" "$CSV" "$DIR" 300 "1000000/1s" "0s"

REPEAT=${REPEAT:-3}
# once NAME COMMAND...: one run; wall seconds and peak RSS (KB) appended to $DIR/NAME.runs
once() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$DIR/$name.last" "$@" > "$DIR/$name.log" 2>&1
  cat "$DIR/$name.last" >> "$DIR/$name.runs"
}
# report NAME: the median run (by wall time) into $DIR/NAME.time, printed with every run
report() {
  local name=$1
  sort -n "$DIR/$name.runs" | awk -v n="$(wc -l < "$DIR/$name.runs")" 'NR == int((n + 1) / 2)' > "$DIR/$name.time"
  read -r wall kb < "$DIR/$name.time"
  printf '%-34s %8.2f s %8d MB   (runs: %s)\n' "$name" "$wall" $((kb / 1024)) \
    "$(awk '{printf "%s%.2f", (NR > 1 ? ", " : ""), $1}' "$DIR/$name.runs")"
}
# measure NAME COMMAND...: one timed run, reported
measure() {
  local name=$1
  rm -f "$DIR/$name.runs"
  once "$@"
  report "$name"
}

echo "rows: $ROWS, file: $(du -h "$CSV" | cut -f1), machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB"
# Fill the cache once (every number looked up through the in-process sandbox).
if [ ! -d "$DIR/state" ]; then
  measure "phone-enrich, first run (lookups)" "$BIN" run "$DIR/job.toml" --progress log
  # The second run folds the first run's log into a snapshot (once), as a second night would.
  measure "phone-enrich, second run (compacts)" "$BIN" run "$DIR/job.toml" --progress log
fi
POLARS="import polars as pl
pl.scan_csv('$CSV').sink_parquet('$DIR/polars.parquet', compression='zstd')"
DUCKDB="import duckdb
duckdb.sql(\"COPY (SELECT * FROM read_csv('$CSV')) TO '$DIR/duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)\")"
for name in "polars CSV -> Parquet" "DuckDB CSV -> Parquet" "phone-enrich, all cached"; do
  rm -f "$DIR/$name.runs"
done
for _ in $(seq "$REPEAT"); do
  once "polars CSV -> Parquet" "$PY" -c "$POLARS"
  once "DuckDB CSV -> Parquet" "$PY" -c "$DUCKDB"
  once "phone-enrich, all cached" "$BIN" run "$DIR/job.toml" --progress log --report "$DIR/report.json"
done
for name in "polars CSV -> Parquet" "DuckDB CSV -> Parquet" "phone-enrich, all cached"; do
  report "$name"
done

read -r polars _ < "$DIR/polars CSV -> Parquet.time"
read -r duck _ < "$DIR/DuckDB CSV -> Parquet.time"
read -r ours _ < "$DIR/phone-enrich, all cached.time"
"$PY" -c "print(f'ratio to polars: {$ours / $polars:.2f}   ratio to DuckDB: {$ours / $duck:.2f}')"
"$PY" -c "
import json; s = json.load(open('$DIR/report.json'))['summary']
print('stages (s):', s['stages'], ' cached:', s['plan']['cached'], ' requests:', s['requests'])"
echo "state store: $(du -sh "$DIR/state" | cut -f1) for $("$BIN" cache stats --state "$DIR/state" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["entries"])') answers"
