"""Testing one's own flows with pytest: a Delta-enabled session fixture for either backend, and assertions
for the patterns, built on chispa.

Installed with spark_flows, this module is a pytest plugin (entry point ``spark_flows``); it provides

* ``spark_flows_session``: one session for the test run, ``local[2]``, two shuffle partitions, UI off,
  Delta Lake on. Classic Spark by default; with ``--spark-flows-backend=connect`` (or
  ``SPARK_FLOWS_TEST_BACKEND=connect``) a Spark Connect session to a local server with Delta that the plugin
  starts on 127.0.0.1 from the pyspark wheel's jars and always stops (``spark_flows_connect_url``).
* ``spark_flows_s3_server``: a local S3-compatible server (SeaweedFS) on 127.0.0.1 with one bucket, for
  object-store tests (:class:`spark_flows.testing.s3_server.S3Server`), started once for the run and always stopped.
* the assertions below: :func:`assert_frames_equal`, :func:`assert_replay_writes_nothing`,
  :func:`assert_route`, :func:`assert_completeness`.

A test of one's own flow, in a few lines::

    from spark_flows.testing import assert_replay_writes_nothing

    def test_my_job_replays_for_free(spark_flows_session, tmp_path):
        run = lambda: my_job.main(["--output", str(tmp_path / "t"), "--batch-id", "7"])
        run()
        assert_replay_writes_nothing(run, str(tmp_path / "t"))

Example
-------
>>> assert_frames_equal(spark.createDataFrame([(2,), (1,)], "n int"), spark.createDataFrame([(1,), (2,)], "n int"))
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark_flows.core.config import Settings, load_settings
from spark_flows.core.session import get_session
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers.contract import PUBLISHED_MARKER
from spark_flows.patterns.choice import ROUTE_RECORD, Route
from spark_flows.patterns.fan_in.completeness import Completeness
from spark_flows.testing.connect_server import ConnectServer, free_port
from spark_flows.testing.s3_server import S3Server

__all__ = [
    "TEST_CONF", "ConnectServer", "assert_completeness", "assert_frames_equal", "assert_replay_writes_nothing",
    "assert_route", "free_port", "test_settings",
]

#: On top of the shipped local.toml: two workers, two shuffle partitions, no UI.
TEST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.ui.enabled": "false",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    "spark.driver.memory": "3g",
}
BACKENDS = ("classic", "connect")


def test_settings(app_name: str = "spark_flows-tests") -> Settings:
    """The settings of the test session: the embedded defaults, ``local[2]`` and :data:`TEST_CONF`."""
    return load_settings(overrides={"master": "local[2]", "app_name": app_name, "spark_conf": TEST_CONF})


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever its name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--spark-flows-backend", choices=BACKENDS, default=None,
                     help="Spark backend of spark_flows_session (default: $SPARK_FLOWS_TEST_BACKEND or classic)")


def backend_of(config: pytest.Config) -> str:
    """The backend chosen for this run: the option, else ``$SPARK_FLOWS_TEST_BACKEND``, else classic."""
    chosen = config.getoption("--spark-flows-backend") or os.environ.get("SPARK_FLOWS_TEST_BACKEND", "classic")
    if chosen not in BACKENDS:
        raise pytest.UsageError(f"SPARK_FLOWS_TEST_BACKEND must be classic or connect, got {chosen!r}")
    return str(chosen)


@pytest.fixture(scope="session")
def spark_flows_connect_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a local Spark Connect server with Delta, started for the run and always stopped."""
    if backend_of(request.config) != "connect":
        raise pytest.UsageError("spark_flows_connect_url needs the connect backend (--spark-flows-backend=connect)")
    with ConnectServer(master="local[2]", settings=test_settings()) as server:
        assert server.url is not None
        yield server.url


