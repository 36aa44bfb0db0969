#!/usr/bin/env bash
# `make check`, the fast inner loop (after `make lint`): the in-process tests of what the working tree changed
# (against HEAD, untracked files included): tests/test_<module>.py (or test_<folder>.py) for a changed
# spark_flows/.../<module>.py and the module's own doctests, tests/jobs/test_<job>.py for a changed jobs/<job>.py, and every changed test file.
# Process tests (spark-submit, the standalone cluster) are left to `make test`. TESTS="path ..." overrides.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${TESTS:-}" ]; then
  read -r -a selected <<< "$TESTS"
else
  selected=()
  while IFS= read -r file; do
    [ -f "$file" ] || continue
    case "$file" in
      tests/installed/*|tests/pipelines/*) ;;
      tests/test_*.py|tests/*/test_*.py) selected+=("$file") ;;
      spark_flows/*.py)  # tests/test_<module>.py, and tests/test_<folder>.py for a module inside a pattern's folder
        name=$(basename "$file" .py) folder=$(basename "$(dirname "$file")")
        for test in "tests/test_$name.py" "tests/test_$folder.py"; do [ -f "$test" ] && selected+=("$test"); done
        selected+=("$file") ;;
      jobs/*.py)
        name=$(basename "$file" .py)
        [ -f "tests/jobs/test_$name.py" ] && selected+=("tests/jobs/test_$name.py") ;;
    esac
  done < <({ git diff --name-only HEAD; git ls-files --others --exclude-standard; } | sort -u)
fi

if [ ${#selected[@]} -eq 0 ]; then
  echo "check: no module or test changed against HEAD, so no test to run (TESTS=... to pick some)"
  exit 0
fi
mapfile -t selected < <(printf '%s\n' "${selected[@]}" | sort -u)
echo "check: ${selected[*]}"
set +e
.venv/bin/python -m pytest -q -m "not subprocess and not cluster" "${selected[@]}"
code=$?
set -e
[ "$code" -eq 5 ] && { echo "check: the changed files hold no in-process test"; exit 0; }
exit "$code"
