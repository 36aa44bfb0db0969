from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from chispa import assert_df_equality

from jobs import devices_aggregator, devices_loader
from spark_flows.apps.graphs import job_graph
from spark_flows.book.samples import write_devices
from spark_flows.errors import InputNotFoundError
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers import PUBLISHED_MARKER, ParquetWriter, read_published
from spark_flows.patterns.markers import read_marker
from spark_flows.patterns.split import write_branch
from spark_flows.testing.s3_server import S3Server
from tests.flows import assert_ran_as_declared, run_flow, statuses
from tests.procs import JobProcess


def _counts(spark, data_root: str) -> tuple[int, int]:
    devices = spark.read.format("delta").load(f"{data_root}/tables/devices")
    enriched = spark.read.format("delta").load(f"{data_root}/tables/devices_enriched")
    return devices.count(), enriched.count()


def test_one_run_writes_both_tables_and_the_csv(spark, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=300)
    assert devices_loader.main(["--data-root", data_root, "--batch-id", "1", "--csv"]) == 0
    raw = spark.read.json(f"{data_root}/raw/devices")
    devices = spark.read.format("delta").load(f"{data_root}/tables/devices")
    assert_df_equality(devices, raw, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)
    enriched = spark.read.format("delta").load(f"{data_root}/tables/devices_enriched")
    # the book's enriched table: every raw row (50 of 50 in the book), nothing filtered out
    expected = raw.selectExpr("type", "concat_ws(' ', full_name, version) as full_name", "version")
    assert_df_equality(enriched.drop("loading_time"), expected, ignore_row_order=True, ignore_column_order=True,
                       ignore_nullable=True)
    assert enriched.where("loading_time is null").count() == 0
    csv = spark.read.option("sep", ";").option("header", "true").csv(f"{data_root}/exports/devices/batch=1")
    assert csv.count() == 300
    flow = assert_ran_as_declared(devices_loader, ["--batch-id", "1", "--csv"], data_root)
    assert statuses(flow) == {"raw_devices": "ran", "devices_loader": "ran", "devices_loader.devices": "ran",
                              "devices_loader.enriched": "ran", "devices_loader.csv": "ran"}
    assert {flow.node(f"devices_loader.{b}").facts["rows"] for b in ("devices", "enriched", "csv")} == {300}
    assert [e.rule for e in flow.edges if e.source == "devices_loader"] == [
        "Delta txnAppId/txnVersion devices_loader@1", "Delta txnAppId/txnVersion devices_loader@1",
        "staged publish, _PUBLISHED.json batch devices_loader@1"]


def test_replaying_the_same_batch_three_times_changes_nothing(spark, data_root: str, capsys) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=120)
    args = ["--data-root", data_root, "--batch-id", "4", "--csv"]
    assert devices_loader.main(args) == 0
    first = _counts(spark, data_root)
    for _ in range(3):
        assert devices_loader.main(args) == 0
    assert _counts(spark, data_root) == first
    assert "skipped" not in capsys.readouterr().out.split("\n")[0]
    assert devices_loader.main(args) == 0
    assert "branch devices: batch 4 already committed" in capsys.readouterr().out
    assert devices_loader.main([*args[:3], "5"]) == 0
    assert _counts(spark, data_root) == (first[0] * 2, first[1] * 2)


def test_failing_branch_lets_the_others_finish_and_names_itself(spark, data_root: str, tmp_path: Path, capsys) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=50)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the CSV export's parent should be")
    code = devices_loader.main(["--data-root", data_root, "--batch-id", "1", "--csv-output", f"{blocker}/csv"])
    assert code == 1
    err = capsys.readouterr().err
    assert "BRANCH_FAILED" in err and "csv:" in err and "1 of 3 branch(es) failed" in err
    assert _counts(spark, data_root)[0] == 50


