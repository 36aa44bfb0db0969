"""The pytest plugin users get: the session fixture and the pattern assertions fail when they should."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter
from spark_flows.patterns.choice import record_route, route_by_date
from spark_flows.patterns.fan_in.completeness import Completeness
from spark_flows.patterns.fan_in.merge import with_completeness
from spark_flows.testing import assert_completeness, assert_replay_writes_nothing, assert_route


def test_the_plugin_provides_the_session_with_delta(spark_flows_session, tmp_path: Path) -> None:
    conf = spark_flows_session.conf
    assert conf.get("spark.sql.shuffle.partitions") == "2"  # the plugin's TEST_CONF, not Spark's 200
    assert conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf.get("spark.sql.catalog.spark_catalog") == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    spark_flows_session.range(2).write.format("delta").save(str(tmp_path / "t"))
    assert spark_flows_session.read.format("delta").load(str(tmp_path / "t")).count() == 2


def test_replay_assertion_passes_on_a_replay_and_names_what_a_second_write_changed(spark, tmp_path: Path) -> None:
    table, files = str(tmp_path / "table"), str(tmp_path / "csv")

    def write(version: int) -> None:
        DeltaWriter().write(spark.range(3), table, batch=Batch("app", version))
        CsvWriter().write(spark.range(3), files, batch=Batch("app", version))

    write(1)
    assert_replay_writes_nothing(lambda: write(1), table, files)
    with pytest.raises(AssertionError, match=r"the replay wrote to \[.*csv.*table'\]: .*delta table version"):
        assert_replay_writes_nothing(lambda: write(2), table, files)


def test_route_and_completeness_assertions(spark, tmp_path: Path) -> None:
    route = route_by_date(dt.date(2024, 3, 2), cutover=dt.date(2024, 3, 1), before="csv", on_or_after="delta")
    record_route(spark, str(tmp_path / "out"), route)
    assert_route(route, "delta")
    assert_route(str(tmp_path / "out"), "delta", spark=spark)
    with pytest.raises(AssertionError, match="took branch 'delta', expected 'csv'"):
        assert_route(str(tmp_path / "out"), "csv", spark=spark)
    partial = Completeness(("00", "01", "02", "03"), {"02": "no data"})
    assert_completeness(partial, ratio=0.75, missing=["02"], approximate=True)
    assert_completeness(spark.range(2).transform(with_completeness, partial), ratio=0.75, approximate=True)
    with pytest.raises(AssertionError, match=r"ratio is 0\.75, expected 1\.0"):
        assert_completeness(partial, ratio=1.0)
