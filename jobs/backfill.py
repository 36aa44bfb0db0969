"""Concurrent Runner job: run a bundled date-partitioned job over a date range, at most N at once.

    spark-submit jobs/backfill.py --job visits_cube --from 2024-01-01 --to 2024-01-08 --concurrency 4 \
        -- --mode unaligned

Thread isolation (default) runs the dates inside this Spark application (one job group and FAIR pool per
date); --isolation process runs each date as its own spark-submit. A Single-Runner job (depends-on-past) is
never run concurrently: its dates run in order. One failed date does not stop the others (unless
--fail-fast); the summary lists every date, and the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

from pyspark.sql import SparkSession

from spark_flows.backend import connect_url, master
from spark_flows.config import Settings
from spark_flows.errors import InputNotFoundError, JobFailedError
from spark_flows.job import job_parser, last_error, parse_date, run_job
from spark_flows.runners import run_concurrently, run_processes
from spark_flows.session import remote_url
from spark_flows.submit import job_command

NAME = "backfill"
DATED_JOBS = ("visits_cube", "visits_trend_generator", "devices_aggregator")
logger = logging.getLogger(NAME)


def load_job(name: str) -> ModuleType:
    """Import the bundled job ``jobs/<name>.py`` beside this file (spark-submit puts no package on the path)."""
    cached = sys.modules.get(f"jobs.{name}")
    if cached is not None:
        return cached
    spec = importlib.util.spec_from_file_location(f"spark_flows_job_{name}", Path(__file__).resolve().parent /
                                                  f"{name}.py")
    if spec is None or spec.loader is None:
        raise InputNotFoundError(f"cannot load job {name} from {Path(__file__).resolve().parent}",
                                 parameters={"job": name})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_thread(module: ModuleType, argv: list[str]) -> int:
    """Run a job's ``main(argv)`` in this application; a failure carries the job's own one-line error."""
    code = int(module.main(argv))
    if code != 0:
        raise JobFailedError(last_error() or f"exit {code}", parameters={"exit_code": code})
    return code


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--job", required=True, choices=DATED_JOBS, help="the date-partitioned job to run")
    parser.add_argument("--from", dest="start", type=parse_date, required=True, help="first date, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", type=parse_date, required=True, help="last date (inclusive)")
    parser.add_argument("--concurrency", type=int, default=2, help="dates at once (default: %(default)s)")
    parser.add_argument("--isolation", choices=["thread", "process"], default="thread")
    parser.add_argument("--fail-fast", action="store_true", help="cancel the rest when a date fails")
    parser.add_argument("job_args", nargs=argparse.REMAINDER, help="after --: extra arguments for the job")

    def validate(args: argparse.Namespace) -> None:
        if args.end < args.start:
            parser.error(f"--to {args.end} is before --from {args.start}")
        if args.concurrency < 1:
            parser.error("--concurrency must be >= 1")

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        dates = [args.start + dt.timedelta(days=i) for i in range((args.end - args.start).days + 1)]
        module = load_job(args.job)
        concurrency = args.concurrency
        if getattr(module, "SINGLE_RUNNER", False) and concurrency > 1:
            logger.warning("%s is a Single Runner with depends-on-past: running its %d dates in order, not %d "
                           "at once", args.job, len(dates), concurrency)
            concurrency = 1
        extra = [a for a in args.job_args if a != "--"]
        common = ["--data-root", settings.data_root, *(["--conf-file", args.conf_file] if args.conf_file else [])]
        for pair in args.spark_conf or []:
            common += ["--spark-conf", pair]
        if args.isolation == "process":
            job_file = str(Path(__file__).resolve().parent / f"{args.job}.py")
            commands = [(d.isoformat(), job_command(job_file, [*common, *extra, "--execution-date", d.isoformat()],
                                                    settings, master=master(spark),
                                                    remote=remote_url(settings) or connect_url(spark)))
                        for d in dates]
            summary = run_processes(commands, concurrency=concurrency, name=f"{NAME} {args.job}",
                                    fail_fast=args.fail_fast)
        else:
            summary = run_concurrently(
                spark, lambda d: run_in_thread(module, [*common, *extra, "--execution-date", d.isoformat()]), dates,
                concurrency=concurrency, name=f"{NAME}-{args.job}", fail_fast=args.fail_fast)
        print(f"{NAME} {args.job} {args.start}..{args.end} (concurrency {concurrency}, {args.isolation}):")
        print(summary.table())
        return 0 if summary.ok else 1

    return run_job(NAME, parser, argv, body, validate=validate)


if __name__ == "__main__":
    sys.exit(main())
