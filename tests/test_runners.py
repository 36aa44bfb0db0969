from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from spark_flows.errors import ConfigError, DependsOnPastError
from spark_flows.patterns.runners import (
    RunLedger,
    check_depends_on_past,
    require_many_driver_commits,
    run_concurrently,
    single_run,
)


def test_ledger_and_depends_on_past(spark, tmp_path: Path) -> None:
    ledger = RunLedger(spark, str(tmp_path / "ledger"))
    d1, d2, d3 = (dt.date(2024, 1, i) for i in (1, 2, 3))
    check_depends_on_past(ledger, "job", d1)  # first date ever: allowed
    with single_run(spark, "job", d1, lock_root=str(tmp_path / "locks"), ledger=ledger):
        pass
    with pytest.raises(DependsOnPastError, match="depends on 2024-01-02, which is never run"):
        check_depends_on_past(ledger, "job", d3)
    with pytest.raises(RuntimeError, match="boom"), single_run(spark, "job", d2, lock_root=str(tmp_path / "l"),
                                                               ledger=ledger):
        raise RuntimeError("boom")
    with pytest.raises(DependsOnPastError, match="which is failed"):
        check_depends_on_past(ledger, "job", d3)
    runs = ledger.runs("job")
    assert [(r.execution_date, r.attempt, r.status) for r in runs] == [("2024-01-01", 1, "succeeded"),
                                                                         ("2024-01-02", 1, "failed")]
    assert runs[1].error == "RuntimeError: boom" and runs[1].ended_at >= runs[1].started_at
    assert ledger.next_attempt("job", d2) == 2


@pytest.mark.classic
def test_concurrent_runner_bounds_concurrency_and_reports_failures(spark) -> None:
    active, peak = [0], [0]
    lock = threading.Lock()
    pairs = threading.Barrier(2, timeout=120)  # each task meets another one running at the same time

    def work(n: int) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            spark.range(1000).count()
            pairs.wait()  # broken (BrokenBarrierError) if the runner ran tasks one at a time
            with lock:
                assert active[0] <= 2, f"{active[0]} tasks at once"
            if n == 3:
                raise ValueError("partition 3 is broken")
        finally:
            with lock:
                active[0] -= 1

    summary = run_concurrently(spark, work, list(range(6)), concurrency=2, name="t")
    assert peak[0] == 2, "two at once, never more than the bound"
    assert summary.failed == ["3"] and summary.outcomes[3].error == "ValueError: partition 3 is broken"
    assert [r.ok for r in summary.outcomes] == [True, True, True, False, True, True]
    assert spark.sparkContext.statusTracker().getJobIdsForGroup(summary.outcomes[0].job_group)
    assert "5 ok, 1 failed" in summary.table()


def test_fail_fast_skips_pending_partitions(spark) -> None:
    def work(n: int) -> None:
        if n == 0:
            raise ValueError("first fails")

    summary = run_concurrently(spark, work, list(range(4)), concurrency=1, fail_fast=True)
    assert summary.failed == ["0", "1", "2", "3"]
    assert all(r.error == "skipped: an earlier task failed" for r in summary.outcomes[1:])


def test_taking_over_a_dead_run_closes_its_attempt_as_abandoned(spark, tmp_path: Path) -> None:
    import json
    import os

    ledger = RunLedger(spark, str(tmp_path / "ledger"))
    day = dt.date(2024, 1, 1)
    ledger.record("job", day, 1, "running", "dead")  # the run was SIGKILLed: it never records its end
    lock = tmp_path / "locks" / "job.lock"
    lock.parent.mkdir()
    lock.write_text(json.dumps({"job": "job", "run_id": "dead", "host": "h", "pid": 1, "since": "2024-01-01T00:00:00",
                                "ttl_seconds": 2}))
    os.utime(lock, (time.time() - 60, time.time() - 60))
    with single_run(spark, "job", day, lock_root=str(tmp_path / "locks"), ledger=ledger, ttl_seconds=2,
                    heartbeat_seconds=1) as taker:
        pass
    runs = {r.run_id: r for r in ledger.runs("job")}
    assert runs["dead"].status == "abandoned" and f"run {taker.run_id} took it over" in runs["dead"].error
    assert (runs[taker.run_id].status, runs[taker.run_id].attempt) == ("succeeded", 2)
    check_depends_on_past(ledger, "job", dt.date(2024, 1, 2))  # D-1 succeeded on its second attempt


