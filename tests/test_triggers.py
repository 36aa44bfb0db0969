"""Fan-in trigger rules: each rule on the same parents (one succeeded, one missing, one failed), and every
parent failing, with and without a fallback branch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spark_flows.book.samples import VISITS_SCHEMA, write_visits
from spark_flows.errors import MissingParentsError, SparkFlowsValueError
from spark_flows.flow.graph import recording
from spark_flows.patterns.fan_in.merge import FanIn, Parent, fan_in, hourly_parents
from spark_flows.patterns.fan_in.triggers import ALL_DONE, min_success, trigger_rule

DAY = dt.date(2024, 1, 1)
HOURS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def mixed_root(spark, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Hours 00 and 03 succeed (2 rows each), 01 is missing (never delivered), 02 has a corrupt file (failed)."""
    root = str(tmp_path_factory.mktemp("mixed") / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, missing_hours=[1, *range(4, 24)], corrupt_hours=[2])
    return root


@pytest.mark.parametrize(("rule", "refused", "rows"), [
    ("all_success", r"aligned fan-in refused: 2 of 4 present .*01 \(no data\), 02 \(1 corrupt record", None),
    ("all_done", None, 4),
    ("none_failed_min_one_success", r"none_failed_min_one_success.* 02 \(1 corrupt record", None),
    ("min_success=2", None, 4),
    ("min_success=3", r"min_success=3.* 2 of 4 present", None),
])
def test_each_trigger_rule_decides_on_succeeded_missing_and_failed_parents(
        spark, mixed_root: str, rule: str, refused: str | None, rows: int | None) -> None:
    merged = fan_in(spark, hourly_parents(mixed_root, DAY, HOURS), rule=rule, schema=VISITS_SCHEMA, name="hours")
    with recording() as run:
        if refused is not None:
            with pytest.raises(MissingParentsError, match=refused) as error:
                merged.evaluate()
            assert error.value.getMessageParameters()["rule"] == rule
            assert run.facts["hours"]["status"] == "failed"
            return
        evaluated = merged.evaluate()
    try:
        assert evaluated.frame.count() == rows
        assert evaluated.completeness.present == ("00", "03")
        assert evaluated.completeness.is_approximate
        assert not evaluated.fallback
    finally:
        evaluated.unpersist()
    assert {k: v["status"] for k, v in run.facts.items() if k.startswith("hours.")} == {
        "hours.00": "ran", "hours.01": "failed", "hours.02": "failed", "hours.03": "ran"}
    assert run.facts["hours"]["rule"] == rule


def test_missing_parents_alone_do_not_refuse_none_failed_min_one_success(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=3, missing_hours=range(1, 24))
    merged = fan_in(spark, hourly_parents(root, DAY, (0, 1)), rule="none_failed_min_one_success",
                    schema=VISITS_SCHEMA)
    evaluated = merged.evaluate()
    try:
        assert evaluated.frame.count() == 3
        assert dict(evaluated.completeness.failures) == {"01": "no data"}
    finally:
        evaluated.unpersist()


@pytest.mark.parametrize("rule", ["all_success", "all_done", "none_failed_min_one_success", "min_success=1"])
def test_every_parent_missing_runs_the_fallback_or_fails_with_no_parents(spark, tmp_path: Path, rule: str) -> None:
    parents = hourly_parents(str(tmp_path / "nothing"), DAY, HOURS)
    with pytest.raises(MissingParentsError, match=r"0 of 4 present") as error:
        fan_in(spark, parents, rule=rule, schema=VISITS_SCHEMA).evaluate()
    assert error.value.getCondition() == "NO_PARENTS"

    seen = []

    def fallback(completeness):
        seen.append(completeness.describe())
        return spark.createDataFrame([("none", 0)], "page string, visits long")

    with recording() as run:
        evaluated = fan_in(spark, parents, rule=rule, schema=VISITS_SCHEMA, fallback=fallback,
                           name="hours").evaluate()
    try:
        assert evaluated.fallback
        assert evaluated.frame.collect()[0].page == "none"
        assert evaluated.completeness.ratio == 0.0
    finally:
        evaluated.unpersist()
    assert seen == ["0 of 4 present (ratio 0.0); missing: 00 (no data), 01 (no data), 02 (no data), 03 (no data)"]
    assert run.facts["hours.fallback"] == {"status": "ran", "rows": 1}


def test_every_parent_failing_while_read_runs_the_fallback(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=1, missing_hours=range(2, 24), corrupt_hours=[0, 1])
    fallback_rows = spark.createDataFrame([(1,)], "marker int")
    evaluated = fan_in(spark, hourly_parents(root, DAY, (0, 1)), rule=ALL_DONE, schema=VISITS_SCHEMA,
                       fallback=lambda _: fallback_rows).evaluate()
    try:
        assert evaluated.fallback and evaluated.frame.count() == 1
        assert set(evaluated.completeness.failures) == {"00", "01"}
        assert "corrupt" in evaluated.completeness.failures["00"]
    finally:
        evaluated.unpersist()


def test_rules_are_named_as_orchestrators_name_them_and_bad_ones_are_refused() -> None:
    assert str(trigger_rule("min_success=3")) == "min_success=3" == str(min_success(3))
    assert trigger_rule("aligned").strict and not trigger_rule("unaligned").strict
    with pytest.raises(SparkFlowsValueError, match=r"trigger rule must be one of .*min_success=N, got 'one_success'"):
        trigger_rule("one_success")
    with pytest.raises(SparkFlowsValueError, match="min_success"):
        min_success(0)


def test_the_rule_and_the_fallback_are_part_of_the_drawn_fan_in() -> None:
    parents = (Parent("00", path="/in/00"), Parent("01", path="/in/01"))
    graph = FanIn("hours", parents, min_success(1), fallback=lambda c: None, fallback_label="empty cube").graph()
    assert graph.node("hours").rules == {"trigger_rule": "min_success=1"}
    assert [e.rule for e in graph.edges if e.target == "hours"] == ["min_success=1", "min_success=1"]
    assert graph.node("hours.fallback").label == "empty cube"
    assert graph.entries == ("hours.00", "hours.01") and graph.exits == ("hours",)
