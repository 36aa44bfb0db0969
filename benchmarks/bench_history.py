"""A batch write and its replay check on tables with a long history: what spark_flows' own Delta checks cost
at 10, 1,000 and 10,000 commits, beside plain ``txnAppId``/``txnVersion`` writes.

Each table holds app ``loader``'s batch 1, then appends of another writer up to the size: Delta's blind
appends, most of them made without Spark (:mod:`spark_flows.io.delta_append`, one commit each, as Delta
Spark writes it) and every 500th by Delta Spark, which writes its checkpoint every 10 commits. The whole log
is then aged past ``delta.logRetentionDuration`` (7 days) and one more Delta Spark commit writes a checkpoint
and runs Delta's own log cleanup: the table's log is what a table that has lived for a while keeps.

Per size: the replay check of ``loader``'s batch 1 (``DeltaWriter().already_committed``: what a split and a
writer ask before writing), with the LIST calls, the entries those listed and the files it read, counted on
the local filesystem; and a batch write of 100 rows by plain Spark with ``txnAppId``/``txnVersion`` (the limit:
what Delta itself costs), by ``DeltaWriter(allow_empty=True)`` (its log checks before and after the commit,
nothing else) and by ``DeltaWriter()`` (the checks plus the one small Spark job that refuses an empty batch).
Targets (issue 25): the check's files read and time flat from 10 to 10,000 commits (within 1.2x), and its
overhead on a batch write under 5% at 10,000 commits.

    make bench BENCH=history                                   # 10, 1000, 10000 commits
    SPARK_FLOWS_BENCH_HISTORY=10,1000 make bench BENCH=history
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from benchmarks.common import REPEATS, WORK, fresh, load, table
from spark_flows.io import delta_append, delta_log
from spark_flows.io.filesystems import FileInfo
from spark_flows.io.filesystems.local import LocalFileSystem
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, DeltaWriter

SIZES = [int(v) for v in os.environ.get("SPARK_FLOWS_BENCH_HISTORY", "10,1000,10000").split(",")]
SPARK_EVERY = 500
CHECKS = 9  # replay checks per size (after one warm-up); they write nothing, so they can repeat cheaply
WRITES = max(3, REPEATS)  # batch writes per mode and size, the two modes alternating


@dataclass
class Calls:
    """What the local filesystem was asked while counting."""

    lists: int = 0
    listed: int = 0
    reads: int = 0


@contextmanager
def counting() -> Iterator[Calls]:
    """Count ``list`` calls, the entries they returned and ``read_bytes`` calls on local files."""
    calls = Calls()
    listing, reading = LocalFileSystem.list, LocalFileSystem.read_bytes

    def counted_list(self: LocalFileSystem, path: str, after: str = "") -> list[FileInfo]:
        found = listing(self, path, after)
        calls.lists += 1
        calls.listed += len(found)
        return found

    def counted_read(self: LocalFileSystem, path: str) -> bytes:
        calls.reads += 1
        return reading(self, path)

    LocalFileSystem.list, LocalFileSystem.read_bytes = counted_list, counted_read  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        LocalFileSystem.list, LocalFileSystem.read_bytes = listing, reading  # type: ignore[method-assign]


def _grow(spark: SparkSession, path: str, size: int) -> float:
    """Append until the table has ``size`` commits (rounded up to Delta's next checkpoint), age the log past
    its retention and let Delta clean it; the seconds it took."""
    began = time.perf_counter()
    storage = Storage(spark)
    version = delta_log.table_version(storage, path) or 0
    last = -(-size // 10) * 10  # the checkpoint version the history ends on
    while version < last - 1:
        if (version + 1) % SPARK_EVERY == 0:  # Delta Spark: a checkpoint at this version, as Delta keeps them
            spark.range(1).selectExpr("id").write.format("delta").mode("append").save(path)
            version += 1
        else:
            version = delta_append.append(storage, path, [{"id": version}], engine="bench history")
    aged = time.time() - 31 * 86400  # every file of the log older than the table's 7-day retention
    for file in Path(path, "_delta_log").iterdir():
        os.utime(file, (aged, aged))
    spark.range(1).selectExpr("id").write.format("delta").mode("append").save(path)  # checkpoint, then cleanup
    return time.perf_counter() - began


def _median_ms(runs: list[float]) -> str:
    return f"{statistics.median(runs) * 1000:.1f} ({min(runs) * 1000:.1f}-{max(runs) * 1000:.1f})"


def _timed(call: Callable[[], object], times: int) -> list[float]:
    runs = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        runs.append(time.perf_counter() - began)
    return runs


def _measure(spark: SparkSession, size: int) -> tuple[float, list[object]]:
    """One size's row (and its median check, in seconds)."""
    path = str(Path(fresh(WORK / "history" / f"t{size}")).resolve())
    DeltaWriter().write(spark.range(5).selectExpr("id"), path, batch=Batch("loader", 1))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.logRetentionDuration = 'interval 7 days')")
    built = _grow(spark, path, size)
    snap = delta_log.snapshot(Storage(spark), path)
    retained = len([p for p in Path(path, "_delta_log").iterdir() if p.name.endswith(".json")])

    def check() -> object:
        result = DeltaWriter().already_committed(spark, path, Batch("loader", 1))
        assert result is not None and result.skipped, result
        return result

    check()  # warm-up
    with counting() as calls:
        check()
    checks = _timed(check, CHECKS)
    frame = spark.range(100).selectExpr("id")

    def ours(batch: int) -> object:
        return DeltaWriter().write(frame, path, batch=Batch("bench", batch))

    def checks_only(batch: int) -> object:  # the log checks, without the empty-batch job
        return DeltaWriter(allow_empty=True).write(frame, path, batch=Batch("bench_checks", batch))

    def plain(batch: int) -> None:
        frame.write.format("delta").mode("append").option("txnAppId", "plain").option("txnVersion", batch).save(path)

    mine: list[float] = []
    checked: list[float] = []
    theirs: list[float] = []
    for batch in range(1, WRITES + 1):  # alternate, so all see the same table sizes and checkpoints
        mine.append(_seconds(ours, batch))
        checked.append(_seconds(checks_only, batch))
        theirs.append(_seconds(plain, batch))
    plain_median = statistics.median(theirs)
    return statistics.median(checks), [
        size, snap.checkpoint, retained, f"{built:.0f}", _median_ms(checks), "",
        f"{calls.lists} / {calls.listed} / {calls.reads}", _median_ms(theirs),
        f"{_median_ms(checked)} {statistics.median(checked) / plain_median - 1:+.1%}",
        f"{_median_ms(mine)} {statistics.median(mine) / plain_median - 1:+.1%}"]


def _seconds(call: Callable[[int], object], batch: int) -> float:
    began = time.perf_counter()
    call(batch)
    return time.perf_counter() - began


def run(spark: SparkSession) -> list[str]:
    before = load()
    rows: list[list[object]] = []
    limit: float | None = None
    for size in sorted(SIZES):
        check, row = _measure(spark, size)
        limit = limit or check
        row[5] = f"{check / limit:.2f}x"
        rows.append(row)
    return [table(
        f"Delta history: the replay check and a batch write at growing histories (ms, median (min-max); check "
        f"x{CHECKS}, writes x{WRITES} alternating; limits: the check on the smallest table, a plain "
        "txnAppId/txnVersion write)",
        ["commits", "checkpoint", "commits kept", "built s", "replay check", "to limit",
         "lists / entries / reads", "plain txn write (limit)", "DeltaWriter, log checks only", "DeltaWriter"],
        rows, load_before=before, runs=WRITES)]
