from __future__ import annotations

import datetime as dt
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql.types import StringType, StructField, StructType

from spark_flows.book.samples import (
    BOOK_MISSING_HOURS,
    DEVICES_SCHEMA,
    VISITS_SCHEMA,
    devices_frame,
    write_devices,
    write_visits,
)


def test_devices_are_deterministic_and_book_shaped(spark) -> None:
    first = devices_frame(spark, 500, seed=3)
    assert_df_equality(first, devices_frame(spark, 500, seed=3))
    types = {r.type for r in first.select("type").distinct().collect()}
    assert types == {"lenovo", "galaxy", "htc", "lg", "iphone", "mac"}
    assert 0 < first.where("full_name is null").count() < 100


def test_write_devices_with_malformed_lines(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "devices")
    assert write_devices(spark, path, rows=50, malformed=3) == 50
    with_corrupt = StructType([*DEVICES_SCHEMA.fields, StructField("_corrupt_record", StringType())])
    parsed = spark.read.schema(with_corrupt).json(path).cache()
    assert parsed.where("_corrupt_record is not null").count() == 3
    assert parsed.where("_corrupt_record is null").count() == 50


def test_write_visits_partial_day(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    hours = write_visits(spark, root, "2024-01-01", rows_per_hour=5, missing_hours=BOOK_MISSING_HOURS, empty_hours=[3])
    assert len(hours) == 24 - len(BOOK_MISSING_HOURS) - 1
    present = sorted(p.name for p in (tmp_path / "visits" / "date=20240101").iterdir())
    assert "hour=06" not in present and "hour=03" in present and len(present) == 19
    one_hour = spark.read.schema(VISITS_SCHEMA).json(f"{root}/date=20240101/hour=07")
    assert one_hour.count() == 5
    assert {r.h for r in one_hour.selectExpr("hour(event_time) as h").collect()} == {7}
    assert dt.date(2024, 1, 1) == one_hour.selectExpr("to_date(event_time) as d").first().d


def test_input_changed_within_the_same_second_is_a_newer_batch(spark, tmp_path: Path) -> None:
    import os

    from spark_flows.io.sources import input_version

    data = tmp_path / "in"
    data.mkdir()
    (data / "part-0.json").write_text('{"id": 1}\n')
    os.utime(data / "part-0.json", ns=(1_700_000_000_100_000_000,) * 2)
    first = input_version(spark, str(data))
    (data / "part-0.json").write_text('{"id": 2}\n')  # rewritten 0.5 s later, within the same second
    os.utime(data / "part-0.json", ns=(1_700_000_000_600_000_000,) * 2)
    assert input_version(spark, str(data)) > first
