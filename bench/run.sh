#!/usr/bin/env bash
# The scale benchmark (issues 5 and 11): a generated CRM export of ROWS rows, enriched with every
# number already cached, against what a data engineer would run instead, all measured in this
# run on this machine:
#   - polars' and DuckDB's own CSV-to-Parquet conversion of the same file (no enrichment);
#   - the polars and DuckDB enrichment scripts: strip the phone to digits, fix the 8- and
#     10-digit forms, left join an answers table taken from the cache, write Parquet with the
#     same added columns (no validation at all);
#   - phone-enrich on the same export with its phones pre-normalized to +E164 (what the
#     layouts cost).
# Prints wall time, CPU time (user + sys), peak memory, the ratios and the load average.
#
#   bench/run.sh [ROWS]            (default 10000000; needs ~5 GB of disk in $BENCH_DIR)
#   PROFILE=standard bench/run.sh  (the generator's standard profile; default: messy)
#   PROFILE=faker bench/run.sh     (an export made by Faker, not by phone-enrich's generator:
#                                   bench/faker_export.py)
#
# Each timed command runs REPEAT times (default 3), alternating, and the median counts.
#
# Installs polars and duckdb from PyPI into a virtual environment ($BENCH_DIR/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
PROFILE=${PROFILE:-messy}
DIR=${BENCH_DIR:-$PWD/.bench}
W="$DIR/$PROFILE-$ROWS"
mkdir -p "$W"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
if [ ! -x "$DIR/venv/bin/python" ]; then
  python3 -m venv "$DIR/venv"
  "$DIR/venv/bin/pip" install -q polars duckdb
fi
[ "$PROFILE" != faker ] || "$DIR/venv/bin/python" -c 'import faker' 2>/dev/null \
  || "$DIR/venv/bin/pip" install -q faker
PY="$DIR/venv/bin/python"
source bench/common.sh

CSV="$W/export.csv"
if [ ! -f "$CSV" ] && [ "$PROFILE" = faker ]; then
  "$PY" bench/faker_export.py "$CSV" "$ROWS"
elif [ ! -f "$CSV" ]; then
  "$BIN" generate "$CSV" --rows "$ROWS" --distinct-ratio 0.6 --seed 5 --profile "$PROFILE"
fi
sandbox_job "$W/job.toml" "$CSV" "$W" 300 "1000000/1s" "0s"

REPEAT=${REPEAT:-3}
# once NAME COMMAND...: one run; wall, user and sys seconds and peak RSS (KB) appended to
# $W/NAME.runs
once() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$W/$name.last" "$@" > "$W/$name.log" 2>&1
  cat "$W/$name.last" >> "$W/$name.runs"
}
# report NAME: the median run (by wall time) into $W/NAME.time, printed with every run
report() {
  local name=$1
  sort -n "$W/$name.runs" | awk -v n="$(wc -l < "$W/$name.runs")" 'NR == int((n + 1) / 2)' > "$W/$name.time"
  read -r wall user sys kb < "$W/$name.time"
  printf '%-38s %7.2f s %7.2f s CPU %7d MB   (runs: %s)\n' "$name" "$wall" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" $((kb / 1024)) \
    "$(awk '{printf "%s%.2f", (NR > 1 ? ", " : ""), $1}' "$W/$name.runs")"
}
# measure NAME COMMAND...: one timed run, reported
measure() {
  local name=$1
  rm -f "$W/$name.runs"
  once "$@"
  report "$name"
}

echo "profile: $PROFILE, rows: $ROWS, file: $(du -h "$CSV" | cut -f1), machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB"
# Fill the cache once (every number looked up through the in-process sandbox).
if [ ! -d "$W/state" ]; then
  measure "phone-enrich, first run (lookups)" "$BIN" run "$W/job.toml" --progress log
  # The second run folds the first run's log into a snapshot (once), as a second night would.
  measure "phone-enrich, second run (compacts)" "$BIN" run "$W/job.toml" --progress log
fi
# From the job's own output: the answers table the scripts join (every number the cache
# answered, with the columns phone-enrich adds), and the export with every valid phone
# rewritten as +E164 (the rest as it was).
if [ ! -f "$W/answers.parquet" ] || [ ! -f "$W/export_e164.csv" ]; then
  "$BIN" run "$W/job.toml" --progress log > /dev/null 2>&1
  "$PY" - "$W" <<'PYTHON'
import sys, polars as pl
w = sys.argv[1]
out = pl.read_parquet(f"{w}/enriched.parquet")
added = [c for c in out.columns if c.startswith("phone_")]
(out.filter(pl.col("phone_e164").is_not_null()).select(added).unique("phone_e164")
    .rename(lambda c: c.removeprefix("phone_")).write_parquet(f"{w}/answers.parquet"))
