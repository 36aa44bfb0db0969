"""Shared by the test suite and the doctests: one Delta-enabled SparkSession, local[2], UI off.

Docstring examples get it as ``spark`` (as pyspark's own doctests do), so examples that need a session run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem
from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(ROOT))  # `import jobs.<name>` for in-process end-to-end runs

from spark_flows.config import load_settings  # noqa: E402
from spark_flows.session import get_session  # noqa: E402

#: On top of the shipped local.toml (FAIR scheduling included): two workers, two shuffle partitions.
TEST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.ui.enabled": "false",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    "spark.driver.memory": "3g",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    settings = load_settings(overrides={"master": "local[2]", "app_name": "spark_flows-tests", "spark_conf": TEST_CONF})
    session = get_session(settings)
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _doctest_session(request: pytest.FixtureRequest) -> None:
    """Give every doctest the suite's session as ``spark``."""
    if isinstance(request.node, DoctestItem):
        request.getfixturevalue("doctest_namespace")["spark"] = request.getfixturevalue("spark")
