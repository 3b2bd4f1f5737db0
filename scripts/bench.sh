#!/usr/bin/env bash
# The benchmarks side by side, in one run on this machine: JMH (through Java), the native driver
# (the C ABI alone) and the Python baseline (eager PyTorch on the same libtorch), all with the same
# thread count. Writes the raw figures to benchmarks/results/ and the report to benchmarks/RESULTS.md.
#
#   scripts/bench.sh                  # all processors
#   THREADS=1 SECONDS_PER_RUN=10 scripts/bench.sh
#
# Every measurement warms up (2 operations; JMH: 2 x 10 s), then times at least 3 operations and
# SECONDS_PER_RUN seconds (JMH: 3 x 10 s), and reports throughput over all timed operations.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"

scripts/setup.sh
select_jdk
python=/usr/bin/python3  # Debian's, with python3-torch (a pyenv python3 first on PATH would lack torch)
if ! "$python" -c 'import torch' 2>/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-torch
  else
    echo "bench: the Python baseline needs Debian's python3-torch: sudo apt-get install -y python3-torch" >&2
    exit 1
  fi
fi

threads=${THREADS:-$(nproc)}
seconds=${SECONDS_PER_RUN:-20}
results=benchmarks/results
mkdir -p "$results"
rm -f "$results"/*.jsonl "$results"/*.json "$results"/*.txt

echo "== native driver and Python baseline ($threads threads, >= $seconds s each)"
for config in fashion reference; do
  for mode in sample train; do
    build/ddim_bench --mode "$mode" --config "$config" --threads "$threads" --min-seconds "$seconds" | tee -a "$results/native.jsonl"
    "$python" benchmarks/python/baseline.py --mode "$mode" --config "$config" --threads "$threads" --min-seconds "$seconds" \
      | tee -a "$results/python.jsonl"
  done
  build/ddim_bench --mode sample --config "$config" --threads "$threads" --min-seconds "$seconds" --precision bf16 \
    | tee -a "$results/native.jsonl"
  "$python" benchmarks/python/baseline.py --config "$config" --flops | tee -a "$results/flops.jsonl"
done
# Malloc caching (on by default), before and after.
build/ddim_bench --mode train --config fashion --threads "$threads" --min-seconds "$seconds" --malloc-caching off \
  | tee "$results/no-malloc-caching.jsonl"
# The thread-count default, before (libtorch's 1 thread here) and after (all processors).
build/ddim_bench --mode sample --config reference --threads 1 --min-seconds "$seconds" | tee "$results/one-thread.jsonl"

echo "== JMH (Java API; FFM against JNI), with MALLOC_ARENA_MAX=1 as scripts/ddim sets it"
MALLOC_ARENA_MAX=1 java --enable-native-access=ALL-UNNAMED -Dddim4j.threads="$threads" -jar benchmarks/target/benchmarks.jar \
  'SamplingBenchmark|TrainingBenchmark|CallOverheadBenchmark|TransferBenchmark' \
  -jvmArgsAppend "-Dddim4j.threads=$threads -Dddim4j.jniShim=$PWD/build/libddim_jni_shim.so" \
  -rf json -rff "$results/jmh.json"

echo "== Java overhead: Java API and bare downcalls interleaved in one process"
MALLOC_ARENA_MAX=1 java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.JavaOverhead \
  --threads "$threads" --rounds "${OVERHEAD_ROUNDS:-10}" --seconds "${OVERHEAD_SECONDS:-6}" | tee "$results/interleaved.jsonl"

echo "== bfloat16 accuracy"
java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.SamplerAccuracy \
  | tee "$results/accuracy.txt"

"$python" benchmarks/report.py "$results" "$threads" > benchmarks/RESULTS.md
echo "bench: wrote benchmarks/RESULTS.md"
