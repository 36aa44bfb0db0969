"""One's own Spark job built on spark_flows: a Delta-enabled session, a Local Sequencer with a restart
boundary, then a Parallel Split into a Delta table and a CSV export, each written once per batch.

    python examples/own_job.py --root /tmp/own_job --batch 1          # Spark started in local mode
    spark-submit examples/own_job.py --root /tmp/own_job --batch 1    # (add Delta with --packages)

Running it again with the same --batch writes nothing; a new --batch appends its rows to the table.
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import spark_flows as sf
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter
from spark_flows.patterns.split import split, write_branch


def validate(df: DataFrame) -> DataFrame:
    return df.where(F.length("type") > 3)


def enrich(df: DataFrame) -> DataFrame:
    return df.withColumn("full_name", F.concat_ws(" ", "full_name", "version"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="where the outputs go (any Hadoop filesystem URI)")
    parser.add_argument("--batch", type=int, required=True, help="version of this run's batch")
    args = parser.parse_args(argv)

    spark = sf.get_session()  # Delta-enabled: the embedded defaults, spark-submit's flags, or $SPARK_REMOTE
    raw = spark.createDataFrame([("iphone", "iPhone", "15"), ("lg", "G6", "1"), ("pixel", "Pixel", "9")],
                                "type string, full_name string, version string")
    devices = sf.Sequence("devices", [sf.step("validate", validate, boundary=True), sf.step("enrich", enrich)])
    run = devices.run(raw, run_id=f"batch-{args.batch}", boundary_root=f"{args.root}/_boundaries")
    batch = Batch("own_job", args.batch)
    result = split(run.frame, [
        write_branch("table", DeltaWriter(), f"{args.root}/devices", batch=batch),
        write_branch("export", CsvWriter(replace={"batch": str(args.batch)}), f"{args.root}/export", batch=batch),
    ])
    result.raise_for_failures()
    for outcome in result:
        print(f"{outcome.name}: {outcome.value.describe() if outcome.value else outcome.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
