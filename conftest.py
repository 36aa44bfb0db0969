"""Shared by the test suite and the doctests: one Delta-enabled SparkSession, local[2], UI off, from the
``spark_flows.testing`` pytest plugin that users get too.

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

from spark_flows.core.backend import is_remote  # noqa: E402
from spark_flows.testing import backend_of, test_settings  # noqa: E402  (the plugin: spark_flows_session ...)
from spark_flows.testing.connect_server import ConnectServer  # noqa: E402
from spark_flows.testing.s3_server import S3Server  # noqa: E402

collect_ignore = [
    "tests/installed",  # run by scripts/test_versions.sh against the installed wheel
    "tests/pipelines",  # Spark Declarative Pipelines sources, run by spark-pipelines in tests/test_pipelines.py
]

#: marks of tests that need the other backend: deselected (and reported as such), never skipped quietly
NOT_ON = {"classic": ("connect", "no_spark"), "connect": ("classic", "oracle", "subprocess", "cluster")}


@pytest.fixture(scope="session")
def connect_url(spark_flows_connect_url: str) -> str:
    """The URL of the run's local Spark Connect server (Connect runs only)."""
    return spark_flows_connect_url


@pytest.fixture(scope="session")
def spark(spark_flows_session: SparkSession) -> SparkSession:
    """The plugin's session for the run's backend, as the suite and the doctests call it."""
    return spark_flows_session


@pytest.fixture(scope="session")
def spark_flows_connect_url(spark_flows_s3_server: S3Server) -> Iterator[str]:
    """The suite's Connect server (the plugin's fixture, overridden): it also reaches the run's S3 server, its
    endpoint in the server's S3A settings, the credentials in its environment and in this client's (for
    spark_flows' own requests), never on a command line."""
    server = spark_flows_s3_server
    settings = test_settings()
    reach = {f"spark.hadoop.{key}": value for key, value in server.bucket_conf(credentials=False).items()}
    settings = replace(settings, spark_conf={**settings.spark_conf, **reach})
    credentials = {k: v for k, v in server.environment().items() if k != "AWS_ENDPOINT_URL_S3"}
    os.environ.update(credentials)
    with ConnectServer(master="local[2]", settings=settings, env=credentials) as connect:
        assert connect.url is not None
        yield connect.url


@pytest.fixture(scope="session")
def s3_root(spark: SparkSession, spark_flows_s3_server: S3Server) -> str:
    """A folder of the run's S3 server bucket, reached by the suite's session: on classic through per-bucket
    S3A settings set on its Hadoop configuration (spark_flows' own requests read the same settings), on
    Connect through the server's (see ``spark_flows_connect_url``)."""
    server = spark_flows_s3_server
    if is_remote(spark):
        return f"s3a://{server.bucket}/connect"
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in server.bucket_conf().items():
        hadoop.set(key, value)
    return f"s3a://{server.bucket}/spark"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests that need the other backend (pytest reports them as deselected)."""
    excluded = NOT_ON[backend_of(config)]
    dropped = [i for i in items if any(i.get_closest_marker(m) for m in excluded)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


def pytest_report_header(config: pytest.Config) -> str:
    return f"spark_flows test backend: {backend_of(config)}"


@pytest.fixture(autouse=True)
def _doctest_session(request: pytest.FixtureRequest) -> None:
    """Give every doctest the suite's session as ``spark``."""
    if isinstance(request.node, DoctestItem):
        request.getfixturevalue("doctest_namespace")["spark"] = request.getfixturevalue("spark")
