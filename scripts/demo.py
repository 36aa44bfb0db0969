"""`make demo`: generate the book's sample data, run every bundled job with spark-submit, summarise outputs.

Each job runs as its own `spark-submit` process in local mode with the embedded default configuration,
exactly as a user would launch it; this script's own Spark session only generates the inputs and reads
the outputs back for the summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from pyspark.sql import SparkSession  # noqa: E402

from spark_flows.book.samples import BOOK_MISSING_HOURS, write_devices, write_visit_events, write_visits  # noqa: E402
from spark_flows.core.config import load_settings  # noqa: E402
from spark_flows.core.session import get_session  # noqa: E402
from spark_flows.core.submit import run_submit, submit_command, submit_env  # noqa: E402
from spark_flows.io.storage import Storage  # noqa: E402

DATA = "data/demo"
Summary = Callable[[SparkSession], str]


@dataclass
class DemoJob:
    title: str
    job: str
    args: list[str]
    summary: Summary
    expect_exit: int = 0
    background: DemoJob | None = None  # started first and awaited after this job (a consumer waiting for it)
    before: Callable[[SparkSession], str] | None = None  # prepares the job's input; says what it did


def delta_rows(path: str) -> Summary:
    return lambda spark: f"{spark.read.format('delta').load(path).count()} rows in {path}"


def csv_rows(spark: SparkSession, path: str) -> int:
    return spark.read.options(header="true", sep=";").csv(path).count()


def ledger_summary() -> Summary:
    def summary(spark: SparkSession) -> str:
        from spark_flows.patterns.runners import RunLedger
        statuses = RunLedger(spark, f"{DATA}/_ledger/runs").statuses("visits_trend_generator")
        return "ledger: " + ", ".join(f"{d} {s}" for d, s in sorted(statuses.items()))
    return summary


def per_type_summary(date_key: str) -> Summary:
    def summary(spark: SparkSession) -> str:
        rows = spark.read.format("delta").load(f"{DATA}/tables/devices_per_type").where(f"date = '{date_key}'")
        types = ", ".join(f"{r.type}={r.devices}" for r in rows.orderBy("type").collect())
        marker = Storage(spark).read_json(f"{DATA}/tables/_ready/devices/{date_key}.json")
        trig = f"; triggered consumer exit {marker['triggered']['exit_code']}" if marker.get("triggered") else ""
        return f"marker rows={marker['rows']} version={marker['table_version']}{trig}; per type: {types}"
    return summary


def route_summary(output: str) -> Summary:
    def summary(spark: SparkSession) -> str:
        record = Storage(spark).read_json(f"{output}/_ROUTE.json")
        return f"branch {record['branch']} because {record['reason']}; {record['rows']} rows in {output}"
    return summary


def completeness_summary(date_key: str) -> Summary:
    def summary(spark: SparkSession) -> str:
        row = spark.read.format("delta").load(f"{DATA}/tables/visits_cube_completeness") \
            .where(f"date = '{date_key}'").first()
        cube = spark.read.format("delta").load(f"{DATA}/tables/visits_cube").where(f"date = '{date_key}'")
        total = cube.where("grouping_id = 3").first()
        day = f"{date_key[:4]}-{date_key[4:6]}-{date_key[6:]}"
        flow = Storage(spark).read_json(f"{DATA}/_flows/visits_cube/{day}.json")
        facts = {n["id"]: n.get("facts", {}) for n in flow["nodes"]}
        failed = sorted(i.removeprefix("hours.") for i, f in facts.items()
                        if i.startswith("hours.") and f.get("status") == "failed")
        return (f"{cube.count()} cube rows, {total.visits if total else 0} visits, ratio {row.ratio}, "
                f"is_approximate={row.is_approximate}, missing {row.missing}; its flow "
                f"({DATA}/_flows/visits_cube/{day}.mmd): rule {facts['hours'].get('rule')}, failed parents "
                f"{failed or 'none'}, published to {facts['published_to'].get('taken')}")
    return summary


def stream_summary(spark: SparkSession) -> str:
    from spark_flows.patterns.markers import list_markers

    events = spark.read.format("delta").load(f"{DATA}/tables/visits_events")
    pages = spark.read.format("delta").load(f"{DATA}/tables/visits_pages")
    batches = sorted(p.name for p in Path(DATA, "exports", "visits_stream").glob("batch=*"))
    marked = ", ".join(f"{m.execution_date} ({m.rows} rows, v{m.table_version})"
                       for m in list_markers(spark, f"{DATA}/tables/visits_events"))
    return (f"events {events.count()} rows ({events.select('visit_id').distinct().count()} distinct), pages "
            f"{pages.groupBy().sum('visits').first()[0]} visits, CSV {len(batches)} micro-batch folders "
            f"({csv_rows(spark, f'{DATA}/exports/visits_stream')} rows); day markers: {marked or 'none yet'}")


def new_events(day: str) -> Callable[[SparkSession], str]:
    def write(spark: SparkSession) -> str:
        files = write_visit_events(spark, f"{DATA}/raw/visit_events", day, files_per_day=4, rows_per_hour=50)
        return f"{len(files)} new event files for {day} arrived"
    return write


def demo_jobs() -> list[DemoJob]:
    common = ["--data-root", DATA, "--master", "local[2]"]
    return [
        DemoJob(
            "Local Sequencer: validate (boundary) -> enrich -> Delta",
            "jobs/devices_sequence.py",
            [*common, "--run-id", "demo-1"],
            delta_rows(f"{DATA}/tables/devices_clean"),
        ),
        DemoJob(
            "Parallel Split: read devices once -> devices + enriched Delta tables + CSV export",
            "jobs/devices_loader.py",
            [*common, "--batch-id", "1", "--csv", "--concurrency", "3"],
            lambda spark: (f"devices {delta_rows(f'{DATA}/tables/devices')(spark)}, "
                           f"enriched {delta_rows(f'{DATA}/tables/devices_enriched')(spark)}, CSV "
                           f"{csv_rows(spark, f'{DATA}/exports/devices/batch=1')} rows"),
        ),
        DemoJob(
            "Parallel Split replay: the same batch again writes nothing",
            "jobs/devices_loader.py",
            [*common, "--batch-id", "1", "--csv", "--concurrency", "3"],
            lambda spark: (f"devices still {spark.read.format('delta').load(f'{DATA}/tables/devices').count()} rows "
                           "(every branch skipped: batch 1 already committed)"),
        ),
        DemoJob(
            "Aligned Fan-In: 24 hourly partitions of 2024-01-01 -> visits cube",
            "jobs/visits_cube.py",
            [*common, "--execution-date", "2024-01-01"],
            completeness_summary("20240101"),
        ),
        DemoJob(
            "Aligned Fan-In refuses 2024-01-04 (5 hours missing): exit 1, nothing written",
            "jobs/visits_cube.py",
            [*common, "--execution-date", "2024-01-04"],
            lambda spark: "refused as expected: " + ("no" if not Storage(spark).exists(
                f"{DATA}/tables/visits_cube/date=20240104") else "UNEXPECTED") + " partition for 20240104",
            expect_exit=1,
        ),
        DemoJob(
            "Unaligned Fan-In: 2024-01-04 published as approximate, with its completeness row",
            "jobs/visits_cube.py",
            [*common, "--execution-date", "2024-01-04", "--mode", "unaligned"],
            completeness_summary("20240104"),
        ),
        DemoJob(
            "Exclusive Choice by factory: --output-type parquet",
            "jobs/devices_exporter.py",
            [*common, "--output-type", "parquet"],
            route_summary(f"{DATA}/exports/devices_parquet"),
        ),
        DemoJob(
            "Exclusive Choice by date: 2024-02-29, before the 2024-03-01 cut-over -> legacy CSV",
            "jobs/devices_exporter.py",
            [*common, "--route-by-date", "--migration-date", "2024-03-01", "--execution-date", "2024-02-29"],
            route_summary(f"{DATA}/exports/devices_csv_by_date/_routes/date=20240229"),
        ),
        DemoJob(
            "Exclusive Choice by date: 2024-03-01, the cut-over day -> Delta (one table, a partition per date)",
            "jobs/devices_exporter.py",
            [*common, "--route-by-date", "--migration-date", "2024-03-01", "--execution-date", "2024-03-01"],
            route_summary(f"{DATA}/exports/devices_delta_by_date/_routes/date=20240301"),
        ),
        DemoJob(
            "Isolated Sequencer (data-based): consumer started first waits for the producer's marker",
            "jobs/devices_loader.py",
            [*common, "--batch-id", "2", "--execution-date", "2024-01-01", "--run-id", "demo-producer"],
            per_type_summary("20240101"),
            background=DemoJob("consumer", "jobs/devices_aggregator.py",
                               [*common, "--execution-date", "2024-01-01", "--poll-interval", "1",
                                "--wait-timeout", "300"], per_type_summary("20240101")),
        ),
        DemoJob(
            "Isolated Sequencer (task-based): the producer triggers the consumer for 2024-01-02",
            "jobs/devices_loader.py",
            [*common, "--batch-id", "3", "--execution-date", "2024-01-02", "--trigger", "devices_aggregator"],
            per_type_summary("20240102"),
        ),
        DemoJob(
            "Single Runner: visits trend of 2024-01-02 (vs 2024-01-01), under the run lock, in the ledger",
            "jobs/visits_trend_generator.py",
            [*common, "--execution-date", "2024-01-02"],
            ledger_summary(),
        ),
        DemoJob(
            "Single Runner: 2024-01-04 is refused: 2024-01-03 has not run (depends-on-past)",
            "jobs/visits_trend_generator.py",
            [*common, "--execution-date", "2024-01-04"],
            ledger_summary(),
            expect_exit=1,
        ),
        DemoJob(
            "Concurrent Runner: backfill visits_cube 2024-01-01..04, 3 dates at once (01-04 partial: unaligned)",
            "jobs/backfill.py",
            [*common, "--job", "visits_cube", "--from", "2024-01-01", "--to", "2024-01-04", "--concurrency", "3",
             "--", "--mode", "unaligned"],
            lambda spark: "cube dates: " + ", ".join(sorted(r.date for r in spark.read.format("delta").load(
                f"{DATA}/tables/visits_cube").select("date").distinct().collect())),
        ),
        DemoJob(
            "Streaming (available-now): visit events of 2024-01-01..02 in micro-batches -> 2 Delta tables + CSV, "
            "exactly once; a day's marker once the watermark passes it",
            "jobs/visits_stream.py",
            [*common, "--files-per-batch", "2"],
            stream_summary,
        ),
        DemoJob(
            "Streaming (continuous): new files for 2024-01-03; a micro-batch every 2 s until 2 micro-batches ran",
            "jobs/visits_stream.py",
            [*common, "--files-per-batch", "2", "--trigger", "continuous", "--interval", "2 seconds",
             "--max-batches", "2"],
            stream_summary,
            before=new_events("2024-01-03"),
        ),
        DemoJob(
            "Concurrent Runner refuses to parallelise a Single Runner: trend 2024-01-03..04 in order",
            "jobs/backfill.py",
            [*common, "--job", "visits_trend_generator", "--from", "2024-01-03", "--to", "2024-01-04",
             "--concurrency", "2"],
            ledger_summary(),
        ),
    ]


def main() -> int:
    os.chdir(ROOT)
    settings = load_settings(overrides={"master": "local[2]"})
    began = time.monotonic()
    spark = get_session(settings)
    Storage(spark).delete(DATA)
    print(f"== generating sample data under {DATA}")
    write_devices(spark, f"{DATA}/raw/devices", rows=5000)
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        write_visits(spark, f"{DATA}/raw/visits", day, rows_per_hour=50)
    write_visits(spark, f"{DATA}/raw/visits", "2024-01-04", rows_per_hour=50, missing_hours=BOOK_MISSING_HOURS)
    events = write_visit_events(spark, f"{DATA}/raw/visit_events", "2024-01-01", days=2, files_per_day=4,
                                rows_per_hour=50)
    print("   devices: 5000 rows; visits: 2024-01-01..03 complete, 2024-01-04 missing hours "
          f"{', '.join(f'{h:02d}' for h in BOOK_MISSING_HOURS)}; visit events: {len(events)} files (2024-01-01..02)")
    failures = 0
    for job in demo_jobs():
        print(f"== {job.title}\n   spark-submit {job.job} {' '.join(job.args)}")
        if job.before:
            print(f"   {job.before(spark)}")
        started = time.monotonic()
        waiting = None
        if job.background:
            print(f"   (first, in the background) spark-submit {job.background.job} {' '.join(job.background.args)}")
            waiting = subprocess.Popen(submit_command(job.background.job, job.background.args, settings,
                                                      master="local[2]"), env=submit_env(),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(15)  # let the consumer start and poll before the producer exists
        result = run_submit(submit_command(job.job, job.args, settings, master="local[2]"))
        if waiting is not None:
            err, _ = waiting.communicate(timeout=600)
            if waiting.returncode != 0:
                failures += 1
                print(f"   FAILED: background consumer exit {waiting.returncode}: {err.strip().splitlines()[-1:]}")
                continue
            print("   background consumer exit 0 after waiting for the marker")
        seconds = time.monotonic() - started
        if result.returncode != job.expect_exit:
            failures += 1
            print(f"   FAILED: exit {result.returncode} (expected {job.expect_exit}) after {seconds:.0f}s\n"
                  + "\n".join("   | " + line for line in result.output_tail.splitlines()))
            continue
        print(f"   exit {result.returncode} in {seconds:.0f}s: {job.summary(spark)}")
    spark.stop()
    print(f"== demo finished in {time.monotonic() - began:.0f}s: "
          f"{len(demo_jobs()) - failures} of {len(demo_jobs())} jobs as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
