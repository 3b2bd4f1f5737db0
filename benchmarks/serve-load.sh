#!/usr/bin/env bash
# Load test of `ddim serve`, A/B: dynamic batching on (--max-batch 64) against off (--max-batch 1), on the
# shipped Fashion-MNIST model, localhost only. Each round starts a fresh server per side (order rotated every
# round), sends a warm-up and then REQUESTS one-image requests from CLIENTS concurrent clients
# (benchmarks/src/.../ServeLoad.java), records throughput, p50/p99 latency, failures and the server's resident
# memory, and stops the server with SIGTERM. Exits non-zero if any request failed, a server did not stop
# gracefully, or its resident memory grew more than MAX_RSS_GROWTH_MIB (64) after the warm-up.
#
#   benchmarks/serve-load.sh          # ROUNDS=2 REQUESTS=200 CLIENTS=16 STEPS=5
#
# Then (SCALING=1, the default) throughput and latency at 1, 8 and 32 concurrent clients (SCALING_REQUESTS each),
# unconditional (the shipped model) against class-guided (the shipped class model, every request a class of its
# own, i mod 10, at guidance 3, behind --token-file so every request also carries the token). Both servers run
# side by side and the two kinds alternate at each client count, in one window. Fails if a request fails (a 401
# included) or the token appears in the server's output.
#
# Writes benchmarks/results/serve.jsonl (OUT= to change); report.py turns it into RESULTS.md's serve section.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$DDIM_ROOT"
select_jdk

rounds=${ROUNDS:-2}
requests=${REQUESTS:-200}
clients=${CLIENTS:-16}
steps=${STEPS:-5}
out=${OUT:-benchmarks/results/serve.jsonl}
model=models/fashion-mnist-32.safetensors
class_model=models/fashion-mnist-32-classes.safetensors
scaling_requests=${SCALING_REQUESTS:-96}
started=$(date -u +%Y-%m-%dT%H:%MZ)
mkdir -p "$(dirname "$out")"
rm -f "$out"

load() { # url pid clients requests [ServeLoad options...]: one run of ServeLoad, its JSON line on stdout
  local url=$1 pid=$2 clients=$3 requests=$4
  shift 4
  "$JAVA_HOME/bin/java" -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.ServeLoad --url "$url" --pid "$pid" \
    --requests "$requests" --clients "$clients" --steps "$steps" "$@"
}

side() { # side round max_batch
  local log
  log=$(mktemp)
  start_serve "$log" --model "$model" --max-batch "$3" --queue 256
  load "http://127.0.0.1:$SERVE_PORT/" "$SERVE_PID" "$clients" "$requests" \
    | json_tag group=serve side="$1" round="$2" max_batch="$3" started="$started" >> "$out"
  stop_serve "$log"
  rm -f "$log"
  tail -n 1 "$out"
  # Resident memory must stay flat under load: a leak per request would show as growth after the warm-up.
  tail -n 1 "$out" | /usr/bin/python3 -c '
import json, sys
row = json.loads(sys.stdin.read())
growth = row["rss_end_mib"] - row["rss_after_warmup_mib"]
if growth > float(sys.argv[1]):
    sys.exit(f"serve-load: resident memory grew {growth:.0f} MiB during the run (limit {sys.argv[1]} MiB)")' "${MAX_RSS_GROWTH_MIB:-64}"
}

for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then side 1 "$round" 64; side 0 "$round" 1; else side 0 "$round" 1; side 1 "$round" 64; fi
done

if ((${SCALING:-1})); then
  token_file=$(mktemp)
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"
  plain_log=$(mktemp)
  class_log=$(mktemp)
  start_serve "$plain_log" --model "$model" --queue 256
  plain_url="http://127.0.0.1:$SERVE_PORT/" plain_pid=$SERVE_PID
  start_serve "$class_log" --model "$class_model" --queue 256 --token-file "$token_file"
  class_url="http://127.0.0.1:$SERVE_PORT/" class_pid=$SERVE_PID
  for clients_now in 1 8 32; do
    for kind in $( ((clients_now % 2)) && echo "unconditional class-guided" || echo "class-guided unconditional"); do
      if [[ $kind == unconditional ]]; then
        load "$plain_url" "$plain_pid" "$clients_now" "$scaling_requests" --warmup 8
      else
        load "$class_url" "$class_pid" "$clients_now" "$scaling_requests" --warmup 8 --classes 10 --guidance 3 --token-file "$token_file"
      fi | json_tag group=serve-scaling kind="$kind" started="$started" >> "$out"
      tail -n 1 "$out"
    done
  done
  SERVE_PID=$plain_pid stop_serve "$plain_log"
  SERVE_PID=$class_pid stop_serve "$class_log"
  if grep -qF "$(cat "$token_file")" "$class_log"; then
    echo "serve-load: the server printed its token" >&2
    exit 1
  fi
  rm -f "$token_file" "$plain_log" "$class_log"
fi
