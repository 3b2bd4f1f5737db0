# Shared by the ddim4j scripts (sourced, not run).

# The repository root.
DDIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Prints the Java feature version of a java binary ("25"), or nothing.
java_feature_version() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p' | head -n1
}

# Exports JAVA_HOME as a JDK >= 22 (the FFM API is final since 22): the current JAVA_HOME if new
# enough, else Temurin 25, else any JDK >= 22 under /usr/lib/jvm.
select_jdk() {
  local candidate version
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [[ -n "$candidate" && -x "$candidate/bin/javac" ]] || continue
    version=$(java_feature_version "$candidate/bin/java")
    if [[ -n "$version" && "$version" -ge 22 ]]; then
      export JAVA_HOME="$candidate"
      export PATH="$JAVA_HOME/bin:$PATH"
      return 0
    fi
  done
  echo "ddim4j needs a JDK >= 22 (for the FFM API); none found in JAVA_HOME or /usr/lib/jvm." >&2
  return 1
}
