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

# Installs the Debian packages named as arguments that are missing (as root; otherwise prints the
# command and fails).
install_packages() {
  local package missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "missing Debian packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}
