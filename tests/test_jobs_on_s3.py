"""The bundled jobs with their data root on the suite's S3 server (``s3a://``), in this process's session: a
consumer waiting on a marker its producer published in S3, a fan-in whose parents live in S3; over Spark Connect."""

from __future__ import annotations

import uuid

import pytest
from pyspark.sql import SparkSession

from jobs import devices_aggregator, devices_loader, visits_cube
from spark_flows.book.samples import BOOK_MISSING_HOURS, write_devices, write_visits
from spark_flows.io.storage import Storage
from spark_flows.patterns.markers import read_marker

# A platform user's case: jobs over Spark Connect with tables in S3 (the classic run has the devices_loader and
# Single Runner trials on S3 under spark-submit)
pytestmark = pytest.mark.connect


@pytest.fixture
def s3_data_root(s3_root: str) -> str:
    return f"{s3_root}/jobs-{uuid.uuid4().hex[:8]}"


def test_a_consumer_on_s3_reads_what_the_marker_its_producer_published_there_names(
        spark: SparkSession, s3_data_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    root = s3_data_root
    write_devices(spark, f"{root}/raw/devices", rows=40)
    assert devices_loader.main(["--data-root", root, "--batch-id", "1", "--execution-date", "2024-01-01",
                                "--run-id", "producer-1"]) == 0
    marker = read_marker(spark, f"{root}/tables/devices", dt.date(2024, 1, 1))
    assert marker is not None and (marker.rows, marker.producer, marker.table_version) == (40, "devices_loader", 0)
    assert devices_aggregator.main(["--data-root", root, "--execution-date", "2024-01-01", "--wait-timeout", "0"]) == 0
    assert "aggregated 40 devices published by devices_loader (run producer-1" in capsys.readouterr().out
    per_type = spark.read.format("delta").load(f"{root}/tables/devices_per_type").where("date = '20240101'")
    assert per_type.groupBy().sum("devices").first()[0] == 40


def test_an_unaligned_fan_in_of_hours_in_s3_publishes_the_cube_with_its_completeness(
        spark: SparkSession, s3_data_root: str) -> None:
    root = s3_data_root
    write_visits(spark, f"{root}/raw/visits", "2024-01-01", rows_per_hour=2, missing_hours=BOOK_MISSING_HOURS,
                 corrupt_hours=[9])
    assert visits_cube.main(["--data-root", root, "--execution-date", "2024-01-01", "--mode", "unaligned"]) == 0
    total = spark.read.format("delta").load(f"{root}/tables/visits_cube").where("grouping_id = 3").first()
    present = 24 - len(BOOK_MISSING_HOURS) - 1  # hour 09 holds a corrupt record: it contributes nothing
    assert total.is_approximate and total.completeness_ratio == round(present / 24, 4)
    assert total.visits == present * 2
    row = spark.read.format("delta").load(f"{root}/tables/visits_cube_completeness").first()
    assert row.failures["09"] == "1 corrupt record(s)" and "09" in row.missing
    assert Storage(spark).exists(f"{root}/tables/visits_cube/_delta_log")
