#!/usr/bin/env bash
# Pacing at scale (issue 5): a generated export whose numbers take more than 1,000 requests,
# looked up through the in-process sandbox at a short window (100 requests per 1 s, client and
# sandbox alike, 20 ms latency). Prints the requests, the errors, the fullest window as the
# sandbox counted it against the limit, and the lookup time against the least possible
# (requests / limit per window, less the first window).
#
#   bench/pacing.sh [ROWS]          (default 20000; batch_size 10, so ~1,150 requests)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-20000}
DIR=${BENCH_DIR:-$PWD/.bench}/pacing
source bench/common.sh
rm -rf "$DIR" && mkdir -p "$DIR"
"$BIN" generate "$DIR/crm.csv" --rows "$ROWS" --seed 7
sandbox_job "$DIR/job.toml" "$DIR/crm.csv" "$DIR" 10 "100/1s" "20ms"
"$BIN" run "$DIR/job.toml" --progress log --report "$DIR/report.json" > "$DIR/run.log" 2>&1
python3 - "$DIR/report.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
box, plan = s["sandbox"], s["plan"]
windows = -(-plan["requests"] // box["request_limit"]) - 1
least = windows * box["window_ms"] / 1000
print(f"requests: {s['requests']} (planned {plan['requests']}), errors: {sum(s['errors'].values())} {s['errors']}")
print(f"fullest {box['window_ms']} ms window: {box['max_in_window']} of {box['request_limit']}; most at once: {box['max_concurrent']}")
print(f"lookups: {s['stages']['lookups_s']:.2f} s against the least possible {least:.2f} s"
      f" ({windows} windows after the first): {s['stages']['lookups_s'] / least:.3f} x")
print(f"average rate: {s['requests'] / s['stages']['lookups_s']:.1f} requests/s against {box['request_limit'] * 1000 / box['window_ms']:.0f}")
PY
