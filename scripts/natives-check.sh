#!/usr/bin/env bash
# Proves that ddim4j runs where nothing is installed: on minimal Debian systems (bookworm and trixie,
# debootstrap --variant=minbase: ~90 packages, no libtorch, no compiler, no Java) with only
#   - a JDK 25 and the Maven artifacts a user's build resolves (the library, the natives jar, jackson-jr):
#     the README's sampling snippet on the shipped model, and NativesProbe (scripts/natives/): 16 samples
#     and a 20-step training run of a tiny model, compared with the same run on this host's source build
#     (build/libddim.so, Debian's libtorch): samples within 1e-4 max abs, losses within 1e-5 relative;
#   - the CLI download (scripts/cli-dist.sh; no JDK at all): bin/ddim sample writes the same grid as here.
# It also checks the glibc floor the natives manifest records against the promise in the README
# (GLIBC_2.34, GLIBCXX_3.4.29: Debian 12, Ubuntu 22.04, RHEL 9 and newer).
#
# Needs root (debootstrap, unshare -m, mount, chroot); skipped with the reason otherwise. The systems are
# made once into $DDIM4J_ROOTFS (default /var/cache/ddim4j/rootfs) from the Debian mirror apt uses here,
# and every run starts from a pristine copy (an overlay).
#
#   scripts/natives-check.sh       # after scripts/setup.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"

if [[ $(id -u) -ne 0 ]] || ! command -v unshare >/dev/null; then
  echo "natives-check: SKIPPED: building and entering bare systems needs root and unshare (run as root)"
  exit 0
fi
install_packages debootstrap
select_jdk

version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' pom.xml | head -n1)
releases=(bookworm trixie)
rootfs_cache=${DDIM4J_ROOTFS:-/var/cache/ddim4j/rootfs}
work=$(mktemp -d /var/tmp/ddim4j-natives-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "natives-check: FAILED: $*" >&2; exit 1; }

echo "== the glibc floor of the natives"
manifest=java/ddim4j-natives/target/classes/org/ddim4j/natives/linux-x86_64/manifest
[[ -f "$manifest" ]] || fail "no $manifest (run scripts/setup.sh)"
needs=$(sed -n 's/^# needs: //p' "$manifest")
echo "the natives need: $needs"
at_most() {  # at_most NAME VERSION: the manifest's NAME_x is no newer than VERSION
  local needed
  needed=$(grep -oE "\b$1_[0-9.]+" <<<"$needs" | sed "s/^$1_//")
  [[ "$(printf '%s\n%s\n' "$needed" "$2" | sort -V | tail -n1)" == "$2" ]] || fail "the natives need $1_$needed, newer than $1_$2 (RHEL 9)"
}
at_most GLIBC 2.34
at_most GLIBCXX 3.4.29

echo "== what a Maven user's build resolves for org.ddim4j:ddim4j:$version"
app=$work/app
mkdir -p "$app/classes"
write_consumer_pom "$app/project" natives-check "$version"
(cd "$app/project" && mvn -B -q package)
mv "$app/project/target/lib" "$app/lib"
ls "$app/lib"
/usr/bin/python3 scripts/python/readme_snippets.py README.md "$app/ReadmeSnippets.java"
javac -d "$app/classes" -cp "$app/lib/*" "$app/ReadmeSnippets.java"
cp scripts/natives/NativesProbe.java models/fashion-mnist-32.safetensors "$app/"
rm -rf "$app/project"

echo "== the reference: NativesProbe on this host's source build"
java --enable-native-access=ALL-UNNAMED -Dddim4j.library="$DDIM_ROOT/build/libddim.so" -cp "$app/lib/*" \
  scripts/natives/NativesProbe.java models/fashion-mnist-32.safetensors "$work/host"

echo "== the CLI download"
scripts/cli-dist.sh
dist=build/dist/ddim4j-cli-$version-linux-x86_64.tar.gz
mkdir -p "$work/cli-host"
tar -C "$work/cli-host" -xzf "$dist"
"$work/cli-host/ddim4j-cli-$version-linux-x86_64/bin/ddim" sample --model models/fashion-mnist-32.safetensors \
  --out "$work/cli-host/grid.png" --no-progress

