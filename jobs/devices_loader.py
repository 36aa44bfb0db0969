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
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from spark_flows.apps.consumers import ConsumerTrigger
from spark_flows.apps.harness import job_parser, parse_date, run_job
from spark_flows.book.datasets import DEVICES_SCHEMA
from spark_flows.book.transforms import enrich_devices, with_loading_time
from spark_flows.core import backend
from spark_flows.core.config import Settings
from spark_flows.core.scheduling import Outcomes
from spark_flows.errors import SparkFlowsError
from spark_flows.flow.graph import Graph, Stage
from spark_flows.io.filesystems import is_local
from spark_flows.io.sources import BadRecordsPolicy, ParsedInput, read_json
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter, PendingBatch
from spark_flows.patterns.markers import ReadinessMarker
from spark_flows.patterns.split import Split, write_branch

NAME = "devices_loader"


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once."""

    batch: Batch | PendingBatch  # pending: drawn without --batch-id, the keys name the flag
    input: str
    devices_table: str
    enriched_table: str
    csv_output: str | None
    concurrency: int
    on_bad_records: BadRecordsPolicy
    execution_date: dt.date | None
    run_id: str | None
    trigger: str | None
    data_root: str
    settings: Settings

    @classmethod
    def resolve(cls, args: argparse.Namespace, settings: Settings) -> Options:
        batch = (Batch(args.app_id, args.batch_id) if args.batch_id is not None
                 else PendingBatch(args.app_id, "(--batch-id)"))
        csv = args.csv_output or (settings.path("exports", "devices", f"batch={args.batch_id}")
                                  if args.csv else None)
        return cls(batch, args.input or settings.path("raw", "devices"),
                   args.devices_table or settings.path("tables", "devices"),
                   args.enriched_table or settings.path("tables", "devices_enriched"), csv, args.concurrency,
                   args.on_bad_records, args.execution_date, args.run_id, args.trigger, settings.data_root, settings)


@dataclass(frozen=True)
class Loader:
    """The job's blocks: raw devices read once, the split into its outputs, then the marker and the trigger."""

    options: Options
    raw: Stage
    split: Split
    marker: ReadinessMarker | None = None
    trigger: ConsumerTrigger | None = None

    def graph(self) -> Graph:
        return Graph.of(NAME, self.raw, self.split, self.marker, self.trigger)

    def preflight(self) -> SparkFlowsError | int | None:
        """A replay whose every output holds the batch, told from local files: done without Spark."""
        if self.marker is not None or not all(is_local(b.path) for b in self.split.branches if b.path):
            return None  # a marker to publish, or outputs only Spark's Hadoop configuration reaches
        result = self.split.replayed()
        if result is None:
            return None
        self.raw.note(status="skipped", reason="every branch already holds the batch")
        _report(result)
        return 0

    def run(self, spark: SparkSession) -> int:
        options = self.options
        day = options.execution_date
        if self.marker is not None and day is not None:
            self.marker.retract(spark, day)
        loaded: list[ParsedInput] = []

        def load() -> DataFrame:  # read (and check) the input only if some branch has to write
            loaded.append(read_json(spark, options.input, DEVICES_SCHEMA, on_bad_records=options.on_bad_records,
                                    quarantine_path=f"{options.devices_table}_bad_records"))
            return loaded[0].frame

        try:
            # read_json persists (and fills) the parsed rows: the split reads them from there, once
            result = self.split.run(load)
            self.raw.note(status="ran" if loaded else "skipped",
                          reason=None if loaded else "every branch already holds the batch")
        finally:
            for parsed in loaded:
                parsed.release()
        _report(result)
        devices = result["devices"].value
        if self.marker is None or day is None or devices is None:
            return 0
        marker = self.marker.write(spark, day, devices, schema=DEVICES_SCHEMA, run_id=options.run_id)
        if self.trigger is not None:
            submitted = self.trigger.run(spark, marker, [
                "--execution-date", day.isoformat(), "--data-root", options.data_root,
                "--devices-table", options.devices_table, "--wait-timeout", "0",
            ], options.settings, master=backend.of(spark).master())
            print(f"{NAME}: triggered {options.trigger}: exit {submitted.returncode}")
        return 0


def plan(options: Options) -> Loader:
    """Build the job's blocks from its options: the one place the loader's flow is decided."""
    batch = options.batch
    branches = [
        write_branch("devices", DeltaWriter(), options.devices_table, batch=batch),
        # the book's enriched table: every raw row, plus the loading time and the versioned full name
        write_branch("enriched", DeltaWriter(), options.enriched_table, batch=batch,
                     transform=lambda df: df.transform(enrich_devices).transform(with_loading_time)),
    ]
    if options.csv_output:
        branches.append(write_branch("csv", CsvWriter(), options.csv_output, batch=batch))
    publishing = options.execution_date is not None or options.trigger is not None
    return Loader(
        options,
        Stage("raw_devices", "input", "raw devices (JSON lines), read once"),
        Split(NAME, tuple(branches), concurrency=options.concurrency, storage_level=None),
        ReadinessMarker(options.devices_table, NAME, name="devices") if publishing else None,
        ConsumerTrigger(str(Path(__file__).resolve().parent / f"{options.trigger}.py")) if options.trigger else None,
    )


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

    return run_job(NAME, parser, argv, lambda args, settings: plan(Options.resolve(args, settings)),
                   validate=validate)


def _report(result: Outcomes) -> None:
    """One line per branch on stdout; raises when a branch failed."""
    for outcome in result:
        text = f"failed: {outcome.error}" if not outcome.ok else (
            outcome.value.describe() if outcome.value else f"{outcome.rows} rows")
        print(f"{NAME}: branch {outcome.name}: {text} ({outcome.seconds:.1f}s)")
    result.raise_for_failures()


if __name__ == "__main__":
    sys.exit(main())
