"""Exclusive Choice job: export the devices dataset through exactly one writer, chosen visibly.

    spark-submit jobs/devices_exporter.py --output-type delta|csv|parquet
    spark-submit jobs/devices_exporter.py --route-by-date --migration-date 2024-03-01 --execution-date 2024-02-28

--route-by-date backfills dates before the cut-over with the legacy CSV branch and the cut-over day and later
with the Delta branch, one output per branch keeping every date (<output-root>/devices_<branch>_by_date,
the factory's replace_partition write mode: each date replaces its date=D partition, others stay).
The decision is logged, printed, and recorded as _ROUTE.json next to the output.

Each export is a batch: its version is --batch-id, or else the newest modification time of the input (in
milliseconds), so a rerun over unchanged input writes nothing and changed input is exported again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_flows.apps.harness import job_parser, parse_date, run_job
from spark_flows.book.datasets import DEVICES_SCHEMA
from spark_flows.core.config import Settings
from spark_flows.flow.graph import Graph, Stage
from spark_flows.io.partitions import date_key
from spark_flows.io.sources import input_version, read_json
from spark_flows.io.writers import Batch
from spark_flows.patterns.choice import DateChoice, OutputFactory, OutputType, WriteMode, record_route

NAME = "devices_exporter"
LEGACY, NEW = OutputType.CSV.value, OutputType.DELTA.value


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once."""

    route_by_date: bool
    output_type: str | None
    migration_date: dt.date | None
    execution_date: dt.date | None
    batch_id: int | None  # None: the input's newest modification time
    input: str
    output_root: str

    @classmethod
    def resolve(cls, args: argparse.Namespace, settings: Settings) -> Options:
        return cls(args.route_by_date, args.output_type, args.migration_date, args.execution_date,
                   args.batch_id, args.input or settings.path("raw", "devices"),
                   args.output_root or settings.path("exports"))


@dataclass(frozen=True)
class Exporter:
    """The job's blocks: raw devices, the one choice (by date, or the factory's output type), the export."""

    options: Options
    raw: Stage
    choice: DateChoice | OutputFactory
    export: Stage

    def graph(self) -> Graph:
        return Graph.of(NAME, self.raw, self.choice, self.export)

    def run(self, spark: SparkSession) -> int:
        options, factory = self.options, OutputFactory.default()
        if isinstance(self.choice, DateChoice):
            route = self.choice.run(options.execution_date)  # type: ignore[arg-type]  # validate() requires it
        else:
            route = self.choice.run(str(options.output_type))
        root = options.output_root
        app_id = NAME
        if options.execution_date:  # one output per branch keeping every date; each date is its own batch line
            key = date_key(options.execution_date)
            app_id = f"{NAME}.{key}"
            writer = factory.prepare(spark, route.branch, mode=WriteMode.REPLACE_PARTITION, partition={"date": key})
            output = f"{root}/devices_{route.branch}_by_date"
            record_at = f"{output}/_routes/date={key}"
        else:
            writer = factory.prepare(spark, route.branch, mode=WriteMode.OVERWRITE)
            output = record_at = f"{root}/devices_{route.branch}"
        version = options.batch_id if options.batch_id is not None else input_version(spark, options.input)
        parsed = read_json(spark, options.input, DEVICES_SCHEMA)
        try:
            result = writer.write(parsed.frame, output, batch=Batch(app_id, version))
        finally:
            parsed.release()
        self.raw.note(status="ran")
        self.export.wrote(result)
        record_route(spark, record_at, route, {"rows": result.batch_rows, "skipped": result.skipped,
                                               "batch": version, "output": output})
        print(f"{NAME}: branch {route.branch} ({route.reason}) -> {output}: {result.describe()}")
        return 0


def plan(options: Options) -> Exporter:
    """Build the job's blocks from its options."""
    choice: DateChoice | OutputFactory = (
        DateChoice(options.migration_date, before=LEGACY, on_or_after=NEW, name="route") if options.route_by_date
        else OutputFactory.default("route"))
    mode = WriteMode.REPLACE_PARTITION if options.execution_date else WriteMode.OVERWRITE
    return Exporter(options, Stage("raw_devices", "input", "raw devices (JSON lines)"), choice,
                    Stage("export", "output", f"devices_{{branch}} ({mode.value}), _ROUTE.json beside it"))


def main(argv: list[str] | None = None) -> int:
    factory = OutputFactory.default()
    parser = job_parser(NAME, __doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--output-type", "--output_type", dest="output_type", choices=factory.known,
                        help="the writer to use (the book's --output_type spelling accepted)")
    choice.add_argument("--route-by-date", action="store_true", help=f"{LEGACY} before --migration-date, {NEW} from it")
    parser.add_argument("--migration-date", type=parse_date, help="cut-over day (inclusive for the new branch)")
    parser.add_argument("--execution-date", type=parse_date, help="logical date of the export")
    parser.add_argument("--batch-id", type=int, help="version of this export (default: the input's newest mtime)")
    parser.add_argument("--input", help="raw devices JSON lines (default: <data-root>/raw/devices)")
    parser.add_argument("--output-root", help="default: <data-root>/exports")

    def validate(args: argparse.Namespace) -> None:
        if args.route_by_date and (not args.migration_date or not args.execution_date):
            parser.error("--route-by-date needs --migration-date and --execution-date")
        if args.batch_id is not None and args.batch_id < 0:
            parser.error(f"--batch-id must be >= 0, got {args.batch_id}")

    return run_job(NAME, parser, argv, lambda args, settings: plan(Options.resolve(args, settings)),
                   validate=validate)


if __name__ == "__main__":
    sys.exit(main())
