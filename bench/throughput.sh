#!/usr/bin/env bash
# Throughput past one login (issue 12), through the in-process sandbox:
#  1. the same export with one login, then three, at 20 requests per 2 s per login (lists of
#     10, 20 ms latency): requests, errors, each login's fullest window, lookup time, ratio;
#  2. batch_size = "auto" against a sandbox taking lists of at most 250, beside fixed lists
#     of 250: the length settled on, the requests, the lists refused.
#
#   bench/throughput.sh [ROWS] [AUTO_ROWS]     (defaults 4000 and 150000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-4000}
AUTO_ROWS=${2:-150000}
DIR=${BENCH_DIR:-$PWD/.bench}/throughput
source bench/common.sh
rm -rf "$DIR" && mkdir -p "$DIR"

"$BIN" generate "$DIR/crm.csv" --rows "$ROWS" --seed 7 2>/dev/null
sandbox_job "$DIR/job.toml" "$DIR/crm.csv" "$DIR" 10 "20/2s" "20ms"
echo 'accounts = ["a:pa", "b:pb", "c:pc"]' >> "$DIR/job.toml"   # into [provider.sandbox]
printf 'a:pa\nb:pb\nc:pc\n' > "$DIR/accounts" && chmod 600 "$DIR/accounts"
"$BIN" run "$DIR/job.toml" --state "$DIR/one" --progress log --report "$DIR/one.json" > "$DIR/one.log" 2>&1
"$BIN" run "$DIR/job.toml" --state "$DIR/three" --set "provider.accounts_file=$DIR/accounts" \
  --progress log --report "$DIR/three.json" > "$DIR/three.log" 2>&1

"$BIN" generate "$DIR/auto.csv" --rows "$AUTO_ROWS" --seed 13 2>/dev/null
sandbox_job "$DIR/auto.toml" "$DIR/auto.csv" "$DIR" 250 "1000/1s" "2ms"
echo 'max_list = 250' >> "$DIR/auto.toml"
"$BIN" run "$DIR/auto.toml" --state "$DIR/fixed" --progress log --report "$DIR/fixed.json" > "$DIR/fixed.log" 2>&1
"$BIN" run "$DIR/auto.toml" --state "$DIR/auto" --set provider.batch_size=auto \
  --progress log --report "$DIR/auto.json" > "$DIR/auto.log" 2>&1

python3 - "$DIR" <<'PY'
import json, sys
load = lambda name: json.load(open(f"{sys.argv[1]}/{name}.json"))["summary"]
one, three = load("one"), load("three")
for name, s in (("one login", one), ("three logins", three)):
    box = s["sandbox"]
    fullest = {l: v["max_in_window"] for l, v in box["logins"].items()}
    print(f"{name}: {s['requests']} requests, errors {s['errors'] or 0}, lookups {s['stages']['lookups_s']:.2f} s"
          f" (least {s['plan']['least_time_s']:.2f} s), fullest 2 s window {box['max_in_window']}, per login {fullest}")
print(f"three logins / one: {three['stages']['lookups_s'] / one['stages']['lookups_s']:.3f} of the time")
fixed, auto = load("fixed"), load("auto")
print(f"fixed lists of 250: {fixed['requests']} requests, lookups {fixed['stages']['lookups_s']:.2f} s")
print(f"auto: settled at {auto['batch_size']} ({auto['batch_size_reason']}); {auto['requests']} requests"
      f" = {auto['requests'] / fixed['requests']:.3f} x, {auto['sandbox']['errors'].get('1', 0)} lists refused,"
      f" lookups {auto['stages']['lookups_s']:.2f} s")
PY
