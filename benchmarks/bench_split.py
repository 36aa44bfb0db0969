"""Parallel Split: naive (no persist, sequential) vs the book (persist, sequential) vs spark_flows
(persist, concurrent branches); source scans from Spark's SQL metrics; then a replay of the same batch."""

from __future__ import annotations

import os

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from benchmarks.common import WORK, Timing, data_files, fresh, load, repeat, stopwatch, table
from spark_flows.book.samples import DEVICES_SCHEMA, write_devices
from spark_flows.book.transforms import enrich_devices, with_loading_time
from spark_flows.core.metrics import SparkMeter
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter
from spark_flows.patterns.split import split, write_branch

ROWS = int(os.environ.get("SPARK_FLOWS_BENCH_DEVICES", "3000000"))


def _branches(out: str, batch: Batch) -> list:
    return [
        write_branch("devices", DeltaWriter(), f"{out}/devices", batch=batch),
        write_branch("enriched", DeltaWriter(), f"{out}/enriched", batch=batch,
                     transform=lambda df: df.transform(enrich_devices).transform(with_loading_time)),
        write_branch("csv", CsvWriter(), f"{out}/csv", batch=batch),
    ]


def run(spark: SparkSession) -> list[str]:
    before = load()
    source = fresh(WORK / "split" / "devices_gz")
    write_devices(spark, source, rows=ROWS, files=8, compression="gzip")

    def read() -> DataFrame:
        return spark.read.schema(DEVICES_SCHEMA).json(source)

    # untimed warm-up (JIT, codegen, Delta's first commit) so mode a does not pay it alone
    warm = fresh(WORK / "split" / "warm")
    split(read().limit(50_000), _branches(warm, Batch("warm", 1)), concurrency=3).raise_for_failures()

    def limit_once(i: int) -> float:
        """One scan filling the cache, then each branch's write from the filled cache, alone: what no
        scheduling removes."""
        cached = read().persist(StorageLevel.MEMORY_AND_DISK)
        try:
            with stopwatch() as scan:
                cached.count()
            total = scan()
            for each in _branches(fresh(WORK / "split" / "limit"), Batch("bench", 1)):
                with stopwatch() as write:
                    each.run(cached)
                total += write()
        finally:
            cached.unpersist(blocking=True)
        return total

    scans: dict[str, int] = {}

    def mode(label: str, level: StorageLevel | None, concurrency: int) -> Timing:
        def once(i: int) -> float:
            out = fresh(WORK / "split" / label[0])
            with SparkMeter(spark, all_threads=True) as meter, stopwatch() as elapsed:
                outcome = split(read(), _branches(out, Batch("bench", 1)), storage_level=level,
                                concurrency=concurrency)
            outcome.raise_for_failures()
            scans[label] = len(meter.scan.of(source))
            return elapsed()
        return repeat(once)

    limit = repeat(limit_once)
    modes = [(label, mode(label, level, concurrency)) for label, level, concurrency in [
        ("a naive: no persist, sequential", None, 1),
        ("b book: persist, sequential", StorageLevel.MEMORY_AND_DISK, 1),
        ("c spark_flows: persist, 3 concurrent", StorageLevel.MEMORY_AND_DISK, 3),
    ]]
    naive = modes[0][1]
    rows: list[tuple[object, ...]] = [
        ("limit: 1 scan into the cache + each branch alone", limit.cell(), "1.00x", limit.ratio(naive), 1)]
    rows += [(label, t.cell(), t.ratio(limit), t.ratio(naive), scans[label]) for label, t in modes]

    out = str(WORK / "split" / "c")  # the last run of c: replay its batch
    files = data_files(out)
    with SparkMeter(spark, all_threads=True) as meter, stopwatch() as elapsed:
        replay = split(read, _branches(out, Batch("bench", 1)), concurrency=3)
    assert all(b.skipped for b in replay.outcomes), replay
    rows.append(("c replay of batch 1 (1 run)", f"{elapsed():.2f}", "-", "-",
                 f"{len(meter.scan.of(source))} (files added: {data_files(out) - files})"))
    return [table(f"Parallel Split: {ROWS:,} devices, gzip JSON, 3 branches (2 Delta, 1 CSV), local[2]",
                  ["mode", "wall s", "ratio to limit", "ratio to a", "source scans"], rows, load_before=before)]
