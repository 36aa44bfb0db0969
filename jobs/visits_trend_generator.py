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
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_flows.apps.harness import job_parser, run_job
from spark_flows.book.datasets import VISITS_SCHEMA
from spark_flows.book.transforms import visits_per_page, visits_trend
from spark_flows.core.config import Settings
from spark_flows.core.waiting import Wait
from spark_flows.errors import SparkFlowsError
from spark_flows.flow.graph import Graph, Stage
from spark_flows.io.partitions import date_key, day_path
from spark_flows.io.sources import BadRecordsPolicy, read_json
from spark_flows.io.storage import Storage
from spark_flows.io.writers import DeltaWriter
from spark_flows.patterns.runners import SingleRunner

logger = logging.getLogger(__name__)

NAME = "visits_trend_generator"
SINGLE_RUNNER = True  # the backfill job runs it in date order, never concurrently


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once."""

    execution_date: dt.date
    input: str
    output: str
    lock_root: str
    ledger: str
    depends_on_past: bool
    wait_for_lock: Wait
    on_bad_records: BadRecordsPolicy
    lock_ttl_seconds: int
    heartbeat_seconds: int

    @classmethod
    def resolve(cls, args: argparse.Namespace, settings: Settings) -> Options:
        return cls(args.execution_date, args.input or settings.path("raw", "visits"),
                   args.output or settings.path("tables", "visits_trend"),
                   args.lock_root or settings.path("_locks"), args.ledger or settings.path("_ledger", "runs"),
                   not args.no_depends_on_past, Wait(args.wait_for_lock, 1.0), args.on_bad_records,
                   settings.lock_ttl_seconds, settings.heartbeat_seconds)


@dataclass(frozen=True)
class TrendGenerator:
    """The job's blocks: the single runner (depends on past), the day and the day before, the trend."""

    options: Options
    runner: SingleRunner
    day: Stage
    day_before: Stage
    trend: Stage
    output: Stage

    def graph(self) -> Graph:
        days = Graph.group("days", self.day.graph(), self.day_before.graph())
        return Graph.chain(NAME, self.runner.graph(), days, self.trend.graph(), self.output.graph(),
                           rules={0: self.runner.gate})

    def preflight(self) -> SparkFlowsError | None:
        return self.runner.refusal_from_files(self.options.execution_date)

    def run(self, spark: SparkSession) -> int:
        options = self.options
        day, root, output = options.execution_date, options.input, options.output
        with self.runner.run(spark, day) as run:
            before = day - dt.timedelta(days=1)
            no_history = run.first_run and not Storage(spark).exists(day_path(root, before))
            if no_history:
                logger.info("%s %s: first run and no input for %s: the trend starts from zero", NAME, day, before)
            days = [read_json(spark, day_path(root, d), VISITS_SCHEMA, on_bad_records=options.on_bad_records,
                              quarantine_path=f"{output}_bad_records/date={date_key(d)}")
                    for d in ((day,) if no_history else (day, before))]
            try:
                per_page = [parsed.frame.transform(visits_per_page) for parsed in days]
                if no_history:
                    per_page.append(spark.createDataFrame([], per_page[0].schema))
                trend = visits_trend(*per_page)
                self.day.note(status="ran")
                self.day_before.note(status="skipped" if no_history else "ran",
                                     reason="first run: compared with zero" if no_history else None)
                self.trend.note(status="ran")
                self.output.wrote(DeltaWriter(replace={"date": date_key(day)}).write(trend, output))
            finally:
                for parsed in days:
                    parsed.release()
        print(f"{NAME}: {day}: trend written")
        return 0


def plan(options: Options) -> TrendGenerator:
    """Build the job's blocks from its options."""
    return TrendGenerator(
        options,
        SingleRunner(NAME, options.lock_root, options.ledger, depends_on_past=options.depends_on_past,
                     ttl_seconds=options.lock_ttl_seconds, heartbeat_seconds=options.heartbeat_seconds,
                     wait=options.wait_for_lock),
        Stage("visits_day", "input", "visits of D"),
        Stage("visits_day_before", "input", "visits of D-1 (zero on a first run)"),
        Stage("trend", "step", "visits per page, change from D-1"),
        Stage("visits_trend", "output", "visits_trend (Delta, one partition per date)"),
    )


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
    return run_job(NAME, parser, argv, lambda args, settings: plan(Options.resolve(args, settings)))


if __name__ == "__main__":
    sys.exit(main())
