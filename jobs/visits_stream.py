"""Streaming job: visit events (JSON files) through a split into two Delta tables and a CSV export, each
micro-batch exactly once, with a readiness marker per event day.

    spark-submit jobs/visits_stream.py                                  # what the input holds now, then stop
    spark-submit jobs/visits_stream.py --trigger continuous --interval "5 seconds"   # until stopped

Each micro-batch is read once (persisted), prepared (a Local Sequencer: valid rows, event date), then
written to the ``visits_events`` Delta table (partitioned by event date), the ``visits_pages`` Delta table
(visits per page and day, one row set per micro-batch) and a CSV export published atomically per micro-batch
(``<exports>/visits_stream/batch=<id>``). The sinks record the micro-batch id under the app id
``visits_stream.<query id>``: killed at any point, the job restarted from its checkpoint writes every event
exactly once. Once the event-time watermark (latest event minus ``--delay``) passes a day, the events
table's readiness marker for that day is written, for batch consumers.

A line that does not parse (not JSON, a value of the wrong type) fails its micro-batch, naming the file; with
``--on-bad-records quarantine`` it is set aside in ``<events table>_bad_records`` and the rest goes on.

A new ``--checkpoint`` would be a new query, reading the whole input again into sinks that already hold it: the
job refuses to start on a new checkpoint while its tables hold an earlier query's micro-batches
(``CHECKPOINT_LOST``). Restore the checkpoint, or delete the outputs with it to start over.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flows.apps.harness import job_parser, run_job
from spark_flows.book.datasets import VISIT_EVENTS_SCHEMA
from spark_flows.core.config import Settings
from spark_flows.flow.graph import Graph
from spark_flows.io import delta_log
from spark_flows.io.sources import BadRecordsPolicy, checked_each_batch, read_json_stream
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, DeltaWriter, FilesWriter, PendingBatch
from spark_flows.patterns.sequence import Sequence, step
from spark_flows.patterns.split import Branch, write_branch
from spark_flows.patterns.streaming import (
    PeriodMarkers,
    SplitEachBatch,
    check_checkpoint_kept,
    committed_batches,
    each_batch,
    query_id,
    sequence_each_batch,
    start,
    stream_app_id,
    stream_graph,
)

NAME = "visits_stream"
TRIGGERS = {"available-now": "available_now", "continuous": "processing_time"}


def prepare() -> Sequence:
    """Each micro-batch's preparation: rows with an id and an event time, then their event date."""
    return Sequence("prepare", [
        step("valid", lambda df: df.where(F.col("visit_id").isNotNull() & F.col("event_time").isNotNull())),
        step("dated", lambda df: df.withColumn("event_date", F.to_date("event_time"))),
    ])


def per_page(df: DataFrame) -> DataFrame:
    """Visits and total duration per event day and page, in one micro-batch."""
    return df.groupBy("event_date", "page").agg(F.count(F.lit(1)).alias("visits"),
                                                F.sum("duration_ms").alias("duration_ms"))


@dataclass(frozen=True)
class Options:
    """The job's flags and settings, resolved once."""

    input: str
    checkpoint: str
    events: str
    pages: str
    csv: str
    trigger: str
    interval: str
    max_batches: int | None
    files_per_batch: int
    delay: dt.timedelta
    concurrency: int
    on_bad_records: BadRecordsPolicy

    @classmethod
    def resolve(cls, args: argparse.Namespace, settings: Settings) -> Options:
        """Input, checkpoint and outputs from the flags or under the data root, and the query's settings."""
        return cls(args.input or settings.path("raw", "visit_events"),
                   args.checkpoint or settings.path("checkpoints", NAME),
                   args.events_table or settings.path("tables", "visits_events"),
                   args.pages_table or settings.path("tables", "visits_pages"),
                   args.csv_output or settings.path("exports", NAME), args.trigger, args.interval,
                   args.max_batches, args.files_per_batch, dt.timedelta(minutes=args.delay_minutes),
                   args.concurrency, args.on_bad_records)

    def sinks(self, batch: Batch | PendingBatch) -> list[Branch]:
        """The sinks of one micro-batch."""
        version = batch.version
        return [
            write_branch("events", DeltaWriter(partition_by=["event_date"]), self.events, batch=batch),
            write_branch("pages", DeltaWriter(partition_by=["event_date"]), self.pages, batch=batch,
                         transform=lambda df: per_page(df).withColumn("batch_id", F.lit(version))),
            write_branch("csv", FilesWriter("csv", replace={"batch": str(version)}, options={"header": "true"}),
                         self.csv, batch=batch,
                         transform=lambda df: df.select("visit_id", "event_time", "user_id", "page", "duration_ms")),
        ]