def test_refusals_are_in_the_ledger(spark, tmp_path: Path) -> None:
    from spark_flows.errors import RunLockedError
    from spark_flows.patterns.runners.locks import RunLock

    ledger = RunLedger(spark, str(tmp_path / "ledger"))
    locks = str(tmp_path / "locks")
    d1, d3 = dt.date(2024, 1, 1), dt.date(2024, 1, 3)
    with single_run(spark, "job", d1, lock_root=locks, ledger=ledger):
        pass
    with pytest.raises(DependsOnPastError), single_run(spark, "job", d3, lock_root=locks, ledger=ledger):
        pass
    holder = RunLock(spark, locks, "job", ttl_seconds=60, heartbeat_seconds=5, run_id="holder")
    holder.acquire()
    try:
        with pytest.raises(RunLockedError), single_run(spark, "job", d3, lock_root=locks, ledger=ledger):
            pass
    finally:
        holder.release()
    refused = [(r.execution_date, r.status, r.error.split("]")[0]) for r in ledger.runs("job")
               if r.status == "refused"]
    assert refused == [("2024-01-03", "refused", "[DEPENDS_ON_PAST"), ("2024-01-03", "refused", "[RUN_LOCKED")]
    assert ledger.statuses("job") == {"2024-01-01": "succeeded"}, "a refusal changes no date's status"


def test_processes_share_the_bounded_runner_with_fail_fast_and_their_own_error_lines(tmp_path: Path) -> None:
    import sys

    from spark_flows.patterns.runners import run_processes

    started = tmp_path / "b-started"
    # a fails only once b runs, so fail-fast has a running process to kill (a bound of 300 s, not a sleep)
    fails = [sys.executable, "-c", f"import pathlib, sys, time; t = time.monotonic() + 300\n"
             f"while not pathlib.Path({str(started)!r}).exists() and time.monotonic() < t: time.sleep(0.05)\n"
             "print('noise'); print('job: error: [X] boom', file=sys.stderr); sys.exit(1)"]
    sleeps = [sys.executable, "-c", f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(300)"]
    summary = run_processes([("a", fails), ("b", sleeps)], concurrency=2, fail_fast=True)
    assert started.exists(), "b never ran"
    assert summary.outcomes[0].error == "exit 1: job: error: [X] boom"
    assert summary.outcomes[1].error == "exit -9: no error line", "the running process was killed, not left to finish"
    in_order = run_processes([("a", fails), ("b", sleeps)], concurrency=1, fail_fast=True)
    assert in_order.outcomes[1].error == "skipped: an earlier task failed"


def test_many_drivers_on_s3_are_refused_under_delta_s_single_driver_log_store(spark) -> None:
    with pytest.raises(ConfigError, match=r"spark.delta.logStore.s3a.impl") as refused:
        require_many_driver_commits(spark, "s3a://bucket/data", drivers=2)
    assert refused.value.getCondition() == "UNSAFE_CONCURRENT_DRIVERS"
    assert "--isolation thread" in str(refused.value)
    require_many_driver_commits(spark, "s3a://bucket/data", drivers=1)  # one driver: Delta's own store is safe
    require_many_driver_commits(spark, "file:/tmp/data", drivers=4)
    require_many_driver_commits(spark, "hdfs://nn/data", drivers=4)
    spark.conf.set("spark.delta.logStore.s3a.impl", "io.delta.storage.S3SingleDriverLogStore")
    try:
        with pytest.raises(ConfigError):  # naming the default store is no way out
            require_many_driver_commits(spark, "s3a://bucket/data", drivers=2)
        spark.conf.set("spark.delta.logStore.s3a.impl", "io.delta.storage.S3DynamoDBLogStore")
        require_many_driver_commits(spark, "s3a://bucket/data", drivers=2)
    finally:
        spark.conf.unset("spark.delta.logStore.s3a.impl")
