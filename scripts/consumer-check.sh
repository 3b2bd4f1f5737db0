#!/usr/bin/env bash
# Checks ddim4j the way a Maven user meets it, after `mvn install` (scripts/setup.sh runs it):
#  - a fresh project whose only dependency is org.ddim4j:ddim4j compiles the README's Java snippets
#    (the code blocks marked <!-- consumer-check -->, taken verbatim) and runs them on the class path
#    and on the module path, from a directory outside the repository;
#  - the library brings only its own runtime dependencies, the natives jar among them, whose libddim the
#    snippets load (on the module path too, where nothing requires it);
#  - the jar is a named module that exports the API and not the generated bindings;
#  - the CLI jar runs with `java -jar` from any directory.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"
select_jdk

version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' pom.xml | head -n1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "consumer-check: FAILED: $*" >&2; exit 1; }

echo "== a consumer project with only org.ddim4j:ddim4j:$version"
mkdir -p "$work/project/src/main/java/example"
write_consumer_pom "$work/project" consumer "$version"
# Each marked README block becomes one method of example.ReadmeSnippets: the snippets compile as printed.
/usr/bin/python3 scripts/python/readme_snippets.py README.md "$work/project/src/main/java/example/ReadmeSnippets.java"
(cd "$work/project" && mvn -B -q package) || fail "the README's snippets do not compile against org.ddim4j:ddim4j alone"

lib="$work/project/target/lib"
echo "runtime dependencies: $(ls "$lib" | tr '\n' ' ')"
for jar in "$lib"/*.jar; do
  case "$(basename "$jar")" in
    ddim4j-$version.jar|ddim4j-natives-$version-linux-x86_64.jar|jackson-jr-objects-*.jar|jackson-core-*.jar) ;;
    *) fail "the library drags in $(basename "$jar")" ;;
  esac
done

echo "== the module descriptor"
module=$(jar --describe-module --file "$lib/ddim4j-$version.jar")
echo "$module"
grep -q '^org.ddim4j' <<<"$module" || fail "ddim4j-$version.jar is not the named module org.ddim4j"
grep -q '^exports org.ddim4j$' <<<"$module" && grep -q '^exports org.ddim4j.data$' <<<"$module" || fail "the API is not exported"
grep -q 'exports org.ddim4j.ffi' <<<"$module" && fail "the generated bindings are exported"

run_dir="$work/run"
mkdir -p "$run_dir"
cp models/fashion-mnist-32.safetensors "$run_dir/model.safetensors"
classes="$work/project/target/classes"
# A cache of its own: that the snippets extract the natives into it shows that they loaded them.
export XDG_CACHE_HOME="$work/cache"
output() { case "$1" in sampling) echo grid.png ;; training) echo run/model.safetensors ;; esac; }
for snippet in sampling training; do
  echo "== README $snippet snippet, class path"
  rm -rf "$run_dir/grid.png" "$run_dir/run"
  (cd "$run_dir" && java --enable-native-access=ALL-UNNAMED -cp "$classes:$lib/*" example.ReadmeSnippets "$snippet")
  [[ -s "$run_dir/$(output $snippet)" ]] || fail "the $snippet snippet wrote no $(output $snippet) (class path)"
  echo "== README $snippet snippet, module path"
  rm -rf "$run_dir/grid.png" "$run_dir/run"
  (cd "$run_dir" && java --enable-native-access=org.ddim4j -p "$lib" --add-modules org.ddim4j -cp "$classes" \
     example.ReadmeSnippets "$snippet")
  [[ -s "$run_dir/$(output $snippet)" ]] || fail "the $snippet snippet wrote no $(output $snippet) (module path)"
done

compgen -G "$XDG_CACHE_HOME/ddim4j/*/libddim.so" >/dev/null || fail "the snippets did not load the natives jar's libddim"
echo "the natives jar was extracted into $(echo "$XDG_CACHE_HOME"/ddim4j/*/)"

echo "== java -jar on the CLI jar, from another directory"
cli="$DDIM_ROOT/java/ddim4j-cli/target/ddim4j-cli-$version.jar"
(cd "$run_dir" && java -jar "$cli" info --model model.safetensors) || fail "java -jar $cli does not run"
(cd "$run_dir" && java -jar "$cli" sample --model model.safetensors --count 4 --steps 2 --out cli.png --no-progress)
[[ -s "$run_dir/cli.png" ]] || fail "the CLI jar wrote no image"
echo "consumer-check: OK"