@pytest.mark.subprocess
def test_sigkill_between_two_branch_commits_then_replay_holds_every_row_once(spark, data_root: str) -> None:
    rows = 3_000
    write_devices(spark, f"{data_root}/raw/devices", rows=rows, files=3)
    args = ["--data-root", data_root, "--batch-id", "9", "--csv", "--concurrency", "1", "--execution-date",
            "2024-01-01"]
    # branches in order devices, enriched, csv: stopped dead once the devices table committed the batch, right
    # before the enriched table's write
    pause = "before:spark_flows.io.writers.delta:DeltaWriter._write:2"
    job = JobProcess("devices_loader", args, pause=pause)
    job.wait_for(f"PAUSED AT {pause}")
    job.kill()
    devices = spark.read.format("delta").load(f"{data_root}/tables/devices")
    assert devices.count() == rows, "the devices branch committed before the kill"
    assert not Path(data_root, "tables", "devices_enriched").exists()
    csv_dir = Path(data_root, "exports", "devices", "batch=9")
    assert not csv_dir.exists(), "the CSV export of a killed run is not visible"
    assert not Path(data_root, "tables", "_ready", "devices", "20240101.json").exists(), "marker of a killed run"
    assert devices_aggregator.main(["--data-root", data_root, "--execution-date", "2024-01-01",
                                    "--wait-timeout", "0"]) == 1
    assert devices_loader.main(args) == 0  # the replay: devices skipped, enriched and csv written
    devices = spark.read.format("delta").load(f"{data_root}/tables/devices")
    raw = spark.read.schema(devices.schema).json(f"{data_root}/raw/devices")
    assert devices.count() == rows
    assert devices.exceptAll(raw).count() == 0 and raw.exceptAll(devices).count() == 0, "each input row exactly once"
    assert [r.version for r in spark.sql(f"DESCRIBE HISTORY delta.`{data_root}/tables/devices`").collect()] == [0]
    enriched = spark.read.format("delta").load(f"{data_root}/tables/devices_enriched")
    assert enriched.count() == rows
    assert json.loads((csv_dir / PUBLISHED_MARKER).read_text())["rows"] == rows
    assert not Path(data_root, "exports", "devices", "_staging").exists()
    assert json.loads(Path(data_root, "tables", "_ready", "devices", "20240101.json").read_text())["rows"] == rows


def test_an_empty_input_is_refused_and_the_batch_id_stays_usable(spark, data_root: str, capsys) -> None:
    raw = Path(data_root, "raw", "devices")
    raw.mkdir(parents=True)
    (raw / "part-0.json").write_text("not json\n")  # all corrupt: quarantine leaves no row
    args = ["--data-root", data_root, "--batch-id", "1", "--on-bad-records", "quarantine"]
    assert devices_loader.main(args) == 1
    assert "EMPTY_BATCH" in capsys.readouterr().err
    write_devices(spark, str(raw), rows=30)
    assert devices_loader.main(args) == 0
    assert _counts(spark, data_root) == (30, 30)


def test_a_replay_leaves_the_marker_true_for_the_consumer(spark, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=20)
    args = ["--data-root", data_root, "--batch-id", "1", "--execution-date", "2024-01-01"]
    assert devices_loader.main(args) == 0
    assert devices_loader.main(args) == 0  # replay: every branch skipped
    marker = json.loads(Path(data_root, "tables", "_ready", "devices", "20240101.json").read_text())
    assert (marker["rows"], marker["batch_rows"], marker["table_version"]) == (20, 20, 0)
    replayed = run_flow(data_root, "devices_loader", "2024-01-01")  # the replay's run
    assert statuses(replayed) == {"raw_devices": "skipped", "devices_loader": "skipped",
                                  "devices_loader.devices": "skipped", "devices_loader.enriched": "skipped",
                                  "marker.devices": "ran"}
    assert devices_aggregator.main(["--data-root", data_root, "--execution-date", "2024-01-01",
                                    "--wait-timeout", "0"]) == 0
    consumer = assert_ran_as_declared(devices_aggregator, ["--execution-date", "2024-01-01", "--wait-timeout", "0"],
                                      data_root)
    assert consumer.node("marker.devices").facts == {"status": "ran", "rows": 20, "table_version": 0}
    assert statuses(consumer) == {"marker.devices": "ran", "per_type": "ran", "devices_per_type": "ran"}


def test_marker_describes_the_table_the_consumer_aggregates(spark, data_root: str, capsys) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=25)
    for batch in ("1", "2"):
        assert devices_loader.main(["--data-root", data_root, "--batch-id", batch,
                                    "--execution-date", "2024-01-01"]) == 0
    assert devices_aggregator.main(["--data-root", data_root, "--execution-date", "2024-01-01",
                                    "--wait-timeout", "0"]) == 0
    assert "aggregated 50 devices" in capsys.readouterr().out
    per_type = spark.read.format("delta").load(f"{data_root}/tables/devices_per_type")
    assert per_type.groupBy().sum("devices").first()[0] == 50


