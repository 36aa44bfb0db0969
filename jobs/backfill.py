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
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

from pyspark.sql import SparkSession

from spark_flows.apps.harness import job_parser, last_error, parse_date, run_job
from spark_flows.core.backend import connect_url, master
from spark_flows.core.config import Settings
from spark_flows.core.session import remote_url
from spark_flows.core.submit import job_command
from spark_flows.errors import InputNotFoundError, JobFailedError
from spark_flows.flow.graph import Graph, note
from spark_flows.io.storage import Storage
from spark_flows.patterns.runners import concurrent_graph, require_many_driver_commits, run_concurrently, run_processes

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
    bundled = Path(__file__).resolve().parent / f"{spec}.py"
    if spec in DATED_JOBS:
        module = sys.modules.get(f"jobs.{spec}") or _from_file(spec, bundled)
    elif spec.endswith(".py") or "/" in spec:
        if not Path(spec).is_file():
            raise InputNotFoundError(f"job file {spec} does not exist", parameters={"job": spec})
        module = _from_file(Path(spec).stem, Path(spec).resolve())
    else:
        try:
            module = importlib.import_module(spec)
        except ImportError as exc:
            raise InputNotFoundError(f"cannot import job module {spec} ({exc}); give a bundled job "
                                     f"({', '.join(DATED_JOBS)}), a module path or a .py file",
                                     parameters={"job": spec}) from exc
    if not callable(getattr(module, "main", None)) or module.__file__ is None:
        raise InputNotFoundError(f"job {spec} has no main(argv) -> int to call with --execution-date",
                                 parameters={"job": spec})
    return module, module.__file__, spec in DATED_JOBS


def _from_file(name: str, path: Path) -> ModuleType:
    """Import a job file (spark-submit puts no package on the path)."""
    spec = importlib.util.spec_from_file_location(f"spark_flows_job_{name}", path)
    if spec is None or spec.loader is None:
        raise InputNotFoundError(f"cannot load job {name} from {path}", parameters={"job": name})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flow(args: argparse.Namespace, settings: Settings) -> Graph:
    """The job's flow: the concurrent runner, then one run of the job per date (or one node for all dates)."""
    job = args.job or "<--job>"
    if args.start and args.end and args.end >= args.start:
        days = [args.start + dt.timedelta(days=i) for i in range((args.end - args.start).days + 1)]
        runs = Graph.group("dates", *[Graph.single(f"date.{d.isoformat()}", "step", f"{job} {d.isoformat()}")
                                      for d in days])
    else:
        runs = Graph.single("dates", "step", f"{job} per date")
    return Graph.chain(NAME, concurrent_graph(NAME, concurrency=args.concurrency), runs,
                       rules={0: f"at most {args.concurrency} at once ({args.isolation}s)"})


def run_in_thread(module: ModuleType, argv: list[str]) -> int:
    """Run a job's ``main(argv)`` in this application; a failure carries the job's own one-line error."""
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
        try:
            args.resolved = resolve_job(args.job)
        except InputNotFoundError as exc:
            parser.error(str(exc))

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        dates = [args.start + dt.timedelta(days=i) for i in range((args.end - args.start).days + 1)]
        module, job_file, bundled = args.resolved
        concurrency = args.concurrency
        if getattr(module, "SINGLE_RUNNER", False) and concurrency > 1:
            logger.warning("%s is a Single Runner with depends-on-past: running its %d dates in order, not %d "
                           "at once", args.job, len(dates), concurrency)
            concurrency = 1
        extra = [a for a in args.job_args if a != "--"]
        common: list[str] = []
        if bundled:  # they take the harness's flags; one's own job gets only what follows `--`
            common = ["--data-root", settings.data_root, *(["--conf-file", args.conf_file] if args.conf_file else [])]
            for pair in args.spark_conf or []:
                common += ["--spark-conf", pair]
        if args.isolation == "process":
            require_many_driver_commits(spark, Storage(spark).qualify(settings.data_root), drivers=concurrency)
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
        note(NAME, status="ran" if summary.ok else "failed", concurrency=concurrency)
        for outcome in summary.results:
            note(f"date.{outcome.partition}", status="ran" if outcome.ok else "failed",
                 seconds=round(outcome.seconds, 1), reason=outcome.error)
        print(f"{NAME} {args.job} {args.start}..{args.end} (concurrency {concurrency}, {args.isolation}):")
        print(summary.table())
        return 0 if summary.ok else 1

    return run_job(NAME, parser, argv, body, validate=validate, flow=flow)


if __name__ == "__main__":
    sys.exit(main())
