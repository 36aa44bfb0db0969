from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql.types import LongType

from spark_flows.errors import DuplicateKeysError, MissingParentsError, SchemaConflictError
from spark_flows.fan_in import (
    Completeness,
    Parent,
    align_join,
    completeness_frame,
    fan_in,
    hourly_parents,
    union_by_name,
    with_completeness,
)
from spark_flows.metrics import SparkMeter
from spark_flows.samples import BOOK_MISSING_HOURS, VISITS_SCHEMA, write_visits

DAY = dt.date(2024, 1, 1)


def test_union_by_name_matches_columns_not_positions(spark) -> None:
    a = spark.createDataFrame([(1, "x")], "id int, name string")
    b = spark.createDataFrame([("y", 2)], "name string, id int")
    expected = spark.createDataFrame([(1, "x"), (2, "y")], "id int, name string")
    assert_df_equality(union_by_name([a, b]), expected, ignore_row_order=True)


def test_lossless_widening_is_applied(spark) -> None:
    a = spark.createDataFrame([(1,)], "v int")
    b = spark.createDataFrame([(2**40,)], "v bigint")
    merged = union_by_name({"a": a, "b": b})
    assert merged.schema["v"].dataType == LongType()
    assert sorted(r.v for r in merged.collect()) == [1, 2**40]


def test_int_vs_string_is_a_conflict_naming_column_types_and_inputs(spark) -> None:
    a = spark.createDataFrame([(1,)], "v int")
    b = spark.createDataFrame([("oops",)], "v string")
    with pytest.raises(SchemaConflictError, match=r"column 'v': int in 'hour 01' vs string in 'hour 02'"):
        union_by_name({"hour 01": a, "hour 02": b})


def test_spark_alone_would_coerce_int_and_string_and_fail_late(spark) -> None:
    """Pins the PySpark 4.x pitfall union_by_name guards against."""
    a = spark.createDataFrame([(1,)], "v int")
    b = spark.createDataFrame([("oops",)], "v string")
    merged = a.unionByName(b)  # no error at analysis
    assert merged.schema["v"].dataType == LongType()
    with pytest.raises(Exception, match="CAST_INVALID_INPUT"):
        merged.collect()


def test_explicit_cast_resolves_a_conflict(spark) -> None:
    a = spark.createDataFrame([(1,)], "v int")
    b = spark.createDataFrame([("7",)], "v string")
    merged = union_by_name([a, b], casts={"v": LongType()})
    assert sorted(r.v for r in merged.collect()) == [1, 7]


def test_missing_columns_fail_unless_allowed(spark) -> None:
    a = spark.createDataFrame([(1, "x")], "id int, name string")
    b = spark.createDataFrame([(2,)], "id int")
    with pytest.raises(SchemaConflictError, match=r"'input 2' lacks column\(s\) \['name'\]"):
        union_by_name([a, b])
    merged = union_by_name([a, b], allow_missing_columns=True)
    assert merged.where("name is null").count() == 1


def test_union_is_lazy(spark) -> None:
    a = spark.range(3)
    with SparkMeter(spark) as meter:
        union_by_name([a, a, a])
    assert meter.jobs == 0


def test_align_join_prefixes_collisions(spark) -> None:
    visits = spark.createDataFrame([("home", 3)], "page string, n bigint")
    users = spark.createDataFrame([("home", 2)], "page string, n bigint")
    joined = align_join({"visits": visits, "users": users}, on=["page"])
    assert joined.columns == ["page", "visits_n", "users_n"]
    renamed = align_join({"visits": visits, "users": users}, on=["page"], rename={"users": {"n": "unique"}})
    assert renamed.columns == ["page", "visits_n", "unique"]


def test_align_join_refuses_duplicate_keys(spark) -> None:
    a = spark.createDataFrame([("home", 1), ("home", 2)], "page string, n int")
    b = spark.createDataFrame([("home", 5)], "page string, m int")
    with pytest.raises(DuplicateKeysError, match=r"input 'a' has duplicate keys, e.g. \{'page': 'home'\} x2"):
        align_join({"a": a, "b": b}, on=["page"])
    assert align_join({"a": a, "b": b}, on=["page"], check_duplicates=False).count() == 2


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
