"""What a bundled job tells the orchestrator: OpenLineage run events sent from the client, and Dagster Pipes."""


import logging
import sys
from pathlib import Path

import dagster as dg
import pytest

from jobs import devices_loader, visits_cube
from spark_flows.book.samples import BOOK_MISSING_HOURS, write_visits
from spark_flows.events.openlineage import dataset_name
from spark_flows.io.delta_log import table_version
from spark_flows.io.storage import local_storage
from tests.lineage import check_event, lineage_endpoint

PARENT = "airflow_ns/daily_cube.visits_cube/0190d9b2-6a4e-7b1c-8f00-8a1c2b3d4e5f"


def test_a_partial_cube_reaches_openlineage_with_its_completeness_route_version_and_parent(
        spark, data_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=1, missing_hours=BOOK_MISSING_HOURS)
    with lineage_endpoint() as endpoint:
        monkeypatch.setenv("SPARK_FLOWS_EVENTS", "openlineage")
        monkeypatch.setenv("OPENLINEAGE_URL", endpoint.url)
        monkeypatch.setenv("OPENLINEAGE_PARENT_ID", PARENT)
        assert visits_cube.main(["--data-root", data_root, "--execution-date", "2024-01-01", "--mode", "unaligned",
                                 "--min-completeness", "0.9"]) == 0
        start = endpoint.wait_for("START of visits_cube", lambda e: e["eventType"] == "START")
        complete = endpoint.wait_for("COMPLETE of visits_cube", lambda e: e["eventType"] == "COMPLETE")
    for event in (start, complete):
        check_event(event)
    assert start["run"]["runId"] == complete["run"]["runId"] and complete["job"]["name"] == "visits_cube"
    parent = complete["run"]["facets"]["parent"]
    assert (parent["job"]["namespace"], parent["job"]["name"], parent["run"]["runId"]) == tuple(
        PARENT.split("/", 1)[:1] + PARENT.split("/", 1)[1].rsplit("/", 1))
    route = complete["run"]["facets"]["spark_flows_route"]["routes"]
    assert [(r["branch"], r["candidates"]) for r in route] == [("private", ["public", "private"])], route
    outputs = {o["name"]: o for o in complete["outputs"]}
    private = str(Path(data_root, "tables", "visits_cube_private").resolve())
    assert set(outputs) == {private, str(Path(data_root, "tables", "visits_cube_completeness").resolve())}
    cube = outputs[private]
    assert cube["namespace"] == "file"
    assert cube["facets"]["version"]["datasetVersion"] == str(table_version(local_storage(), private))
    completeness = cube["outputFacets"]["spark_flows_completeness"]
    assert (completeness["expected"], completeness["present"], completeness["isApproximate"]) == (24, 19, True)
    assert {m["parent"]: m["reason"] for m in completeness["missing"]} == {
        h: "no data" for h in ("06", "11", "16", "17", "18")}
    stats = cube["outputFacets"]["outputStatistics"]["rowCount"]
    assert stats == spark.read.format("delta").load(private).count() and stats > 0
    assert cube["outputFacets"]["spark_flows_batch"]["outcome"] == "written"
    assert cube["outputFacets"]["spark_flows_batch"]["partition"] == {"date": "20240101"}


def test_an_unreachable_lineage_endpoint_is_one_warning_and_the_data_is_written(
        spark, data_root: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from spark_flows.book.samples import write_devices

    write_devices(spark, f"{data_root}/raw/devices", rows=20)
    with lineage_endpoint() as endpoint:
        url = endpoint.url  # a port that answered once, closed when the block ends
    config = Path(data_root).parent / "openlineage.yml"  # the client's own config: its HTTP transport, no retries
    config.write_text(f"transport:\n  type: http\n  url: {url}\n  retry:\n    total: 0\n")
    monkeypatch.setenv("SPARK_FLOWS_EVENTS", "openlineage")
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    with caplog.at_level(logging.WARNING, logger="spark_flows.events"):
        assert devices_loader.main(["--data-root", data_root, "--batch-id", "1"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "event sink openlineage" in warnings[0], warnings
    assert spark.read.format("delta").load(f"{data_root}/tables/devices").count() == 20
    monkeypatch.setenv("SPARK_FLOWS_EVENTS_STRICT", "1")  # strict delivery asked for: no run without its events
    assert devices_loader.main(["--data-root", data_root, "--batch-id", "2"]) == 1
    assert spark.read.format("delta").load(f"{data_root}/tables/devices").count() == 20


def test_an_unknown_event_sink_is_a_usage_error_before_spark_starts(data_root: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SPARK_FLOWS_EVENTS", "kafka")
    assert devices_loader.main(["--data-root", data_root, "--batch-id", "1"]) == 2
    assert "unknown event sink 'kafka'" in capsys.readouterr().err
    assert not Path(data_root, "tables").exists()


@pytest.mark.subprocess
def test_dagster_records_a_run_and_its_replay_reported_through_pipes(spark, data_root: str) -> None:
    from spark_flows.book.samples import write_devices

    write_devices(spark, f"{data_root}/raw/devices", rows=30)
    root = Path(__file__).resolve().parents[2]

    @dg.multi_asset(specs=[dg.AssetSpec("devices"), dg.AssetSpec("devices_enriched")])
    def loaded(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
        return pipes_subprocess_client.run(
            context=context, command=[sys.executable, str(root / "jobs" / "devices_loader.py"), "--data-root",
                                      data_root, "--batch-id", "1"]).get_results()

    client = dg.PipesSubprocessClient(cwd=str(root))
    recorded = []
    for _ in ("run", "replay"):
        result = dg.materialize([loaded], resources={"pipes_subprocess_client": client})
        assert result.success
        recorded.append({event.asset_key.to_user_string(): event.materialization
                         for event in result.get_asset_materialization_events()})
    run, replay = recorded
    devices = str(Path(data_root, "tables", "devices"))
    version = str(table_version(local_storage(), devices))
    assert run["devices"].metadata["outcome"].value == "written" and run["devices"].metadata["rows"].value == 30
    assert run["devices"].tags["dagster/data_version"] == version
    assert replay["devices"].metadata["outcome"].value == "skipped"
    assert "loader" in replay["devices"].metadata["reason"].value, replay["devices"].metadata
    assert replay["devices"].tags["dagster/data_version"] == version  # the replay wrote no new version
    assert replay["devices_enriched"].metadata["rows"].value == run["devices_enriched"].metadata["rows"].value == 30
    assert dataset_name(devices) == ("file", devices)
