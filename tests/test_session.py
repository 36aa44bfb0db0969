from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality

from spark_flows.core.config import Settings
from spark_flows.core.session import DELTA_CATALOG, DELTA_EXTENSION, delta_builder, get_session, require_delta
from spark_flows.errors import EnvironmentSetupError


def test_session_writes_and_reads_back_a_delta_table(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    expected = spark.createDataFrame([(1, "a"), (2, "b")], "id int, name string")
    expected.write.format("delta").save(path)
    assert (tmp_path / "t" / "_delta_log" / "00000000000000000000.json").exists()
    assert_df_equality(spark.read.format("delta").load(path), expected, ignore_row_order=True)


def test_session_has_delta_extension_and_catalog(spark) -> None:
    assert spark.conf.get("spark.sql.extensions") == DELTA_EXTENSION
    assert spark.conf.get("spark.sql.catalog.spark_catalog") == DELTA_CATALOG


def test_get_session_reuses_the_active_session(spark) -> None:
    assert get_session(Settings(master="local[1]")) is spark


def test_builder_sets_master_and_delta_package_outside_spark_submit(monkeypatch) -> None:
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.delenv("SPARK_FLOWS_JARS", raising=False)
    settings = Settings(master="local[3]", spark_conf={"spark.sql.shuffle.partitions": "7"})
    options = delta_builder(settings)._options
    assert options["spark.master"] == "local[3]"
    assert options["spark.jars.packages"] == settings.delta_package
    assert options["spark.sql.shuffle.partitions"] == "7"
    assert "log4j2.properties" in options["spark.driver.extraJavaOptions"]


def test_require_delta_names_the_package_when_classes_are_missing(spark, monkeypatch) -> None:
    monkeypatch.setattr("spark_flows.core.session.DELTA_EXTENSION", "io.delta.NoSuchClass")
    with pytest.raises(EnvironmentSetupError, match=r"--packages io\.delta:x:1"):
        require_delta(spark, "io.delta:x:1")
