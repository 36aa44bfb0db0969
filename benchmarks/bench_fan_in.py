"""Unaligned Fan-In completeness: the book's COUNT(DISTINCT hour) over the raw rows vs spark_flows' listing,
against the cube alone; wall time and source scans from Spark's SQL metrics, on the same partial day."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from benchmarks.common import WORK, fresh, load, repeat, stopwatch, table
from spark_flows.book.samples import BOOK_MISSING_HOURS, VISITS_SCHEMA, write_visits
from spark_flows.book.transforms import visits_cube
from spark_flows.core.metrics import SparkMeter
from spark_flows.patterns.fan_in.merge import fan_in, hourly_parents, with_completeness

ROWS_PER_HOUR = int(os.environ.get("SPARK_FLOWS_BENCH_VISITS_PER_HOUR", "60000"))
DAY = dt.date(2024, 1, 1)


def run(spark: SparkSession) -> list[str]:
    before = load()
    root = fresh(WORK / "fan_in" / "visits")
    write_visits(spark, root, DAY, rows_per_hour=ROWS_PER_HOUR, missing_hours=BOOK_MISSING_HOURS)
    day_path = f"{root}/date={DAY:%Y%m%d}"

    def cube_alone(out: str) -> None:
        spark.read.schema(VISITS_SCHEMA).json(day_path).transform(visits_cube) \
            .write.format("delta").mode("overwrite").save(out)

    def book(out: str) -> None:
        visits = spark.read.schema(VISITS_SCHEMA).json(day_path)  # discovers the hour partition column
        ratio = visits.select((F.countDistinct("hour") / 24).alias("completeness_ratio"))
        visits.transform(visits_cube).crossJoin(ratio) \
            .withColumn("is_approximate", F.col("completeness_ratio") < 1) \
            .write.format("delta").mode("overwrite").save(out)

    def spark_flows(out: str) -> None:
        merged = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA,
                        track_corrupt_records=False)
        merged.frame.transform(visits_cube).transform(with_completeness, merged.completeness) \
            .write.format("delta").mode("overwrite").save(out)

    modes = [("limit: the cube alone (no completeness)", cube_alone), ("book: + COUNT(DISTINCT hour) subquery", book),
             ("spark_flows: fan_in listing + cube", spark_flows)]
    cube_alone(fresh(WORK / "fan_in" / "warm"))  # untimed warm-up
    figures = []
    for label, fn in modes:
        scanned: list[int] = []

        def once(i: int, fn: Callable[[str], None] = fn, scanned: list[int] = scanned) -> float:
            out = fresh(WORK / "fan_in" / "out")
            with SparkMeter(spark) as meter, stopwatch() as elapsed:
                fn(out)
            scanned.append(sum(r.rows for r in meter.scan.of(day_path)))
            return elapsed()
        figures.append((label, repeat(once), scanned[-1]))
    limit, limit_rows = figures[0][1], figures[0][2]
    rows = [(label, timing.cell(), timing.ratio(limit), f"{rows_read / limit_rows:.1f} ({rows_read:,} rows)")
            for label, timing, rows_read in figures]
    return [table(f"Fan-In completeness: 1 day, 19 of 24 hours x {ROWS_PER_HOUR:,} visits",
                  ["mode", "wall s", "ratio to limit", "source scans (rows read)"], rows, load_before=before)]
