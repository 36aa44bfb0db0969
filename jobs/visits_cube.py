"""Fan-In job: merge a day's 24 hourly visits partitions into a CUBE (of page, browser by default), with completeness.

    spark-submit jobs/visits_cube.py --execution-date 2024-01-01 [--mode aligned|unaligned] [--min-completeness 0.9]
    spark-submit jobs/visits_cube.py --execution-date 2024-01-01 --dimensions user_id,page   # the book's cube

Rolled-up dimensions are NULL with a grouping_id column (a bit per dimension), as SQL's GROUP BY CUBE gives.

aligned (default): every hour must be present, non-empty and readable, else nothing is written and every
failed hour is named. unaligned: publish what is there with is_approximate/completeness_ratio columns and a
completeness row; below --min-completeness the cube goes to the private table instead of the public one.
A day with no usable hour is a failure, and a result never replaces a more complete one already published
for the date unless --replace-more-complete. Re-running a date replaces that date only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from functools import partial

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flows.apps.harness import job_parser, run_job
from spark_flows.book.datasets import HOURS_PER_DAY, VISITS_SCHEMA
from spark_flows.book.transforms import CUBE_DIMENSIONS, VISIT_FIELDS, visits_cube
from spark_flows.core.config import Settings
from spark_flows.core.waiting import Wait
from spark_flows.errors import InvalidFlagError, SparkFlowsValueError, WriteRefusedError
from spark_flows.flow.graph import Graph, Stage, note_write
from spark_flows.io.delta_log import is_delta_table
from spark_flows.io.partitions import date_key
from spark_flows.io.sources import require_input
from spark_flows.io.storage import Storage
from spark_flows.io.writers import DeltaWriter
from spark_flows.patterns.choice import Router
from spark_flows.patterns.fan_in.announce import announce_partial, webhook
from spark_flows.patterns.fan_in.merge import FanIn, Parent, completeness_frame, hourly_parents, with_completeness
from spark_flows.patterns.fan_in.triggers import TriggerRule, trigger_rule

NAME = "visits_cube"
#: an hour whose rows lack these (a renamed or dropped field) is a failed parent
REQUIRED_COLUMNS = ("visit_id", "user_id", "event_time")


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidFlagError(f"--min-completeness must be a number within 0..1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidFlagError(f"--min-completeness must be within 0..1, got {text}")
    return value


def _dimensions(text: str) -> tuple[str, ...]:
    names = tuple(d.strip() for d in text.split(",") if d.strip())
    unknown = [d for d in names if d not in VISIT_FIELDS]
    if not names or unknown or len(set(names)) != len(names):
        raise InvalidFlagError(f"--dimensions must be distinct fields among {', '.join(VISIT_FIELDS)}, "
                                         f"got {text!r}")
    return names


def _rule(text: str) -> TriggerRule:
    try:
        return trigger_rule(text)
    except SparkFlowsValueError as exc:
        raise InvalidFlagError(str(exc)) from None


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once."""

    execution_date: dt.date | None  # None only when drawn without --execution-date
    rule: TriggerRule
    notify_urls: tuple[str, ...]
    min_completeness: float
    replace_more_complete: bool
    dimensions: tuple[str, ...]
    wait: Wait | None
    input: str
    output: str
    private_output: str
    completeness_table: str

    @classmethod
    def resolve(cls, args: argparse.Namespace, settings: Settings) -> Options:
        """``--trigger-rule``, else the rule ``--mode`` names; the default paths under the data root."""
        return cls(args.execution_date, args.trigger_rule or trigger_rule(args.mode), tuple(args.notify_url),
                   args.min_completeness, args.replace_more_complete, tuple(args.dimensions),
                   Wait(args.wait_for_hours, args.poll_interval) if args.wait_for_hours else None,
                   args.input or settings.path("raw", "visits"),
                   args.output or settings.path("tables", "visits_cube"),
                   args.private_output or settings.path("tables", "visits_cube_private"),
                   args.completeness_table or settings.path("tables", "visits_cube_completeness"))


