"""The harness every bundled job runs in: arguments, configuration, logging, session, exit codes.

A job file stays thin: it builds a parser with :func:`job_parser`, adds its own flags, and hands
:func:`run_job` a ``build(args, settings)`` that resolves the flags and settings once into the job's
:class:`JobPlan`: a value holding the blocks the job runs, whose ``graph()`` draws them (``--graph``, and
the run's flow file) and whose ``run(spark)`` runs them, so what is drawn is what runs. A ``validate(args)``
checks flag combinations before Spark starts. Exit codes follow DESIGN.md: 0 success, 2 usage error (bad
flag, unreadable conf file, bad date), 1 with a one-line reason on stderr otherwise (also under
``spark-submit``).

Example
-------
>>> from dataclasses import dataclass
>>> from spark_flows.flow.graph import Stage
>>> @dataclass(frozen=True)
... class CountRows:
...     rows: Stage
...     def graph(self): return Graph.of("count", self.rows)
...     def run(self, spark): return spark.range(int(self.rows.label)).count() - 3
>>> def main(argv=None):
...     parser = job_parser("my_job", "Count rows.")
...     parser.add_argument("--rows", type=int, default=3)
...     return run_job("my_job", parser, argv, lambda args, settings: CountRows(Stage("rows", "step", str(args.rows))))
>>> main(["--rows", "3"]), main(["--rows", "5"])
(0, 2)
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn, Protocol

from pyspark.sql import SparkSession

from spark_flows.apps.graphs import requested
from spark_flows.core import backend
from spark_flows.core.backend import driver_stderr
from spark_flows.core.config import Settings, load_settings, parse_key_values
from spark_flows.core.progress import configure_logging, enable_progress
from spark_flows.core.session import job_session, launched_by_spark_submit
from spark_flows.errors import ConfigError, EventDeliveryError, InvalidFlagError, SparkFlowsError, error_summary
from spark_flows.events.emit import Emitter
from spark_flows.flow import render
from spark_flows.flow.graph import FlowRun, Graph, recording
from spark_flows.io.storage import Storage, local_storage

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class JobPlan(Protocol):
    """A job's blocks, built once from its options: :meth:`graph` draws them, :meth:`run` runs them.

    A plan may also offer ``preflight() -> SparkFlowsError | int | None``: what files alone settle before
    Spark starts (see :func:`run_job`).
    """

    def graph(self) -> Graph | None:
        """The job's flow (``None``: the job draws none)."""
        ...

    def run(self, spark: SparkSession) -> int | None:
        """Run the blocks; the exit code (``None``: 0)."""
        ...


Build = Callable[[argparse.Namespace, Settings], JobPlan]
Validate = Callable[[argparse.Namespace], None]


def parse_date(text: str) -> dt.date:
    """``argparse`` type for ``YYYY-MM-DD`` dates, with a message naming the expected form."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidFlagError(f"invalid date {text!r}: expected YYYY-MM-DD") from None


class JobArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage error is the job's one error line, on the stderr the user sees
    (also under ``spark-submit``, which merges the Python driver's stderr into its stdout)."""

    def error(self, message: str) -> NoReturn:
        report_error(f"{self.prog}: error: {message} (see --help)")
        self.exit(EXIT_USAGE)


