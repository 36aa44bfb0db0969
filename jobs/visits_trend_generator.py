"""Single Runner job (the book's Example 6-21): compare a day's visits per page with the previous day's.

    spark-submit jobs/visits_trend_generator.py --execution-date 2024-01-02

At most one run at a time (a run lock on the data root's filesystem; a dead run's lock is taken over after
its TTL), and depends-on-past: the run for D starts only if D-1 succeeded (or no earlier date ever ran).
The first run of the job, with no history, may lack D-1's input: its trend compares with zero visits.
Every run, and every refusal, is recorded in the run ledger (`spark-flows runs visits_trend_generator`).
Malformed input lines fail the run naming the files (or are set aside with --on-bad-records quarantine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from pyspark.sql import SparkSession

from spark_flows.apps.harness import job_parser, run_job
from spark_flows.book.datasets import VISITS_SCHEMA
from spark_flows.book.transforms import visits_per_page, visits_trend
from spark_flows.core.config import Settings
from spark_flows.errors import SparkFlowsError
from spark_flows.flow.graph import Graph, note
from spark_flows.flow.render import note_write
from spark_flows.io.partitions import date_key, day_path
from spark_flows.io.sources import read_json
from spark_flows.io.storage import Storage
from spark_flows.io.writers import DeltaWriter
from spark_flows.patterns.runners import RunLedger, refusal_from_files, single_run, single_run_graph

logger = logging.getLogger(__name__)

NAME = "visits_trend_generator"
SINGLE_RUNNER = True  # the backfill job runs it in date order, never concurrently


def flow(args: argparse.Namespace, settings: Settings) -> Graph:
    """The job's flow: the single runner (depends on past), the day and the day before, the trend."""
    days = Graph.group("days", Graph.single("visits_day", "input", "visits of D"),
                       Graph.single("visits_day_before", "input", "visits of D-1 (zero on a first run)"))
    return Graph.chain(NAME, single_run_graph(NAME, depends_on_past=not args.no_depends_on_past), days,
                       Graph.single("trend", "step", "visits per page, change from D-1"),
                       Graph.single("visits_trend", "output", "visits_trend (Delta, one partition per date)"),
                       rules={0: "D-1 succeeded" if not args.no_depends_on_past else "lock held"})


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0], dated=True)
    parser.add_argument("--input", help="visits root with date=YYYYMMDD/hour=HH (default: <data-root>/raw/visits)")
    parser.add_argument("--output", help="default: <data-root>/tables/visits_trend")
    parser.add_argument("--lock-root", help="default: <data-root>/_locks")
    parser.add_argument("--ledger", help="run ledger Delta table (default: <data-root>/_ledger/runs)")
    parser.add_argument("--no-depends-on-past", action="store_true", help="do not require D-1 to have succeeded")
    parser.add_argument("--wait-for-lock", type=float, default=0.0, help="seconds to wait for a live holder")
    parser.add_argument("--on-bad-records", choices=["fail", "quarantine"], default="fail",
                        help="fail naming the files (default) or set malformed lines aside")

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        day: dt.date = args.execution_date
        root = args.input or settings.path("raw", "visits")
        output = args.output or settings.path("tables", "visits_trend")
        ledger = RunLedger(spark, args.ledger or settings.path("_ledger", "runs"))
        with single_run(spark, NAME, day, lock_root=args.lock_root or settings.path("_locks"), ledger=ledger,
                        depends_on_past=not args.no_depends_on_past, ttl_seconds=settings.lock_ttl_seconds,
                        heartbeat_seconds=settings.heartbeat_seconds, wait_timeout=args.wait_for_lock) as run:
            before = day - dt.timedelta(days=1)
            no_history = run.first_run and not Storage(spark).exists(day_path(root, before))
            if no_history:
                logger.info("%s %s: first run and no input for %s: the trend starts from zero", NAME, day, before)
            days = [read_json(spark, day_path(root, d), VISITS_SCHEMA, on_bad_records=args.on_bad_records,
                              quarantine_path=f"{output}_bad_records/date={date_key(d)}")
                    for d in ((day,) if no_history else (day, before))]
            try:
                per_page = [parsed.frame.transform(visits_per_page) for parsed in days]
                if no_history:
                    per_page.append(spark.createDataFrame([], per_page[0].schema))
                trend = visits_trend(*per_page)
                note("visits_day", status="ran")
                note("visits_day_before", status="skipped" if no_history else "ran",
                     reason="first run: compared with zero" if no_history else None)
                note("trend", status="ran")
                note_write("visits_trend", DeltaWriter(replace={"date": date_key(day)}).write(trend, output))
            finally:
                for parsed in days:
                    parsed.release()
        print(f"{NAME}: {day}: trend written")
        return 0

    def preflight(args: argparse.Namespace, settings: Settings) -> SparkFlowsError | None:
        return refusal_from_files(NAME, args.execution_date, lock_root=args.lock_root or settings.path("_locks"),
                                  ledger_path=args.ledger or settings.path("_ledger", "runs"),
                                  depends_on_past=not args.no_depends_on_past, wait_timeout=args.wait_for_lock)

    return run_job(NAME, parser, argv, body, flow=flow, preflight=preflight)


if __name__ == "__main__":
    sys.exit(main())
