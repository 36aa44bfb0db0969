"""Exclusive Choice job: export the devices dataset through exactly one writer, chosen visibly.

    spark-submit jobs/devices_exporter.py --output-type delta|csv|parquet
    spark-submit jobs/devices_exporter.py --route-by-date --migration-date 2024-03-01 --execution-date 2024-02-28

--route-by-date backfills dates before the cut-over with the legacy CSV branch and the cut-over day and later
with the Delta branch. The decision is logged, printed, and recorded as _ROUTE.json next to the output.
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession

from spark_flows.choice import OutputFactory, OutputType, Route, record_route, route_by_date
from spark_flows.config import Settings
from spark_flows.job import job_parser, parse_date, run_job
from spark_flows.samples import DEVICES_SCHEMA
from spark_flows.sources import read_json
from spark_flows.writers import Batch

NAME = "devices_exporter"
LEGACY, NEW = OutputType.CSV.value, OutputType.DELTA.value


def main(argv: list[str] | None = None) -> int:
    factory = OutputFactory.default()
    parser = job_parser(NAME, __doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--output-type", "--output_type", dest="output_type", choices=factory.known,
                        help="the writer to use (the book's --output_type spelling accepted)")
    choice.add_argument("--route-by-date", action="store_true", help=f"{LEGACY} before --migration-date, {NEW} from it")
    parser.add_argument("--migration-date", type=parse_date, help="cut-over day (inclusive for the new branch)")
    parser.add_argument("--execution-date", type=parse_date, help="logical date of the export")
    parser.add_argument("--input", help="raw devices JSON lines (default: <data-root>/raw/devices)")
    parser.add_argument("--output-root", help="default: <data-root>/exports")

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        if args.route_by_date:
            if not args.migration_date or not args.execution_date:
                parser.error("--route-by-date needs --migration-date and --execution-date")
            route = route_by_date(args.execution_date, cutover=args.migration_date, before=LEGACY, on_or_after=NEW)
        else:
            route = Route(args.output_type, "--output-type", args.output_type, f"--output-type {args.output_type}",
                          tuple(factory.known))
        writer = factory.prepare(spark, route.branch)
        suffix = f"/date={args.execution_date:%Y%m%d}" if args.execution_date else ""
        output = f"{args.output_root or settings.path('exports')}/devices_{route.branch}{suffix}"
        parsed = read_json(spark, args.input or settings.path("raw", "devices"), DEVICES_SCHEMA)
        version = int(f"{args.execution_date:%Y%m%d}") if args.execution_date else 0
        result = writer.write(parsed.frame, output, batch=Batch(NAME, version))
        parsed.frame.unpersist()
        record_route(spark, output, route, {"rows": result.rows, "skipped": result.skipped, "output": output})
        print(f"{NAME}: branch {route.branch} ({route.reason}) -> {output}: "
              + (result.reason if result.skipped else f"{result.rows} rows"))
        return 0

    return run_job(NAME, parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
