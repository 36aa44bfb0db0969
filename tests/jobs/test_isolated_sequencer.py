from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jobs import devices_aggregator, devices_loader
from spark_flows.book.samples import write_devices
from tests.procs import JobProcess


def _per_type(spark, data_root: str) -> dict[str, int]:
    table = spark.read.format("delta").load(f"{data_root}/tables/devices_per_type")
    return {r.type: r.devices for r in table.where("date = '20240101'").collect()}


@pytest.mark.subprocess
def test_consumer_started_first_proceeds_only_after_the_marker(spark, data_root: str) -> None:
    rows = 2_000
    write_devices(spark, f"{data_root}/raw/devices", rows=rows, files=2)
    consumer = JobProcess("devices_aggregator", ["--data-root", data_root, "--execution-date", "2024-01-01",
                                                 "--wait-timeout", "600", "--poll-interval", "0.5"])
    consumer.wait_for(r"waiting for marker .*20240101\.json")
    assert consumer.proc.poll() is None and not Path(data_root, "tables", "devices_per_type").exists()
    # the producer, in this process: the consumer's own process sees nothing but the marker appear
    assert devices_loader.main(["--data-root", data_root, "--batch-id", "1", "--execution-date", "2024-01-01",
                                "--run-id", "producer-1"]) == 0
    assert consumer.wait(300) == 0, consumer.tail()
    assert "aggregated 2000 devices published by devices_loader (run producer-1" in consumer.output()
    assert sum(_per_type(spark, data_root).values()) == rows


def test_marker_of_the_loader_and_the_cli_listing(spark, data_root: str, capsys) -> None:
    from spark_flows.apps.cli import main as cli

    write_devices(spark, f"{data_root}/raw/devices", rows=30)
    assert devices_loader.main(["--data-root", data_root, "--batch-id", "1", "--execution-date", "2024-01-01"]) == 0
    marker = json.loads(Path(data_root, "tables", "_ready", "devices", "20240101.json").read_text())
    assert (marker["rows"], marker["producer"], marker["table_version"]) == (30, "devices_loader", 0)
    capsys.readouterr()
    assert cli(["markers", f"{data_root}/tables/devices", "--data-root", data_root]) == 0
    out = capsys.readouterr().out
    assert "2024-01-01" in out and "devices_loader" in out and "30" in out


def test_consumer_times_out_cleanly_without_a_marker(spark, data_root: str, capsys) -> None:
    code = devices_aggregator.main(["--data-root", data_root, "--execution-date", "2024-01-01",
                                    "--wait-timeout", "1", "--poll-interval", "0.3"])
    assert code == 1
    err = capsys.readouterr().err
    assert "MARKER_TIMEOUT" in err and re.search(r"tables/_ready/devices/20240101\.json after waiting \d+\.\ds "
                                                 r"\(timeout 1s, \d+ polls\)", err), err
    assert not Path(data_root, "tables", "devices_per_type").exists()


def test_marker_schema_mismatch_fails_the_consumer_with_both_schemas(spark, data_root: str, capsys) -> None:
    import datetime as dt

    from spark_flows.io.writers import DeltaWriter
    from spark_flows.patterns.markers import publish
    wrong = spark.createDataFrame([("galaxy", 3)], "type string, version int")
    publish(wrong, f"{data_root}/tables/devices", DeltaWriter(), producer="someone",
            execution_date=dt.date(2024, 1, 1))
    assert devices_aggregator.main(["--data-root", data_root, "--execution-date", "2024-01-01",
                                    "--wait-timeout", "0"]) == 1
    err = capsys.readouterr().err
    assert "MARKER_MISMATCH" in err and "version: expected string, published int" in err
    assert "published struct<type:string,version:int>" in err


@pytest.mark.subprocess
def test_task_based_trigger_runs_the_consumer_and_records_it(spark, data_root: str, capsys) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=60)
    args = ["--data-root", data_root, "--batch-id", "1", "--execution-date", "2024-01-01",
            "--trigger", "devices_aggregator"]
    assert devices_loader.main(args) == 0
    assert "triggered devices_aggregator: exit 0" in capsys.readouterr().out
    marker = json.loads(Path(data_root, "tables", "_ready", "devices", "20240101.json").read_text())
    assert marker["triggered"]["exit_code"] == 0 and marker["triggered"]["job"].endswith("devices_aggregator.py")
    assert sum(_per_type(spark, data_root).values()) == 60
