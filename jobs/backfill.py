"""Concurrent Runner job: run a date-partitioned job over a date range, at most N dates at once.

    spark-submit jobs/backfill.py --job visits_cube --from 2024-01-01 --to 2024-01-08 --concurrency 4 \
        -- --mode unaligned
    spark-submit jobs/backfill.py --job my_pkg.jobs.daily --from 2024-01-01 --to 2024-01-08   # one's own job
    spark-submit jobs/backfill.py --job path/to/daily.py --from 2024-01-01 --to 2024-01-08

--job is a bundled job's name, a module path or a .py file. Any job with `main(argv) -> int` taking
`--execution-date YYYY-MM-DD` can be backfilled: it gets that flag and the arguments after `--` (bundled jobs
also get this run's --data-root, --conf-file and --spark-conf); it is a Single Runner if it sets
`SINGLE_RUNNER = True`.

Thread isolation (default) runs the dates inside this Spark application (one job group and FAIR pool per
date); --isolation process runs each date as its own spark-submit. A Single-Runner job (depends-on-past) is
never run concurrently: its dates run in order. One failed date does not stop the others (unless
--fail-fast); the summary lists every date, and the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pyspark.sql import SparkSession

from spark_flows.apps.graphs import load_job
from spark_flows.apps.harness import job_parser, last_error, parse_date, run_job
from spark_flows.core import backend
from spark_flows.core.config import Settings
from spark_flows.core.session import remote_url
from spark_flows.core.submit import job_command
from spark_flows.errors import JobFailedError
from spark_flows.flow.graph import Graph
from spark_flows.io.storage import Storage
from spark_flows.patterns.runners import ConcurrentRunner, require_many_driver_commits

NAME = "backfill"
DATED_JOBS = ("visits_cube", "visits_trend_generator", "devices_aggregator")
logger = logging.getLogger(NAME)
#: the most dates one backfill runs unless --max-dates says more: a year and a bit, a typo's guard
MAX_DATES = 400


def resolve_job(spec: str) -> tuple[ModuleType, str, bool]:
    """The job module named by ``spec`` (a bundled job's name, a module path or a ``.py`` file), its file, and
    whether it is bundled.

    Raises
    ------
    InputNotFoundError: nothing by that name, or it has no ``main(argv)``.
    """
    if spec in DATED_JOBS:
        module = sys.modules.get(f"jobs.{spec}") or load_job(str(Path(__file__).resolve().parent / f"{spec}.py"))
    else:
        module = load_job(spec)
    return module, str(module.__file__), spec in DATED_JOBS


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once (the job's module too)."""

    job: str
    module: ModuleType | None  # None only when drawn without --job
    job_file: str
    bundled: bool
    dates: tuple[dt.date, ...]
    concurrency: int
    isolation: str
    fail_fast: bool
    job_args: tuple[str, ...]  # what every date's run gets before --execution-date
    data_root: str
    settings: Settings

    @classmethod
    def resolve(cls, args: argparse.Namespace, settings: Settings) -> Options:
        module, job_file, bundled = resolve_job(args.job) if args.job else (None, "", False)
        dates: tuple[dt.date, ...] = ()
        if args.start and args.end and args.end >= args.start:
            dates = tuple(args.start + dt.timedelta(days=i) for i in range((args.end - args.start).days + 1))
        concurrency = args.concurrency
        if getattr(module, "SINGLE_RUNNER", False) and concurrency > 1:
            logger.warning("%s is a Single Runner with depends-on-past: running its %d dates in order, not %d "
                           "at once", args.job, len(dates), concurrency)
            concurrency = 1
        common: list[str] = []
        if bundled:  # they take the harness's flags; one's own job gets only what follows `--`
            common = ["--data-root", settings.data_root, *(["--conf-file", args.conf_file] if args.conf_file else [])]
            for pair in args.spark_conf or []:
                common += ["--spark-conf", pair]
        extra = [a for a in args.job_args if a != "--"]
        return cls(args.job or "<--job>", module, job_file, bundled, dates, concurrency, args.isolation,
                   args.fail_fast, (*common, *extra), settings.data_root, settings)


@dataclass(frozen=True)
class Backfill:
    """The job's block: the concurrent runner over the dates, one run of the job per date."""

    options: Options
    runner: ConcurrentRunner

    def graph(self) -> Graph:
        return Graph.of(NAME, self.runner)

    def run(self, spark: SparkSession) -> int:
        options = self.options
        if options.isolation == "process":
            settings = options.settings
            require_many_driver_commits(spark, Storage(spark).qualify(options.data_root),
                                        drivers=self.runner.concurrency)
            summary = self.runner.run_processes(lambda d: job_command(
                options.job_file, [*options.job_args, "--execution-date", d.isoformat()], settings,
                master=backend.of(spark).master(), remote=remote_url(settings) or backend.of(spark).connect_url()))
        else:
            summary = self.runner.run(spark, lambda d: run_in_thread(
                options.module, [*options.job_args, "--execution-date", d.isoformat()]))
        print(f"{NAME} {options.job} {options.dates[0]}..{options.dates[-1]} (concurrency {self.runner.concurrency}, "
              f"{options.isolation}):")
        print(summary.table())
        return 0 if summary.ok else 1


def plan(options: Options) -> Backfill:
    """Build the job's block from its options."""
    return Backfill(options, ConcurrentRunner(NAME, options.dates, options.concurrency, options.fail_fast,
                                              label=options.job))


def run_in_thread(module: ModuleType | None, argv: list[str]) -> int:
    """Run a job's ``main(argv)`` in this application; a failure carries the job's own one-line error."""
    if module is None:
        raise JobFailedError("no job to run (--job)", parameters={"exit_code": 2})
    code = int(module.main(argv))
    if code != 0:
        raise JobFailedError(last_error() or f"exit {code}", parameters={"exit_code": code})
    return code


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--job", required=True, help=f"the date-partitioned job: {', '.join(DATED_JOBS)}, a module "
                                                     "path or a .py file")
    parser.add_argument("--from", dest="start", type=parse_date, required=True, help="first date, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", type=parse_date, required=True, help="last date (inclusive)")
    parser.add_argument("--concurrency", type=int, default=2, help="dates at once (default: %(default)s)")
    parser.add_argument("--isolation", choices=["thread", "process"], default="thread")
    parser.add_argument("--fail-fast", action="store_true", help="cancel the rest when a date fails")
    parser.add_argument("--max-dates", type=int, default=MAX_DATES,
                        help="refuse a range of more dates than this, a typo's guard (default: %(default)s)")
    parser.add_argument("job_args", nargs=argparse.REMAINDER, help="after --: extra arguments for the job")

    def validate(args: argparse.Namespace) -> None:
        if args.end < args.start:
            parser.error(f"--to {args.end} is before --from {args.start}")
        if args.concurrency < 1:
            parser.error("--concurrency must be >= 1")
        dates = (args.end - args.start).days + 1
        if dates > args.max_dates:
            parser.error(f"--from {args.start} --to {args.end} is {dates} dates, more than --max-dates "
                         f"{args.max_dates}; check the range, or raise --max-dates")

    return run_job(NAME, parser, argv, lambda args, settings: plan(Options.resolve(args, settings)),
                   validate=validate)


if __name__ == "__main__":
    sys.exit(main())
