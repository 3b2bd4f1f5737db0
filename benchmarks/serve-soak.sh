#!/usr/bin/env bash
# Soak test of `ddim serve`: one server of the shipped Fashion-MNIST model under steady load (one-image requests
# from CLIENTS concurrent clients, benchmarks/src/.../ServeLoad.java, back to back) for MINUTES minutes, its
# resident memory (VmRSS) recorded every minute. After WARMUP_MINUTES the memory must plateau: the last minute's
# RSS at most MAX_GROWTH_PERCENT (5) above the first minute after the warm-up. Exits non-zero otherwise, or
# when a request failed or the server did not stop gracefully on SIGTERM.
#
#   benchmarks/serve-soak.sh          # MINUTES=30 WARMUP_MINUTES=5 CLIENTS=16 STEPS=5
#
# Writes benchmarks/results/serve-soak.jsonl (OUT= to change): a row per minute, then a summary row;
# report.py turns it into RESULTS.md's soak section.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$DDIM_ROOT"
select_jdk

minutes=${MINUTES:-30}
warmup=${WARMUP_MINUTES:-5}
clients=${CLIENTS:-16}
steps=${STEPS:-5}
max_growth=${MAX_GROWTH_PERCENT:-5}
out=${OUT:-benchmarks/results/serve-soak.jsonl}
model=models/fashion-mnist-32.safetensors
started=$(date -u +%Y-%m-%dT%H:%MZ)
mkdir -p "$(dirname "$out")"
rm -f "$out"

log=$(mktemp)
start_serve "$log" --model "$model" --queue 256
pid=$SERVE_PID

# Load: ServeLoad slices back to back until the time is up; each slice's line (requests, failures) is kept.
deadline=$((SECONDS + minutes * 60))
load_out=$(mktemp)
(
  while ((SECONDS < deadline)); do
    "$JAVA_HOME/bin/java" -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.ServeLoad --url "http://127.0.0.1:$SERVE_PORT/" \
      --pid "$pid" --requests 400 --clients "$clients" --steps "$steps" --warmup 0 >> "$load_out" || true  # failures are counted below
  done
) &
load=$!

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
for ((minute = 1; minute <= minutes; minute++)); do
  sleep 60
  printf '{"minute": %d, "rss_mib": %s}\n' "$minute" "$(rss_mib)" | json_tag group=serve-soak started="$started" >> "$out"
done
wait "$load"
stop_serve "$log"

/usr/bin/python3 - "$out" "$load_out" "$warmup" "$max_growth" "$started" <<'PY'
import json, sys
out, load_out, warmup, max_growth, started = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
rows = [json.loads(line) for line in open(out)]
slices = [json.loads(line) for line in open(load_out) if line.strip()]
requests = sum(s["requests"] for s in slices)
failures = sum(s["failed"] for s in slices)
plateau = [r["rss_mib"] for r in rows if r["minute"] > warmup]
growth = 100 * (plateau[-1] - plateau[0]) / plateau[0]
summary = {"group": "serve-soak", "started": started, "summary": True, "minutes": len(rows), "warmup_minutes": warmup,
           "rss_first_mib": rows[0]["rss_mib"], "rss_after_warmup_mib": plateau[0], "rss_end_mib": plateau[-1],
           "rss_max_mib": max(r["rss_mib"] for r in rows), "growth_after_warmup_percent": round(growth, 2),
           "requests": requests, "failures": failures}
with open(out, "a") as f:
    f.write(json.dumps(summary) + "\n")
print(json.dumps(summary))
if failures:
    sys.exit(f"serve-soak: {failures} request(s) failed")
if growth > max_growth:
    sys.exit(f"serve-soak: resident memory grew {growth:.1f}% after the warm-up (limit {max_growth}%)")
PY
rm -f "$log" "$load_out"
