"""Concurrent Runner: a backfill of 8 dates of visits_cube at concurrency 1, 2 and 4 in one application."""

from __future__ import annotations

import datetime as dt
import logging
import os

from pyspark.sql import SparkSession

from benchmarks.common import WORK, fresh, stopwatch, table
from jobs import visits_cube
from spark_flows.runners import run_concurrently
from spark_flows.samples import write_visits

DATES = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(8)]
ROWS_PER_HOUR = int(os.environ.get("SPARK_FLOWS_BENCH_BACKFILL_PER_HOUR", "2000"))


def run(spark: SparkSession) -> list[str]:
    logging.getLogger("spark_flows").setLevel(logging.WARNING)
    source = fresh(WORK / "runners" / "visits")
    for day in DATES:
        write_visits(spark, source, day, rows_per_hour=ROWS_PER_HOUR)

    def backfill(root: str, concurrency: int) -> float:
        def one(day: dt.date) -> int:
            return visits_cube.main(["--input", source, "--data-root", root, "--execution-date", day.isoformat(),
                                     "--log-level", "WARNING"])
        with stopwatch() as elapsed:
            summary = run_concurrently(spark, one, DATES, concurrency=concurrency, name=f"bench-c{concurrency}")
        assert summary.ok, summary.table()
        return elapsed()

    backfill(fresh(WORK / "runners" / "warm"), 2)  # untimed warm-up
    figures = [(c, backfill(fresh(WORK / "runners" / f"c{c}"), c)) for c in (1, 2, 4)]
    base = figures[0][1]
    rows = [(f"concurrency {c}", f"{secs:.1f}", f"{secs / base:.2f}x", f"{secs / len(DATES):.2f}")
            for c, secs in figures]
    return [table(f"Concurrent Runner: backfill of {len(DATES)} dates of visits_cube "
                  f"({ROWS_PER_HOUR * 24:,} visits/day), one application, local[2]",
                  ["mode", "wall s", "ratio to concurrency 1", "s per date"], rows)]
