"""The event model and its sinks without Spark: choosing sinks, a failing sink, strict delivery, naming."""

from __future__ import annotations

import logging

import pytest

from spark_flows.core.observe import publish
from spark_flows.errors import ConfigError, EventDeliveryError
from spark_flows.events import Emitter, LogSink, RunReport, emitting, sinks_from_environment
from spark_flows.events.dagster import PipesSink, asset_for
from spark_flows.events.openlineage import OpenLineageSink, dataset_name, parent_from
from spark_flows.io.writers import Batch, WriteResult
from spark_flows.io.writers.contract import REFUSED, WRITTEN

pytestmark = pytest.mark.no_spark


class Kept:
    name = "kept"

    def __init__(self) -> None:
        self.reports: list[RunReport] = []

    def emit(self, report: RunReport) -> None:
        self.reports.append(report)


class Broken:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def emit(self, report: RunReport) -> None:
        self.calls += 1
        raise ConnectionError("endpoint down")


def test_the_environment_chooses_the_sinks_and_an_unknown_one_is_refused_by_name() -> None:
    assert [type(s) for s in sinks_from_environment({})] == [LogSink]
    assert [type(s) for s in sinks_from_environment({"SPARK_FLOWS_EVENTS": "openlineage"})] == [LogSink,
                                                                                              OpenLineageSink]
    with pytest.raises(ConfigError, match="'kafka'"):
        sinks_from_environment({"SPARK_FLOWS_EVENTS": "log,kafka"})


def test_a_failing_sink_is_warned_about_once_and_the_others_get_every_event(caplog) -> None:
    kept, broken = Kept(), Broken()
    with caplog.at_level(logging.WARNING, logger="spark_flows.events"), emitting("job", [broken, kept]):
        publish(WRITTEN, (WriteResult("/t", "delta", 3, batch=Batch("job", 1), table_version=0), {}))
        publish(REFUSED, ("/u", "csv", Batch("job", 1), "EMPTY_BATCH"))
    assert broken.calls == 1 and [r.state for r in kept.reports] == ["START", "COMPLETE"]
    assert [(o.path, o.outcome) for o in kept.reports[-1].outputs] == [("/t", "written"), ("/u", "refused")]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("event sink broken: could not send the START"), warning


def test_strict_delivery_fails_the_run_and_a_failed_block_is_a_fail_event() -> None:
    with pytest.raises(EventDeliveryError) as refused:
        Emitter("job", [Broken()], strict=True).start()
    assert refused.value.getCondition() == "EVENT_NOT_DELIVERED" and "broken" in str(refused.value)
    kept = Kept()
    with pytest.raises(RuntimeError), emitting("job", [kept]):
        raise RuntimeError("disk full")
    assert [(r.state, r.error) for r in kept.reports] == [("START", None), ("FAIL", "RuntimeError: disk full")]


def test_paths_are_named_as_openlineage_names_them_and_the_parent_is_read_from_its_form() -> None:
    assert dataset_name("hdfs://nn:8020/data/t") == ("hdfs://nn:8020", "/data/t")
    assert dataset_name("file:/data/t") == ("file", "/data/t")
    assert dataset_name("s3://lake/t/") == ("s3://lake", "t/")
    assert parent_from("ns/dag.task/abc") == ("ns", "dag.task", "abc")
    assert parent_from("ns/a/b/run-1") == ("ns", "a/b", "run-1") and parent_from("no-run-id") is None


def test_a_pipes_run_reports_each_named_output_and_its_completeness_check_when_declared() -> None:
    class Context:
        asset_keys = ["cube", "devices"]
        extras = {"spark_flows_checks": True}

        def __init__(self) -> None:
            self.sent: list[tuple] = []
            self.log = logging.getLogger("pipes")

        def report_asset_materialization(self, **kw):
            self.sent.append(("materialization", kw["asset_key"], kw["data_version"], kw["metadata"]["outcome"]))

        def report_asset_check(self, name, passed, **kw):
            self.sent.append(("check", kw["asset_key"], name, passed))

        def close(self):
            self.sent.append(("closed",))

    context = Context()
    report = RunReport("cube_job", "r", "COMPLETE", outputs=(
        _event("/data/cube", completeness={"ratio": 0.5, "is_approximate": True, "missing": {"06": "no data"}}),
        _event("/data/elsewhere")))
    PipesSink(context).emit(report)
    assert context.sent == [("materialization", "cube", "4", "written"), ("check", "cube", "spark_flows_completeness",
                                                                           False), ("closed",)]
    assert asset_for("/data/elsewhere", ["cube"], outputs=1) == "cube"


def _event(path: str, **kw):
    from spark_flows.events import OutputEvent

    return OutputEvent(path, "delta", "written", rows=1, table_version=4, **kw)
