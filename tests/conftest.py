"""One Delta-enabled SparkSession for the whole suite: local[2], two shuffle partitions, UI off."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(ROOT))  # `import jobs.<name>` for in-process end-to-end runs

from spark_flows.config import load_settings  # noqa: E402
from spark_flows.session import get_session  # noqa: E402

TEST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    "spark.scheduler.mode": "FAIR",
    "spark.driver.memory": "3g",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    settings = load_settings(overrides={"master": "local[2]", "app_name": "spark_flows-tests", "spark_conf": TEST_CONF})
    session = get_session(settings)
    yield session
    session.stop()


@pytest.fixture
def data_root(tmp_path: Path) -> str:
    """A fresh data root for a job run, as the jobs' --data-root."""
    return str(tmp_path / "data")
