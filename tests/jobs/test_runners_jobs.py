from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from jobs import backfill, visits_trend_generator
from spark_flows.book.samples import write_visits
from spark_flows.io.storage import local_storage
from tests.flows import assert_ran_as_declared, run_flow, statuses
from tests.leases import backdate_lease
from tests.procs import JobProcess


def _visits(spark, data_root: str, *days: str, **kwargs) -> None:
    for day in days:
        write_visits(spark, f"{data_root}/raw/visits", day, rows_per_hour=2, **kwargs)


def _trend(data_root: str, day: str, *extra: str) -> int:
    return visits_trend_generator.main(["--data-root", data_root, "--execution-date", day, *extra])


def test_trend_compares_with_the_previous_day_and_depends_on_past(spark, data_root: str, capsys) -> None:
    _visits(spark, data_root, "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-06")
    assert _trend(data_root, "2024-01-02") == 0  # the first run: no history, no input for 2024-01-01
    trend = spark.read.format("delta").load(f"{data_root}/tables/visits_trend")
    first = trend.groupBy().agg({"visits": "sum", "previous_visits": "sum", "change": "sum"}).first()
    assert (first["sum(visits)"], first["sum(previous_visits)"], first["sum(change)"]) == (48, 0, 48)  # all +
    assert _trend(data_root, "2024-01-04") == 1
    assert "DEPENDS_ON_PAST" in capsys.readouterr().err
    assert _trend(data_root, "2024-01-03") == 0 and _trend(data_root, "2024-01-04") == 0
    assert trend.count() > 0 and trend.where("visits != previous_visits + change").count() == 0
    assert _trend(data_root, "2024-01-06", "--no-depends-on-past") == 1  # with history, a missing D-1 is an error
    assert "INPUT_NOT_FOUND" in capsys.readouterr().err
    from spark_flows.apps.cli import main as cli
    capsys.readouterr()
    assert cli(["runs", "visits_trend_generator", "--data-root", data_root]) == 0
    out = capsys.readouterr().out
    assert out.count("succeeded") == 3 and "2024-01-04" in out
    first = assert_ran_as_declared(visits_trend_generator, ["--execution-date", "2024-01-02"], data_root, "2024-01-02")
    assert first.node("visits_day_before").facts == {"status": "skipped", "reason": "first run: compared with zero"}
    assert first.node("single_run").facts["first_run"] is True
    missing = run_flow(data_root, "visits_trend_generator", "2024-01-06")  # failed reading D-1
    assert missing.node("single_run").facts["status"] == "ran" and not missing.node("trend").facts


def test_refusals_decided_from_files_exit_before_spark_starts_and_are_in_the_ledger(
        spark, data_root: str, monkeypatch, capsys) -> None:
    from spark_flows.apps import harness
    from spark_flows.patterns.runners import RunLedger
    from spark_flows.patterns.runners.locks import RunLock

    _visits(spark, data_root, "2024-01-01", "2024-01-02", "2024-01-03")
    assert _trend(data_root, "2024-01-02") == 0
    started = []
    session = harness.job_session
    monkeypatch.setattr(harness, "job_session", lambda settings: started.append(1) or session(settings))
    assert _trend(data_root, "2024-01-04") == 1  # 01-03 never ran
    assert "[DEPENDS_ON_PAST] visits_trend_generator for 2024-01-04 depends on 2024-01-03" in capsys.readouterr().err
    holder = RunLock(None, f"{data_root}/_locks", "visits_trend_generator", run_id="holder")
    holder.acquire()
    try:
        assert _trend(data_root, "2024-01-03") == 1
    finally:
        holder.release()
    assert "[RUN_LOCKED] job visits_trend_generator is locked by run holder" in capsys.readouterr().err
    assert started == [], "a refusal that the files decide started a Spark session"
    refused = run_flow(data_root, "visits_trend_generator", "2024-01-03").node("single_run").facts
    assert refused["status"] == "failed" and refused["reason"].startswith("[RUN_LOCKED]")
    assert _trend(data_root, "2024-01-03", "--wait-for-lock", "5") == 0 and started == [1]  # a run goes on to Spark
    runs = RunLedger(spark, f"{data_root}/_ledger/runs").runs("visits_trend_generator")
    assert [(r.execution_date, r.attempt, r.status, (r.error or "").split("]")[0]) for r in runs] == [
        ("2024-01-02", 1, "succeeded", ""), ("2024-01-03", 0, "refused", "[RUN_LOCKED"),
        ("2024-01-03", 1, "succeeded", ""), ("2024-01-04", 1, "refused", "[DEPENDS_ON_PAST")]


