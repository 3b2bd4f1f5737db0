#!/usr/bin/env bash
# Regenerates the FFM bindings in java/ddim4j/src/main/java/org/ddim4j/ffi from include/ddim.h.
# Needs a jextract built with JDK 25, the release the POM compiles for (https://github.com/openjdk/jextract),
# named by $JEXTRACT or on PATH.
# The generated code is committed; never edit it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

jextract_bin="${JEXTRACT:-$(command -v jextract || true)}"
if [[ -z "$jextract_bin" || ! -x "$jextract_bin" ]]; then
  cat >&2 <<'MSG'
jextract not found. Set JEXTRACT=/path/to/jextract or put it on PATH.
Get it from https://jdk.java.net/jextract (prebuilt), or build it from https://github.com/openjdk/jextract
with JDK 25 and libclang (see its README).
MSG
  exit 1
fi

output=java/ddim4j/src/main/java
package_dir="$output/org/ddim4j/ffi"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Bind only ddim's own declarations, not what <stdint.h> drags in.
"$jextract_bin" --dump-includes "$work/all.txt" include/ddim.h
grep -E -- '^--include-[a-z]+ +(ddim|DDIM)' "$work/all.txt" | sed 's/ *#.*$//' > "$work/ddim.txt"

rm -rf "$package_dir"
"$jextract_bin" --output "$output" --target-package org.ddim4j.ffi --header-class-name ddim_h \
  @"$work/ddim.txt" include/ddim.h
echo "regenerated $(find "$package_dir" -name '*.java' | wc -l) files in $package_dir"
