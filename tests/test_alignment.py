from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql.types import LongType

from spark_flows.core.metrics import SparkMeter
from spark_flows.errors import DuplicateKeysError, SchemaConflictError
from spark_flows.patterns.fan_in.alignment import align_join, union_by_name


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


@pytest.mark.classic
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
