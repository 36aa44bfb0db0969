"""The ``spark-flows`` command: generate sample data and inspect what the patterns leave on storage (see HELP)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_flows.apps.graphs import job_graph
from spark_flows.apps.harness import EXIT_FAILED, EXIT_USAGE, job_parser, parse_date, run_job
from spark_flows.book.samples import write_devices, write_visits
from spark_flows.core.config import Settings, load_settings
from spark_flows.core.session import SparkSession
from spark_flows.core.submit import package_zip, run_submit, submit_command
from spark_flows.errors import InvalidFlagError, SparkFlowsError, error_summary
from spark_flows.flow.graph import Graph, Stage
from spark_flows.flow.render import FORMATS, render
from spark_flows.patterns.markers import list_markers, markers_dir
from spark_flows.patterns.runners.ledger import read_runs

HELP = """\
spark-flows: generate sample data and inspect what the data flow patterns leave on storage.

usage:
  spark-flows generate devices --rows 1000 [--malformed 3] [--output data/raw/devices]
  spark-flows generate visits --date 2024-01-01 [--missing-hours 6,11] [--output data/raw/visits]
  spark-flows markers data/tables/devices       what is ready: date, rows, producer, age (no Spark)
  spark-flows runs visits_trend_generator       the run ledger: date, attempt, status, times, error (no Spark)
  spark-flows submit jobs/devices_loader.py [--master URL] [--ship] [--dry-run] -- --batch-id 1
  spark-flows graph jobs/visits_cube.py [--format mermaid|dot|json] [-- --mode unaligned]
                                                the job's flow for those arguments (no Spark)

Each command takes --help."""


def _hours(text: str) -> list[int]:
    try:
        hours = [int(h) for h in text.split(",") if h.strip()]
    except ValueError:
        raise InvalidFlagError(f"expected comma-separated hours like 6,11,16, got {text!r}") from None
    bad = [h for h in hours if not 0 <= h <= 23]
    if bad:
        raise InvalidFlagError(f"hours must be 0..23, got {bad}")
    return hours


def _generate(argv: Sequence[str]) -> int:
    parser = job_parser("spark-flows generate", "Generate the book's sample datasets.")
    parser.add_argument("dataset", choices=["devices", "visits"])
    parser.add_argument("--output", help="where to write (default: <data-root>/raw/<dataset>)")
    parser.add_argument("--rows", type=int, default=1000, help="devices: rows; visits: rows per hour")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--malformed", type=int, default=0, help="devices: unparseable lines to add")
    parser.add_argument("--compression", help="devices: JSON codec, e.g. gzip")
    parser.add_argument("--files", type=int, default=1, help="devices: number of files")
    parser.add_argument("--date", type=parse_date, action="append", help="visits: a day, repeatable")
    parser.add_argument("--missing-hours", type=_hours, default=[], help="visits: e.g. 6,11,16,17,18")
    parser.add_argument("--empty-hours", type=_hours, default=[])
    parser.add_argument("--corrupt-hours", type=_hours, default=[])

    def validate(args: argparse.Namespace) -> None:
        if args.dataset == "visits" and not args.date:
            parser.error("visits needs at least one --date")

    return run_job("spark-flows generate", parser, argv,
                   lambda args, settings: Sample(args, args.output or settings.path("raw", args.dataset)),
                   validate=validate)


@dataclass(frozen=True)
class Sample:
    """``spark-flows generate``: one of the book's sample datasets written to ``output``."""

    args: argparse.Namespace
    output: str

    def graph(self) -> Graph:
        """One output."""
        return Graph.of("generate", Stage("sample", "output", f"{self.args.dataset} sample -> {self.output}"))

    def run(self, spark: SparkSession) -> int:
        """Write the sample; one line per dataset (or day) written."""
        args, output = self.args, self.output
        if args.dataset == "devices":
            rows = write_devices(spark, output, rows=args.rows, seed=args.seed, malformed=args.malformed,
                                 files=args.files, compression=args.compression)
            print(f"devices: {rows} rows (+{args.malformed} malformed) -> {output}")
            return 0
        for day in args.date:
            hours = write_visits(spark, output, day, rows_per_hour=args.rows, seed=args.seed,
                                 missing_hours=args.missing_hours, empty_hours=args.empty_hours,
                                 corrupt_hours=args.corrupt_hours)
            print(f"visits {day}: {len(hours)} hours x {args.rows} rows -> {output}")
        return 0


def _file_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser for commands that only read files: no Spark flags, no session."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--conf-file", help="TOML configuration (default: the embedded local.toml)")
    parser.add_argument("--data-root", help="root of the default paths (default: the conf's)")
    return parser


