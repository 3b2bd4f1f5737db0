#!/usr/bin/env bash
# Copies the two build dependencies a bare GPU machine lacks (nlohmann_json headers and GoogleTest,
# from this machine's Debian packages) into a CMake prefix, default shared/deps, for
# `DDIM_DEPS=shared/deps scripts/gpu-check.sh` there. Run it here, before the GPU session.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-shared/deps}
multiarch=lib/x86_64-linux-gnu
for path in /usr/include/nlohmann /usr/share/cmake/nlohmann_json /usr/include/gtest /usr/$multiarch/cmake/GTest \
            /usr/$multiarch/libgtest.a /usr/$multiarch/libgtest_main.a; do
  [[ -e $path ]] || { echo "gpu-deps: $path missing (apt-get install nlohmann-json3-dev libgtest-dev)" >&2; exit 1; }
  mkdir -p "$prefix/$(dirname "${path#/usr/}")"
  cp -r "$path" "$prefix/${path#/usr/}"
done
echo "gpu-deps: wrote $prefix ($(du -sh "$prefix" | cut -f1))"
