"""A bundled job, unchanged, under spark-submit --master spark://127.0.0.1:<port> with the package zipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spark_flows.book.samples import write_devices
from spark_flows.core.config import Settings
from spark_flows.core.submit import package_zip, run_submit, submit_command
from tests.cluster import standalone_cluster
from tests.procs import ROOT, SUBMIT_CONF

pytestmark = pytest.mark.cluster
CLUSTER_CONF = {**SUBMIT_CONF, "spark.executor.memory": "1g", "spark.cores.max": "2"}


def _submit(master: str, job: str, args: list[str], zip_path: Path) -> None:
    command = submit_command(str(ROOT / job), args, Settings(spark_conf=CLUSTER_CONF), master=master,
                             py_files=[str(zip_path)])
    result = run_submit(command, timeout=300)
    assert result.ok, f"{job} exited {result.returncode}:\n{result.output_tail}"


def test_jobs_run_unchanged_on_a_standalone_cluster(spark, tmp_path: Path, capfd) -> None:
    data_root = str(tmp_path / "data")
    write_devices(spark, f"{data_root}/raw/devices", rows=2000, files=2)
    zip_path = package_zip(tmp_path / "dist" / "spark_flows.zip")
    with standalone_cluster(tmp_path / "cluster") as master:
        probe = submit_command(str(ROOT / "tests" / "cluster_probe.py"), [], Settings(spark_conf=CLUSTER_CONF),
                               master=master, py_files=[str(zip_path)])
        result = run_submit(probe, timeout=300, capture=False)
        assert result.ok
        _submit(master, "jobs/devices_loader.py",
                ["--data-root", data_root, "--batch-id", "1", "--csv", "--execution-date", "2024-01-01"], zip_path)
    out = capfd.readouterr().out
    executor_paths = next(line for line in out.splitlines() if line.startswith("EXECUTOR_SPARK_FLOWS="))
    assert "spark_flows.zip/spark_flows/__init__.py" in executor_paths, executor_paths
    assert spark.read.format("delta").load(f"{data_root}/tables/devices").count() == 2000
    marker = json.loads(Path(data_root, "tables", "_ready", "devices", "20240101.json").read_text())
    assert marker["rows"] == 2000
    csv = spark.read.option("sep", ";").option("header", "true").csv(f"{data_root}/exports/devices/batch=1")
    assert csv.count() == 2000  # written by the cluster's executor, published by the driver
