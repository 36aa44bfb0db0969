"""Shared by the test suite and the doctests: one Delta-enabled SparkSession, local[2], UI off.

The backend is chosen per run: classic by default, Spark Connect with ``SPARK_FLOWS_TEST_BACKEND=connect``
(a local Connect server with Delta is started on 127.0.0.1 and always stopped). Tests that need classic Spark
carry the ``classic`` mark; ``make test`` runs the rest again on Connect.
Docstring examples get the session as ``spark`` (as pyspark's own doctests do).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
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


BACKEND = os.environ.get("SPARK_FLOWS_TEST_BACKEND", "classic")
if BACKEND not in ("classic", "connect"):
    raise pytest.UsageError(f"SPARK_FLOWS_TEST_BACKEND must be classic or connect, got {BACKEND!r}")


SETTINGS = load_settings(overrides={"master": "local[2]", "app_name": "spark_flows-tests", "spark_conf": TEST_CONF})
#: marks of tests that need the other backend: deselected (and reported as such), never skipped quietly
NOT_ON = {"classic": ("connect",), "connect": ("classic", "subprocess", "cluster")}


@pytest.fixture(scope="session")
def connect_url() -> Iterator[str]:
    """The URL of the run's local Spark Connect server (Connect runs only)."""
    from spark_flows.testing import ConnectServer

    if BACKEND != "connect":
        raise pytest.UsageError("connect_url is only available with SPARK_FLOWS_TEST_BACKEND=connect")
    with ConnectServer(master="local[2]", settings=SETTINGS) as server:
        assert server.url is not None
        yield server.url


@pytest.fixture(scope="session")
def spark(request: pytest.FixtureRequest) -> Iterator[SparkSession]:
    if BACKEND == "connect":
        settings = replace(SETTINGS, remote=request.getfixturevalue("connect_url"))
    else:
        settings = SETTINGS
    session = get_session(settings)
    yield session
    session.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests that need the other backend (pytest reports them as deselected)."""
    excluded = NOT_ON[BACKEND]
    dropped = [i for i in items if any(i.get_closest_marker(m) for m in excluded)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


def pytest_report_header(config: pytest.Config) -> str:
    return f"spark_flows test backend: {BACKEND}"


@pytest.fixture(autouse=True)
def _doctest_session(request: pytest.FixtureRequest) -> None:
    """Give every doctest the suite's session as ``spark``."""
    if isinstance(request.node, DoctestItem):
        request.getfixturevalue("doctest_namespace")["spark"] = request.getfixturevalue("spark")
