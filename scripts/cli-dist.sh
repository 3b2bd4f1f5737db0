#!/usr/bin/env bash
# The command line as a download that needs nothing installed, not even a JDK:
#   build/dist/ddim4j-cli-VERSION-linux-x86_64.tar.gz
#     bin/ddim      the launcher (sh)
#     lib/          the CLI jar (the library, picocli, ... inside)
#     natives/      the natives jar's contents: libddim.so with its private libtorch, oneDNN, OpenMP; licences
#     runtime/      a Java runtime made by jlink with just the modules the CLI uses
#     models/       the shipped models and the KID feature extractor
# Run after scripts/setup.sh (which builds the jars and the natives). Prints the archive's size.
#
#   scripts/cli-dist.sh            # then: tar xzf build/dist/ddim4j-cli-*.tar.gz && ddim4j-cli-*/bin/ddim --help
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"
select_jdk

version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' pom.xml | head -n1)
name=ddim4j-cli-$version-linux-x86_64
natives=java/ddim4j-natives/target/classes/org/ddim4j/natives/linux-x86_64
cli=java/ddim4j-cli/target/ddim4j-cli-$version.jar
for needed in "$natives/libddim.so" "$cli"; do
  [[ -f "$needed" ]] || { echo "cli-dist: no $needed (run scripts/setup.sh first)" >&2; exit 1; }
done

stage=build/dist/$name
rm -rf "$stage" "build/dist/$name.tar.gz"
mkdir -p "$stage/bin" "$stage/lib" "$stage/natives" "$stage/models"
cp "$cli" "$stage/lib/"
cp -r "$natives"/. "$stage/natives/"
rm -f "$stage/natives/.inputs"
cp models/*.safetensors models/fashion-mnist-features.pt models/fashion-mnist-features.pt.json "$stage/models/"
cp LICENSE "$stage/"

# The modules the CLI and its libraries use (jdeps --print-module-deps on the CLI jar), plus java.logging for
# the library's System.Logger records and jdk.unsupported for the terminal library of the progress bar.
modules=java.base,java.desktop,java.logging,java.management,java.sql,jdk.httpserver,jdk.security.auth,jdk.unsupported
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --output "$stage/runtime" \
  --strip-debug --no-header-files --no-man-pages --compress zip-6

cat > "$stage/bin/ddim" <<'LAUNCHER'
#!/bin/sh
# The ddim command line with its own Java runtime and native libraries. Extra JVM flags: DDIM_JAVA_OPTS.
app=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
exec "$app/runtime/bin/java" --enable-native-access=ALL-UNNAMED -Dddim4j.library="$app/natives/libddim.so" \
  -Dddim4j.home="$app" $DDIM_JAVA_OPTS -jar "$app/lib/ddim4j-cli-@VERSION@.jar" "$@"
LAUNCHER
sed -i "s/@VERSION@/$version/" "$stage/bin/ddim"
chmod +x "$stage/bin/ddim"

tar -C build/dist -czf "build/dist/$name.tar.gz" "$name"
echo "cli-dist: build/dist/$name.tar.gz, $(du -m "build/dist/$name.tar.gz" | cut -f1) MB ($(du -sm "$stage" | cut -f1) MB unpacked: runtime $(du -sm "$stage/runtime" | cut -f1) MB, natives $(du -sm "$stage/natives" | cut -f1) MB)"
