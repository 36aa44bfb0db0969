"""Concurrent Runner: a backfill of 8 dates of visits_cube at concurrency 1, 2 and 4 in one application."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os

from pyspark.sql import SparkSession

from benchmarks.common import WORK, Timing, fresh, load, repeat, stopwatch, table
from jobs import visits_cube
from spark_flows.book.samples import write_visits
from spark_flows.patterns.runners import run_concurrently

DATES = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(8)]
ROWS_PER_HOUR = int(os.environ.get("SPARK_FLOWS_BENCH_BACKFILL_PER_HOUR", "2000"))


def run(spark: SparkSession) -> list[str]:
    before = load()
    logging.getLogger("spark_flows").setLevel(logging.WARNING)
    source = fresh(WORK / "runners" / "visits")
    for day in DATES:
        write_visits(spark, source, day, rows_per_hour=ROWS_PER_HOUR)

    def backfill(root: str, concurrency: int, dates: list[dt.date] = DATES) -> float:
        def one(day: dt.date) -> int:
            return visits_cube.main(["--input", source, "--data-root", root, "--execution-date", day.isoformat(),
                                     "--log-level", "WARNING"])
        with stopwatch() as elapsed:
            summary = run_concurrently(spark, one, dates, concurrency=concurrency, name=f"bench-c{concurrency}")
        assert summary.ok, summary.table()
        return elapsed()

    backfill(fresh(WORK / "runners" / "warm"), 2)  # untimed warm-up
    def alone(i: int) -> float:
        return backfill(fresh(WORK / "runners" / "one"), 1, DATES[:1])

    one_date = repeat(alone)
    cores = spark.sparkContext.defaultParallelism
    rows = []
    for c in (1, 2, 4):
        timing = repeat(functools.partial(lambda i, c: backfill(fresh(WORK / "runners" / f"c{c}"), c), c=c))
        limit = Timing(tuple(r * len(DATES) / min(c, cores) for r in one_date.runs))
        rows.append((f"concurrency {c}", timing.cell(), limit.cell(), timing.ratio(limit),
                     f"{timing.median / len(DATES):.2f}"))
    return [table(f"Concurrent Runner: backfill of {len(DATES)} dates of visits_cube "
                  f"({ROWS_PER_HOUR * 24:,} visits/day), one application, local[{cores}]",
                  ["mode", "wall s", "limit: 1 date x dates / min(c, cores)", "ratio to limit", "s per date"], rows,
                  load_before=before,
                  note=f"one date alone: {one_date.cell()} s")]
