"""Checks shared by the streaming job's tests (classic and Spark Connect): the input, and exactly once in every sink."""

from __future__ import annotations

import json
from pathlib import Path

from spark_flows.book.samples import write_visit_events
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers import PUBLISHED_MARKER

FILES = 6  # 3 files a day (8 hours each) over 2 days: one micro-batch per file


def write_input(data_root: str, rows_per_hour: int = 2) -> list[str]:
    return write_visit_events(None, f"{data_root}/raw/visit_events", "2024-01-01", days=2, files_per_day=3,
                              rows_per_hour=rows_per_hour)


def assert_each_event_once_in_every_sink(spark, data_root: str, batches: int) -> None:
    """Every input event exactly once in both Delta tables and in the CSV export; one txn per micro-batch."""
    expected = {r.visit_id for r in spark.read.json(f"{data_root}/raw/visit_events").select("visit_id").collect()}
    storage = Storage(spark)
    events_path, pages_path = f"{data_root}/tables/visits_events", f"{data_root}/tables/visits_pages"
    events = spark.read.format("delta").load(events_path)
    ids = [r.visit_id for r in events.select("visit_id").collect()]
    assert len(ids) == len(set(ids)) and set(ids) == expected, (len(ids), len(set(ids)), len(expected))
    for path in (events_path, pages_path):
        txns = delta_log.txn_commits(storage, path)
        assert len({t.app_id for t in txns}) == 1, txns
        assert [t.txn_version for t in txns] == list(range(batches)), (path, txns)
    pages = spark.read.format("delta").load(pages_path)
    assert pages.groupBy().sum("visits").first()[0] == len(expected)
    assert sorted(r.batch_id for r in pages.select("batch_id").distinct().collect()) == list(range(batches))
    csv_rows = []
    for batch in range(batches):
        csv_rows += _csv_batch(spark, Path(data_root, "exports", "visits_stream", f"batch={batch}"))
    assert len(csv_rows) == len(set(csv_rows)) and set(csv_rows) == expected
    assert not any(Path(data_root, "exports", "visits_stream", "_staging").rglob("*.csv"))


def _csv_batch(spark, folder: Path) -> list[str]:
    """A published CSV micro-batch's ids, after checking it is whole: its rows are the ones it recorded."""
    published = json.loads((folder / PUBLISHED_MARKER).read_text())
    rows = [r.visit_id for r in spark.read.option("header", "true").csv(str(folder)).select("visit_id").collect()]
    assert len(rows) == sum(published["batches"][app][folder.name.partition("=")[2]]
                            for app in published["batches"]), folder
    return rows


def assert_nothing_half_visible(spark, data_root: str) -> int:
    """What a reader sees right after a crash: every visible CSV micro-batch whole, every micro-batch at most once
    in each Delta table's log (from 0, no gap). Returns the micro-batches the events table holds."""
    storage = Storage(spark)
    for folder in sorted(Path(data_root, "exports", "visits_stream").glob("batch=*")):
        _csv_batch(spark, folder)
    held = 0
    for table in ("visits_events", "visits_pages"):
        path = f"{data_root}/tables/{table}"
        versions = ([t.txn_version for t in delta_log.txn_commits(storage, path)]
                    if delta_log.is_delta_table(storage, path) else [])
        assert versions == list(range(len(versions))), (table, versions)
        held = len(versions) if table == "visits_events" else held
    return held
