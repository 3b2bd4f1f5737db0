#!/usr/bin/env bash
# Builds the contents of the natives jar (org.ddim4j:ddim4j-natives:linux-x86_64; java/ddim4j-natives runs
# this during `mvn package`): libddim.so and every library it needs that a bare Linux system lacks, made
# private to ddim4j so that another libtorch can live in the same process (DJL's, a Python torch's):
#
#   - libtorch 1.13.1 (CPU) from DJL's Maven artifact ai.djl.pytorch:pytorch-native-cpu:1.13.1:linux-x86_64
#     (the version of Debian's libtorch-dev headers that libddim is compiled against) with its libgomp;
#   - Debian's oneDNN (the fused network links it), pointed at that libgomp, and its libOpenCL;
#   - each under a ddim4j-specific file name and SONAME, every NEEDED entry pointing at the new names,
#     RUNPATH $ORIGIN, and STB_GNU_UNIQUE symbols made STB_GLOBAL (scripts/python/elf_unique_to_global.py
#     says why), so nothing binds to or from another copy;
#   - the licence notices of each bundled project, and `manifest` (file, size, SHA-256, the glibc floor)
#     that NativeLibrary checks the extracted copy against.
#
#   scripts/bundle-natives.sh DJL_LIBTORCH_DIR LIBDDIM OUT_DIR
#
# Re-running with the same inputs does nothing (OUT_DIR/.inputs records them).
set -euo pipefail
source "$(dirname "$0")/common.sh"