def job_parser(name: str, description: str, *, dated: bool = False) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the flags every bundled job shares.

    ``--conf-file`` (default: the embedded ``local.toml``), ``--master``, ``--data-root``, repeated
    ``--spark-conf KEY=VALUE`` and ``--log-level``; with ``dated``, a required ``--execution-date``.
    """
    parser = JobArgumentParser(prog=name, description=description)
    common = parser.add_argument_group("common options")
    common.add_argument("--conf-file", help="TOML configuration (default: the embedded local.toml)")
    common.add_argument("--master", help="Spark master when not given by spark-submit (overrides the conf)")
    common.add_argument("--remote", metavar="sc://HOST:PORT",
                        help="run against this Spark Connect server instead (default: $SPARK_REMOTE, if set); "
                             "start the job with python, not spark-submit")
    common.add_argument("--data-root", help="root of the job's default input and output paths")
    common.add_argument(
        "--spark-conf", action="append", metavar="KEY=VALUE", help="extra Spark configuration, repeatable"
    )
    common.add_argument("--s3-endpoint", metavar="URL",
                        help="an S3-compatible server for s3a:// paths (http://host:port); implies S3A")
    common.add_argument("--s3-path-style", action="store_true", default=None,
                        help="path-style S3 requests (endpoint/bucket/key), as most S3-compatible servers want")
    common.add_argument("--s3-region", help="the S3 signing region")
    common.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="spark_flows' log level (Spark's own log is fatal errors only, INFO with DEBUG)")
    common.add_argument("--progress", type=float, nargs="?", const=30.0, default=None, metavar="SECONDS",
                        help="a line every SECONDS (default 30) naming the Spark jobs still running")
    common.add_argument("--graph", choices=render.FORMATS, metavar="FORMAT",
                        help="print the job's flow for these arguments (mermaid, dot or json) and exit, without "
                             "starting Spark; required flags may be left out")
    if dated:
        common.add_argument(
            "--execution-date", type=parse_date, required=True, help="logical date of the run, YYYY-MM-DD"
        )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load the conf file named by ``args`` and apply the common flag overrides."""
    return load_settings(
        args.conf_file,
        overrides={
            "master": args.master,
            "remote": args.remote,
            "data_root": args.data_root,
            "spark_conf": parse_key_values(args.spark_conf) or None,
            "s3_endpoint": getattr(args, "s3_endpoint", None),
            "s3_path_style": getattr(args, "s3_path_style", None),
            "s3_region": getattr(args, "s3_region", None),
        },
    )


_last = threading.local()


def last_error() -> str | None:
    """The one-line error of the last job that failed in this thread (for runners calling ``main()``)."""
    return getattr(_last, "error", None)


def report_error(line: str) -> None:
    """Print a job's one error line where its user looks: stderr, also under ``spark-submit`` (whose
    Python driver's stderr is merged into stdout), and remember it for :func:`last_error`."""
    _last.error = line
    if not (launched_by_spark_submit() and driver_stderr(line)):
        print(line, file=sys.stderr, flush=True)


def _relax(parser: argparse.ArgumentParser) -> None:
    """Make every flag optional: a flow is drawn for whatever arguments are given."""
    for action in parser._actions:
        action.required = False
    for group in parser._mutually_exclusive_groups:
        group.required = False


def _flow_stamp(args: argparse.Namespace) -> str:
    day = getattr(args, "execution_date", None)
    if isinstance(day, dt.date):
        return day.isoformat()
    return dt.datetime.now(dt.timezone.utc).strftime("run-%Y%m%dT%H%M%S%fZ")


