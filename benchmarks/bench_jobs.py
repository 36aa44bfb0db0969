"""The fixed cost of a bundled job: each job beside a plain PySpark script doing the same reads and writes on
the same small input (benchmarks/plain/), both under the same ``spark-submit`` settings, run in pairs; wall
time, CPU time of the process tree, and the Spark jobs each ran (counted in its event log)."""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import SparkSession

from benchmarks.common import REPEATS, WORK, Timing, fresh, load, table
from spark_flows.book.samples import write_devices, write_visits
from spark_flows.core.config import load_settings
from spark_flows.core.submit import submit_command, submit_env

DEVICES = int(os.environ.get("SPARK_FLOWS_BENCH_JOBS_DEVICES", "5000"))
VISITS_PER_HOUR = int(os.environ.get("SPARK_FLOWS_BENCH_JOBS_VISITS_PER_HOUR", "200"))
DAY = dt.date(2024, 1, 1)
PLAIN = Path(__file__).resolve().parent / "plain"


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _submit(script: str, args: Sequence[str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one ``spark-submit``, and the Spark jobs its event log records."""
    events = tempfile.mkdtemp(prefix="events-", dir=WORK)
    command = submit_command(script, args, load_settings(), master="local[2]", spark_conf={
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": events, "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false"})
    cpu, began = _cpu(), os.times().elapsed
    done = subprocess.run(command, env=submit_env(), capture_output=True, text=True, check=False)
    wall, cpu = os.times().elapsed - began, _cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    logs = [p for p in Path(events).rglob("*") if p.is_file()]  # a rolling (v2) log is a directory of parts
    jobs = sum(line.startswith('{"Event":"SparkListenerJobStart"') for f in logs for line in f.open())
    return wall, cpu, jobs


def run(spark: SparkSession) -> list[str]:
    before = load()
    fresh(WORK / "jobs")
    devices = fresh(WORK / "jobs" / "devices")
    write_devices(spark, devices, rows=DEVICES)
    visits = fresh(WORK / "jobs" / "visits")
    write_visits(spark, visits, DAY, rows_per_hour=VISITS_PER_HOUR)
    pairs = {
        "devices_loader (3 outputs, 2 with txn)": (
            lambda root: ("jobs/devices_loader.py", ["--input", devices, "--data-root", root, "--batch-id", "1",
                                                    "--csv"]),
            lambda root: (str(PLAIN / "devices_loader.py"), [devices, root, "1"])),
        "visits_cube (a day of 24 hours)": (
            lambda root: ("jobs/visits_cube.py", ["--input", visits, "--data-root", root, "--execution-date",
                                                 DAY.isoformat()]),
            lambda root: (str(PLAIN / "visits_cube.py"), [visits, root, f"{DAY:%Y%m%d}"])),
    }
    rows = []
    for label, (bundled, plain) in pairs.items():
        runs: dict[str, list[tuple[float, float, int]]] = {"bundled": [], "plain": []}
        for _ in range(REPEATS):  # in pairs, so a load change hits both
            for kind, command in (("bundled", bundled), ("plain", plain)):
                runs[kind].append(_submit(*command(fresh(WORK / "jobs" / f"{kind}-root"))))
        wall = {k: Timing(tuple(r[0] for r in v)) for k, v in runs.items()}
        cpu = {k: Timing(tuple(r[1] for r in v)) for k, v in runs.items()}
        jobs = {k: sorted({r[2] for r in v}) for k, v in runs.items()}
        rows.append((label, wall["bundled"].cell(), wall["plain"].cell(), wall["bundled"].ratio(wall["plain"]),
                     f"{cpu['bundled'].median:.1f} / {cpu['plain'].median:.1f}", cpu["bundled"].ratio(cpu["plain"]),
                     f"{'/'.join(map(str, jobs['bundled']))} vs {'/'.join(map(str, jobs['plain']))}"))
    return [table(f"Fixed cost of a bundled job: spark-submit, local[2], {DEVICES:,} devices / "
                  f"{VISITS_PER_HOUR * 24:,} visits (target: within 1.1x of the plain script)",
                  ["job", "bundled wall s", "plain wall s", "wall ratio", "CPU s bundled / plain", "CPU ratio",
                   "Spark jobs"], rows, load_before=before)]
