"""Isolated Sequencer consumer: wait for the devices table's marker for a date, then aggregate per type.

    spark-submit jobs/devices_aggregator.py --execution-date 2024-01-01 --wait-timeout 600 --poll-interval 10

Reads the devices table exactly as published (the Delta version in the marker), never a later write in
progress, and writes devices per type into a Delta table partitioned by date (a rerun replaces its date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flows.apps.harness import job_parser, run_job
from spark_flows.book.datasets import DEVICES_SCHEMA
from spark_flows.core.config import Settings
from spark_flows.core.waiting import Wait
from spark_flows.flow.graph import Graph, Stage
from spark_flows.io.partitions import date_key
from spark_flows.io.writers import DeltaWriter
from spark_flows.patterns.markers import ReadinessWait

NAME = "devices_aggregator"


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once."""

    execution_date: dt.date
    devices_table: str
    output: str
    wait: Wait

    @classmethod
    def resolve(cls, args: argparse.Namespace, settings: Settings) -> Options:
        return cls(args.execution_date, args.devices_table or settings.path("tables", "devices"),
                   args.output or settings.path("tables", "devices_per_type"),
                   Wait(args.wait_timeout, args.poll_interval, args.backoff))


@dataclass(frozen=True)
class Aggregator:
    """The job's blocks: wait for the producer's marker, read the published version, aggregate, write."""

    options: Options
    ready: ReadinessWait
    per_type: Stage
    output: Stage

    def graph(self) -> Graph:
        return Graph.of(NAME, self.ready, self.per_type, self.output)

    def run(self, spark: SparkSession) -> int:
        day = self.options.execution_date
        devices, marker = self.ready.run(spark, day)
        key = date_key(day)
        per_type = devices.groupBy("type").agg(F.count("*").alias("devices"),
                                               F.countDistinct("version").alias("versions"))
        written = DeltaWriter(replace={"date": key}).write(
            per_type.withColumn("source_version", F.lit(marker.table_version)), self.options.output)
        self.per_type.note(status="ran")
        self.output.wrote(written)
        print(f"{NAME}: {key}: aggregated {marker.rows} devices published by {marker.producer} "
              f"(run {marker.run_id}, table version {marker.table_version})")
        return 0


def plan(options: Options) -> Aggregator:
    """Build the job's blocks from its options."""
    return Aggregator(
        options,
        ReadinessWait(options.devices_table, options.wait, name="devices", consumer=NAME,
                      expected_schema=DEVICES_SCHEMA, require_rows=True),
        Stage("per_type", "step", "devices and versions per type"),
        Stage("devices_per_type", "output", "devices_per_type (Delta, one partition per date)"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0], dated=True)
    parser.add_argument("--devices-table", help="the producer's table (default: <data-root>/tables/devices)")
    parser.add_argument("--output", help="default: <data-root>/tables/devices_per_type")
    parser.add_argument("--wait-timeout", type=float, default=600.0, help="seconds to wait for the marker")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="seconds between polls")
    parser.add_argument("--backoff", type=float, default=1.0, help="poll interval multiplier (>= 1)")

    def validate(args: argparse.Namespace) -> None:
        if args.wait_timeout < 0 or args.poll_interval <= 0 or args.backoff < 1:
            parser.error("need --wait-timeout >= 0, --poll-interval > 0 and --backoff >= 1")

    return run_job(NAME, parser, argv, lambda args, settings: plan(Options.resolve(args, settings)),
                   validate=validate)


if __name__ == "__main__":
    sys.exit(main())