inputs = [c for c in out.columns if c not in added]
(out.with_columns(phone=pl.coalesce("phone_e164", "phone")).select(inputs)
    .write_csv(f"{w}/export_e164.csv"))
PYTHON
fi
ANSWERS="$W/answers.parquet"
ADDED="e164 status country operator region mcc mnc tz checked_at"
POLARS="import polars as pl
pl.scan_csv('$CSV').sink_parquet('$W/polars.parquet', compression='zstd')"
DUCKDB="import duckdb
duckdb.sql(\"COPY (SELECT * FROM read_csv('$CSV')) TO '$W/duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)\")"
POLARS_ENRICH="import polars as pl
d = pl.col('phone').str.replace_all(r'\D', '')
number = (pl.when((d.str.len_chars() == 11) & d.str.starts_with('8')).then(pl.lit('7') + d.str.slice(1))
          .when(d.str.len_chars() == 10).then(pl.lit('7') + d).otherwise(d))
answers = pl.scan_parquet('$ANSWERS').rename(lambda c: 'phone_' + c)
(pl.scan_csv('$CSV', schema_overrides={'phone': pl.String})
   .with_columns(phone_e164=pl.when(d != '').then(pl.lit('+') + number))
   .join(answers, on='phone_e164', how='left')
   .sink_parquet('$W/polars_enrich.parquet', compression='zstd'))"
DUCKDB_ENRICH="import duckdb
duckdb.sql(r'''
COPY (
  WITH t AS (SELECT *, regexp_replace(phone, '\D', '', 'g') AS d FROM read_csv('$CSV', all_varchar = true)),
  n AS (SELECT * EXCLUDE (d), CASE WHEN d = '' THEN NULL
          WHEN length(d) = 11 AND d LIKE '8%' THEN '+7' || substr(d, 2)
          WHEN length(d) = 10 THEN '+7' || d ELSE '+' || d END AS phone_e164 FROM t)
  SELECT n.*, $(for c in $ADDED; do [ "$c" = e164 ] || printf 'a.%s AS phone_%s, ' "$c" "$c"; done | sed 's/, $//')
  FROM n LEFT JOIN read_parquet('$ANSWERS') a ON a.e164 = n.phone_e164
) TO '$W/duckdb_enrich.parquet' (FORMAT parquet, COMPRESSION zstd)''')"
NAMES=("polars CSV -> Parquet" "DuckDB CSV -> Parquet" "polars enrichment script"
  "DuckDB enrichment script" "phone-enrich, all cached" "phone-enrich, all cached, +E164 copy")
for name in "${NAMES[@]}"; do
  rm -f "$W/$name.runs"
done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$REPEAT"); do
  once "polars CSV -> Parquet" "$PY" -c "$POLARS"
  once "DuckDB CSV -> Parquet" "$PY" -c "$DUCKDB"
  once "polars enrichment script" "$PY" -c "$POLARS_ENRICH"
  once "DuckDB enrichment script" "$PY" -c "$DUCKDB_ENRICH"
  once "phone-enrich, all cached" "$BIN" run "$W/job.toml" --progress log --report "$W/report.json"
  once "phone-enrich, all cached, +E164 copy" "$BIN" run "$W/job.toml" --progress log \
    --input "$W/export_e164.csv" --output "$W/enriched_e164.parquet"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for name in "${NAMES[@]}"; do
  report "$name"
done

wall() { read -r w _ < "$W/$1.time"; echo "$w"; }
ours=$(wall "phone-enrich, all cached")
"$PY" -c "
ours = $ours
for name, t in [('polars enrichment script', $(wall "polars enrichment script")),
                ('DuckDB enrichment script', $(wall "DuckDB enrichment script")),
                ('polars CSV -> Parquet', $(wall "polars CSV -> Parquet")),
                ('DuckDB CSV -> Parquet', $(wall "DuckDB CSV -> Parquet")),
                ('itself on the +E164 copy', $(wall "phone-enrich, all cached, +E164 copy"))]:
    print(f'phone-enrich / {name:26} {ours / t:5.2f}')"
"$PY" -c "
import json; s = json.load(open('$W/report.json'))['summary']
print('stages (s):', s['stages'], ' cached:', s['plan']['cached'], ' requests:', s['requests'])"
echo "state store: $(du -sh "$W/state" | cut -f1) for $("$BIN" cache stats --state "$W/state" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["entries"])') answers"
