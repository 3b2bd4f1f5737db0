#!/usr/bin/env bash
# The test command: setup, then the native tests (ctest), a one-iteration JMH smoke run (it only
# checks that the benchmarks run), the Java tests (mvn verify, with a headless-browser test of `ddim serve`),
# a bounded load test of `ddim serve`, a consumer project built against the
# installed library (scripts/consumer-check.sh), the natives jar and the CLI download on bare Debian systems
# (scripts/natives-check.sh, as root), and the native tests again under
# ASan+UBSan with the model-loader fuzz target (scripts/sanitize.sh; SANITIZE=0 skips it locally).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"

scripts/setup.sh
select_jdk

echo "== native tests (ctest)"
# One test at a time: each uses every core, and parallel tests on 2 cores oversubscribe libtorch's threads.
ctest --test-dir build --output-on-failure

echo "== the fused network as a CPU without AVX-512 runs it (oneDNN capped at AVX2: nChw8c, direct convolutions, no bfloat16)"
DNNL_MAX_CPU_ISA=AVX2 build/ddim_tests --gtest_filter='FusedNetwork*:ClassConditioning*' --gtest_brief=1

echo "== JMH smoke run (one short iteration; not a measurement)"
java --enable-native-access=ALL-UNNAMED -jar benchmarks/target/benchmarks.jar SamplingBenchmark \
  -f 0 -wi 0 -i 1 -r 1s -p config=fashion -p count=1 -p steps=1 -foe true

echo "== Java tests (mvn verify)"
# chromium and chromium-driver: BrowserTest drives the `ddim serve` page in a real headless browser;
# iproute2: DistributedCliTest puts two ranks on two "hosts" (network namespaces, as root).
install_packages chromium chromium-driver iproute2
mvn -B verify

echo "== load test of ddim serve (benchmarks/serve-load.sh, bounded: 200 requests x 2 sides, then 16 per client count, unconditional and class-guided with a token)"
ROUNDS=1 REQUESTS=200 CLIENTS=16 STEPS=2 SCALING_REQUESTS=16 OUT=build/serve-load.jsonl benchmarks/serve-load.sh

echo "== the library as a Maven user gets it (scripts/consumer-check.sh)"
scripts/consumer-check.sh

echo "== the natives on bare systems: bookworm and trixie with only a JDK, and the CLI download (scripts/natives-check.sh)"
scripts/natives-check.sh

if [[ "${SANITIZE:-1}" != 0 ]]; then
  echo "== sanitizers and fuzzing (scripts/sanitize.sh)"
  scripts/sanitize.sh
fi
