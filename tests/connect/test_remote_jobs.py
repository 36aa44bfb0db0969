"""Bundled jobs as plain Python processes against a Spark Connect server (``--remote``), also from a venv
that has only ``pyspark-client`` (no JVM on the client side)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from spark_flows.book.samples import write_devices, write_visits
from spark_flows.core.submit import submit_env
from spark_flows.testing.connect_server import free_port
from tests import procs
from tests.streams import FILES, assert_each_event_once_in_every_sink, write_input

ROOT = Path(__file__).resolve().parents[2]
#: the machine's cache, shared by clones (the version runs' venvs live there too, scripts/test_versions.sh)
CACHE = Path(os.environ.get("SPARK_FLOWS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "spark_flows")


def _python_job(python: str, job: str, *args: str, remote: str) -> subprocess.CompletedProcess[str]:
    env = submit_env({"PYTHONPATH": str(ROOT)})
    env.pop("SPARK_REMOTE", None)
    return procs.run([python, str(ROOT / "jobs" / f"{job}.py"), *args, "--remote", remote], env=env, timeout=600,
                     cwd=ROOT)


@pytest.mark.connect
def test_devices_loader_with_remote_writes_once_and_replays_as_skipped(spark, connect_url: str, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=60)
    args = ["--data-root", data_root, "--batch-id", "1", "--csv", "--execution-date", "2024-01-01"]
    first = _python_job(sys.executable, "devices_loader", *args, remote=connect_url)
    assert first.returncode == 0, first.stderr[-2000:]
    again = _python_job(sys.executable, "devices_loader", *args, remote=connect_url)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "branch devices: batch 1 already committed" in again.stdout
    assert spark.read.format("delta").load(f"{data_root}/tables/devices").count() == 60
    marker = json.loads(Path(data_root, "tables", "_ready", "devices", "20240101.json").read_text())
    assert (marker["rows"], marker["table_version"]) == (60, 0)


@pytest.mark.connect
def test_a_producer_on_connect_triggers_its_consumer_with_remote(spark, connect_url: str, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=30)
    done = _python_job(sys.executable, "devices_loader", "--data-root", data_root, "--batch-id", "1",
                       "--execution-date", "2024-01-02", "--trigger", "devices_aggregator", remote=connect_url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "triggered devices_aggregator: exit 0" in done.stdout
    marker = json.loads(Path(data_root, "tables", "_ready", "devices", "20240102.json").read_text())
    assert marker["triggered"]["exit_code"] == 0
    per_type = spark.read.format("delta").load(f"{data_root}/tables/devices_per_type")
    assert per_type.groupBy().sum("devices").first()[0] == 30


@pytest.mark.connect
def test_visits_cube_with_remote_publishes_a_partial_day_with_completeness(spark, connect_url: str,
                                                                           data_root: str) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=2, missing_hours=[6, 11])
    done = _python_job(sys.executable, "visits_cube", "--data-root", data_root, "--execution-date", "2024-01-01",
                       "--mode", "unaligned", remote=connect_url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "22 of 24 present" in done.stdout
    total = spark.read.format("delta").load(f"{data_root}/tables/visits_cube").where(
        "grouping_id = 3").first()
    assert (total.visits, total.is_approximate) == (44, True)


@pytest.mark.connect
def test_visits_stream_with_remote_writes_each_event_once_and_a_restart_writes_nothing(spark, connect_url: str,
                                                                                     data_root: str) -> None:
    write_input(data_root)
    done = _python_job(sys.executable, "visits_stream", "--data-root", data_root, remote=connect_url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{FILES} micro-batch(es), 96 rows" in done.stdout
    again = _python_job(sys.executable, "visits_stream", "--data-root", data_root, remote=connect_url)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 micro-batch(es), 0 rows" in again.stdout
    assert_each_event_once_in_every_sink(spark, data_root, FILES)
    marker = json.loads(Path(data_root, "tables", "_ready", "visits_events", "20240101.json").read_text())
    assert (marker["rows"], marker["partition"]) == (48, {"event_date": "2024-01-01"})


def test_an_unreachable_connect_server_is_one_line_naming_the_address(tmp_path: Path) -> None:
    url = f"sc://127.0.0.1:{free_port()}"
    done = _python_job(sys.executable, "devices_sequence", "--data-root", str(tmp_path), remote=url)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "[REMOTE_UNREACHABLE]" in lines[0] and url in lines[0], lines


def _client_venv() -> Path:
    """A venv with the dependencies of spark_flows[connect] only (pyspark-client: no pyspark, no py4j), kept
    in the machine's cache (``$SPARK_FLOWS_CACHE``, default ``~/.cache/spark_flows``) and keyed on the
    dependency files, so fresh clones share it; the job imports this checkout's sources through PYTHONPATH."""
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", ROOT / "constraints.txt"):
        digest.update(path.read_bytes())
    venv_dir = CACHE / f"client-venv-{digest.hexdigest()[:12]}"
    stamp = venv_dir / ".complete"
    if stamp.exists():
        return venv_dir
    venv.EnvBuilder(clear=True, with_pip=True).create(venv_dir)
    python = str(venv_dir / "bin" / "python")
    done = procs.run([python, "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
                      f"{ROOT}[connect]"], timeout=900)
    assert done.returncode == 0, f"could not install spark_flows[connect] into {venv_dir}:\n{done.stderr[-2000:]}"
    done = procs.run([python, "-m", "pip", "uninstall", "--yes", "--quiet", "spark_flows"], timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    stamp.touch()
    return venv_dir


@pytest.mark.connect
def test_a_job_runs_from_a_venv_with_only_the_connect_client(spark, connect_url: str, data_root: str) -> None:
    python = str(_client_venv() / "bin" / "python")
    probe = procs.run([python, "-c", "import importlib.util as u; print(u.find_spec('py4j') is None, "
                                     "u.find_spec('delta') is None, u.find_spec('pyspark.sql.connect') is not None)"],
                      timeout=120)
    assert probe.stdout.split() == ["True", "True", "True"], "the client venv must have pyspark-client only"
    write_devices(spark, f"{data_root}/raw/devices", rows=40)
    done = _python_job(python, "devices_sequence", "--data-root", data_root, "--run-id", "client", remote=connect_url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert spark.read.format("delta").load(f"{data_root}/tables/devices_clean").count() > 0
