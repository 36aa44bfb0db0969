"""Single Runner job (the book's Example 6-21): compare a day's visits per page with the previous day's.

    spark-submit jobs/visits_trend_generator.py --execution-date 2024-01-02

At most one run at a time (a run lock on the data root's filesystem; a dead run's lock is taken over after
its TTL), and depends-on-past: the run for D starts only if D-1 succeeded (or no earlier date ever ran).
Every run is recorded in the run ledger (`spark-flows runs visits_trend_generator`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flows.config import Settings
from spark_flows.job import job_parser, run_job
from spark_flows.runners import RunLedger, single_run
from spark_flows.samples import VISITS_SCHEMA
from spark_flows.sources import require_input
from spark_flows.transforms import visits_per_page, visits_trend
from spark_flows.writers import retry_on_conflict

NAME = "visits_trend_generator"
SINGLE_RUNNER = True  # the backfill job runs it in date order, never concurrently


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0], dated=True)
    parser.add_argument("--input", help="visits root with date=YYYYMMDD/hour=HH (default: <data-root>/raw/visits)")
    parser.add_argument("--output", help="default: <data-root>/tables/visits_trend")
    parser.add_argument("--lock-root", help="default: <data-root>/_locks")
    parser.add_argument("--ledger", help="run ledger Delta table (default: <data-root>/_ledger/runs)")
    parser.add_argument("--no-depends-on-past", action="store_true", help="do not require D-1 to have succeeded")
    parser.add_argument("--wait-for-lock", type=float, default=0.0, help="seconds to wait for a live holder")

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        day: dt.date = args.execution_date
        root = args.input or settings.path("raw", "visits")
        ledger = RunLedger(spark, args.ledger or settings.path("_ledger", "runs"))
        with single_run(spark, NAME, day, lock_root=args.lock_root or settings.path("_locks"), ledger=ledger,
                        depends_on_past=not args.no_depends_on_past, ttl_seconds=settings.lock_ttl_seconds,
                        heartbeat_seconds=settings.heartbeat_seconds, wait_timeout=args.wait_for_lock):
            frames = []
            for d in (day, day - dt.timedelta(days=1)):
                path = f"{root}/date={d:%Y%m%d}"
                require_input(spark, path, hint=f"the trend for {day} needs visits of {d}")
                frames.append(spark.read.schema(VISITS_SCHEMA).json(path).transform(visits_per_page))
            trend = visits_trend(*frames).withColumn("date", F.lit(f"{day:%Y%m%d}"))
            retry_on_conflict(lambda: trend.write.format("delta").mode("overwrite")
                              .option("replaceWhere", f"date = '{day:%Y%m%d}'").partitionBy("date")
                              .save(args.output or settings.path("tables", "visits_trend")), what=NAME)
        print(f"{NAME}: {day}: trend written")
        return 0

    return run_job(NAME, parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
