#!/usr/bin/env bash
# The benchmarks side by side, in one window on this machine, and benchmarks/RESULTS.md from them.
# Every ratio in the report comes from A/B rounds: each round runs every side once, in an order
# rotated round by round, so that this VM's drift (2-3x over minutes) falls on all sides alike; the
# report gives the per-round ratios' median and range. Everything runs as users run it: plain
# `java` and the plain driver, no environment tuning.
#
#   scripts/bench.sh                                  # ROUNDS=3, SECONDS_PER_RUN=8, all processors
#   ROUNDS=5 SECONDS_PER_RUN=20 THREADS=2 scripts/bench.sh
#
# Raw figures, in benchmarks/results/:
#   peers.jsonl, peers-check.jsonl  ddim4j against ONNX Runtime Java, DJL and eager PyTorch (benchmarks/peers.sh)
#   native-python.jsonl             the native driver against eager PyTorch (baseline.py): training, fashion sampling
#   variants.jsonl                  ddim4j's CPU cache off vs on (sampling from Java, training on the driver), and
#                                   bfloat16 vs float32 where the CPU has AVX512-BF16 (the fused network is a peer)
#   interleaved.jsonl               the Java API against bare downcalls, in one process (JavaOverhead)
#   jmh.json                        FFM against JNI: a trivial call, handing over an image batch
#   accuracy.txt, flops.jsonl       errors of the faster options; FLOPs per forward pass
#   peak.jsonl                      the float32 FMA peak code reaches here (build/ddim_fma_peak)
#   peers-batches.jsonl             batch-size scaling: ddim4j, ONNX Runtime, PyTorch at batch 1, 4, 16, 64
#   fused-layers.jsonl              the fused plan step by step, direct and Winograd (build/ddim_fused_layers)
#   fused-pixels.jsonl              fused against eager (and Winograd against direct, bfloat16) in pixels
#   fused-quality.json              KID of 1,000 samples: fused bfloat16 against float32 (FusedQuality)
#   guidance-cost.jsonl             guided class sampling against unconditional, per image (GuidanceCost)
#   distributed.jsonl               training: one process against one rank per processor (benchmarks/distributed.sh)
#   natives-load.jsonl              start-up: the natives jar extracted (cold), from the cache (warm), the source build
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"

scripts/setup.sh
select_jdk
python=/usr/bin/python3  # Debian's, with python3-torch (a pyenv python3 first on PATH would lack torch)
unset MALLOC_ARENA_MAX

