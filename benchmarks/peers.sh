#!/usr/bin/env bash
# ddim4j against its Java peers, interleaved: ONNX Runtime and DJL (PyTorch 2.7.1) on the same exported
# network, and eager PyTorch (benchmarks/python/baseline.py). Each round runs every engine once, each in
# a process of its own, in an order rotated every round, so that this machine's drift falls on all alike.
#
#   benchmarks/peers.sh                      # ROUNDS=5, 20 s of timed sampling per engine and round
#   ROUNDS=2 SECONDS=10 THREADS=2 benchmarks/peers.sh    # SECONDS_PER_RUN works too, as in bench.sh
#   ENGINES="ddim4j ort djl pytorch" benchmarks/peers.sh # a subset (bfloat16 is ~10x slower without AVX512-BF16)
#   BATCHES="1 4 16 64" ENGINES="ddim4j ort pytorch" benchmarks/peers.sh   # batch-size scaling instead: every engine
#                                            # at each batch (the network sees the whole batch), rounds interleaved as
#                                            # above; writes benchmarks/results/peers-batches.jsonl, no checks
#
# ddim4j runs with its defaults (Network.AUTO: the fused network), with Network.EAGER (ddim4j-eager) and with
# bfloat16 (ddim4j-bf16: the fused bfloat16 plan on AVX512-BF16 CPUs). ddim4j-avx2 (not in the default list) is
# the default path with oneDNN capped at AVX2 (DNNL_MAX_CPU_ISA=AVX2, the one variable set): ddim4j's AVX2 path
# on an AVX-512 machine, against peers that keep AVX-512, a bound from below on its ratio on an AVX2-only CPU.
# Work: 16 images x 20 deterministic DDIM steps, untrained reference U-Net (3x64x64), weights made once
# by export.py and shared by all engines (the Python baseline builds its own; weights do not change the cost).
# Writes benchmarks/results/peers.jsonl (a line per engine and round) and peers-check.jsonl (the exports,
# and each engine's difference from ddim4j). Needs the benchmarks jar and target/peer-libs (scripts/setup.sh).
# Runs plain `java`: no MALLOC_ARENA_MAX or other tuning in the environment.
seconds=${SECONDS_PER_RUN:-$(printenv SECONDS || echo 20)}  # first: bash counts SECONDS up from its start
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$DDIM_ROOT"
select_jdk
unset MALLOC_ARENA_MAX

rounds=${ROUNDS:-5}
warmup=${WARMUP:-2}  # untimed runs per engine and round
runs=${RUNS:-3}      # at least this many timed runs (and SECONDS of them)
threads=${THREADS:-$(nproc)}
python=/usr/bin/python3  # Debian's, with python3-torch
results=benchmarks/results
exports=benchmarks/target/peers
classpath="benchmarks/target/benchmarks.jar:benchmarks/target/peer-libs/*"
java=(java --enable-native-access=ALL-UNNAMED -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$classpath")
read -ra engines <<< "${ENGINES:-ddim4j ddim4j-eager ddim4j-bf16 ort djl pytorch}"
checked=$(printf '%s\n' "${engines[@]}" | grep -vx 'ddim4j-eager\|ddim4j-avx2\|pytorch' | paste -sd, || true)  # PeerCheck's --engines

if [[ ! -f benchmarks/target/benchmarks.jar || ! -d benchmarks/target/peer-libs ]]; then
  mvn -B -q -pl benchmarks -am package -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true
fi
mkdir -p "$results"

# Prints the last JSON line of stdin with the fields given as key=value (json_tag); the baseline's
# line is put in the peers' format first.
annotate() {
  "$python" -c '
import json, sys
row = json.loads([line for line in sys.stdin if line.startswith("{")][-1])
if row.get("tool") == "python":
    row = {"tool": "peers", "engine": "pytorch", "version": "torch " + row["torch"] + " eager (baseline.py), threads " + str(row["threads"]),
           "threads": row["threads"], "batch": row["batch"], "steps": row["steps"], "model": "baseline.py --config reference (own untrained weights)",
           "ms_median": row["median_seconds"] * 1000, "ms_min": min(row["seconds"]) * 1000,
           "ms_all": [s * 1000 for s in row["seconds"]], "images_per_second": row["images_per_second"]}
print(json.dumps(row))' | json_tag "$@"
}

# The command that times `engine` at `batch` images: the Python baseline for pytorch, else PeerSampling.
engine_command() {
  local engine=$1 batch=$2
  if [[ $engine == pytorch ]]; then
    command=("$python" benchmarks/python/baseline.py --mode sample --config reference --batch "$batch" --steps 20
      --threads "$threads" --min-seconds "$seconds" --warmup "$warmup" --iterations "$runs")
    return
  fi
  command=("${java[@]}" org.ddim4j.benchmarks.PeerSampling --engine "$engine" --model "$exports/reference" --batch "$batch"
    --steps 20 --threads "$threads" --seconds "$seconds" --warmup "$warmup" --runs "$runs")
  if [[ $engine == ddim4j-avx2 ]]; then
    command=(env DNNL_MAX_CPU_ISA=AVX2 "${command[@]/#ddim4j-avx2/ddim4j}")
  fi
}

if [[ -n ${BATCHES:-} ]]; then
  "$python" benchmarks/python/export.py --reference --out "$exports/reference" > /dev/null
  echo "== batch scaling: batches $BATCHES, $rounds rounds x ${#engines[@]} engines (benchmarks/results/peers-batches.jsonl)"
  : > "$results/peers-batches.jsonl"
  for ((round = 1; round <= rounds; round++)); do
    for batch in $BATCHES; do
      for ((i = 0; i < ${#engines[@]}; i++)); do
        engine=${engines[$(((i + round - 1) % ${#engines[@]}))]}
        engine_command "$engine" "$batch"
        line=$("${command[@]}") || { echo "peers: $engine failed at batch $batch in round $round (exit $?)" >&2; exit 1; }
        annotate engine="$engine" round="$round" position="$((i + 1))" warmup="$warmup" runs="$runs" seconds="$seconds" <<< "$line" \
          | tee -a "$results/peers-batches.jsonl"
      done
    done
  done
  exit 0
fi

echo "== export and check (benchmarks/results/peers-check.jsonl)"
: > "$results/peers-check.jsonl"
"$python" benchmarks/python/export.py --reference --out "$exports/reference" | tee -a "$results/peers-check.jsonl"
"$python" benchmarks/python/export.py --model models/fashion-mnist-32.safetensors --out "$exports/fashion" | tee -a "$results/peers-check.jsonl"
for model in reference fashion; do
  [[ -z $checked ]] || "${java[@]}" org.ddim4j.benchmarks.PeerCheck --model "$exports/$model" --engines "$checked" \
    | tee -a "$results/peers-check.jsonl"
done

echo "== sampling, $rounds rounds x ${#engines[@]} engines, $threads threads, >= $seconds s each (benchmarks/results/peers.jsonl)"
: > "$results/peers.jsonl"
for ((round = 1; round <= rounds; round++)); do
  for ((i = 0; i < ${#engines[@]}; i++)); do
    engine=${engines[$(((i + round - 1) % ${#engines[@]}))]}
    engine_command "$engine" 16
    line=$("${command[@]}") || { echo "peers: $engine failed in round $round (exit $?)" >&2; exit 1; }
    annotate engine="$engine" round="$round" position="$((i + 1))" warmup="$warmup" runs="$runs" seconds="$seconds" <<< "$line" | tee -a "$results/peers.jsonl"
  done
done
