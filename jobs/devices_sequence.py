"""Local Sequencer job: read raw devices, validate (restart boundary), enrich, write a Delta table.

    spark-submit jobs/devices_sequence.py --run-id 2024-01-01
    python jobs/devices_sequence.py --input data/raw/devices --output data/tables/devices_clean

Rerunning with the same ``--run-id`` after a failure resumes after the ``validate`` boundary.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from pyspark.sql import SparkSession

from spark_flows.apps.harness import job_parser, run_job
from spark_flows.book.datasets import DEVICES_SCHEMA
from spark_flows.book.transforms import devices_sequence
from spark_flows.core.config import Settings
from spark_flows.flow.graph import Graph, note
from spark_flows.io.sources import read_json
from spark_flows.io.storage import Storage

NAME = "devices_sequence"


def flow(args: argparse.Namespace, settings: Settings) -> Graph:
    """The job's flow: raw devices, the sequence (its boundary the restart point), the clean table."""
    return Graph.chain(NAME, Graph.single("raw_devices", "input", "raw devices (JSON lines)",
                                          bad_records=args.on_bad_records),
                       devices_sequence().graph(),
                       Graph.single("devices_clean", "output", "devices_clean (Delta, overwritten)"))


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--input", help="raw devices JSON lines (default: <data-root>/raw/devices)")
    parser.add_argument("--output", help="Delta table written (default: <data-root>/tables/devices_clean)")
    parser.add_argument("--run-id", help="id of this run; reuse it to resume after a failure (default: new)")
    parser.add_argument("--boundary-root", help="where boundaries persist (default: <data-root>/_boundaries)")
    parser.add_argument("--on-bad-records", choices=["fail", "quarantine"], default="fail",
                        help="fail naming the files (default) or set malformed rows aside")
    parser.add_argument("--keep-boundaries", action="store_true", help="keep boundaries after success")

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        output = args.output or settings.path("tables", "devices_clean")
        run_id: str = args.run_id or uuid.uuid4().hex[:12]
        parsed = read_json(
            spark, args.input or settings.path("raw", "devices"), DEVICES_SCHEMA,
            on_bad_records=args.on_bad_records, quarantine_path=f"{output}_bad_records",
        )
        sequence = devices_sequence()
        boundary_root = args.boundary_root or settings.path("_boundaries")
        try:
            run = sequence.run(parsed.frame, run_id=run_id, boundary_root=boundary_root)
            if run.resumed_from is None:
                note("raw_devices", status="ran")
            else:
                note("raw_devices", status="skipped", reason=f"resumed after {run.resumed_from}")
            run.frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(output)
            note("devices_clean", status="ran")
        finally:
            parsed.release()
        if not args.keep_boundaries:
            sequence.discard(Storage(spark), boundary_root, run_id)
        return 0

    return run_job(NAME, parser, argv, body, flow=flow)


if __name__ == "__main__":
    sys.exit(main())
