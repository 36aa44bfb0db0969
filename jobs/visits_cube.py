"""Fan-In job: merge a day's 24 hourly visits partitions into a CUBE(page, browser), with completeness.

    spark-submit jobs/visits_cube.py --execution-date 2024-01-01 [--mode aligned|unaligned] [--min-completeness 0.9]

aligned (default): every hour must be present, non-empty and parseable, else nothing is written.
unaligned: publish what is there with is_approximate/completeness_ratio columns and a completeness row;
below --min-completeness the cube goes to the private table instead of the public one.
Re-running a date replaces that date only.
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flows.config import Settings
from spark_flows.errors import MissingParentsError
from spark_flows.fan_in import completeness_frame, fan_in, hourly_parents, with_completeness
from spark_flows.job import job_parser, run_job
from spark_flows.samples import VISITS_SCHEMA
from spark_flows.sources import require_input
from spark_flows.transforms import visits_cube
from spark_flows.writers import retry_on_conflict

NAME = "visits_cube"


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--min-completeness must be within 0..1, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0], dated=True)
    parser.add_argument("--mode", choices=["aligned", "unaligned"], default="aligned")
    parser.add_argument("--min-completeness", type=_ratio, default=0.0,
                        help="unaligned: below this ratio the cube is written to --private-output")
    parser.add_argument("--input", help="visits root with date=YYYYMMDD/hour=HH (default: <data-root>/raw/visits)")
    parser.add_argument("--output", help="public cube Delta table (default: <data-root>/tables/visits_cube)")
    parser.add_argument("--private-output", help="default: <data-root>/tables/visits_cube_private")
    parser.add_argument("--completeness-table", help="default: <data-root>/tables/visits_cube_completeness")

    def body(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> int:
        day = args.execution_date
        date_key = f"{day:%Y%m%d}"
        source = args.input or settings.path("raw", "visits")
        require_input(spark, source, hint="generate it with `spark-flows generate visits --date ...`")
        merged = fan_in(spark, hourly_parents(source, day), mode=args.mode, schema=VISITS_SCHEMA)
        cube = merged.frame.transform(visits_cube).persist()
        cube.count()  # the one scan of the day's rows; fills the corrupt-record observation
        completeness = merged.completeness.with_failures(merged.corrupt_parents())
        if args.mode == "aligned" and completeness.is_approximate:
            cube.unpersist()
            raise MissingParentsError(f"aligned fan-in refused for {date_key}: {completeness.describe()}; "
                                      "use --mode unaligned to publish partial data")
        public = completeness.ratio >= args.min_completeness
        target = (args.output or settings.path("tables", "visits_cube")) if public else (
            args.private_output or settings.path("tables", "visits_cube_private"))
        # both tables are partitioned by date: concurrent runs for other dates never touch the same files
        replace = {"replaceWhere": f"date = '{date_key}'"}
        published = cube.transform(with_completeness, completeness).withColumn("date", F.lit(date_key))
        retry_on_conflict(lambda: published.write.format("delta").mode("overwrite").options(**replace)
                          .partitionBy("date").save(target), what=f"{NAME} cube")
        row = (completeness_frame(spark, date_key, completeness).withColumnRenamed("partition", "date")
               .withColumn("published_to", F.lit("public" if public else "private")))
        retry_on_conflict(lambda: row.write.format("delta").mode("overwrite").options(**replace).partitionBy("date")
                          .save(args.completeness_table or settings.path("tables", "visits_cube_completeness")),
                          what=f"{NAME} completeness")
        cube.unpersist()
        print(f"{NAME}: {date_key}: {completeness.describe()} -> {'public' if public else 'private'} {target}")
        return 0

    return run_job(NAME, parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
