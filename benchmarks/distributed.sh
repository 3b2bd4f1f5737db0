#!/usr/bin/env bash
# Data-parallel training on this machine, A/B: one process with all processors' threads against one
# rank per processor with a thread each (Gloo over 127.0.0.1), on the reference model (3x64x64, global
# batch 64). Each round runs both sides, in an order rotated every round; a side is the native driver
# (benchmarks/native/ddim_bench.cpp) timing training steps for SECONDS_PER_RUN after a warm-up step.
#
#   benchmarks/distributed.sh                  # ROUNDS=3, SECONDS_PER_RUN=15, RANKS=$(nproc)
#
# Writes benchmarks/results/distributed.jsonl: per round, the single process's line (side 0) and every
# rank's line (side 1), each with its collectives' calls, bytes and seconds per step; report.py turns
# them into the distributed section of RESULTS.md.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$DDIM_ROOT"

rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_RUN:-15}
ranks=${RANKS:-$(nproc)}
config=${CONFIG:-reference}
out=benchmarks/results/distributed.jsonl
# Whether these rounds share scripts/bench.sh's window or ran alone (report.py says which).
window=${BENCH_WINDOW:-alone}
started=$(date -u +%Y-%m-%dT%H:%MZ)
mkdir -p "$(dirname "$out")"
rm -f "$out"
driver() { build/ddim_bench --mode train --config "$config" --batch 64 --min-seconds "$seconds" --iterations 2 --warmup 1 "$@"; }

tag() { json_tag group=distributed window="$window" started="$started" "$@"; }
one_process() { driver --threads "$ranks" | tag side=0 round="$1" >> "$out"; }
ranked() {
  local port pids=() rank
  port=$(free_port)
  for ((rank = 0; rank < ranks; rank++)); do
    RANK=$rank WORLD_SIZE=$ranks MASTER_ADDR=127.0.0.1 MASTER_PORT=$port driver --threads 1 > "$out.rank$rank" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  for ((rank = 0; rank < ranks; rank++)); do tag side=1 round="$1" < "$out.rank$rank" >> "$out"; done
  rm -f "$out".rank*
}

for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then one_process "$round"; ranked "$round"; else ranked "$round"; one_process "$round"; fi
  tail -n $((ranks + 1)) "$out"
done