def run_job(name: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None, build: Build, *,
            validate: Validate | None = None) -> int:
    """Parse ``argv``, validate it, load settings, build the job's plan once, open a session and run it; map
    outcomes to exit codes.

    ``validate(args)`` checks flag combinations before Spark starts; it calls ``parser.error(...)`` (exit 2)
    for a bad one. ``build(args, settings)`` gives the :class:`JobPlan`; its ``graph()`` is the job's
    :class:`~spark_flows.flow.graph.Graph`, drawn from the blocks it runs: ``--graph FORMAT`` prints it
    without starting Spark, and every run writes it annotated with what happened to
    ``<data-root>/_flows/<name>/<execution date or run time>.json`` (and ``.mmd``), also when the run fails.
    The plan's ``preflight()``, if it has one, settles before Spark starts what files alone can tell: a
    refusal it returns (a held lock, depends-on-past:
    :meth:`~spark_flows.patterns.runners.SingleRunner.refusal_from_files`) is the job's error, an exit code it
    returns (a replay whose outputs hold the batch: :meth:`~spark_flows.patterns.split.Split.replayed`) the
    job's outcome, and no session is started; ``None`` lets the run go on. An error in ``preflight`` itself
    only leaves the decision to the run (logged at DEBUG).
    """
    _last.error = None
    arguments = list(argv) if argv is not None else sys.argv[1:]
    drawing = "--graph" in arguments or any(a.startswith("--graph=") for a in arguments)
    if drawing:
        _relax(parser)
    try:
        args = parser.parse_args(arguments)
        if validate is not None and not drawing:
            validate(args)
    except SystemExit as exc:  # argparse already printed usage and the reason
        code = int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
        if code and _last.error is None:
            _last.error = f"{name}: error: bad arguments (exit {code})"
        return code
    configure_logging(args.log_level)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        report_error(f"{name}: error: {exc}")
        return EXIT_USAGE
    try:
        plan = build(args, settings)
    except SparkFlowsError as exc:  # options that only the settings make wrong (a path, a combination)
        report_error(f"{name}: error: {error_summary(exc)}")
        return EXIT_USAGE
    declared = plan.graph()
    if drawing:
        return _draw(name, declared, args.graph)
    try:
        events = Emitter(name)
        events.start()
    except SparkFlowsError as exc:  # an unknown sink or its package missing (2); strict delivery that failed (1)
        report_error(f"{name}: error: {error_summary(exc)}")
        return EXIT_FAILED if isinstance(exc, EventDeliveryError) else EXIT_USAGE
    preflight = getattr(plan, "preflight", None)
    if preflight is not None and (settled := _settled_early(name, preflight, args, settings, declared,
                                                            events)) is not None:
        return settled
    run: FlowRun | None = None
    try:
        with job_session(settings) as spark:
            backend.of(spark).quiet(debug=args.log_level == "DEBUG")
            stop = enable_progress(args.log_level, spark=spark, every=args.progress) if args.progress else None
            try:
                with recording() as run:
                    try:
                        result = plan.run(spark)
                    finally:
                        if declared is not None:
                            _write_flow(Storage(spark), settings.path("_flows", name), _flow_stamp(args), declared,
                                        run)
            finally:
                if stop is not None:
                    stop()
        events.finish(run)
    except Exception as exc:
        logger.debug("%s failed", name, exc_info=True)
        if not isinstance(exc, EventDeliveryError):
            events.finish(run, exc)
        report_error(f"{name}: error: {error_summary(exc)}")
        return EXIT_FAILED
    return EXIT_OK if result is None else int(result)


def _settled_early(name: str, preflight: Callable[[], SparkFlowsError | int | None], args: argparse.Namespace,
                   settings: Settings, declared: Graph | None, events: Emitter) -> int | None:
    """The exit code of what ``preflight`` settled without Spark (a refusal reported, the flow written, the
    run's events sent), or None."""
    with recording() as run:
        try:
            settled = preflight()
        except Exception as exc:
            logger.debug("%s: the pre-flight check could not decide (%s); the run decides", name, exc, exc_info=True)
            return None
        if settled is None:
            return None
        if declared is not None:
            _write_flow(local_storage(), settings.path("_flows", name), _flow_stamp(args), declared, run)
    try:
        events.finish(run, settled if isinstance(settled, SparkFlowsError) else None)
    except EventDeliveryError as exc:
        report_error(f"{name}: error: {error_summary(exc)}")
        return EXIT_FAILED
    if isinstance(settled, int):
        logger.info("%s: done before Spark started (exit %d)", name, settled)
        return settled
    logger.info("%s: refused before Spark started", name)
    report_error(f"{name}: error: {error_summary(settled)}")
    return EXIT_FAILED


def _draw(name: str, declared: Graph | None, fmt: str) -> int:
    if declared is None:
        report_error(f"{name}: error: this job declares no flow to draw (its plan's graph() is None)")
        return EXIT_USAGE
    collected = requested()
    if collected is not None:
        collected.append(declared)
    else:
        print(render.render(declared, fmt))
    return EXIT_OK


def _write_flow(storage: Storage, directory: str, stamp: str, declared: Graph, run: FlowRun) -> None:
    """Write the run's annotated flow; a failure to write it is logged, never the job's failure."""
    try:
        annotated = declared.annotate(run)
        path = render.write_run_graph(storage, directory, stamp, annotated)
        if annotated.unmatched:
            logger.warning("flow: facts about undeclared nodes %s: the declared flow differs from the run",
                           list(annotated.unmatched))
        logger.info("flow: %s", path)
    except Exception as exc:
        logger.warning("flow: could not write the run's graph to %s: %s", directory, error_summary(exc))
