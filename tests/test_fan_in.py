from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spark_flows.errors import MissingParentsError
from spark_flows.fan_in import (
    Completeness,
    Parent,
    completeness_frame,
    fan_in,
    hourly_parents,
    with_completeness,
)
from spark_flows.metrics import SparkMeter
from spark_flows.samples import BOOK_MISSING_HOURS, VISITS_SCHEMA, write_visits

DAY = dt.date(2024, 1, 1)


def test_aligned_fan_in_lists_missing_and_empty_hours(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, missing_hours=[6, 11], empty_hours=[3])
    with pytest.raises(MissingParentsError, match=r"21 of 24 present .* 03 \(empty\), 06 \(no data\), 11 \(no data\)"):
        fan_in(spark, hourly_parents(root, DAY), schema=VISITS_SCHEMA)


def test_unaligned_fan_in_reports_completeness_without_scanning(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=3, missing_hours=BOOK_MISSING_HOURS)
    with SparkMeter(spark) as meter:
        merged = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA)
    assert meter.jobs == 0
    c = merged.completeness
    assert c.missing == ("06", "11", "16", "17", "18") and c.ratio == round(19 / 24, 4) and c.is_approximate
    assert merged.frame.count() == 19 * 3


def test_corrupt_records_are_observed_during_the_one_scan(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, corrupt_hours=[7])
    merged = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA)
    with SparkMeter(spark) as meter:
        assert merged.frame.count() == 48
    scans = meter.scan.of(root)
    assert len(scans) == 1 and scans[0].rows == 48 + 1, "one scan of the day (48 rows + 1 corrupt line)"
    assert merged.corrupt_parents() == {"07": "1 corrupt record(s)"}


def test_loader_parents_and_schema_conflicts_in_unaligned_mode(spark) -> None:
    def broken():
        raise RuntimeError("upstream down")

    parents = [
        Parent("a", load=lambda: spark.createDataFrame([(1,)], "v int")),
        Parent("b", load=broken),
        Parent("c", load=lambda: spark.createDataFrame([("x",)], "v string")),
        Parent("d", load=lambda: spark.createDataFrame([(4,)], "v int")),
    ]
    merged = fan_in(spark, parents, mode="unaligned")
    assert merged.completeness.present == ("a", "d")
    assert merged.completeness.failures["b"] == "RuntimeError: upstream down"
    assert "column 'v': int in 'a' vs string in 'c'" in merged.completeness.failures["c"]
    assert sorted(r.v for r in merged.frame.collect()) == [1, 4]


def test_completeness_columns_and_table_row(spark) -> None:
    c = Completeness(("00", "01", "02", "03"), {"02": "no data"})
    df = spark.range(2).transform(with_completeness, c)
    assert {(r.is_approximate, r.completeness_ratio) for r in df.collect()} == {(True, 0.75)}
    row = completeness_frame(spark, "20240101", c).first()
    assert (row.expected, row.present, row.ratio, row.missing, row.failures) == (4, 3, 0.75, ["02"], {"02": "no data"})
