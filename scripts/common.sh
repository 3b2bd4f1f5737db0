# Shared by the ddim4j scripts (sourced, not run).

# The repository root.
DDIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Prints the Java feature version of a java binary ("25"), or nothing.
java_feature_version() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p' | head -n1
}

# The Java release the POM compiles for (maven.compiler.release): the one JDK version the project needs.
required_java_release() {
  sed -n 's:.*<maven.compiler.release>\([0-9]*\)</maven.compiler.release>.*:\1:p' "$DDIM_ROOT/pom.xml" | head -n1
}

# Exports JAVA_HOME as a JDK of at least the POM's release (25: the generated FFM bindings need 23+,
# the POM compiles for 25): the current JAVA_HOME if new enough, else Temurin 25, else any such JDK
# under /usr/lib/jvm. Fails with where to get one.
select_jdk() {
  local candidate version required found=()
  required=$(required_java_release)
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [[ -n "$candidate" && -x "$candidate/bin/javac" ]] || continue
    [[ " ${found[*]} " == *" $candidate "* ]] && continue
    version=$(java_feature_version "$candidate/bin/java")
    if [[ -n "$version" && "$version" -ge "$required" ]]; then
      export JAVA_HOME="$candidate"
      export PATH="$JAVA_HOME/bin:$PATH"
      return 0
    fi
    found+=("$candidate" "(Java $version)")
  done
  {
    echo "ddim4j needs a JDK >= $required (pom.xml compiles for release $required); found: ${found[*]:-no JDK} in JAVA_HOME and /usr/lib/jvm."
    echo "Get JDK $required, then set JAVA_HOME to it:"
    echo "  - Eclipse Temurin: https://adoptium.net/temurin/releases/?version=$required (tar.gz), or on Debian/Ubuntu"
    echo "    add the apt repository https://packages.adoptium.net/artifactory/deb and apt-get install temurin-$required-jdk"
    echo "  - or https://jdk.java.net/$required, or SDKMAN: sdk install java $required-tem"
  } >&2
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

# Prints stdin's last JSON line with the fields given as key=value added (numbers stay numbers): how
# the benchmark scripts tag a run with its round and side.
# A TCP port on 127.0.0.1 that is free now (for a rendezvous or a server the caller starts next).
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `ddim serve` (the CLI jar) on a free port with the given options, its output in LOG, and waits until it
# listens; sets SERVE_PID and SERVE_PORT. stop_serve stops it with SIGTERM and checks that it stopped gracefully.
#   start_serve LOG --model FILE [serve options...]
start_serve() {
  local log=$1
  shift
  SERVE_PORT=$(free_port)
  "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar "$DDIM_ROOT/java/ddim4j-cli/target/ddim4j-cli-0.1.0.jar" \
    serve --port "$SERVE_PORT" "$@" > "$log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 300); do grep -q "^serving" "$log" && return 0; sleep 0.1; done
  cat "$log" >&2
  kill "$SERVE_PID"
  return 1
}

#   stop_serve LOG (after start_serve, in the same shell)
stop_serve() {
  kill -TERM "$SERVE_PID"
  wait "$SERVE_PID" || true  # 143: ended by SIGTERM, after its graceful stop
  grep -q "^stopped" "$1" || { echo "the server did not stop gracefully:" >&2; cat "$1" >&2; return 1; }
}

json_tag() {
  /usr/bin/python3 -c '
import json, sys
row = json.loads([line for line in sys.stdin if line.startswith("{")][-1])
for pair in sys.argv[1:]:
    key, value = pair.split("=", 1)
    row[key] = int(value) if value.isdigit() else value
print(json.dumps(row))' "$@"
}

# write_consumer_pom DIR ARTIFACT_ID VERSION: DIR/pom.xml of a project whose only dependency is
# org.ddim4j:ddim4j:VERSION; `mvn package` compiles its sources and copies the runtime dependencies
# (what a Maven user's build resolves) into DIR/target/lib.
write_consumer_pom() {
  mkdir -p "$1"
  cat > "$1/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>$2</artifactId>
  <version>1</version>
  <properties>
    <maven.compiler.release>$(required_java_release)</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
    <dependency>
      <groupId>org.ddim4j</groupId>
      <artifactId>ddim4j</artifactId>
      <version>$3</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-compiler-plugin</artifactId>
        <version>3.14.0</version>
      </plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
        <executions>
          <execution>
            <phase>package</phase>
            <goals><goal>copy-dependencies</goal></goals>
            <configuration>
              <includeScope>runtime</includeScope>
              <outputDirectory>\${project.build.directory}/lib</outputDirectory>
            </configuration>
          </execution>
        </executions>
      </plugin>
    </plugins>
  </build>
</project>
POM
}
