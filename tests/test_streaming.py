"""The patterns on Structured Streaming micro-batches (``spark_flows.patterns.streaming``), on both backends."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.errors import StreamingQueryException
from pyspark.sql import functions as F

from spark_flows.book.samples import VISIT_EVENTS_SCHEMA, write_visit_events
from spark_flows.core.waiting import Wait
from spark_flows.errors import SchemaConflictError, SparkFlowsValueError, StreamingError
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers import PUBLISHED_MARKER, Batch, CsvWriter, DeltaWriter, FilesWriter, read_published
from spark_flows.patterns.choice import SchemaRule, route_by_schema
from spark_flows.patterns.markers import list_markers, read_marker, read_when_ready
from spark_flows.patterns.sequence import Sequence, step
from spark_flows.patterns.split import branch, write_branch
from spark_flows.patterns.streaming import (
    MicroBatches,
    PeriodMarkers,
    choose_each_batch,
    each_batch,
    query_id,
    sequence_each_batch,
    sources_completeness,
    split_each_batch,
    start,
    tag_sources,
)


def _events(spark, root: Path, files: int = 3):
    write_visit_events(None, str(root / "in"), "2024-01-01", files_per_day=files, rows_per_hour=2)
    return spark.readStream.schema(VISIT_EVENTS_SCHEMA).option("maxFilesPerTrigger", 1).json(str(root / "in"))


def _sinks(root: Path):
    return lambda batch: [
        write_branch("table", DeltaWriter(), str(root / "table"), batch=batch),
        write_branch("csv", CsvWriter(replace={"batch": str(batch.version)}), str(root / "csv"), batch=batch),
    ]


def _txns(spark, path: Path) -> list[tuple[str, int]]:
    return [(c.app_id, c.txn_version) for c in delta_log.txn_commits(Storage(spark), str(path))]


def test_a_split_per_micro_batch_writes_each_row_once_in_every_sink_under_the_query_s_app_id(
        spark, tmp_path: Path) -> None:
    query = start(_events(spark, tmp_path), split_each_batch("sinks", _sinks(tmp_path)), name="visits",
                  checkpoint=str(tmp_path / "cp"))
    query.awaitTermination()
    app = f"visits.{query_id(Storage(spark), str(tmp_path / 'cp'))}"
    assert app == f"visits.{query.id}"
    table = spark.read.format("delta").load(str(tmp_path / "table"))
    assert (table.count(), table.select("visit_id").distinct().count()) == (48, 48)
    assert _txns(spark, tmp_path / "table") == [(app, 0), (app, 1), (app, 2)]
    csv = spark.read.option("header", "true").csv(str(tmp_path / "csv"))  # CsvWriter's ';' is not needed: count only
    assert csv.count() == 48 and sorted(r[0] for r in csv.select("batch").distinct().collect()) == [0, 1, 2]
    for version in range(3):
        published = json.loads((tmp_path / "csv" / f"batch={version}" / PUBLISHED_MARKER).read_text())
        assert published["batches"] == {app: {str(version): 16}}


def test_a_replayed_micro_batch_writes_nothing_and_a_new_checkpoint_is_a_new_app_id(spark, tmp_path: Path) -> None:
    query = start(_events(spark, tmp_path), split_each_batch("sinks", _sinks(tmp_path)), name="visits",
                  checkpoint=str(tmp_path / "cp"))
    query.awaitTermination()
    first = _txns(spark, tmp_path / "table")
    # the restart of an interrupted micro-batch: the same checkpoint, the same micro-batch id, the same rows
    replay = MicroBatches("visits", split_each_batch("sinks", _sinks(tmp_path)), checkpoint=str(tmp_path / "cp"))
    replay(spark.read.schema(VISIT_EVENTS_SCHEMA).json(str(tmp_path / "in" / "visits-20240101-01.json")), 1)
    assert _txns(spark, tmp_path / "table") == first
    assert spark.read.format("delta").load(str(tmp_path / "table")).count() == 48
    # a new checkpoint is a new query: its micro-batches 0.. are written under another app id, not skipped
    again = start(_events(spark, tmp_path), split_each_batch("sinks", lambda batch: _sinks(tmp_path)(batch)[:1]),
                  name="visits", checkpoint=str(tmp_path / "cp2"))
    again.awaitTermination()
    apps = [app for app, _ in _txns(spark, tmp_path / "table")]
    assert len(set(apps)) == 2 and apps.count(apps[-1]) == 3
    assert spark.read.format("delta").load(str(tmp_path / "table")).count() == 96


def test_a_failed_sink_fails_the_micro_batch_and_the_restart_writes_every_sink_exactly_once(
        spark, tmp_path: Path) -> None:
    flag = tmp_path / "fail-csv-once"
    flag.write_text("x")

    def csv_then_fail(batch: Batch):
        sinks = _sinks(tmp_path)(batch)

        def run(df):
            if batch.version == 1 and flag.exists():
                flag.unlink()
                raise RuntimeError("disk full")
            return sinks[1].run(df)
        return [sinks[0], branch("csv", run, key=sinks[1].key)]

    def attempt():
        query = start(_events(spark, tmp_path), split_each_batch("sinks", csv_then_fail), name="visits",
                      checkpoint=str(tmp_path / "cp"))
        query.awaitTermination()

    with pytest.raises(StreamingQueryException, match="disk full"):
        attempt()
    app = _txns(spark, tmp_path / "table")[0][0]
    assert _txns(spark, tmp_path / "table") == [(app, 0), (app, 1)]  # the table committed batch 1 before the failure
    assert not (tmp_path / "csv" / "batch=1").exists()
    attempt()
    assert _txns(spark, tmp_path / "table") == [(app, 0), (app, 1), (app, 2)]
    assert spark.read.format("delta").load(str(tmp_path / "table")).count() == 48
    assert spark.read.option("header", "true").csv(str(tmp_path / "csv")).count() == 48


def test_an_empty_micro_batch_writes_nothing(spark, tmp_path: Path) -> None:
    start(_events(spark, tmp_path, files=1), split_each_batch("sinks", _sinks(tmp_path)), name="visits",
          checkpoint=str(tmp_path / "cp")).awaitTermination()
    handler = MicroBatches("visits", split_each_batch("sinks", _sinks(tmp_path)), checkpoint=str(tmp_path / "cp"))
    handler(spark.read.schema(VISIT_EVENTS_SCHEMA).json(str(tmp_path / "in")).limit(0), 7)
    assert [v for _, v in _txns(spark, tmp_path / "table")] == [0]
    assert not (tmp_path / "csv" / "batch=7").exists()


def test_a_checkpoint_without_a_query_id_is_refused_naming_it(spark, tmp_path: Path) -> None:
    handler = MicroBatches("visits", lambda df, batch: None, checkpoint=str(tmp_path / "never-started"))
    with pytest.raises(StreamingError, match="never-started") as err:
        handler(spark.range(1), 0)
    assert err.value.getCondition() == "CHECKPOINT_WITHOUT_QUERY_ID"
    with pytest.raises(SparkFlowsValueError, match="streaming DataFrame"):
        start(spark.range(1), lambda df, batch: None, name="x", checkpoint=str(tmp_path / "cp"))


def test_a_sequence_then_a_choice_per_micro_batch_routes_each_batch_by_its_schema(spark, tmp_path: Path) -> None:
    prepare = Sequence("prepare", [step("dated", lambda df: df.withColumn("event_date", F.to_date("event_time")))])
    rules = [SchemaRule("dated", has_fields=("event_date",))]

    def choose(df, batch):
        return route_by_schema(df.schema, rules, default="raw")

    sink = choose_each_batch(choose, {
        "dated": split_each_batch("dated", lambda batch: [
            write_branch("table", DeltaWriter(partition_by=["event_date"]), str(tmp_path / "dated"), batch=batch)]),
        "raw": split_each_batch("raw", lambda batch: [
            write_branch("table", DeltaWriter(), str(tmp_path / "raw"), batch=batch)]),
    })
    start(_events(spark, tmp_path, files=2), sequence_each_batch(prepare, sink), name="routed",
          checkpoint=str(tmp_path / "cp")).awaitTermination()
    dated = spark.read.format("delta").load(str(tmp_path / "dated"))
    assert dated.count() == 48 and "event_date" in dated.columns
    assert not (tmp_path / "raw").exists()
    with pytest.raises(SparkFlowsValueError, match="one of"):
        choose_each_batch(lambda df, batch: "elsewhere", {"raw": lambda df, batch: None})(spark.range(1), Batch("a", 0))


def test_stream_fan_in_checks_schemas_and_tells_which_sources_contributed_to_a_micro_batch(
        spark, tmp_path: Path) -> None:
    for source in ("web", "app"):
        (tmp_path / source).mkdir()
    (tmp_path / "web" / "visits.json").write_text('{"visit_id": "v1", "page": "home"}\n')
    web = spark.readStream.schema("visit_id STRING, page STRING").json(str(tmp_path / "web"))
    app = spark.readStream.schema("visit_id STRING, page STRING, screen STRING").json(str(tmp_path / "app"))
    with pytest.raises(SchemaConflictError, match="screen"):
        tag_sources({"web": web, "app": app})
    merged = tag_sources({"web": web, "app": app}, allow_missing_columns=True)
    assert merged.isStreaming and set(merged.columns) == {"visit_id", "page", "source", "screen"}
    seen = tmp_path / "completeness.json"  # written by the handler, wherever it runs (a Connect server's worker)

    def record(df, batch):
        seen.write_text(json.dumps(sources_completeness(df, ["web", "app"]).as_record()))

    start(merged, record, name="fan_in", checkpoint=str(tmp_path / "cp")).awaitTermination()
    assert json.loads(seen.read_text()) == {"expected": 2, "present": 1, "ratio": 0.5, "is_approximate": True,
                                            "missing": {"app": "no rows in this micro-batch"}}


def _day_rows(spark, root: Path, stamps: list[str]):
    rows = [(f"v{i}", dt.datetime.fromisoformat(t)) for i, t in enumerate(stamps)]
    return spark.createDataFrame(rows, "visit_id STRING, event_time TIMESTAMP").withColumn(
        "event_date", F.to_date("event_time"))


def test_a_day_s_marker_is_written_once_the_watermark_passes_it_and_again_for_late_rows(
        spark, tmp_path: Path) -> None:
    table = str(tmp_path / "events")
    markers = PeriodMarkers(table, event_time="event_time", partition_column="event_date",
                            delay=dt.timedelta(hours=1), producer="stream")
    writer = DeltaWriter(partition_by=["event_date"])

    def micro_batch(version: int, stamps: list[str]) -> list[dt.date]:
        df = _day_rows(spark, tmp_path, stamps)
        writer.write(df, table, batch=Batch("stream.q", version))
        return markers(df, Batch("stream.q", version))

    day = dt.date(2024, 1, 1)
    assert micro_batch(0, ["2024-01-01T10:00:00", "2024-01-01T23:30:00"]) == []
    assert micro_batch(1, ["2024-01-02T00:30:00"]) == []  # watermark 2024-01-01T23:30: the day is still open
    assert read_marker(spark, table, day) is None
    assert micro_batch(2, ["2024-01-02T01:10:00"]) == [day]
    marker = read_marker(spark, table, day)
    assert (marker.rows, marker.partition, marker.table_version) == (2, {"event_date": "2024-01-01"}, 2)
    assert [m.execution_date for m in list_markers(spark, table)] == ["2024-01-01"]  # not the _watermark.json
    # replaying micro-batch 2 (a restart) publishes nothing again and does not move the watermark
    assert micro_batch(2, ["2024-01-02T01:10:00"]) == []
    assert markers.state(Storage(spark)).max_event_time == "2024-01-02T01:10:00"
    frame, _ = read_when_ready(spark, table, day, consumer="daily_report", wait=Wait(0))
    assert frame.count() == 2
    # a late row for the closed day: written, and the day's marker published again with it; the consumer is stale
    assert micro_batch(3, ["2024-01-01T12:00:00"]) == [day]
    marker = read_marker(spark, table, day)
    assert (marker.rows, marker.table_version, marker.stale_consumers) == (3, 3, ("daily_report",))
    assert "event_date" in json.loads(marker.schema)["fields"][-1]["name"]


def test_each_batch_runs_handlers_in_order_on_the_same_persisted_micro_batch(spark, tmp_path: Path) -> None:
    log = tmp_path / "order.txt"  # appended by the handlers, wherever they run

    def entry(text: str) -> None:
        with log.open("a") as out:
            out.write(text + "\n")

    handler = each_batch(lambda df, b: entry(f"a{b.version}:{df.count()}"),
                         lambda df, b: entry(f"b{b.version}:{df.is_cached}"))
    query = start(_events(spark, tmp_path, files=1), handler, name="both", checkpoint=str(tmp_path / "cp"))
    query.awaitTermination()
    assert log.read_text().split() == ["a0:48", "b0:True"]
    with pytest.raises(TypeError):
        each_batch("not a handler")  # type: ignore[arg-type]


@pytest.mark.classic
def test_the_micro_batch_is_scanned_once_for_three_sinks(spark, tmp_path: Path) -> None:
    from spark_flows.core.metrics import SparkMeter

    events = _events(spark, tmp_path, files=1)

    def three(batch: Batch):
        return [*_sinks(tmp_path)(batch),
                write_branch("json", FilesWriter("json"), str(tmp_path / "json" / str(batch.version)), batch=batch)]

    with SparkMeter(spark, all_threads=True) as meter:
        start(events, split_each_batch("sinks", three), name="once", checkpoint=str(tmp_path / "cp")).awaitTermination()
    # foreachBatch hands the micro-batch over as an RDD: each read of it not served by the cache runs its scan
    assert [r.rows for r in meter.scan.micro_batch(VISIT_EVENTS_SCHEMA.fieldNames())] == [48]
    assert spark.read.format("delta").load(str(tmp_path / "table")).count() == 48
    naive = tmp_path / "naive"
    with SparkMeter(spark, all_threads=True) as meter:
        start(events, split_each_batch("sinks", lambda batch: _sinks(naive)(batch)), name="naive", storage_level=None,
              checkpoint=str(tmp_path / "cp-naive")).awaitTermination()
    # the emptiness checks and each sink read the micro-batch again
    assert len(meter.scan.micro_batch(VISIT_EVENTS_SCHEMA.fieldNames())) >= 3


def test_with_its_checkpoint_and_sinks_on_s3_a_failed_micro_batch_is_restarted_and_every_sink_holds_it_once(
        spark, tmp_path: Path, s3_root: str) -> None:
    root, flag = f"{s3_root}/stream-{tmp_path.name}", tmp_path / "fail-csv-once"
    flag.write_text("x")

    def sinks(batch: Batch):
        table = write_branch("table", DeltaWriter(), f"{root}/table", batch=batch)
        csv = write_branch("csv", CsvWriter(replace={"batch": str(batch.version)}), f"{root}/csv", batch=batch)

        def csv_unless_failing(df):
            if batch.version == 1 and flag.exists():
                flag.unlink()
                raise RuntimeError("disk full")
            return csv.run(df)
        return [table, branch("csv", csv_unless_failing, key=csv.key)]

    def attempt() -> None:
        start(_events(spark, tmp_path), split_each_batch("sinks", sinks), name="visits",
              checkpoint=f"{root}/checkpoint").awaitTermination()

    with pytest.raises(StreamingQueryException, match="disk full"):
        attempt()
    storage = Storage(spark)
    txns = [(c.app_id, c.txn_version) for c in delta_log.txn_commits(storage, f"{root}/table")]
    app = txns[0][0]
    assert query_id(storage, f"{root}/checkpoint") in app, "the query id kept in the checkpoint on S3"
    assert txns == [(app, 0), (app, 1)], "the table committed micro-batch 1 before the CSV failed"
    assert not storage.exists(f"{root}/csv/batch=1/{PUBLISHED_MARKER}"), "the failed batch's CSV is not published"
    attempt()  # the restart re-runs micro-batch 1: the table skips it, the CSV writes it
    assert [(c.app_id, c.txn_version) for c in delta_log.txn_commits(storage, f"{root}/table")] == [
        (app, 0), (app, 1), (app, 2)]
    assert spark.read.format("delta").load(f"{root}/table").count() == 48
    published = [read_published(spark, f"{root}/csv/batch={v}").count() for v in range(3)]
    assert sum(published) == 48 and all(published), published
