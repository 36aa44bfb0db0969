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

# --- Delta Lake and S3A jars -------------------------------------------------------------------------
# Spark resolves io.delta:delta-spark_4.2_2.13 and org.apache.hadoop:hadoop-aws (matching pyspark's Hadoop, for
# s3a:// and the suite's S3 server; its AWS SDK bundle is about 690 MB the first time) from Maven Central with
# Ivy and caches them in ~/.ivy2.5.2. If that resolver cannot reach Maven Central, fall back to
# `mvn dependency:copy-dependencies` into the machine's cache (beside the saved list, so later clones reuse
# them). The Makefile passes the jar list to Spark as
# SPARK_FLOWS_JARS.
package=$(.venv/bin/python -c 'from spark_flows.core.config import load_settings
print(",".join(load_settings(overrides={"s3a": True}).packages()))')
resolved=".cache/delta-resolved"
mkdir -p .cache
jars_present() {  # every jar of the saved list still exists (the Ivy cache may have been wiped)
  [ -s .cache/delta-jars.txt ] || return 1
  local jar
  for jar in $(tr ',' ' ' < .cache/delta-jars.txt); do [ -f "${jar#file:}" ] || return 1; done
}
# The machine's cache keeps the list too (keyed on the packages), so a fresh clone starts no Spark to resolve.
cache="${SPARK_FLOWS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spark_flows}"
machine_list="$cache/jars-$(sha256sum <<< "$package" | cut -c1-12).txt"
if [ "$(cat "$resolved" 2>/dev/null)" != "$package" ] || ! jars_present; then
  cp "$machine_list" .cache/delta-jars.txt 2>/dev/null && jars_present && echo "$package" > "$resolved"
fi
if [ "$(cat "$resolved" 2>/dev/null)" != "$package" ] || ! jars_present; then
  rm -f .cache/delta-jars.txt
  echo "bootstrap: resolving $package with Spark's resolver (first time only; a few minutes)"
  if SPARK_LOCAL_IP=127.0.0.1 .venv/bin/python - <<'PY' > .cache/resolve.log 2>&1
from spark_flows.core.config import load_settings
from spark_flows.core.session import get_session
spark = get_session(load_settings(overrides={"master": "local[1]", "s3a": True,
                                             "spark_conf": {"spark.ui.enabled": "false"}}))
from spark_flows.core.backend import class_loadable
assert class_loadable(spark, "org.apache.hadoop.fs.s3a.S3AFileSystem"), "hadoop-aws did not resolve"
spark.range(1).write.format("delta").mode("overwrite").save(".cache/delta-check")
assert spark.read.format("delta").load(".cache/delta-check").count() == 1
# spark-submit records the jars Ivy resolved in spark.jars: keep the list, so later sessions use the cached
# jars directly (no resolver chatter, no network).
from spark_flows.core.session import without_bundled
jars = [j for j in spark.sparkContext.getConf().get("spark.jars", "").split(",") if j]
open(".cache/delta-jars.txt", "w").write(",".join(without_bundled(jars)))
spark.stop()
PY
  then
    echo "$package" > "$resolved"
  else
    echo "bootstrap: Spark's resolver failed (see .cache/resolve.log); trying mvn dependency:copy-dependencies"
    command -v mvn >/dev/null 2>&1 || die "cannot resolve $package: Spark's resolver failed and mvn is not installed"
    dependencies=""
    for coordinates in ${package//,/ }; do
      IFS=: read -r group artifact version <<<"$coordinates"
      dependencies+="<dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency>"
    done
    cat > .cache/delta-pom.xml <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>delta-jars</artifactId><version>1</version>
  <dependencies>$dependencies</dependencies>
</project>
POM
    jar_dir="${machine_list%.txt}"
    mkdir -p "$jar_dir"
    mvn -q -f .cache/delta-pom.xml dependency:copy-dependencies -DoutputDirectory="$jar_dir" -DincludeScope=runtime \
      || die "mvn could not fetch $package from Maven Central"
    ls "$jar_dir"/*.jar | paste -sd, - | .venv/bin/python -c 'import sys
from spark_flows.core.session import without_bundled
print(",".join(without_bundled(sys.stdin.read().strip().split(","))))' > .cache/delta-jars.txt
    echo "$package" > "$resolved"
  fi
fi
rm -rf .cache/delta-check
mkdir -p "$cache" && cp .cache/delta-jars.txt "$machine_list.tmp" && mv "$machine_list.tmp" "$machine_list"
