"""Parallel Split job: read raw devices once, write the devices and enriched Delta tables (and a CSV export).

    spark-submit jobs/devices_loader.py --batch-id 7 [--csv] [--concurrency 3]

Replaying the same --app-id/--batch-id writes nothing twice: Delta tables skip a committed batch
(txnAppId/txnVersion) and the CSV export is published once per batch, atomically; when every output already
holds the batch, the input is not even read. An empty input is refused (it would use up the batch id).

With --execution-date it is the producer of an Isolated Sequencer: the devices table's readiness marker for
that date is written last; --trigger NAME then starts jobs/NAME.py for the same date (task-based).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from spark_flows.apps.harness import job_parser, parse_date, run_job
from spark_flows.book.datasets import DEVICES_SCHEMA
from spark_flows.book.transforms import enrich_devices, with_loading_time
from spark_flows.core.backend import master
from spark_flows.core.config import Settings
from spark_flows.flow.graph import Graph, note
from spark_flows.io.filesystems import is_local
from spark_flows.io.sources import ParsedInput, read_json
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter
from spark_flows.patterns.markers import readiness_graph, retract_marker, trigger, trigger_graph, write_marker
from spark_flows.patterns.split import Branch, SplitResult, replayed, split, split_graph, write_branch

NAME = "devices_loader"


def branches_of(args: argparse.Namespace, settings: Settings, batch: Batch) -> list[Branch]:
    """The split's branches: the devices table, the book's enriched table, and the CSV export if asked."""
    branches = [
        write_branch("devices", DeltaWriter(), args.devices_table or settings.path("tables", "devices"), batch=batch),
        # the book's enriched table: every raw row, plus the loading time and the versioned full name
        write_branch("enriched", DeltaWriter(), args.enriched_table or settings.path("tables", "devices_enriched"),
                     batch=batch, transform=lambda df: df.transform(enrich_devices).transform(with_loading_time)),
    ]
    if args.csv or args.csv_output:
        csv_path = args.csv_output or settings.path("exports", "devices", f"batch={batch.version}")
        branches.append(write_branch("csv", CsvWriter(), csv_path, batch=batch))
    return branches


def flow(args: argparse.Namespace, settings: Settings) -> Graph:
    """The job's flow: raw devices read once, the split into its branches, then the marker and the trigger."""
    branches = branches_of(args, settings, Batch(args.app_id, args.batch_id if args.batch_id is not None else 0))
    if args.batch_id is None:  # drawn without --batch-id: name the flag instead of a made-up version
        branches = [replace(b, key=b.key.rsplit("@", 1)[0] + "@(--batch-id)") for b in branches]
    parts = [Graph.single("raw_devices", "input", "raw devices (JSON lines), read once"),
             split_graph(branches, name=NAME, concurrency=args.concurrency)]
    if args.execution_date or args.trigger:
        parts.append(readiness_graph("devices", role="publish"))
    if args.trigger:
        parts.append(trigger_graph(args.trigger))
    return Graph.chain(NAME, *parts)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--batch-id", type=int, required=True, help="version of this load (txnVersion)")
    parser.add_argument("--app-id", default=NAME, help="idempotency namespace (txnAppId), default: %(default)s")
    parser.add_argument("--input", help="raw devices JSON lines (default: <data-root>/raw/devices)")
    parser.add_argument("--devices-table", help="default: <data-root>/tables/devices")
    parser.add_argument("--enriched-table", help="default: <data-root>/tables/devices_enriched")
    parser.add_argument("--csv", action="store_true", help="also export the batch as ';'-separated CSV")
    parser.add_argument("--csv-output", help="CSV export path (default: <data-root>/exports/devices/batch=<id>)")
    parser.add_argument("--concurrency", type=int, default=2, help="branches at once (default: %(default)s)")
    parser.add_argument("--on-bad-records", choices=["fail", "quarantine"], default="fail")
    parser.add_argument("--execution-date", type=parse_date, help="publish a readiness marker for this date")
    parser.add_argument("--run-id", help="run id recorded in the marker (default: new)")
    parser.add_argument("--trigger", metavar="JOB", help="after the marker, spark-submit jobs/JOB.py for the date")

    def validate(args: argparse.Namespace) -> None:
        if args.trigger and not args.execution_date:
            parser.error("--trigger needs --execution-date")
        if args.concurrency < 1:
            parser.error(f"--concurrency must be >= 1, got {args.concurrency}")
        if args.batch_id < 0:
            parser.error(f"--batch-id must be >= 0, got {args.batch_id}")

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        batch = Batch(args.app_id, args.batch_id)
        devices_table = args.devices_table or settings.path("tables", "devices")
        if args.execution_date:
            retract_marker(spark, devices_table, args.execution_date)
        loaded: list[ParsedInput] = []

        def load() -> DataFrame:  # read (and check) the input only if some branch has to write
            loaded.append(read_json(spark, args.input or settings.path("raw", "devices"), DEVICES_SCHEMA,
                                    on_bad_records=args.on_bad_records,
                                    quarantine_path=f"{devices_table}_bad_records"))
            return loaded[0].frame

        branches = branches_of(args, settings, batch)
        try:
            # read_json persists (and fills) the parsed rows: the split reads them from there, once
            result = split(load, branches, name=NAME, storage_level=None, concurrency=args.concurrency)
            note("raw_devices", status="ran" if loaded else "skipped",
                 reason=None if loaded else "every branch already holds the batch")
        finally:
            for parsed in loaded:
                parsed.release()
        _report(result)
        devices = result["devices"].output
        if args.execution_date and devices is not None:
            marker = write_marker(spark, devices_table, args.execution_date, devices, producer=NAME,
                                  schema=DEVICES_SCHEMA, run_id=args.run_id)
            note("marker.devices", status="ran", rows=marker.rows)
            if args.trigger:
                consumer = str(Path(__file__).resolve().parent / f"{args.trigger}.py")
                submitted = trigger(spark, marker, consumer, [
                    "--execution-date", args.execution_date.isoformat(), "--data-root", settings.data_root,
                    "--devices-table", devices_table, "--wait-timeout", "0",
                ], settings, master=master(spark))
                print(f"{NAME}: triggered {args.trigger}: exit {submitted.returncode}")
                note(f"trigger.{args.trigger}", status="ran", exit_code=submitted.returncode)
        return 0

    def preflight(args: argparse.Namespace, settings: Settings) -> int | None:
        """A replay whose every output holds the batch, told from local files: done without Spark."""
        branches = branches_of(args, settings, Batch(args.app_id, args.batch_id))
        if args.execution_date or not all(is_local(b.path) for b in branches if b.path):
            return None  # a marker to publish, or outputs only Spark's Hadoop configuration reaches
        result = replayed(branches, name=NAME)
        if result is None:
            return None
        note("raw_devices", status="skipped", reason="every branch already holds the batch")
        _report(result)
        return 0

    return run_job(NAME, parser, argv, body, validate=validate, flow=flow, preflight=preflight)


def _report(result: SplitResult) -> None:
    """One line per branch on stdout; raises when a branch failed."""
    for outcome in result.branches:
        text = f"failed: {outcome.error}" if not outcome.ok else (
            outcome.output.describe() if outcome.output else f"{outcome.rows} rows")
        print(f"{NAME}: branch {outcome.name}: {text} ({outcome.seconds:.1f}s)")
    result.raise_for_failures()


if __name__ == "__main__":
    sys.exit(main())
