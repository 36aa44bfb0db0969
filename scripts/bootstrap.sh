#!/usr/bin/env bash
# Bootstrap for `make demo`, `make test` and `make bench`: checks Java 17+ and Python 3.11+, creates .venv,
# installs spark_flows with its pinned Spark/Delta and dev tools, and makes sure Delta's JVM jars resolve.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bootstrap: error: $*" >&2; exit 1; }

# --- Java 17+ ---------------------------------------------------------------------------------------
java_bin="java"
[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && java_bin="$JAVA_HOME/bin/java"
command -v "$java_bin" >/dev/null 2>&1 || die "Java not found: Spark 4.2 needs Java 17 or newer on PATH or in JAVA_HOME (e.g. apt-get install openjdk-17-jre-headless)"
java_version=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
[ -n "$java_version" ] && [ "$java_version" -ge 17 ] || die "Java 17+ is required, found '${java_version:-unknown}' at $(command -v "$java_bin")"

# --- Python 3.11+ and the virtualenv ----------------------------------------------------------------
python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      python_bin="$candidate"; break
    fi
  done
fi
[ -n "$python_bin" ] || die "Python 3.11+ not found for the dev environment (set PYTHON=/path/to/python3.11); the library itself supports 3.10+, and make test checks 3.10 and 3.13 in venvs of their own"

stamp=".venv/.spark_flows-installed"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $python_bin"
  "$python_bin" -m venv .venv || die "could not create .venv (is the venv module installed? apt-get install python3-venv)"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing spark_flows and its pinned dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]" || die "pip install failed (see above)"
  echo "$want" > "$stamp"
fi

# --- Delta Lake jars --------------------------------------------------------------------------------
# Spark resolves io.delta:delta-spark_4.2_2.13 from Maven Central with Ivy and caches it in ~/.ivy2.5.2.
# If that resolver cannot reach Maven Central, fall back to `mvn dependency:copy-dependencies` into
# .cache/jars, which the Makefile passes to Spark as SPARK_FLOWS_JARS.
package=$(.venv/bin/python -c 'from spark_flows.config import load_settings; print(load_settings().delta_package)')
resolved=".cache/delta-resolved"
mkdir -p .cache
jars_present() {  # every jar of the saved list still exists (the Ivy cache may have been wiped)
  [ -s .cache/delta-jars.txt ] || return 1
  local jar
  for jar in $(tr ',' ' ' < .cache/delta-jars.txt); do [ -f "${jar#file:}" ] || return 1; done
}
if [ "$(cat "$resolved" 2>/dev/null)" != "$package" ] || ! jars_present; then
  rm -f .cache/delta-jars.txt
  echo "bootstrap: resolving $package with Spark's resolver (first time only)"
  if SPARK_LOCAL_IP=127.0.0.1 .venv/bin/python - <<'PY' > .cache/resolve.log 2>&1
from spark_flows.config import load_settings
from spark_flows.session import get_session
spark = get_session(load_settings(overrides={"master": "local[1]", "spark_conf": {"spark.ui.enabled": "false"}}))
spark.range(1).write.format("delta").mode("overwrite").save(".cache/delta-check")
assert spark.read.format("delta").load(".cache/delta-check").count() == 1
# spark-submit records the jars Ivy resolved in spark.jars: keep the list, so later sessions use the cached
# jars directly (no resolver chatter, no network).
open(".cache/delta-jars.txt", "w").write(spark.sparkContext.getConf().get("spark.jars", ""))
spark.stop()
PY
  then
    echo "$package" > "$resolved"
  else
    echo "bootstrap: Spark's resolver failed (see .cache/resolve.log); trying mvn dependency:copy-dependencies"
    command -v mvn >/dev/null 2>&1 || die "cannot resolve $package: Spark's resolver failed and mvn is not installed"
    IFS=: read -r group artifact version <<<"$package"
    cat > .cache/delta-pom.xml <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>delta-jars</artifactId><version>1</version>
  <dependencies><dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency></dependencies>
</project>
POM
    mvn -q -f .cache/delta-pom.xml dependency:copy-dependencies -DoutputDirectory="$PWD/.cache/jars" -DincludeScope=runtime \
      || die "mvn could not fetch $package from Maven Central"
    ls "$PWD"/.cache/jars/*.jar | paste -sd, - > .cache/delta-jars.txt
    echo "$package" > "$resolved"
  fi
fi
rm -rf .cache/delta-check
