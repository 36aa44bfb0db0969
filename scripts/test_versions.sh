#!/usr/bin/env bash
# `make test`'s last part: the built wheel on the oldest and the newest supported Python, each beside another
# supported pyspark line, in a fresh venv of its own: tests/installed/ runs from outside the checkout with the
# wheel's pytest plugin; one's own job (examples/own_job.py) runs, its replay writes nothing, and the
# version-sensitive parts (configuration, enums, the Delta artifact per Spark line) hold there.
#   Python 3.10 + pyspark 4.2.0 (constraints.txt)      Python 3.13 + pyspark 4.1.4 (Delta's artifact for Spark 4.1)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "test_versions: error: $*" >&2; exit 1; }

find_python() {  # a pyenv install of python3.X, else one on PATH (a pyenv shim may exist and not run)
  local version=$1 candidate
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version" \
                   "$(command -v "python$version" || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c "import venv" >/dev/null 2>&1; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

# The venvs live in the machine's cache, outside the clone, keyed on the dependency files: a fresh clone reuses
# them and only reinstalls the wheel it built.
cache="${SPARK_FLOWS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spark_flows}"
key=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
rm -rf dist/versions && mkdir -p dist/versions "$cache"
# CI's pins for what these venvs share with .venv (pyspark, and wheels that depend on the interpreter, left free)
grep -E "^(delta-spark|chispa|pytest)==" constraints.txt > dist/versions/constraints.txt
.venv/bin/python -m pip wheel --no-deps -q -w dist/versions . || die "could not build the wheel"
wheel=$(ls dist/versions/spark_flows-*.whl)

for combo in "3.10 4.2.0" "3.13 4.1.4"; do
  read -r python_version pyspark_version <<< "$combo"
  python_bin=$(find_python "$python_version") || die "Python $python_version not found: the version runs need it \
on PATH or under pyenv (pyenv install $python_version)"
  venv="$cache/venv-py$python_version-pyspark$pyspark_version-$key"
  stamp="$venv/.complete"
  echo "test_versions: Python $python_version ($python_bin) + pyspark $pyspark_version"
  if [ ! -f "$stamp" ]; then
    rm -rf "$venv"
    "$python_bin" -m venv "$venv" || die "could not create $venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$venv/bin/python" -m pip install -q "$wheel[classic,test]" "pyspark==$pyspark_version" -c dist/versions/constraints.txt \
      || die "pip install of the wheel beside pyspark $pyspark_version failed (see above)"
    touch "$stamp"
  fi
  "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$wheel" || die "could not install $wheel"
  installed=$("$venv/bin/python" -c 'import pyspark, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]} {pyspark.__version__}")')
  [ "$installed" = "$python_version $pyspark_version" ] || die "$venv holds Python/pyspark $installed, expected $combo"

  # from outside the checkout, so everything imports the installed wheel (and its pytest plugin), not the sources
  out=$(mktemp -d)
  cp tests/installed/test_installed_wheel.py "$out/"
  (cd "$out" && env -u SPARK_FLOWS_JARS SPARK_FLOWS_CHECKOUT="$OLDPWD" EXPECTED_PYTHON="$python_version" \
     EXPECTED_PYSPARK="$pyspark_version" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
     test_installed_wheel.py) || die "the wheel failed on Python $python_version + pyspark $pyspark_version"
  rm -rf "$out"
done
echo "test_versions: ok"