@dataclass(frozen=True)
class Cube:
    """The job's blocks: 24 hourly parents, the fan-in's rule, the cube, the public/private route, the tables."""

    options: Options
    hours: FanIn
    cube: Stage
    publication: Router
    completeness_table: Stage

    def graph(self) -> Graph:
        return Graph.of(NAME, self.hours, self.cube, self.publication, self.completeness_table)

    def run(self, spark: SparkSession) -> int:
        options = self.options
        day = options.execution_date
        if day is None:
            raise SparkFlowsValueError("visits_cube runs for one --execution-date")
        key = date_key(day)
        require_input(spark, options.input, hint="generate it with `spark-flows generate visits --date ...`")
        # the one scan of the day; refuses per the trigger rule
        cube = self.hours.run(spark).evaluate(partial(visits_cube, dimensions=options.dimensions))
        self.cube.note(status="ran")
        completeness = cube.completeness
        try:
            published_to = self.publication.run(completeness.ratio).branch
            target = options.output if published_to == "public" else options.private_output
            before = published_ratio(spark, options.completeness_table, key, published_to)
            if before is not None and before > completeness.ratio and not options.replace_more_complete:
                raise WriteRefusedError(
                    f"{published_to} cube of {key} has completeness {before} and this run only {completeness.ratio} "
                    f"({completeness.describe()}); kept the published one. Pass --replace-more-complete to replace it",
                    condition="LESS_COMPLETE", parameters={"date": key, "published": before,
                                                           "this_run": completeness.ratio})
            # partitioned by date: concurrent runs for other dates never touch the same files
            announced = {"completeness": completeness.as_record(), "date": key, "rule": str(options.rule)}
            note_write(f"{self.publication.name}.{published_to}", DeltaWriter(
                replace={"date": key}, metadata=announced).write(cube.frame.transform(with_completeness, completeness),
                                                                 target))
            self.completeness_table.wrote(DeltaWriter(replace={"date": key, "published_to": published_to},
                                                      metadata=announced).write(
                completeness_frame(spark, completeness), options.completeness_table))
        finally:
            cube.unpersist()
        announce_partial(completeness, target, {"date": key}, [webhook(url) for url in options.notify_urls],
                         extra={"published_to": published_to, "job": NAME})
        print(f"{NAME}: {key}: {completeness.describe()} -> {published_to} {target}")
        return 0


def plan(options: Options) -> Cube:
    """Build the job's blocks from its options: the hours of the date (drawn as 00..23 without one)."""
    threshold = options.min_completeness
    day = options.execution_date
    hours = (hourly_parents(options.input, day) if day is not None else
             [Parent(f"{h:02d}", path=f"{options.input}/(--execution-date)/{h:02d}") for h in range(HOURS_PER_DAY)])
    return Cube(
        options,
        FanIn("hours", tuple(hours), options.rule, VISITS_SCHEMA, required=REQUIRED_COLUMNS, wait=options.wait),
        Stage("cube", "step", f"CUBE({', '.join(options.dimensions)}) + completeness columns",
              {"one_scan": "hours read once"}),
        # where the cube goes: the public table when complete enough, else the private one
        Router([("public", f"completeness >= {threshold}", lambda ratio: ratio >= threshold)], default="private",
               name="published_to"),
        Stage("completeness_table", "output", "completeness table (one row per date and target)"),
    )


def published_ratio(spark: SparkSession, table: str, key: str, published_to: str) -> float | None:
    """The completeness ratio already published for the date to ``published_to``, if any (one small job)."""
    if not is_delta_table(Storage(spark), table):
        return None
    rows = (spark.read.format("delta").load(table)
            .where((F.col("date") == key) & (F.col("published_to") == published_to)).select("ratio").collect())
    return max((r.ratio for r in rows), default=None)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0], dated=True)
    parser.add_argument("--mode", choices=["aligned", "unaligned"], default="aligned",
                        help="aligned: the all_success rule; unaligned: all_done")
    parser.add_argument("--trigger-rule", type=_rule, metavar="RULE",
                        help="the fan-in's rule instead of --mode's: all_success, all_done, "
                             "none_failed_min_one_success or min_success=N")
    parser.add_argument("--notify-url", action="append", default=[], metavar="URL",
                        help="POST a JSON notice here when a partial cube is published (repeatable)")
    parser.add_argument("--min-completeness", type=_ratio, default=0.0,
                        help="unaligned: below this ratio the cube is written to --private-output")
    parser.add_argument("--replace-more-complete", action="store_true",
                        help="replace a published cube of the date even if it was more complete than this one")
    parser.add_argument("--dimensions", type=_dimensions, default=CUBE_DIMENSIONS,
                        help=f"comma-separated cube dimensions (default: {','.join(CUBE_DIMENSIONS)}; the book's: "
                             "user_id,page); a table keeps the dimensions it was created with")
    parser.add_argument("--wait-for-hours", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to SECONDS for absent or empty hours before the trigger rule decides")
    parser.add_argument("--poll-interval", type=float, default=10.0, metavar="SECONDS",
                        help="with --wait-for-hours: seconds between listings of the hours")
    parser.add_argument("--input", help="visits root with date=YYYYMMDD/hour=HH (default: <data-root>/raw/visits)")
    parser.add_argument("--output", help="public cube Delta table (default: <data-root>/tables/visits_cube)")
    parser.add_argument("--private-output", help="default: <data-root>/tables/visits_cube_private")
    parser.add_argument("--completeness-table", help="default: <data-root>/tables/visits_cube_completeness")

    def validate(args: argparse.Namespace) -> None:
        for url in args.notify_url:
            if not url.startswith(("http://", "https://")):
                parser.error(f"--notify-url must be an http:// or https:// URL, got {url!r}")
        if args.wait_for_hours < 0 or args.poll_interval <= 0:
            parser.error(f"--wait-for-hours must be >= 0 and --poll-interval > 0, got {args.wait_for_hours} and "
                         f"{args.poll_interval}")

    return run_job(NAME, parser, argv, lambda args, settings: plan(Options.resolve(args, settings)),
                   validate=validate)


if __name__ == "__main__":
    sys.exit(main())
