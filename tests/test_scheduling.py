from __future__ import annotations

import pytest

from spark_flows.core.scheduling import SKIPPED, run_bounded


def test_outcomes_by_key_with_values_and_errors(spark) -> None:
    def broken() -> int:
        raise KeyError("gone")

    outcomes = run_bounded(spark, [("a", lambda: spark.range(7).count()), ("b", broken)], concurrency=2, name="t")
    assert (outcomes["a"].ok, outcomes["a"].value) == (True, 7)
    assert (outcomes["b"].ok, outcomes["b"].error) == (False, "KeyError: 'gone'")
    assert outcomes["a"].job_group != outcomes["b"].job_group


@pytest.mark.classic
def test_sequential_order_skip_after_failure_and_caller_group_restored(spark) -> None:
    sc = spark.sparkContext
    sc.setJobGroup("caller", "the caller's own group")
    order: list[str] = []

    def step(key: str, fail: bool = False):
        def run() -> None:
            order.append(key)
            if fail:
                raise RuntimeError(key)
        return run

    outcomes = run_bounded(spark, [("x", step("x")), ("y", step("y", True)), ("z", step("z"))],
                           cancel_on_failure=True)
    assert order == ["x", "y"] and outcomes["z"].error == SKIPPED
    assert sc.getLocalProperty("spark.jobGroup.id") == "caller"
    sc.setLocalProperty("spark.jobGroup.id", None)


def test_bad_arguments_are_named(spark) -> None:
    with pytest.raises(ValueError, match="unique"):
        run_bounded(spark, [("a", lambda: 1), ("a", lambda: 2)])
    with pytest.raises(ValueError, match="concurrency"):
        run_bounded(spark, [("a", lambda: 1)], concurrency=0)


def test_one_vocabulary_for_tasks_branches_and_partitions() -> None:
    from spark_flows.core.scheduling import Outcome, Outcomes
    from spark_flows.errors import BranchFailedError, JobFailedError, UnknownNameError

    done = Outcome("a", True, 1.0, rows=3)
    replayed = Outcome("b", True, 0.0, skipped=True, reason="batch 1 already committed")
    broken = Outcome("c", False, 2.0, error="ValueError: bad")
    assert [o.status for o in (done, replayed, broken)] == ["ran", "skipped", "failed"]
    split = Outcomes("load", (done, replayed, broken), 3.0, "branch")
    assert (split.ok, split.failed, len(split), [o.name for o in split]) == (False, ["c"], 3, ["a", "b", "c"])
    assert split["b"].reason == "batch 1 already committed"
    with pytest.raises(BranchFailedError, match=r"split 'load': 1 of 3 branch\(es\) failed: c: ValueError: bad"):
        split.raise_for_failures()
    backfill = Outcomes("backfill", (done, broken), 3.0, "partition")
    with pytest.raises(JobFailedError, match=r"run 'backfill': 1 of 2 partition\(s\) failed") as failed:
        backfill.raise_for_failures()
    assert failed.value.getMessageParameters()["failed"] == ["c"]
    assert backfill.table().splitlines()[-1].startswith("1 ok, 1 failed")
    with pytest.raises(UnknownNameError, match="no partition named 'z' in 'backfill'"):
        backfill["z"]
    Outcomes("fine", (done, replayed), 1.0).raise_for_failures()  # nothing failed: nothing raised


def test_one_name_rule_for_everything_that_names_a_path_a_group_or_an_app_id() -> None:
    from spark_flows.errors import SparkFlowsValueError, checked_name
    from spark_flows.io.writers import Batch
    from spark_flows.patterns.sequence import step
    from spark_flows.patterns.split import branch

    assert checked_name("stream name", "visits.v2") == "visits.v2"
    for bad in ("", ".hidden", "-dash", "a b", "a/b", 7):
        with pytest.raises(SparkFlowsValueError, match="must be a string matching"):
            checked_name("name", bad)
    for make in (lambda n: step(n, lambda df: df), lambda n: branch(n, lambda df: None), lambda n: Batch(n, 1)):
        with pytest.raises(SparkFlowsValueError, match="must be a string matching"):
            make("a/b")
        make("ok_1.x-2")
