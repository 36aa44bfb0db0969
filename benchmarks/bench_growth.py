"""Growth: the Parallel Split (spark_flows: persist + 3 concurrent branches) and the Fan-In (fan_in listing +
cube) at 1x, 4x and 16x their data, in time per million rows (target: flat within 1.2x), with the persisted
input's size in memory and on disk and what the run spilled (from Spark's status store)."""

from __future__ import annotations

import datetime as dt
import os

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from benchmarks.bench_split import _branches
from benchmarks.common import WORK, fresh, load, repeat, stopwatch, table
from spark_flows.book.samples import BOOK_MISSING_HOURS, DEVICES_SCHEMA, VISITS_SCHEMA, write_devices, write_visits
from spark_flows.book.transforms import visits_cube
from spark_flows.io.writers import Batch
from spark_flows.patterns.fan_in.merge import fan_in, hourly_parents, with_completeness
from spark_flows.patterns.split import branch, split

FACTORS = tuple(int(f) for f in os.environ.get("SPARK_FLOWS_BENCH_GROWTH", "1,4,16").split(","))
DEVICES = int(os.environ.get("SPARK_FLOWS_BENCH_GROWTH_DEVICES", "1000000"))
VISITS_PER_HOUR = int(os.environ.get("SPARK_FLOWS_BENCH_GROWTH_VISITS_PER_HOUR", "50000"))
REPEATS = int(os.environ.get("SPARK_FLOWS_BENCH_GROWTH_REPEATS", "1"))
DAY = dt.date(2024, 1, 1)
MB = 1024 * 1024


def _spilled(spark: SparkSession) -> tuple[int, int]:
    """Bytes spilled to memory and to disk by every stage of the application so far."""
    sc = spark.sparkContext
    jvm, empty = sc._jvm, sc._jvm.java.util.ArrayList()  # type: ignore[union-attr]
    # stageList(statuses, details, withSummaries, unsortedQuantiles, taskStatus): Scala's defaults, spelt out
    stages = sc._jsc.sc().statusStore().stageList(empty, False, False, sc._gateway.new_array(jvm.double, 0), empty)
    found = [stages.apply(i) for i in range(stages.size())]
    return sum(s.memoryBytesSpilled() for s in found), sum(s.diskBytesSpilled() for s in found)


def _cached(spark: SparkSession) -> tuple[int, int]:
    """Bytes of every persisted RDD, in memory and on disk."""
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()  # type: ignore[union-attr]
    return sum(i.memSize() for i in infos), sum(i.diskSize() for i in infos)


def _row(label: str, rows: int, seconds: float, base: float | None, cached: tuple[int, int] | None,
         spill: tuple[int, int]) -> tuple[object, ...]:
    per_million = seconds / (rows / 1e6)
    return (label, f"{rows:,}", f"{seconds:.1f}", f"{per_million:.2f}",
            f"{per_million / base:.2f}x" if base else "1.00x",
            f"{cached[0] / MB:,.1f} / {cached[1] / MB:,.1f}" if cached else "-",
            f"{spill[0] / MB:,.1f} / {spill[1] / MB:,.1f}")


def run(spark: SparkSession) -> list[str]:
    before = load()
    split_rows: list[tuple[object, ...]] = []
    base: float | None = None
    for factor in FACTORS:
        rows = DEVICES * factor
        source = fresh(WORK / "growth" / "devices")
        write_devices(spark, source, rows=rows, files=8 * factor, compression="gzip")
        seen: dict[str, tuple[int, int]] = {}

        def probe(df: DataFrame, seen: dict[str, tuple[int, int]] = seen) -> None:
            seen["cached"] = _cached(spark)  # runs once the split filled its cache: what the cache holds

        def once(i: int, source: str = source, seen: dict[str, tuple[int, int]] = seen) -> float:
            out = fresh(WORK / "growth" / "split")
            branches = [*_branches(out, Batch("growth", 1)), branch("probe", probe)]
            spilled = _spilled(spark)
            with stopwatch() as elapsed:
                split(spark.read.schema(DEVICES_SCHEMA).json(source), branches,
                      storage_level=StorageLevel.MEMORY_AND_DISK, concurrency=3).raise_for_failures()
            after = _spilled(spark)
            seen["spill"] = (after[0] - spilled[0], after[1] - spilled[1])
            return elapsed()
        if base is None:
            once(-1)  # untimed warm-up (JIT, codegen, Delta's first commits) on the smallest size
        seconds = repeat(once, REPEATS).median
        split_rows.append(_row(f"split {factor}x", rows, seconds, base, seen["cached"], seen["spill"]))
        base = base or seconds / (rows / 1e6)

    fan_rows: list[tuple[object, ...]] = []
    base = None
    for factor in FACTORS:
        root = fresh(WORK / "growth" / "visits")
        write_visits(spark, root, DAY, rows_per_hour=VISITS_PER_HOUR * factor, missing_hours=BOOK_MISSING_HOURS)
        rows = VISITS_PER_HOUR * factor * (24 - len(BOOK_MISSING_HOURS))
        spill: dict[str, tuple[int, int]] = {}

        def cube(i: int, root: str = root, spill: dict[str, tuple[int, int]] = spill) -> float:
            spilled = _spilled(spark)
            with stopwatch() as elapsed:
                merged = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA)
                merged.frame.transform(visits_cube).transform(with_completeness, merged.completeness) \
                    .write.format("delta").mode("overwrite").save(fresh(WORK / "growth" / "cube"))
            after = _spilled(spark)
            spill["run"] = (after[0] - spilled[0], after[1] - spilled[1])
            return elapsed()
        if base is None:
            cube(-1)  # untimed warm-up
        seconds = repeat(cube, REPEATS).median
        fan_rows.append(_row(f"fan-in {factor}x", rows, seconds, base, None, spill["run"]))
        base = base or seconds / (rows / 1e6)
    header = ["mode", "rows", "wall s", "s per M rows", "per row vs 1x", "cached MB (mem / disk)",
              "spilled MB (mem / disk)"]
    return [table(f"Growth: split (persist + 3 concurrent) and fan-in (unaligned + cube) at {FACTORS}x, "
                  f"{REPEATS} run(s) each, local[2], driver 6g", header, [*split_rows, *fan_rows],
                  load_before=before, runs=REPEATS,
                  note="target: time per row flat within 1.2x from 1x to the largest")]
