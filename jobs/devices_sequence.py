"""Local Sequencer job: read raw devices, validate (restart boundary), enrich, write a Delta table.

    spark-submit jobs/devices_sequence.py --run-id 2024-01-01
    python jobs/devices_sequence.py --input data/raw/devices --output data/tables/devices_clean

Rerunning with the same ``--run-id`` after a failure resumes after the ``validate`` boundary.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_flows.apps.harness import job_parser, run_job
from spark_flows.book.datasets import DEVICES_SCHEMA
from spark_flows.book.transforms import devices_sequence
from spark_flows.flow.graph import Graph, Stage
from spark_flows.io.sources import BadRecordsPolicy, read_json
from spark_flows.io.storage import Storage
from spark_flows.patterns.sequence import Sequence

NAME = "devices_sequence"


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once."""

    input: str
    output: str
    run_id: str
    boundary_root: str
    on_bad_records: BadRecordsPolicy
    keep_boundaries: bool


@dataclass(frozen=True)
class Cleaning:
    """The job's blocks: raw devices, the sequence (its boundary the restart point), the clean table."""

    options: Options
    raw: Stage
    sequence: Sequence
    output: Stage

    def graph(self) -> Graph:
        return Graph.of(NAME, self.raw, self.sequence, self.output)

    def run(self, spark: SparkSession) -> int:
        options = self.options
        parsed = read_json(spark, options.input, DEVICES_SCHEMA, on_bad_records=options.on_bad_records,
                           quarantine_path=f"{options.output}_bad_records")
        try:
            run = self.sequence.run(parsed.frame, run_id=options.run_id, boundary_root=options.boundary_root)
            if run.resumed_from is None:
                self.raw.note(status="ran")
            else:
                self.raw.note(status="skipped", reason=f"resumed after {run.resumed_from}")
            run.frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(options.output)
            self.output.note(status="ran")
        finally:
            parsed.release()
        if not options.keep_boundaries:
            self.sequence.discard(Storage(spark), options.boundary_root, options.run_id)
        return 0


def plan(options: Options) -> Cleaning:
    """Build the job's blocks from its options."""
    return Cleaning(options, Stage("raw_devices", "input", "raw devices (JSON lines)",
                                   {"bad_records": options.on_bad_records}),
                    devices_sequence(), Stage("devices_clean", "output", "devices_clean (Delta, overwritten)"))


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--input", help="raw devices JSON lines (default: <data-root>/raw/devices)")
    parser.add_argument("--output", help="Delta table written (default: <data-root>/tables/devices_clean)")
    parser.add_argument("--run-id", help="id of this run; reuse it to resume after a failure (default: new)")
    parser.add_argument("--boundary-root", help="where boundaries persist (default: <data-root>/_boundaries)")
    parser.add_argument("--on-bad-records", choices=["fail", "quarantine"], default="fail",
                        help="fail naming the files (default) or set malformed rows aside")
    parser.add_argument("--keep-boundaries", action="store_true", help="keep boundaries after success")
    return run_job(NAME, parser, argv, lambda args, settings: plan(Options(
        args.input or settings.path("raw", "devices"), args.output or settings.path("tables", "devices_clean"),
        args.run_id or uuid.uuid4().hex[:12], args.boundary_root or settings.path("_boundaries"),
        args.on_bad_records, args.keep_boundaries)))


if __name__ == "__main__":
    sys.exit(main())
