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
import sys

from pyspark.sql import SparkSession

from spark_flows.apps.harness import job_parser, parse_date, run_job
from spark_flows.book.datasets import DEVICES_SCHEMA
from spark_flows.core.config import Settings
from spark_flows.flow.graph import Graph, note
from spark_flows.flow.render import note_write
from spark_flows.io.partitions import date_key
from spark_flows.io.sources import input_version, read_json
from spark_flows.io.writers import Batch
from spark_flows.patterns.choice import (
    OutputFactory,
    OutputType,
    Route,
    WriteMode,
    date_choice_graph,
    record_route,
    route_by_date,
)

NAME = "devices_exporter"
LEGACY, NEW = OutputType.CSV.value, OutputType.DELTA.value


def flow(args: argparse.Namespace, settings: Settings) -> Graph:
    """The job's flow: raw devices, the one choice (by date, or the factory's output type), the export."""
    if args.route_by_date:
        choice = date_choice_graph(cutover=args.migration_date or "--migration-date", before=LEGACY,
                                   on_or_after=NEW, name="route")
    else:
        choice = OutputFactory.default().graph("route")
    mode = WriteMode.REPLACE_PARTITION if args.execution_date else WriteMode.OVERWRITE
    return Graph.chain(NAME, Graph.single("raw_devices", "input", "raw devices (JSON lines)"), choice,
                       Graph.single("export", "output", f"devices_{{branch}} ({mode.value}), _ROUTE.json beside it"))


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

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        if args.route_by_date:
            route = route_by_date(args.execution_date, cutover=args.migration_date, before=LEGACY, on_or_after=NEW)
        else:
            route = Route(args.output_type, "--output-type", args.output_type, f"--output-type {args.output_type}",
                          tuple(factory.known))
        source = args.input or settings.path("raw", "devices")
        root = args.output_root or settings.path("exports")
        app_id = NAME
        if args.execution_date:  # one output per branch keeping every date; each date is its own batch line
            key = date_key(args.execution_date)
            app_id = f"{NAME}.{key}"
            writer = factory.prepare(spark, route.branch, mode=WriteMode.REPLACE_PARTITION, partition={"date": key})
            output = f"{root}/devices_{route.branch}_by_date"
            record_at = f"{output}/_routes/date={key}"
        else:
            writer = factory.prepare(spark, route.branch, mode=WriteMode.OVERWRITE)
            output = record_at = f"{root}/devices_{route.branch}"
        version = args.batch_id if args.batch_id is not None else input_version(spark, source)
        parsed = read_json(spark, source, DEVICES_SCHEMA)
        try:
            result = writer.write(parsed.frame, output, batch=Batch(app_id, version))
        finally:
            parsed.release()
        note("raw_devices", status="ran")
        note_write("export", result)
        record_route(spark, record_at, route, {"rows": result.batch_rows, "skipped": result.skipped,
                                               "batch": version, "output": output})
        print(f"{NAME}: branch {route.branch} ({route.reason}) -> {output}: {result.describe()}")
        return 0

    return run_job(NAME, parser, argv, body, validate=validate, flow=flow)


if __name__ == "__main__":
    sys.exit(main())
