#!/usr/bin/env bash
# The GPU check, for a lent GPU machine (PyTorch with CUDA in its python3, CMake, ninja, nvcc; no JDK,
# no internet, no Debian packages), in one run: build libddim, the native tests and the benchmark
# driver against the Python torch's libtorch with all cores; run the native tests; benchmark sampling
# (reference config, batch 16/64/256, float32 and bfloat16) and training (batch 64) against the same
# model in eager PyTorch on the same GPU; print a short table last; write everything under $OUT.
#
# On a machine without CUDA it runs the same against Debian's libtorch on the CPU (smaller batches),
# skipping the CUDA parts, so it can be checked anywhere.
#
#   OUT=/tmp/gpu-check scripts/gpu-check.sh
#   DDIM_DEPS=shared/deps scripts/gpu-check.sh   # nlohmann_json and GTest from scripts/gpu-deps.sh, where Debian's are absent
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-check-out}
mkdir -p "$out"
python=${PYTHON:-python3}
if ! "$python" -c 'import torch' 2>/dev/null && [[ -x /usr/bin/python3 ]]; then python=/usr/bin/python3; fi

cuda=$("$python" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
prefixes=()
if [[ $cuda == 1 ]]; then
  prefixes+=("$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')")
  "$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))' | tee "$out/device.txt"
else
  echo "gpu-check: no CUDA device; CPU mode against the system libtorch" | tee "$out/device.txt"
fi
[[ -n ${DDIM_DEPS:-} ]] && prefixes+=("$(cd "$DDIM_DEPS" && pwd)")
prefix_path=$(IFS=';'; echo "${prefixes[*]:-}")

build=${BUILD_DIR:-build-gpu-check}  # BUILD_DIR=build reuses an existing build
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
start=$(date +%s)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release ${prefix_path:+-DCMAKE_PREFIX_PATH="$prefix_path"} \
  -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
grep -E "DDIM_CUDA|CUDA" "$build/CMakeCache.txt" | grep -E "^DDIM_CUDA" | tee -a "$out/device.txt" || true
cmake --build "$build" --parallel "$(nproc)" --target ddim ddim_tests ddim_bench > "$out/build.log" 2>&1 \
  || { tail -40 "$out/build.log"; exit 1; }
echo "gpu-check: built in $(( $(date +%s) - start )) s"

echo "== native tests"
tests_status=0
"$build/ddim_tests" --gtest_brief=1 --gtest_output="json:$out/native-tests.json" > "$out/native-tests.log" 2>&1 || tests_status=$?
tail -3 "$out/native-tests.log"

echo "== benchmarks"
if [[ $cuda == 1 ]]; then device=cuda; batches=(16 64 256); train_batch=64; iterations=5
else device=cpu; batches=(16); train_batch=16; iterations=2; fi
: > "$out/bench.jsonl"
for batch in "${batches[@]}"; do
  for precision in fp32 bf16; do
    "$build/ddim_bench" --mode sample --config reference --batch "$batch" --device "$device" --precision "$precision" \
      --iterations "$iterations" | tee -a "$out/bench.jsonl"
  done
  "$python" benchmarks/python/baseline.py --mode sample --config reference --batch "$batch" --device "$device" \
    --iterations "$iterations" | tee -a "$out/bench.jsonl"
done
"$build/ddim_bench" --mode train --config reference --batch "$train_batch" --device "$device" --iterations "$iterations" \
  | tee -a "$out/bench.jsonl"
"$python" benchmarks/python/baseline.py --mode train --config reference --batch "$train_batch" --device "$device" \
  --iterations "$iterations" | tee -a "$out/bench.jsonl"

echo "== summary (images/s; reference config 3x64x64, 20 DDIM steps for sampling)"
"$python" - "$out/bench.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def rate(**k):
    for r in rows:
        if all(r.get(a) == b for a, b in k.items()):
            return r["images_per_second"]
print(f"{'work':<22}{'ddim4j fp32':>12}{'ddim4j bf16':>12}{'PyTorch':>10}{'fp32/Py':>9}{'bf16/Py':>9}")
for batch in sorted({r["batch"] for r in rows if r["mode"] == "sample"}):
    f, b, p = rate(tool="native", mode="sample", batch=batch, precision="fp32"), rate(tool="native", mode="sample", batch=batch, precision="bf16"), rate(tool="python", mode="sample", batch=batch)
    print(f"{'sample batch ' + str(batch):<22}{f:>12.1f}{b:>12.1f}{p:>10.1f}{f / p:>9.2f}{b / p:>9.2f}")
for batch in sorted({r["batch"] for r in rows if r["mode"] == "train"}):
    f, p = rate(tool="native", mode="train", batch=batch), rate(tool="python", mode="train", batch=batch)
    print(f"{'train batch ' + str(batch):<22}{f:>12.1f}{'-':>12}{p:>10.1f}{f / p:>9.2f}{'-':>9}")
PY
exit "$tests_status"