@pytest.fixture(scope="session")
def spark_flows_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A local S3-compatible server (SeaweedFS ``weed mini``) on 127.0.0.1 with one bucket, for the run;
    always stopped. Its ``endpoint``, ``bucket``, credentials and ``hadoop_conf()`` reach it."""
    with S3Server(tmp_path_factory.mktemp("s3-server")) as server:
        yield server


@pytest.fixture(scope="session")
def spark_flows_session(request: pytest.FixtureRequest) -> Iterator[SparkSession]:
    """One Delta-enabled session for the run, on the chosen backend; stopped at the end."""
    settings = test_settings()
    if backend_of(request.config) == "connect":
        settings = replace(settings, remote=request.getfixturevalue("spark_flows_connect_url"))
    session = get_session(settings)
    yield session
    session.stop()


def assert_frames_equal(actual: DataFrame, expected: DataFrame, *, ignore_row_order: bool = True,
                        ignore_nullable: bool = True, **chispa_options: Any) -> None:
    """chispa's ``assert_df_equality``, with row order and nullability ignored by default."""
    from chispa import assert_df_equality

    assert_df_equality(actual, expected, ignore_row_order=ignore_row_order, ignore_nullable=ignore_nullable,
                       **chispa_options)


def _state(storage: Storage, output: str) -> Any:
    if delta_log.is_delta_table(storage, output):
        return ("delta table version", delta_log.table_version(storage, output))
    marker = f"{output.rstrip('/')}/{PUBLISHED_MARKER}"
    if storage.exists(marker):
        return ("published", storage.read_text(marker))
    return ("files", sorted(i.name for i in storage.list(output)))


def assert_replay_writes_nothing(run: Callable[[], object], *outputs: str, spark: SparkSession | None = None
                                 ) -> None:
    """Run ``run`` (a replay of an already committed batch) and assert that no output changed: a Delta
    table keeps its version, a published files output its ``_PUBLISHED.json``, another directory its files.
    """
    storage = Storage(spark or SparkSession.getActiveSession())
    before = {o: _state(storage, o) for o in outputs}
    run()
    changed = {o: (before[o], now) for o in outputs if (now := _state(storage, o)) != before[o]}
    assert not changed, f"the replay wrote to {sorted(changed)}: " + "; ".join(
        f"{o}: {was} -> {now}" for o, (was, now) in changed.items())


def assert_route(route: Route | str, branch: str, *, spark: SparkSession | None = None) -> None:
    """Assert that an Exclusive Choice took ``branch``: ``route`` is the :class:`Route`, or the output (or
    route directory) holding its ``_ROUTE.json``."""
    if isinstance(route, str):
        path = route if route.endswith(ROUTE_RECORD) else f"{route.rstrip('/')}/{ROUTE_RECORD}"
        storage = Storage(spark or SparkSession.getActiveSession())
        assert storage.exists(path), f"no route record at {path}"
        taken, reason = storage.read_json(path)["branch"], json.dumps(storage.read_json(path))
    else:
        taken, reason = route.branch, route.reason
    assert taken == branch, f"took branch {taken!r}, expected {branch!r} ({reason})"


def assert_completeness(observed: Completeness | DataFrame, *, ratio: float | None = None,
                        missing: Sequence[str] | None = None, approximate: bool | None = None) -> None:
    """Assert an Unaligned Fan-In's completeness: a :class:`Completeness`, or a frame carrying the
    ``completeness_ratio``/``is_approximate`` columns (one value throughout)."""
    if isinstance(observed, Completeness):
        found = {"ratio": observed.ratio, "missing": sorted(observed.missing),
                 "approximate": observed.is_approximate}
    else:
        values = observed.select("completeness_ratio", "is_approximate").distinct().collect()
        assert len(values) == 1, f"expected one completeness throughout, found {[tuple(v) for v in values]}"
        found = {"ratio": values[0][0], "missing": None, "approximate": values[0][1]}
    wanted = {"ratio": ratio, "missing": sorted(missing) if missing is not None else None, "approximate": approximate}
    wrong = {k: (found[k], v) for k, v in wanted.items() if v is not None and found[k] != v}
    assert not wrong, "completeness differs: " + ", ".join(f"{k} is {f}, expected {w}" for k, (f, w) in wrong.items())