@dataclass(frozen=True)
class Stream:
    """The job's blocks: the file source, each micro-batch persisted once, prepared, split into the sinks,
    then the day markers."""

    options: Options
    prepare: Sequence
    sinks: SplitEachBatch
    markers: PeriodMarkers

    def graph(self) -> Graph:
        options = self.options
        return stream_graph(NAME, f"visit events (JSON files, {options.files_per_batch} per micro-batch)",
                            Graph.of(NAME, self.prepare, self.sinks, self.markers),
                            trigger=TRIGGERS[options.trigger])

    def run(self, spark: SparkSession) -> int:
        options = self.options
        events = read_json_stream(spark, options.input, VISIT_EVENTS_SCHEMA,
                                  maxFilesPerTrigger=str(options.files_per_batch))
        storage = Storage(spark)
        check_checkpoint_kept(storage, NAME, options.checkpoint, [options.events, options.pages])
        before = set(committed_batches(storage, options.checkpoint))
        handler = each_batch(sequence_each_batch(self.prepare, self.sinks), self.markers)
        checked = checked_each_batch(handler, where=options.input, on_bad_records=options.on_bad_records,
                                     quarantine_path=f"{options.events}_bad_records")
        query = start(events, checked, name=NAME, checkpoint=options.checkpoint,
                      trigger=TRIGGERS[options.trigger], interval=options.interval)
        if options.trigger == "continuous":
            _run_until_stopped(query, lambda: len(set(committed_batches(storage, options.checkpoint)) - before),
                               options.max_batches)
        query.awaitTermination()
        done = sorted(set(committed_batches(storage, options.checkpoint)) - before)
        rows = 0
        if done:  # the events each micro-batch brought, as its commit to the events table recorded them
            app = stream_app_id(NAME, query_id(storage, options.checkpoint))
            commits = delta_log.txn_commits(storage, options.events, app)
            rows = sum(c.rows or 0 for c in commits if c.txn_version in done)
        print(f"{NAME}: {len(done)} micro-batch(es), {rows} rows; batch ids {done}")
        return 0


def plan(options: Options) -> Stream:
    """Build the job's blocks from its options."""
    return Stream(
        options,
        prepare(),
        SplitEachBatch("sinks", options.sinks, options.concurrency,
                       drawn_as=PendingBatch(stream_app_id(NAME, "(query id)"), "(micro-batch id)")),
        PeriodMarkers(options.events, event_time="event_time", partition_column="event_date", delay=options.delay,
                      producer=NAME),
    )


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--input", help="directory of JSON lines files (default: <data-root>/raw/visit_events)")
    parser.add_argument("--checkpoint", help="the query's checkpoint (default: <data-root>/checkpoints/visits_stream)")
    parser.add_argument("--events-table", help="default: <data-root>/tables/visits_events")
    parser.add_argument("--pages-table", help="default: <data-root>/tables/visits_pages")
    parser.add_argument("--csv-output", help="default: <data-root>/exports/visits_stream")
    parser.add_argument("--trigger", choices=sorted(TRIGGERS), default="available-now",
                        help="available-now: what the input holds, then stop; continuous: one micro-batch every "
                             "--interval until stopped (SIGTERM/SIGINT) or --max-batches (default: %(default)s)")
    parser.add_argument("--interval", default="5 seconds", help="continuous: time between micro-batches")
    parser.add_argument("--max-batches", type=int, help="continuous: stop after this many micro-batches")
    parser.add_argument("--files-per-batch", type=int, default=1, help="input files per micro-batch")
    parser.add_argument("--delay-minutes", type=int, default=60,
                        help="watermark delay: a day's marker is written once an event this much later arrives")
    parser.add_argument("--concurrency", type=int, default=1, help="sinks written at once (default: %(default)s)")
    parser.add_argument("--on-bad-records", choices=["fail", "quarantine"], default="fail",
                        help="lines that do not parse (not JSON, a value of the wrong type): fail the micro-batch "
                             "naming the files, or set them aside in <events table>_bad_records and go on "
                             "(default: %(default)s)")

    def validate(args: argparse.Namespace) -> None:
        for flag in ("files_per_batch", "concurrency", "max_batches"):
            value = getattr(args, flag)
            if value is not None and value < 1:
                parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
        if args.delay_minutes < 0:
            parser.error(f"--delay-minutes must be >= 0, got {args.delay_minutes}")
        if args.max_batches and args.trigger != "continuous":
            parser.error("--max-batches applies to --trigger continuous")

    return run_job(NAME, parser, argv, lambda args, settings: plan(Options.resolve(args, settings)),
                   validate=validate)


def _run_until_stopped(query: Any, ran: Callable[[], int], max_batches: int | None) -> None:
    """Continuous mode: wait for SIGTERM/SIGINT, or until ``ran()`` counts ``max_batches`` micro-batches;
    then stop the query between micro-batches."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    while query.isActive and not stopping and (max_batches is None or ran() < max_batches):
        query.awaitTermination(1)
    while query.isActive and query.status["isTriggerActive"]:  # let the running micro-batch finish
        query.awaitTermination(0.2)
    query.stop()

if __name__ == "__main__":
    sys.exit(main())
