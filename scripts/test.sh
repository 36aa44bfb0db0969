#!/usr/bin/env bash
# `make test`: ruff and mypy, then the suite's lanes, each timed: classic Spark (in-process tests, spark-submit,
# the standalone cluster), Spark Connect (a local server, started and always stopped), and the built wheel on
# Python 3.10 and 3.13 (scripts/test_versions.sh). The version runs spend most of their time starting JVMs
# and waiting on pip, so they run beside the classic lane; their output follows it. The last line adds up
# every lane's tests.
set -uo pipefail
cd "$(dirname "$0")/.."

logs=dist/test-logs
rm -rf "$logs" && mkdir -p "$logs"
summary=()
failed=0 total_passed=0 total_failed=0

lane_counts() {  # "N M": tests passed and failed (errors included) in a log's pytest summary lines
  local lines passed=0 bad=0 n
  lines=$(grep -E "[0-9]+ (passed|failed|errors?).* in [0-9.]+s( \([0-9:]+\))?( =+)?$" "$1")
  for n in $(grep -oE "[0-9]+ passed" <<< "$lines" | cut -d' ' -f1); do passed=$((passed + n)); done
  for n in $(grep -oE "[0-9]+ (failed|errors?)" <<< "$lines" | cut -d' ' -f1); do bad=$((bad + n)); done
  echo "$passed $bad"
}

record() {  # lane, exit code, seconds, log
  local passed bad
  read -r passed bad < <(lane_counts "$4")
  summary+=("$(printf '%-8s %4ss  exit %s  %s passed, %s failed' "$1" "$3" "$2" "$passed" "$bad")")
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + bad))
  [ "$2" -eq 0 ] || failed=1
}

began=$SECONDS
(start=$SECONDS; bash scripts/test_versions.sh; code=$?; echo $((SECONDS - start)) > "$logs/versions.seconds"
 exit "$code") > "$logs/versions.log" 2>&1 &
versions_pid=$!

start=$SECONDS
.venv/bin/python -m pytest 2>&1 | tee "$logs/classic.log"
record classic "${PIPESTATUS[0]}" $((SECONDS - start)) "$logs/classic.log"

start=$SECONDS
SPARK_FLOWS_TEST_BACKEND=connect .venv/bin/python -m pytest tests --ignore=tests/jobs 2>&1 | tee "$logs/connect.log"
record connect "${PIPESTATUS[0]}" $((SECONDS - start)) "$logs/connect.log"

wait "$versions_pid"
code=$?
echo "--- the version runs (beside the classic lane) ---"
cat "$logs/versions.log"
record versions "$code" "$(cat "$logs/versions.seconds" 2>/dev/null || echo '?')" "$logs/versions.log"

echo "--- make test: lanes (wall seconds; $((SECONDS - began))s in all) ---"
printf '%s\n' "${summary[@]}"
echo "${total_passed} passed, ${total_failed} failed"
exit "$failed"
