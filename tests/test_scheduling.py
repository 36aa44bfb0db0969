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