def test_backfill_with_a_failing_date_finishes_the_others_in_one_table(spark, data_root: str, capsys) -> None:
    _visits(spark, data_root, "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05")
    _visits(spark, data_root, "2024-01-03", missing_hours=[5])
    code = backfill.main(["--data-root", data_root, "--job", "visits_cube", "--from", "2024-01-01",
                          "--to", "2024-01-05", "--concurrency", "3"])
    assert code == 1
    out = capsys.readouterr().out
    assert "4 ok, 1 failed" in out and "2024-01-03  FAILED" in out
    cube = spark.read.format("delta").load(f"{data_root}/tables/visits_cube")
    assert sorted(r.date for r in cube.select("date").distinct().collect()) == [
        "20240101", "20240102", "20240104", "20240105"]  # every concurrent commit landed
    completeness = spark.read.format("delta").load(f"{data_root}/tables/visits_cube_completeness")
    assert completeness.count() == 4
    argv = ["--job", "visits_cube", "--from", "2024-01-01", "--to", "2024-01-05", "--concurrency", "3"]
    flow = assert_ran_as_declared(backfill, argv, data_root)
    assert statuses(flow, "backfill.2") == {f"backfill.2024-01-0{d}": "failed" if d == 3 else "ran"
                                            for d in range(1, 6)}
    assert "05 (no data)" in flow.node("backfill.2024-01-03").facts["reason"]
    day = run_flow(data_root, "visits_cube", "2024-01-03")  # each date's own flow, from its thread
    assert day.node("hours.05").facts["status"] == "failed" and day.node("hours").facts["status"] == "failed"


def test_backfill_runs_a_single_runner_job_in_order(spark, data_root: str, caplog) -> None:
    _visits(spark, data_root, "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
    code = backfill.main(["--data-root", data_root, "--job", "visits_trend_generator", "--from", "2024-01-02",
                          "--to", "2024-01-04", "--concurrency", "3"])
    assert code == 0  # concurrently, depends-on-past would have refused 01-03 or 01-04
    trend = spark.read.format("delta").load(f"{data_root}/tables/visits_trend")
    assert trend.select("date").distinct().count() == 3


@pytest.mark.subprocess
def test_a_run_is_refused_while_a_process_holds_the_lock_and_takes_it_over_once_the_killed_holder_expired(
        spark, data_root: str, tmp_path: Path, capsys) -> None:
    _visits(spark, data_root, "2024-01-01", "2024-01-02")
    conf = tmp_path / "runner.toml"
    conf.write_text("[runner]\nlock_ttl_seconds = 600\nheartbeat_seconds = 5\n")
    args = ["--data-root", data_root, "--execution-date", "2024-01-02", "--conf-file", str(conf)]
    # the holder: a spark-submit run stopped dead inside its single-run block (locked, recorded as running)
    holder = JobProcess("visits_trend_generator", args, pause="before:jobs.visits_trend_generator:read_json")
    holder.wait_for("PAUSED AT before:jobs.visits_trend_generator:read_json")
    assert any(re.search(r"run \w+ started \(attempt 1\)", line) for line in holder.lines), holder.tail()
    lock = Path(data_root, "_locks", "visits_trend_generator.lock")
    holder_pid = json.loads(lock.read_text())["pid"]
    assert holder_pid != os.getpid()
    assert _trend(data_root, "2024-01-02", "--conf-file", str(conf)) == 1  # a second run, while the holder lives
    err = capsys.readouterr().err
    assert "RUN_LOCKED" in err and f"(pid {holder_pid})" in err, err
    holder.kill()  # SIGKILL: no release, no more heartbeats; the lock file stays
    assert lock.exists(), "the killed run's lock should remain"
    assert _trend(data_root, "2024-01-02", "--conf-file", str(conf)) == 1, "taken over before its TTL ran out"
    assert "RUN_LOCKED" in capsys.readouterr().err
    backdate_lease(local_storage(), str(lock), 601)  # the last heartbeat as 600 s of silence would leave it
    assert _trend(data_root, "2024-01-02", "--conf-file", str(conf)) == 0
    assert not lock.exists()
    from spark_flows.patterns.runners import RunLedger
    runs = RunLedger(spark, f"{data_root}/_ledger/runs").runs()
    assert sorted(r.status for r in runs) == ["abandoned", "refused", "refused", "succeeded"], runs
    abandoned = next(r for r in runs if r.status == "abandoned")
    assert f"pid {holder_pid}" in abandoned.error


@pytest.mark.subprocess
def test_backfill_under_spark_submit_loads_its_siblings_and_runs_one_spark_submit_per_date(spark,
                                                                                          data_root: str) -> None:
    _visits(spark, data_root, "2024-01-02")
    job = JobProcess("backfill", ["--data-root", data_root, "--job", "visits_cube", "--from", "2024-01-02",
                                  "--to", "2024-01-02", "--isolation", "process"])
    assert job.wait(300) == 0, job.tail()
    assert "1 ok, 0 failed" in job.output()
    cube = spark.read.format("delta").load(f"{data_root}/tables/visits_cube")
    assert [r.date for r in cube.select("date").distinct().collect()] == ["20240102"]
    flow = run_flow(data_root, "visits_cube", "2024-01-02")  # written by the date's own spark-submit
    assert flow.node("hours").facts["status"] == "ran"


def test_a_backfill_that_loses_the_lock_reports_each_date_with_the_job_s_own_error(spark, data_root: str,
                                                                                      capsys) -> None:
    from spark_flows.patterns.runners.locks import RunLock

    _visits(spark, data_root, "2024-01-01", "2024-01-02")
    holder = RunLock(spark, f"{data_root}/_locks", "visits_trend_generator", ttl_seconds=600, heartbeat_seconds=5,
                     run_id="other-backfill")
    holder.acquire()
    try:
        code = backfill.main(["--data-root", data_root, "--job", "visits_trend_generator", "--from", "2024-01-02",
                              "--to", "2024-01-02"])
    finally:
        holder.release()
    assert code == 1
    out = capsys.readouterr().out
    assert "2024-01-02  FAILED" in out and "visits_trend_generator: error: [RUN_LOCKED]" in out, out
    assert "locked by run other-backfill" in out


OWN_JOB = '''
import argparse
from pathlib import Path

import spark_flows as sf

SEEN = Path(__file__).with_name("seen.txt")


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--execution-date", required=True)
    parser.add_argument("--tag", required=True)
    args = parser.parse_args(argv)
    rows = sf.get_session().range(3).count()
    with SEEN.open("a") as seen:
        seen.write(f"{args.execution_date} {args.tag} {rows}\\n")
    return 1 if args.execution_date == "2024-01-03" else 0
'''


def test_backfill_runs_one_s_own_job_by_module_path_or_file(spark, tmp_path: Path, monkeypatch, capsys) -> None:
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "daily.py").write_text(OWN_JOB)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = backfill.main(["--job", "my_pkg.daily", "--from", "2024-01-01", "--to", "2024-01-03", "--concurrency", "2",
                          "--", "--tag", "mod"])
    assert code == 1 and "2 ok, 1 failed" in capsys.readouterr().out
    assert backfill.main(["--job", str(package / "daily.py"), "--from", "2024-01-04", "--to", "2024-01-04",
                          "--", "--tag", "file"]) == 0
    seen = sorted((package / "seen.txt").read_text().splitlines())
    assert seen == ["2024-01-01 mod 3", "2024-01-02 mod 3", "2024-01-03 mod 3", "2024-01-04 file 3"]
    assert backfill.main(["--job", "no_such.module", "--from", "2024-01-01", "--to", "2024-01-01"]) == 2
    assert "cannot import job module no_such.module" in capsys.readouterr().err


