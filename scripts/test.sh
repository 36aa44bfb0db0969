#!/usr/bin/env bash
# `make test` (after ruff and mypy): the suite's lanes, side by side, each timed and logged on its own:
#   classic    the in-process tests and doctests on one classic session, but for those of the outputs:
#   outputs    the in-process tests of writers, Delta's log, markers, streaming and object stores, on another
#   jobs       the bundled jobs run in-process (tests/jobs), on a classic session of its own
#   processes  what only a process shows: bundled jobs under spark-submit (SIGKILLs, exit paths, the zip on a
#              standalone cluster's executors), on a classic session of its own for reading their outputs
#   connect    the in-process tests again on Spark Connect (a local server, started and always stopped)
#   versions   the built wheel on Python 3.10 and 3.13 (scripts/test_versions.sh)
# No lane uses both cores for long: the in-process tests wait on Spark's scheduling more than they compute, the
# process tests on JVMs starting, the version runs on pip; so they run together, and a lane's log is printed
# whole as soon as it ends. Tests never depend on timing, so a lane's result does not change with its
# neighbours; only its wall time does. The last lines give each lane's time and the tests it passed.
set -uo pipefail
cd "$(dirname "$0")/.."

logs=dist/test-logs
rm -rf "$logs" && mkdir -p "$logs"
py=.venv/bin/python

lane_counts() {  # "N M": tests passed and failed (errors included) in a log's pytest summary lines
  local lines passed=0 bad=0 n
  lines=$(grep -E "[0-9]+ (passed|failed|errors?).* in [0-9.]+s( \([0-9:]+\))?( =+)?$" "$1")
  for n in $(grep -oE "[0-9]+ passed" <<< "$lines" | cut -d' ' -f1); do passed=$((passed + n)); done
  for n in $(grep -oE "[0-9]+ (failed|errors?)" <<< "$lines" | cut -d' ' -f1); do bad=$((bad + n)); done
  echo "$passed $bad"
}

declare -A lane_of=()
# a TERM (CI's timeout) reaches every lane as an interrupt, so pytest stops its servers and child processes
trap 'trap - TERM; kill -INT 0; wait; exit 143' TERM
start_lane() {  # name, command...: run in the background, its output and wall seconds under $logs
  local name=$1; shift
  (start=$SECONDS; "$@"; code=$?; echo $((SECONDS - start)) > "$logs/$name.seconds"; exit "$code") \
    > "$logs/$name.log" 2>&1 &
  lane_of[$!]=$name
}

began=$SECONDS
bash scripts/build_weed.sh || exit 1  # the S3 server of the object-store tests, built once per machine
# The in-process tests in two lanes, each on a session of its own: the outputs (writers, Delta's log, markers,
# streaming, object stores: every test of the S3 server) and the rest (patterns, runners, docs, doctests). Apart,
# neither is left alone on the machine at the end, using one core of two.
io_files=(tests/test_writers.py tests/test_delta_append.py tests/test_markers.py tests/test_streaming.py
          tests/test_s3.py tests/test_s3_spark.py tests/test_object_store.py tests/test_jobs_on_s3.py)
start_lane classic $py -m pytest -m "not subprocess and not cluster" --ignore=tests/jobs "${io_files[@]/#/--ignore=}"
start_lane outputs $py -m pytest -p no:cacheprovider -m "not subprocess and not cluster" "${io_files[@]}"
start_lane jobs $py -m pytest -p no:cacheprovider -m "not subprocess and not cluster" tests/jobs
start_lane processes $py -m pytest -p no:cacheprovider -m "subprocess or cluster" tests
start_lane connect env SPARK_FLOWS_TEST_BACKEND=connect $py -m pytest -p no:cacheprovider tests --ignore=tests/jobs
start_lane versions bash scripts/test_versions.sh
echo "make test: lanes ${lane_of[*]} started side by side; each log follows when its lane ends (and stays in $logs)"

summary=() failed=0 total_passed=0 total_failed=0
while [ ${#lane_of[@]} -gt 0 ]; do
  wait -n -p pid "${!lane_of[@]}"
  code=$?
  name=${lane_of[$pid]}
  unset "lane_of[$pid]"
  seconds=$(cat "$logs/$name.seconds" 2>/dev/null || echo '?')
  echo "=============== lane $name: exit $code after ${seconds}s ==============="
  cat "$logs/$name.log"
  read -r passed bad < <(lane_counts "$logs/$name.log")
  summary+=("$(printf '%-9s %4ss  exit %s  %s passed, %s failed' "$name" "$seconds" "$code" "$passed" "$bad")")
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + bad))
  [ "$code" -eq 0 ] || failed=1
done

echo "--- make test: lanes (wall seconds, side by side; $((SECONDS - began))s in all) ---"
printf '%s\n' "${summary[@]}"
echo "${total_passed} passed, ${total_failed} failed"
exit "$failed"
