"""The Delta log facts a replay check needs, at growing table histories: flat, not growing with the log.

A table of one app's batch 1, then appends of other writers up to 10, 60 and 210 table versions (Delta's
default checkpoint every 10 commits). At each size, ``DeltaWriter().already_committed`` (the split's and the
writer's replay check: ``_last_checkpoint``, the checkpoint, the commits after it) beside a scan of every
retained commit (what the reader did before: its cost grows with history). The limit is the same check on the
smallest table: what a check that reads no history costs. Repeated, median and spread printed.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from pyspark.sql import SparkSession

from benchmarks.common import WORK, fresh, table
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, DeltaWriter

SIZES = [int(v) for v in os.environ.get("SPARK_FLOWS_BENCH_LOG_VERSIONS", "10,60,210").split(",")]
REPEATS = 7


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    """Median and spread (max - min) in milliseconds of ``REPEATS`` calls, after one warm-up call."""
    call()
    seconds = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds) * 1000, (max(seconds) - min(seconds)) * 1000


def run(spark: SparkSession) -> list[str]:
    path = fresh(WORK / "delta_log" / "table")
    DeltaWriter().write(spark.range(5).selectExpr("id"), path, batch=Batch("loader", 1))
    storage = Storage(spark)
    rows: list[list[object]] = []
    limit = None
    for size in sorted(SIZES):
        while (delta_log.table_version(storage, path) or 0) < size:
            spark.range(1).selectExpr("id").write.format("delta").mode("append").save(path)
        snap = delta_log.snapshot(storage, path)
        check, check_spread = _timed(lambda: DeltaWriter().already_committed(spark, path, Batch("loader", 1)))
        scan, scan_spread = _timed(lambda: delta_log.find_txn(storage, path, "loader", 1))
        limit = limit or check
        rows.append([size, snap.checkpoint, len(snap.commits), f"{check:.1f} ± {check_spread:.1f}",
                     f"{check / limit:.2f}x", f"{scan:.1f} ± {scan_spread:.1f}", f"{scan / check:.1f}x"])
    return [table(f"Delta log: replay check vs full log scan (ms, median ± spread of {REPEATS}; limit: the check "
                  "on the smallest table)",
                  ["table version", "checkpoint", "commits read", "replay check", "to limit", "full scan",
                   "scan / check"], rows)]