@pytest.mark.subprocess
def test_on_s3_the_lock_of_a_killed_spark_submit_holder_is_taken_over_only_once_it_expired(
        spark, s3_root: str, spark_flows_s3_server, tmp_path: Path, capsys) -> None:
    import uuid

    from spark_flows.io.storage import Storage

    server, data_root = spark_flows_s3_server, f"{s3_root}/runner-killed-{uuid.uuid4().hex[:8]}"
    storage = Storage(spark)
    local = str(tmp_path / "local")
    _visits(spark, local, "2024-01-01", "2024-01-02")  # written here, then put in the bucket file by file
    for file in Path(local, "raw").rglob("*.json"):
        storage.write_text(f"{data_root}/{file.relative_to(local).as_posix()}", file.read_text())
    conf = tmp_path / "runner.toml"
    conf.write_text("[runner]\nlock_ttl_seconds = 600\nheartbeat_seconds = 5\n")
    args = ["--data-root", data_root, "--execution-date", "2024-01-02", "--conf-file", str(conf)]
    reach = {f"spark.hadoop.{key}": value for key, value in server.bucket_conf(credentials=False).items()}
    holder = JobProcess("visits_trend_generator", args, pause="before:jobs.visits_trend_generator:read_json",
                        spark_conf=reach, extra_env=server.environment())
    holder.wait_for("PAUSED AT before:jobs.visits_trend_generator:read_json")
    lock = f"{data_root}/_locks/visits_trend_generator.lock"
    holder_pid = json.loads(storage.read_text(lock))["pid"]
    holder.kill()  # SIGKILL: no release, no more heartbeats; the lease stays in the bucket
    assert storage.exists(lock), "the killed run's lease should remain"
    assert _trend(data_root, "2024-01-02", "--conf-file", str(conf)) == 1, "taken over before its TTL ran out"
    assert f"(pid {holder_pid})" in capsys.readouterr().err
    backdate_lease(storage, lock, 601)  # its holder's own clock: 600 s of silence
    assert _trend(data_root, "2024-01-02", "--conf-file", str(conf)) == 0
    assert not storage.exists(lock)