export ROUNDS=${ROUNDS:-3}
export SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
export THREADS=${THREADS:-$(nproc)}
results=benchmarks/results
mkdir -p "$results"
rm -f "$results"/*.jsonl "$results"/*.json "$results"/*.txt
java=(java --enable-native-access=ALL-UNNAMED -cp "benchmarks/target/benchmarks.jar:benchmarks/target/peer-libs/*")
has_bf16=$(grep -qw avx512_bf16 /proc/cpuinfo && echo yes || echo no)
# With AVX-512, the AVX2 plan (ddim4j's own Winograd) is timed as well, oneDNN capped by DNNL_MAX_CPU_ISA=AVX2.
has_avx512=$(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)

# ab OUT GROUP CMD...: ROUNDS rounds of the commands (one per argument), in an order rotated each round.
ab() {
  local out=$1 group=$2
  shift 2
  local commands=("$@") count=$#
  for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < count; i++)); do
      local side=$(((i + round - 1) % count))
      eval "${commands[$side]}" | json_tag group="$group" side="$side" round="$round" | tee -a "$out"
    done
  done
}

driver() { build/ddim_bench --threads "$THREADS" --min-seconds "$SECONDS_PER_RUN" --iterations 1 --warmup 1 "$@"; }
baseline() { "$python" benchmarks/python/baseline.py --threads "$THREADS" --min-seconds "$SECONDS_PER_RUN" --iterations 1 --warmup 1 "$@"; }

echo "== ddim4j against its Java peers and PyTorch (benchmarks/peers.sh)"
engines="ddim4j ddim4j-eager ort djl pytorch"
[[ $has_avx512 == yes ]] && engines="ddim4j ddim4j-avx2 ddim4j-eager ort djl pytorch"
# bfloat16 without AVX512-BF16 runs ~10x slower than float32 (emulated): measured only where it has hardware.
[[ $has_bf16 == yes ]] && engines="ddim4j ddim4j-avx2 ddim4j-eager ddim4j-bf16 ort djl pytorch"
ENGINES=$engines WARMUP=1 RUNS=2 benchmarks/peers.sh

echo "== batch-size scaling: ddim4j, ONNX Runtime, PyTorch at batch 1, 4, 16, 64 (benchmarks/peers.sh)"
BATCHES="1 4 16 64" ENGINES="ddim4j ort pytorch" WARMUP=1 RUNS=2 benchmarks/peers.sh

echo "== the fused network: layer by layer, in pixels, bfloat16 quality, the cost of guidance"
for config in reference fashion; do
  build/ddim_fused_layers --config "$config" --threads "$THREADS" --algorithms direct,winograd | tee -a "$results/fused-layers.jsonl"
  if [[ $has_avx512 == yes ]]; then
    DNNL_MAX_CPU_ISA=AVX2 build/ddim_fused_layers --config "$config" --threads "$THREADS" --algorithms direct,winograd \
      | tee -a "$results/fused-layers.jsonl"
  fi
  if [[ $has_bf16 == yes ]]; then
    build/ddim_fused_layers --config "$config" --threads "$THREADS" --precision bf16 --algorithms fastest | tee -a "$results/fused-layers.jsonl"
  fi
done
for model in fashion-mnist-32 fashion-mnist-32-classes; do
  build/ddim_fused_layers --pixels "models/$model.safetensors" --threads "$THREADS" | tee -a "$results/fused-pixels.jsonl"
  if [[ $has_avx512 == yes ]]; then
    DNNL_MAX_CPU_ISA=AVX2 build/ddim_fused_layers --pixels "models/$model.safetensors" --threads "$THREADS" \
      | tee -a "$results/fused-pixels.jsonl"
  fi
done
"${java[@]}" org.ddim4j.benchmarks.GuidanceCost models/fashion-mnist-32-classes.safetensors models/fashion-mnist-32.safetensors \
  "$ROUNDS" 64 20 | tee "$results/guidance-cost.jsonl"
"${java[@]}" org.ddim4j.benchmarks.FusedQuality models/fashion-mnist-32.safetensors "$results/fused-quality.json" 1000 20

echo "== the native driver against PyTorch ($ROUNDS rounds)"
for work in "train fashion" "train reference" "sample fashion"; do
  set -- $work
  ab "$results/native-python.jsonl" "$1-$2" "driver --mode $1 --config $2" "baseline --mode $1 --config $2"
done

echo "== ddim4j's options, A/B ($ROUNDS rounds)"
sample_java() {
  # The eager network: the cache serves libtorch's allocations (the fused plan allocates once).
  "${java[0]}" "$@" "${java[@]:1}" org.ddim4j.benchmarks.PeerSampling --engine ddim4j-eager --model benchmarks/target/peers/reference \
    --threads "$THREADS" --seconds "$SECONDS_PER_RUN" --warmup 1 --runs 2
}
ab "$results/variants.jsonl" cpu-cache-sample "sample_java -Dddim4j.cpuCache=0" "sample_java"
ab "$results/variants.jsonl" cpu-cache-train "driver --mode train --config reference --cpu-cache off" \
  "driver --mode train --config reference --cpu-cache on"
if [[ $has_bf16 == yes ]]; then
  ab "$results/variants.jsonl" bfloat16 "driver --mode sample --config reference" \
    "driver --mode sample --config reference --precision bf16"
fi
for config in fashion reference; do "$python" benchmarks/python/baseline.py --config "$config" --flops >> "$results/flops.jsonl"; done
OMP_NUM_THREADS=$THREADS build/ddim_fma_peak | tee "$results/peak.jsonl"

echo "== distributed training: 1 process against $(nproc) ranks (benchmarks/distributed.sh)"
BENCH_WINDOW=bench ROUNDS=$ROUNDS SECONDS_PER_RUN=$((SECONDS_PER_RUN * 2)) benchmarks/distributed.sh

echo "== Java API against bare downcalls, interleaved in one process"
"${java[@]}" org.ddim4j.benchmarks.JavaOverhead --threads "$THREADS" --rounds "${OVERHEAD_ROUNDS:-6}" \
  --seconds "${OVERHEAD_SECONDS:-4}" | tee "$results/interleaved.jsonl"

echo "== FFM against JNI (JMH)"
java --enable-native-access=ALL-UNNAMED -jar benchmarks/target/benchmarks.jar 'CallOverheadBenchmark|TransferBenchmark' -f 1 -wi 1 -w 5 -i 3 -r 5 \
  -jvmArgsAppend "-Dddim4j.threads=$THREADS -Dddim4j.jniShim=$PWD/build/libddim_jni_shim.so" -rf json -rff "$results/jmh.json"

echo "== start-up with the natives jar: cold, warm, source build ($ROUNDS rounds)"
"${java[@]}" org.ddim4j.benchmarks.NativesLoad --natives-jar java/ddim4j-natives/target/ddim4j-natives-0.1.0-linux-x86_64.jar \
  --rounds "$ROUNDS" | tee "$results/natives-load.jsonl"

echo "== accuracy of the faster options"
"${java[@]}" org.ddim4j.benchmarks.SamplerAccuracy | tee "$results/accuracy.txt"

"$python" benchmarks/report.py "$results" "$THREADS" > benchmarks/RESULTS.md
echo "bench: wrote benchmarks/RESULTS.md"