def test_a_replay_does_not_even_read_the_input_nor_start_spark(spark, data_root: str, capsys, monkeypatch) -> None:
    from spark_flows.apps import harness

    write_devices(spark, f"{data_root}/raw/devices", rows=15)
    args = ["--data-root", data_root, "--batch-id", "1", "--csv"]
    assert devices_loader.main(args) == 0
    Path(data_root, "raw", "devices", "part-late.json").write_text("not json\n")  # would fail any read
    started, session = [], harness.job_session
    monkeypatch.setattr(harness, "job_session", lambda settings: started.append(1) or session(settings))
    capsys.readouterr()
    shutil.rmtree(Path(data_root, "_flows"))  # only the replay's flow from here on
    assert devices_loader.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("already committed") == 2 and "already published" in out and started == []
    assert _counts(spark, data_root) == (15, 15)
    replay = run_flow(data_root, "devices_loader")
    assert statuses(replay) == {"raw_devices": "skipped", "devices_loader": "skipped", "devices_loader.devices":
                                "skipped", "devices_loader.enriched": "skipped", "devices_loader.csv": "skipped"}
    assert devices_loader.main([*args[:3], "2"]) == 1 and started == [1]  # a new batch reads (and fails on) it


@pytest.mark.subprocess
def test_on_s3_a_sigkill_between_two_branch_commits_then_replay_holds_every_row_once(
        spark, s3_root: str, spark_flows_s3_server: S3Server) -> None:
    server, rows = spark_flows_s3_server, 2_000
    data_root = f"{s3_root}/loader-killed"
    storage = Storage(spark)
    write_devices(spark, f"{data_root}/raw/devices", rows=rows, files=2)
    args = ["--data-root", data_root, "--batch-id", "9", "--csv", "--concurrency", "1", "--execution-date",
            "2024-01-01"]
    # the job reaches the server through S3A's per-bucket settings; its credentials come from the environment
    reach = {f"spark.hadoop.{key}": value for key, value in server.bucket_conf(credentials=False).items()}
    pause = "before:spark_flows.io.writers.delta:DeltaWriter._write:2"  # the devices table committed, enriched next
    job = JobProcess("devices_loader", args, pause=pause, spark_conf=reach, extra_env=server.environment())
    job.wait_for(f"PAUSED AT {pause}")
    job.kill()
    assert spark.read.format("delta").load(f"{data_root}/tables/devices").count() == rows
    assert not delta_log.is_delta_table(storage, f"{data_root}/tables/devices_enriched")
    with pytest.raises(InputNotFoundError):  # the killed run's CSV export is not published
        read_published(spark, f"{data_root}/exports/devices/batch=9")
    assert read_marker(spark, f"{data_root}/tables/devices", dt.date(2024, 1, 1)) is None, "marker of a killed run"

    assert devices_loader.main(args) == 0  # the replay, in this process: devices skipped, enriched and csv written
    devices = spark.read.format("delta").load(f"{data_root}/tables/devices")
    raw = spark.read.schema(devices.schema).json(f"{data_root}/raw/devices")
    assert devices.exceptAll(raw).count() == 0 and raw.exceptAll(devices).count() == 0, "each input row exactly once"
    assert delta_log.table_version(storage, f"{data_root}/tables/devices") == 0, "the replay committed nothing there"
    assert spark.read.format("delta").load(f"{data_root}/tables/devices_enriched").count() == rows
    assert read_published(spark, f"{data_root}/exports/devices/batch=9").count() == rows
    marker = read_marker(spark, f"{data_root}/tables/devices", dt.date(2024, 1, 1))
    assert marker is not None and marker.rows == rows


def test_the_job_draws_the_blocks_it_runs_so_a_changed_block_changes_its_graph(spark, data_root: str,
                                                                              monkeypatch) -> None:
    """One more branch in the loader's plan: ``--graph`` draws it and the run writes it, with no second
    declaration of the flow to update."""
    built_by_the_job = devices_loader.plan

    def with_audit(options: devices_loader.Options) -> devices_loader.Loader:
        loader = built_by_the_job(options)
        audit = write_branch("audit", ParquetWriter(), f"{data_root}/audit", batch=options.batch)
        return replace(loader, split=replace(loader.split, branches=(*loader.split.branches, audit)))

    args = ["--data-root", data_root, "--batch-id", "3"]
    before = job_graph(devices_loader, args)
    monkeypatch.setattr(devices_loader, "plan", with_audit)
    after = job_graph(devices_loader, args)
    assert {n.id for n in after.nodes} - {n.id for n in before.nodes} == {"devices_loader.audit"}
    assert after.children("devices_loader") == ["devices_loader.devices", "devices_loader.enriched",
                                                "devices_loader.audit"]
    assert after.node("devices_loader.audit").rules["idempotency"].endswith("devices_loader@3")
    write_devices(spark, f"{data_root}/raw/devices", rows=40)
    assert devices_loader.main(args) == 0
    assert read_published(spark, f"{data_root}/audit").count() == 40
    flow = assert_ran_as_declared(devices_loader, ["--batch-id", "3"], data_root)
    assert flow.node("devices_loader.audit").facts["rows"] == 40
