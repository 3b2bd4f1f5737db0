#!/usr/bin/env bash
# Idempotent setup: installs missing Debian packages (as root; otherwise prints the command),
# selects a JDK of the POM's release (25; it says where to get one when none is found), builds libddim and the native tests with CMake, and runs `mvn install`.
#
#   scripts/setup.sh                 # Debian's libtorch
#   CMAKE_PREFIX_PATH=/path/to/libtorch scripts/setup.sh    # any other libtorch
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"

# libdnnl-dev: the headers of the oneDNN that libtorch links, for the fused network (native/src/fused_unet.h).
# libgloo-dev: the headers of the Gloo that libtorch's c10d links, for distributed training (native/src/distributed.h).
# patchelf: renames the natives jar's libraries (scripts/bundle-natives.sh).
# python3-numpy, python3-torch: the interop tests read and write our files with NumPy, and load them
# into PyTorch with scripts/python/ddim4j_torch.py (PythonInteropTest); the Python baseline needs torch too.
install_packages libtorch-dev libdnnl-dev libgloo-dev nlohmann-json3-dev libgtest-dev zlib1g-dev cmake ninja-build g++ maven dataset-fashion-mnist \
  patchelf python3-numpy python3-torch

select_jdk
echo "setup: JDK $(java_feature_version "$JAVA_HOME/bin/java") at $JAVA_HOME (pom.xml needs >= $(required_java_release))"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release ${CMAKE_PREFIX_PATH:+-DCMAKE_PREFIX_PATH="$CMAKE_PREFIX_PATH"}
fi
cmake --build build --parallel "$(nproc)"

# Sources and javadoc are built (and javadoc checked) by `mvn verify` in scripts/test.sh; not needed to run.
# The natives jar (java/ddim4j-natives) is rebuilt only when libddim changed.
mvn -B -q install -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true
echo "setup: done (libddim: build/libddim.so, library: java/ddim4j/target/ddim4j-0.1.0.jar, natives:" \
  "java/ddim4j-natives/target/ddim4j-natives-0.1.0-linux-x86_64.jar, CLI: java/ddim4j-cli/target/ddim4j-cli-0.1.0.jar)"