def _read_files(name: str, parser: argparse.ArgumentParser, argv: Sequence[str],
                body: Callable[[Settings, argparse.Namespace], int]) -> int:
    try:
        args = parser.parse_args(list(argv))
        return body(load_settings(args.conf_file, overrides={"data_root": args.data_root}), args)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:
        print(f"{name}: error: {error_summary(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _markers(argv: Sequence[str]) -> int:
    parser = _file_parser("spark-flows markers", "List the readiness markers of a dataset (reads files only).")
    parser.add_argument("dataset", help="the dataset path the producer publishes (e.g. data/tables/devices)")

    def body(settings: Settings, args: argparse.Namespace) -> int:
        markers = list_markers(None, args.dataset)
        if not markers:
            print(f"no readiness markers for {args.dataset} (looked in {markers_dir(args.dataset)})")
            return 0
        print(f"{'date':<12}{'rows':>10}  {'producer':<20}{'run':<14}{'version':>8}  {'age':>8}  notes")
        for m in markers:
            notes = []
            if m.stale_consumers:
                notes.append("stale consumers: " + ", ".join(m.stale_consumers))
            if m.triggered:
                notes.append(f"triggered {Path(m.triggered['job']).stem}: exit {m.triggered['exit_code']}")
            version = "" if m.table_version is None else str(m.table_version)
            print(f"{m.execution_date:<12}{m.rows if m.rows is not None else '?':>10}  {m.producer:<20}"
                  f"{m.run_id:<14}{version:>8}  {_age(m.age_seconds):>8}  {'; '.join(notes)}")
        return 0

    return _read_files("spark-flows markers", parser, argv, body)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _runs(argv: Sequence[str]) -> int:
    parser = _file_parser("spark-flows runs", "List a job's runs from the run ledger (reads files only).")
    parser.add_argument("job", help="job name, e.g. visits_trend_generator")
    parser.add_argument("--ledger", help="run ledger Delta table (default: <data-root>/_ledger/runs)")

    def body(settings: Settings, args: argparse.Namespace) -> int:
        rows = read_runs(args.ledger or settings.path("_ledger", "runs"), args.job)
        if not rows:
            print(f"no runs of {args.job} in the ledger")
            return 0
        print(f"{'date':<12}{'attempt':>8}  {'status':<10}{'started':<21}{'ended':<21}error")
        for r in rows:
            started = f"{r.started_at:%Y-%m-%d %H:%M:%S}" if r.started_at else ""
            ended = f"{r.ended_at:%Y-%m-%d %H:%M:%S}" if r.ended_at else ""
            print(f"{r.execution_date:<12}{r.attempt:>8}  {r.status:<10}{started:<21}{ended:<21}{r.error or ''}")
        return 0

    return _read_files("spark-flows runs", parser, argv, body)


def _submit(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="spark-flows submit", description="Print and run the spark-submit command for a job.",
        epilog="example: spark-flows submit jobs/devices_loader.py --master spark://host:7077 --ship "
               "-- --batch-id 1")
    parser.add_argument("job", help="path of the job's .py file")
    parser.add_argument("--conf-file", help="TOML configuration (default: the embedded local.toml)")
    parser.add_argument("--master", help="Spark master (default: the conf's)")
    parser.add_argument("--ship", action="store_true",
                        help="zip spark_flows and pass it with --py-files (executors without spark_flows)")
    parser.add_argument("--zip", default="dist/spark_flows.zip", help="where --ship writes the zip")
    parser.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    argv = list(argv)
    # everything after the first `--` belongs to the job (argparse's REMAINDER would also swallow our flags)
    own, job_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    try:
        args = parser.parse_args(own)
        settings = load_settings(args.conf_file, overrides={"master": args.master})
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except SparkFlowsError as exc:
        print(f"spark-flows submit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not Path(args.job).is_file():
        print(f"spark-flows submit: error: job file {args.job} does not exist", file=sys.stderr)
        return EXIT_USAGE
    py_files = [str(package_zip(args.zip))] if args.ship else []
    if args.conf_file:
        job_args = ["--conf-file", args.conf_file, *job_args]
    command = submit_command(args.job, job_args, settings, py_files=py_files)
    print(shlex.join(command))
    if args.dry_run:
        return 0
    return run_submit(command, capture=False).returncode


def _graph(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="spark-flows graph", description="Print a job's flow (its nodes, edges and rules) without Spark.",
        epilog="example: spark-flows graph jobs/devices_loader.py --format dot -- --batch-id 1 --csv")
    parser.add_argument("job", help="a job's .py file or module path (jobs.visits_cube)")
    parser.add_argument("--format", choices=FORMATS, default="mermaid")
    argv = list(argv)
    split_at = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split_at])
    try:
        flow = job_graph(args.job, argv[split_at + 1:])
    except SparkFlowsError as exc:
        print(f"spark-flows graph: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(render(flow, args.format))
    return 0


COMMANDS = {"generate": _generate, "graph": _graph, "markers": _markers, "runs": _runs, "submit": _submit}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spark-flows`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(HELP, file=sys.stdout if not args or args[0] in ("-h", "--help") else sys.stderr)
        return 0 if not args or args[0] in ("-h", "--help") else EXIT_USAGE
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