# compare DIR: DIR's probe output against the host's source build.
compare() {
  /usr/bin/python3 - "$work/host" "$1" <<'PY'
import struct, sys
def floats(path):
    data = open(path, "rb").read()
    return struct.unpack("<%df" % (len(data) // 4), data)
def losses(path):
    return [float(line) for line in open(path)]
host, bare = sys.argv[1], sys.argv[2]
a, b = floats(host + "/samples.f32"), floats(bare + "/samples.f32")
assert len(a) == len(b) == 16 * 32 * 32, (len(a), len(b))
pixels = max(abs(x - y) for x, y in zip(a, b))
la, lb = losses(host + "/losses.txt"), losses(bare + "/losses.txt")
assert len(la) == len(lb) == 20
relative = max(abs(y / x - 1) for x, y in zip(la, lb))
print("samples max abs difference %.3g (limit 1e-4), losses max relative difference %.3g (limit 1e-5)" % (pixels, relative))
if pixels > 1e-4 or relative > 1e-5:
    sys.exit("natives-check: FAILED: the bare system computes other numbers than the source build")
PY
}

for release in "${releases[@]}"; do
  rootfs=$rootfs_cache/$release
  if [[ ! -f "$rootfs/.complete" ]]; then
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk '$2 !~ /-/ && $1 !~ /security/ {print $1; exit}')
    [[ -n "$mirror" ]] || fail "no Debian mirror in apt's sources to bootstrap from"
    echo "== making a minimal $release system (debootstrap --variant=minbase, once, into $rootfs)"
    rm -rf "$rootfs.partial"
    mkdir -p "$rootfs_cache"
    debootstrap --variant=minbase "$release" "$rootfs.partial" "$mirror" > "$work/debootstrap-$release.log" 2>&1 \
      || { tail -20 "$work/debootstrap-$release.log"; fail "debootstrap $release"; }
    touch "$rootfs.partial/.complete"
    mv "$rootfs.partial" "$rootfs"
  fi

  echo "== $release: the README snippet and NativesProbe with a JDK and the Maven artifacts only"
  run=$work/$release
  mkdir -p "$run/upper" "$run/overlay-work" "$run/root" "$run/out"
  # A private mount namespace: a pristine overlay of the system, the JDK (read-only), the application,
  # an output directory, /proc and /dev; then chroot into it. HOME=/root holds the natives cache.
  unshare -m bash -euo pipefail -s "$rootfs" "$run" "$JAVA_HOME" "$app" "$work/cli-host/ddim4j-cli-$version-linux-x86_64" <<'NAMESPACE'
rootfs=$1 run=$2 jdk=$3 app=$4 cli=$5
root=$run/root
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$run/upper,workdir=$run/overlay-work" "$root"
mkdir -p "$root/opt/jdk" "$root/app" "$root/out" "$root/opt/ddim4j-cli"
mount --bind -o ro "$jdk" "$root/opt/jdk"
mount --bind "$app" "$root/app"
mount --bind "$run/out" "$root/out"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
inside() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin LANG=C.UTF-8 /bin/sh -euc "$1"; }
inside '
  . /etc/os-release; echo "system: $PRETTY_NAME, $(ldd --version | head -n1)"
  if command -v java cc c++ python3 >/dev/null || ls /usr/lib/x86_64-linux-gnu | grep -q -e torch -e dnnl -e gomp; then
    echo "not a bare system: $(command -v java cc c++ python3) $(ls /usr/lib/x86_64-linux-gnu | grep -e torch -e dnnl -e gomp)"; exit 1
  fi
  cd /out
  cp /app/fashion-mnist-32.safetensors model.safetensors
  /opt/jdk/bin/java --enable-native-access=ALL-UNNAMED -cp "/app/classes:/app/lib/*" example.ReadmeSnippets sampling
  test -s grid.png
  /opt/jdk/bin/java --enable-native-access=ALL-UNNAMED -cp "/app/lib/*" /app/NativesProbe.java model.safetensors probe
  grep -q "^/root/.cache/ddim4j/.*/libddim.so$" probe/libraries.txt
  ! grep -v "^/root/.cache/ddim4j/" probe/libraries.txt
'
echo "== the CLI download, with no JDK in the system"
umount "$root/opt/jdk"
mount --bind -o ro "$cli" "$root/opt/ddim4j-cli"
inside '
  ! ls /opt/jdk/bin/java 2>/dev/null
  /opt/ddim4j-cli/bin/ddim sample --model /opt/ddim4j-cli/models/fashion-mnist-32.safetensors --out /out/cli-grid.png --no-progress
'
NAMESPACE
  compare "$run/out/probe"
  cmp "$run/out/cli-grid.png" "$work/cli-host/grid.png" || fail "$release: the CLI download wrote another grid than on this host"
  echo "$release: the CLI download wrote the same grid as on this host"
done
echo "natives-check: OK (${releases[*]})"