(($# == 3)) || { echo "usage: $0 DJL_LIBTORCH_DIR LIBDDIM OUT_DIR" >&2; exit 2; }
djl=$1 libddim=$2 out=$3
[[ -f "$djl/libtorch_cpu.so" ]] || { echo "bundle-natives: no libtorch_cpu.so in $djl" >&2; exit 1; }
[[ -f "$libddim" ]] || { echo "bundle-natives: no $libddim (build it first: scripts/setup.sh)" >&2; exit 1; }
command -v patchelf >/dev/null || { echo "bundle-natives: needs patchelf (apt-get install patchelf)" >&2; exit 1; }

# The system libraries libddim resolves today (Debian's oneDNN, and the OpenCL loader oneDNN links).
resolved() { ldd "$1" | awk -v name="$2" '$1 == name { print $3 }'; }
dnnl=$(resolved "$libddim" libdnnl.so.2)
[[ -n "$dnnl" ]] || { echo "bundle-natives: $libddim does not link libdnnl.so.2 (the fused network): build with libdnnl-dev" >&2; exit 1; }
opencl=$(resolved "$dnnl" libOpenCL.so.1)

# What each bundled file is called in the bundle, by the name it had: file names and SONAMEs both.
declare -A rename=(
  [libtorch_cpu.so]=libddim4j_torch_cpu.so
  [libtorch.so]=libddim4j_torch.so
  [libc10.so]=libddim4j_c10.so
  [libgomp-52f2fd74.so.1]=libddim4j_gomp.so.1
  [libgomp.so.1]=libddim4j_gomp.so.1
  [libdnnl.so.2]=libddim4j_dnnl.so.2
  [libOpenCL.so.1]=libddim4j_OpenCL.so.1
  # libddim's NEEDED names for Debian's libtorch
  [libtorch_cpu.so.1.13]=libddim4j_torch_cpu.so
  [libtorch.so.1.13]=libddim4j_torch.so
  [libc10.so.1.13]=libddim4j_c10.so
)
# Every system library a bundled file may still need: each is part of any glibc Linux with a C++ runtime.
system_libraries=" libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 ld-linux-x86-64.so.2 libstdc++.so.6 libgcc_s.so.1 libz.so.1 "

inputs=$( { sha256sum "$0" "$(dirname "$0")/python/elf_unique_to_global.py" "$libddim" "$dnnl" ${opencl:+"$opencl"}
            stat -c '%n %s %Y' "$djl"/*; } | sed "s:$DDIM_ROOT/::")
if [[ -f "$out/.inputs" && "$(cat "$out/.inputs")" == "$inputs" ]]; then
  echo "bundle-natives: $out is up to date"
  exit 0
fi

rm -rf "$out"
mkdir -p "$out/licenses"
cp "$djl/libtorch_cpu.so" "$out/libddim4j_torch_cpu.so"
cp "$djl/libtorch.so" "$out/libddim4j_torch.so"
cp "$djl/libc10.so" "$out/libddim4j_c10.so"
cp "$djl/libgomp-52f2fd74.so.1" "$out/libddim4j_gomp.so.1"
cp "$dnnl" "$out/libddim4j_dnnl.so.2"
[[ -n "$opencl" ]] && cp "$opencl" "$out/libddim4j_OpenCL.so.1"
cp "$libddim" "$out/libddim.so"
chmod 0755 "$out"/*.so*

# patchelf 0.14 mis-applies several options given in one call: one operation per call.
for library in "$out"/*.so*; do
  file=$(basename "$library")
  [[ "$file" == libddim.so ]] || patchelf --set-soname "$file" "$library"
  for needed in $(patchelf --print-needed "$library"); do
    if [[ -n "${rename[$needed]:-}" ]]; then
      patchelf --replace-needed "$needed" "${rename[$needed]}" "$library"
    elif [[ "$system_libraries" != *" $needed "* ]]; then
      echo "bundle-natives: $file needs $needed, which is neither bundled nor part of a bare system" >&2
      exit 1
    fi
  done
  patchelf --set-rpath '$ORIGIN' "$library"
done
/usr/bin/python3 "$(dirname "$0")/python/elf_unique_to_global.py" "$out"/*.so*

# The highest symbol versions any bundled file needs: the oldest system the bundle runs on.
floor() {
  readelf -V -W "$out"/*.so* | grep -oE "\b$1_[0-9][0-9.]*" | sed "s/^$1_//" | sort -uV | tail -n1
}
glibc=$(floor GLIBC) glibcxx=$(floor GLIBCXX) cxxabi=$(floor CXXABI) gcc=$(floor GCC)

# Licence notices: each bundled project's, from the Debian packages of the same projects (PyTorch's is
# Debian's libtorch copyright: the same upstream licence as DJL's build of it).
notice() {
  local name=$1 source=$2
  [[ -f "$source" ]] || { echo "bundle-natives: no licence notice at $source" >&2; exit 1; }
  cp "$source" "$out/licenses/$name"
}
notice ddim4j-LICENSE "$DDIM_ROOT/LICENSE"
notice pytorch-copyright /usr/share/doc/libtorch1.13/copyright
notice onednn-copyright /usr/share/doc/libdnnl2/copyright
notice Apache-2.0 /usr/share/common-licenses/Apache-2.0
notice gcc-libgomp-copyright /usr/share/doc/libgomp1/copyright
notice GPL-3 /usr/share/common-licenses/GPL-3
[[ -n "$opencl" ]] && notice ocl-icd-copyright /usr/share/doc/ocl-icd-libopencl1/copyright
cat > "$out/licenses/NOTICE" <<NOTICE
ddim4j natives for Linux x86-64: what is bundled, from where, under which licence.

libddim.so               ddim4j (Apache-2.0; ddim4j-LICENSE), built on $(. /etc/os-release && echo "$PRETTY_NAME")
libddim4j_torch_cpu.so   PyTorch 1.13.1 CPU (BSD-3-Clause; pytorch-copyright), DJL's build from Maven Central
libddim4j_torch.so       (ai.djl.pytorch:pytorch-native-cpu:1.13.1:linux-x86_64); libtorch_cpu statically
libddim4j_c10.so         contains Intel MKL (Intel Simplified Software License) and oneDNN (Apache-2.0)
libddim4j_gomp.so.1      GNU OpenMP runtime from GCC, shipped with DJL's PyTorch build (GPL-3.0 with the
                         GCC Runtime Library Exception 3.1; gcc-libgomp-copyright, GPL-3)
libddim4j_dnnl.so.2      oneDNN $(basename "$(readlink -f "$dnnl")" | sed 's/libdnnl.so.//') (Apache-2.0; onednn-copyright, Apache-2.0), Debian's libdnnl2
libddim4j_OpenCL.so.1    ocl-icd OpenCL loader (BSD-2-Clause; ocl-icd-copyright), Debian's ocl-icd-libopencl1

Each library was renamed, its SONAME and NEEDED entries pointed at the new names, its RUNPATH set to
\$ORIGIN and its STB_GNU_UNIQUE symbols made STB_GLOBAL; the code is unchanged.
NOTICE
cp "$(dirname "$libddim")/libddim.properties" "$out/libddim.properties"

# The manifest: what NativeLibrary extracts and checks, one "SHA-256 size path" line per file.
{
  echo "# ddim4j natives for linux-x86_64: SHA-256, size in bytes, path. NativeLibrary loads libddim.so."
  echo "# needs: GLIBC_$glibc GLIBCXX_$glibcxx CXXABI_$cxxabi GCC_$gcc"
  (cd "$out" && find . -type f ! -name .inputs ! -name manifest -printf '%P\n' | LC_ALL=C sort | while read -r file; do
    echo "$(sha256sum "$file" | cut -d' ' -f1) $(stat -c %s "$file") $file"
  done)
} > "$out/manifest"
echo "$inputs" > "$out/.inputs"
echo "bundle-natives: $(du -sb "$out" | cut -f1) bytes in $out; needs GLIBC_$glibc GLIBCXX_$glibcxx CXXABI_$cxxabi GCC_$gcc"
