from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_flows.book.transforms import devices_sequence
from spark_flows.core.metrics import SparkMeter
from spark_flows.errors import StepFailedError
from spark_flows.patterns.sequence import Sequence, chain, step

SCHEMA = "type string, full_name string, version string"
ROWS = [
    ("galaxy", "Galaxy S", "v1"),
    ("lg", "LG G", "v2"),
    ("iphone", None, "v3"),
    ("mac", "Mac Air", "v4"),
    ("lenovo", "Yoga", "v5"),
]


def _raw(spark, tmp_path: Path) -> tuple[str, DataFrame]:
    path = str(tmp_path / "raw")
    spark.createDataFrame(ROWS, SCHEMA).write.json(path)
    return path, spark.read.schema(SCHEMA).json(path)


@pytest.mark.classic
def test_chaining_launches_no_spark_job(spark, tmp_path: Path) -> None:
    _, raw = _raw(spark, tmp_path)
    with SparkMeter(spark) as meter:
        chained = raw.transform(devices_sequence())
        chain(chained, [step("again", lambda df: df.where("version is not null"))])
    assert meter.jobs == 0
    assert meter.scan.scans == 0


def test_sequence_applies_the_books_steps_in_order(spark, tmp_path: Path) -> None:
    _, raw = _raw(spark, tmp_path)
    expected = spark.createDataFrame(
        [("galaxy", "Galaxy S v1"), ("lenovo", "Yoga v5")], "type string, full_name string"
    )
    actual = raw.transform(devices_sequence()).select("type", "full_name")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_structure_is_plain_data() -> None:
    seq = devices_sequence()
    assert seq.describe() == [
        {"index": 1, "name": "validate", "kind": "boundary"},
        {"index": 2, "name": "enrich", "kind": "step"},
    ]
    assert seq.edges() == [("validate", "enrich")]


def test_failing_step_is_named_in_the_error(spark, tmp_path: Path) -> None:
    _, raw = _raw(spark, tmp_path)
    seq = Sequence("s", [step("ok", lambda df: df), step("broken", lambda df: df.select("no_such_column"))])
    with pytest.raises(StepFailedError, match=r"step 'broken' \(2/2\) of sequence 's' failed") as info:
        seq(raw)
    assert info.value.step == "broken"


def test_step_returning_something_else_is_rejected(spark, tmp_path: Path) -> None:
    _, raw = _raw(spark, tmp_path)
    seq = Sequence("s", [step("count", lambda df: df.count())])  # type: ignore[arg-type,return-value]
    with pytest.raises(StepFailedError, match=r"step 'count' \(1/1\).*should have been DataFrame"):
        seq(raw)


def test_invalid_definitions_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate step names"):
        Sequence("s", [step("a", lambda df: df), step("a", lambda df: df)])
    with pytest.raises(ValueError, match="step name"):
        step("bad name", lambda df: df)
    with pytest.raises(ValueError, match="at least one step"):
        Sequence("s", [])


def test_rerun_after_a_later_failure_resumes_after_the_boundary(spark, tmp_path: Path) -> None:
    source, raw = _raw(spark, tmp_path)
    calls = {"validate": 0}

    def counted_validate(df: DataFrame) -> DataFrame:
        calls["validate"] += 1
        return df.where(F.length("type") > 3)

    def fragile(df: DataFrame) -> DataFrame:
        if calls.get("fail", True):
            raise RuntimeError("downstream outage")
        return df.withColumn("ok", F.lit(True))

    seq = Sequence("devices", [step("validate", counted_validate, boundary=True), step("publish", fragile)])
    root = str(tmp_path / "boundaries")
    with pytest.raises(StepFailedError, match="step 'publish'"):
        seq.run(raw, run_id="r1", boundary_root=root)
    assert calls["validate"] == 1
    assert (tmp_path / "boundaries" / "devices" / "r1" / "01_validate" / "_delta_log").is_dir()

    calls["fail"] = False
    run = seq.run(spark.read.schema(SCHEMA).json(source), run_id="r1", boundary_root=root)
    assert calls["validate"] == 1, "the boundary step was recomputed"
    assert run.resumed_from == "validate"
    assert run.steps_skipped == ("validate",) and run.steps_run == ("publish",)
    assert run.frame.count() == 3


@pytest.mark.classic
def test_a_resumed_run_does_not_scan_the_source_again(spark, tmp_path: Path) -> None:
    source, raw = _raw(spark, tmp_path)
    seq = Sequence("devices", [step("validate", lambda df: df.where(F.length("type") > 3), boundary=True),
                               step("enrich", lambda df: df.withColumn("ok", F.lit(True)))])
    root = str(tmp_path / "boundaries")
    seq.run(raw, run_id="r1", boundary_root=root)
    with SparkMeter(spark) as meter:
        run = seq.run(spark.read.schema(SCHEMA).json(source), run_id="r1", boundary_root=root)
        rows = run.frame.count()
    assert run.resumed_from == "validate" and rows == 3
    assert meter.scan.of(source) == [], "the raw source was scanned again"


def test_new_run_id_recomputes_from_the_start(spark, tmp_path: Path) -> None:
    _, raw = _raw(spark, tmp_path)
    root = str(tmp_path / "b")
    seq = devices_sequence()
    first = seq.run(raw, run_id="a", boundary_root=root)
    second = seq.run(raw, run_id="b", boundary_root=root)
    assert first.resumed_from is None and second.resumed_from is None
    assert len(second.boundaries_written) == 1
    assert_df_equality(first.frame, second.frame, ignore_row_order=True)


def test_boundary_output_equals_lazy_chain(spark, tmp_path: Path) -> None:
    _, raw = _raw(spark, tmp_path)
    run = devices_sequence().run(raw, run_id="x", boundary_root=str(tmp_path / "b"))
    assert_df_equality(run.frame, raw.transform(devices_sequence()), ignore_row_order=True, ignore_nullable=True)
