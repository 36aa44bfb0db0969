from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from pyspark.sql.types import LongType, StructField, StructType

from spark_flows.core.waiting import Wait
from spark_flows.errors import MarkerMismatchError, MarkerTimeoutError
from spark_flows.io.writers import DeltaWriter, FilesWriter
from spark_flows.patterns.markers import (
    list_markers,
    marker_path,
    publish,
    read_marker,
    read_when_ready,
    record_consumption,
    wait_for_marker,
)

DAY = dt.date(2024, 1, 1)


def test_publish_writes_data_then_a_marker_with_metadata(spark, tmp_path: Path) -> None:
    dataset = str(tmp_path / "t" / "devices")
    df = spark.range(4).selectExpr("id", "'x' as s")
    before = dt.datetime.now(dt.timezone.utc)
    marker = publish(df, dataset, DeltaWriter(), producer="p", execution_date=DAY, run_id="r1")
    after = dt.datetime.now(dt.timezone.utc)
    assert marker_path(dataset, DAY).endswith("t/_ready/devices/20240101.json")
    stored = read_marker(spark, dataset, DAY)
    assert stored == marker
    assert (stored.rows, stored.producer, stored.run_id, stored.table_version) == (4, "p", "r1", 0)
    assert stored.struct == df.schema and before <= dt.datetime.fromisoformat(stored.written_at) <= after
    assert 0 <= stored.age_seconds <= (dt.datetime.now(dt.timezone.utc) - before).total_seconds()
    assert [m.execution_date for m in list_markers(spark, dataset)] == ["2024-01-01"]


def test_wait_times_out_naming_the_path_and_the_wait(spark, tmp_path: Path) -> None:
    dataset = str(tmp_path / "absent")
    pattern = r"no readiness marker at .*absent/20240101.json after waiting \d+\.\ds \(timeout 0\.4s, \d+ polls\)"
    with pytest.raises(MarkerTimeoutError, match=pattern) as timed_out:
        wait_for_marker(spark, dataset, DAY, wait=Wait(0.4, 0.1))
    waited = timed_out.value.getMessageParameters()
    assert waited["waited_seconds"] >= 0.4 and waited["polls"] >= 2, waited


