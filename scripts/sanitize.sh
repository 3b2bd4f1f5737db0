#!/usr/bin/env bash
# The native tests under AddressSanitizer + UndefinedBehaviorSanitizer, the tests of concurrent calls
# on one handle under ThreadSanitizer, then the model-loader fuzz target (libFuzzer): the regression
# corpus (native/fuzz/corpus) replayed, then a short fuzz run. Built with clang in build-sanitize/ and
# build-tsan/. scripts/test.sh runs it (CI).
#
#   scripts/sanitize.sh                  # fuzzes for FUZZ_SECONDS (default 60)
#   FUZZ_SECONDS=600 scripts/sanitize.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"

install_packages libtorch-dev libgloo-dev nlohmann-json3-dev libgtest-dev zlib1g-dev cmake ninja-build clang-14 libclang-rt-14-dev

build=build-sanitize
if [[ ! -f $build/CMakeCache.txt ]]; then
  # -O1 with line tables: fast enough, and readable reports.
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" -DCMAKE_C_FLAGS_RELEASE="-O1" \
    -DDDIM_SANITIZE=address,undefined -DDDIM_FUZZ=ON \
    ${CMAKE_PREFIX_PATH:+-DCMAKE_PREFIX_PATH="$CMAKE_PREFIX_PATH"}
fi
cmake --build "$build" --parallel "$(nproc)" --target ddim_tests ddim_fuzz_model_file

# libtorch itself is not instrumented: its own new/free pairs and global state are not ours to judge.
export ASAN_OPTIONS=alloc_dealloc_mismatch=0:detect_odr_violation=0:detect_leaks=0:allocator_may_return_null=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== native tests under ASan+UBSan"
"$build/ddim_tests" --gtest_brief=1

echo "== concurrent calls and frees on one handle under TSan"
tsan=build-tsan
if [[ ! -f $tsan/CMakeCache.txt ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" -DCMAKE_C_FLAGS_RELEASE="-O1" -DDDIM_SANITIZE=thread \
    ${CMAKE_PREFIX_PATH:+-DCMAKE_PREFIX_PATH="$CMAKE_PREFIX_PATH"}
fi
cmake --build "$tsan" --parallel "$(nproc)" --target ddim_tests
# libtorch and its OpenMP pool are not instrumented: TSan sees ddim's own synchronisation, which is what these test.
TSAN_OPTIONS=halt_on_error=1 "$tsan/ddim_tests" --gtest_brief=1 \
  --gtest_filter='HostileArguments.CallsRacing*:HostileArguments.AFree*:HostileArguments.ACallback*:CApi.ThreadsCanShareAHandle*'

echo "== fuzz corpus replay (native/fuzz/corpus)"
"$build/ddim_fuzz_model_file" -runs=0 -rss_limit_mb=2048 -timeout=30 native/fuzz/corpus

seconds=${FUZZ_SECONDS:-60}
echo "== fuzzing the model loader for ${seconds} s"
work="$build/fuzz-work"
mkdir -p "$work"
# New inputs go to $work (first directory); the committed corpus (a valid model, class model, half-precision
# export and checkpoint, and every input that once failed) seeds it, and the dictionary gives the header's tokens.
# A crash leaves its input as $build/fuzz-crash-*: minimise it and add it to native/fuzz/corpus.
"$build/ddim_fuzz_model_file" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
  -dict=native/fuzz/model_file.dict \
  -artifact_prefix="$build/fuzz-crash-" "$work" native/fuzz/corpus
