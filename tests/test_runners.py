from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from spark_flows.errors import DependsOnPastError
from spark_flows.runners import RunLedger, check_depends_on_past, run_concurrently, single_run


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
    runs = ledger.runs("job").collect()
    assert [(r.execution_date, r.attempt, r.status) for r in runs] == [("2024-01-01", 1, "succeeded"),
                                                                         ("2024-01-02", 1, "failed")]
    assert runs[1].error == "RuntimeError: boom" and runs[1].ended_at >= runs[1].started_at
    assert ledger.next_attempt("job", d2) == 2


def test_concurrent_runner_bounds_concurrency_and_reports_failures(spark) -> None:
    active, peak = [0], [0]
    lock = threading.Lock()

    def work(n: int) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            spark.range(1000).count()
            time.sleep(0.3)
            if n == 3:
                raise ValueError("partition 3 is broken")
        finally:
            with lock:
                active[0] -= 1

    summary = run_concurrently(spark, work, list(range(6)), concurrency=2, name="t")
    assert peak[0] == 2
    assert summary.failed == ["3"] and summary.results[3].error == "ValueError: partition 3 is broken"
    assert [r.ok for r in summary.results] == [True, True, True, False, True, True]
    assert spark.sparkContext.statusTracker().getJobIdsForGroup(summary.results[0].job_group)
    assert "5 ok, 1 failed" in summary.table()


def test_fail_fast_skips_pending_partitions(spark) -> None:
    def work(n: int) -> None:
        if n == 0:
            raise ValueError("first fails")
        time.sleep(0.2)

    summary = run_concurrently(spark, work, list(range(4)), concurrency=1, fail_fast=True)
    assert summary.failed == ["0", "1", "2", "3"]
    assert all(r.error == "skipped: an earlier task failed" for r in summary.results[1:])