def test_wait_returns_when_the_marker_appears(spark, tmp_path: Path, monkeypatch) -> None:
    import types

    from spark_flows.core import waiting

    dataset = str(tmp_path / "late")
    df = spark.range(2)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the first poll found nothing: now the producer publishes
        sleeps.append(seconds)
        if len(sleeps) == 1:
            publish(df, dataset, FilesWriter("parquet"), producer="p", execution_date=DAY)

    monkeypatch.setattr(waiting, "time", types.SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    marker = wait_for_marker(spark, dataset, DAY, wait=Wait(60, 0.2, 1.5))
    assert marker.rows == 2 and marker.table_version is None
    assert sleeps == [0.2], "one poll before the marker, one after"


def test_schema_mismatch_names_both_schemas(spark, tmp_path: Path) -> None:
    dataset = str(tmp_path / "d")
    publish(spark.range(1).selectExpr("cast(id as int) as id"), dataset, DeltaWriter(), producer="p",
            execution_date=DAY)
    expected = StructType([StructField("id", LongType())])
    with pytest.raises(MarkerMismatchError, match=r"id: expected bigint, published int.*expected struct<id:bigint>, "
                                                  r"published struct<id:int>"):
        wait_for_marker(spark, dataset, DAY, wait=Wait(0), expected_schema=expected)


def test_empty_data_and_wrong_run_are_refused_when_asked(spark, tmp_path: Path) -> None:
    dataset = str(tmp_path / "d")
    publish(spark.range(0), dataset, DeltaWriter(), producer="p", execution_date=DAY, run_id="r1")
    with pytest.raises(MarkerMismatchError, match="reports 0 rows"):
        wait_for_marker(spark, dataset, DAY, wait=Wait(0), require_rows=True)
    with pytest.raises(MarkerMismatchError, match="from run r1, expected run r2"):
        wait_for_marker(spark, dataset, DAY, wait=Wait(0), run_id="r2")


def test_consumer_reads_exactly_the_published_version(spark, tmp_path: Path) -> None:
    dataset = str(tmp_path / "d")
    publish(spark.range(3), dataset, DeltaWriter(), producer="p", execution_date=DAY)
    spark.range(100).write.format("delta").mode("append").save(dataset)  # a later write, not yet published
    df, marker = read_when_ready(spark, dataset, DAY, wait=Wait(0))
    assert df.count() == 3 and marker.table_version == 0


def test_republishing_flags_consumers_of_the_old_run_as_stale(spark, tmp_path: Path) -> None:
    dataset = str(tmp_path / "d")
    first = publish(spark.range(3), dataset, DeltaWriter(mode="overwrite"), producer="p", execution_date=DAY,
                    run_id="r1")
    record_consumption(spark, first, "aggregator")
    again = publish(spark.range(5), dataset, DeltaWriter(mode="overwrite"), producer="p", execution_date=DAY,
                    run_id="r2")
    assert again.stale_consumers == ("aggregator",)
    record_consumption(spark, again, "aggregator")
    third = publish(spark.range(5), dataset, DeltaWriter(mode="overwrite"), producer="p", execution_date=DAY,
                    run_id="r2")
    assert third.stale_consumers == ()


def test_replayed_publish_leaves_the_marker_true(spark, tmp_path: Path) -> None:
    from spark_flows.io.writers import Batch

    dataset = str(tmp_path / "d")
    df = spark.range(4)
    first = publish(df, dataset, DeltaWriter(), producer="p", execution_date=DAY, batch=Batch("p", 1))
    replay = publish(df, dataset, DeltaWriter(), producer="p", execution_date=DAY, batch=Batch("p", 1))
    assert (first.rows, replay.rows, replay.batch_rows, replay.table_version) == (4, 4, 4, first.table_version)
    assert wait_for_marker(spark, dataset, DAY, wait=Wait(0), require_rows=True).rows == 4
    files = publish(df, str(tmp_path / "f"), FilesWriter("parquet"), producer="p", execution_date=DAY,
                    batch=Batch("p", 1))
    files_replay = publish(df, str(tmp_path / "f"), FilesWriter("parquet"), producer="p", execution_date=DAY,
                           batch=Batch("p", 1))
    assert (files.rows, files_replay.rows) == (4, 4)


def test_marker_rows_count_what_the_consumer_reads(spark, tmp_path: Path) -> None:
    from spark_flows.io.writers import Batch

    dataset = str(tmp_path / "d")
    publish(spark.range(3), dataset, DeltaWriter(), producer="p", execution_date=DAY, batch=Batch("p", 1))
    later = dt.date(2024, 1, 2)
    marker = publish(spark.range(5), dataset, DeltaWriter(), producer="p", execution_date=later, batch=Batch("p", 2))
    df, read = read_when_ready(spark, dataset, later, wait=Wait(0))
    assert (marker.rows, marker.batch_rows, df.count()) == (8, 5, 8)
    assert read == marker


def test_a_replaced_partition_is_what_the_marker_describes_and_the_consumer_reads(spark, tmp_path: Path) -> None:
    dataset = str(tmp_path / "per_day")
    publish(spark.range(3), dataset, DeltaWriter(replace={"date": "20240101"}), producer="p", execution_date=DAY)
    later = dt.date(2024, 1, 2)
    marker = publish(spark.range(6), dataset, DeltaWriter(replace={"date": "20240102"}), producer="p",
                     execution_date=later)
    df, _ = read_when_ready(spark, dataset, later, wait=Wait(0))
    assert (marker.rows, marker.partition, df.count()) == (6, {"date": "20240102"}, 6)
    assert marker.struct.fieldNames() == ["id", "date"], "the marker's schema is the table's, with its partition"
    assert wait_for_marker(spark, dataset, later, wait=Wait(0), expected_schema=df.schema) == marker


def test_a_marker_over_a_files_append_counts_and_reads_the_whole_output(spark, tmp_path: Path) -> None:
    from spark_flows.io.writers import Batch, CsvWriter

    dataset = str(tmp_path / "appended")
    publish(spark.range(3), dataset, CsvWriter(mode="append"), producer="p", execution_date=DAY, batch=Batch("p", 1))
    later = dt.date(2024, 1, 2)
    marker = publish(spark.range(5), dataset, CsvWriter(mode="append"), producer="p", execution_date=later,
                     batch=Batch("p", 2))
    (tmp_path / "appended" / "stray.csv").write_text("id\n99\n")  # a file no manifest names
    df, _ = read_when_ready(spark, dataset, later, file_format="csv", wait=Wait(0))
    assert (marker.rows, marker.batch_rows, df.count()) == (8, 5, 8)
