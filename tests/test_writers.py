from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality

from spark_flows.errors import SparkFlowsValueError, StorageError, WriteRefusedError
from spark_flows.io import delta_conflicts, delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers import PUBLISHED_MARKER, Batch, CsvWriter, DeltaWriter, FilesWriter, ParquetWriter

SCHEMA = "id int, name string"


def _df(spark, n: int = 5, start: int = 0):
    return spark.createDataFrame([(i, f"n{i}") for i in range(start, start + n)], SCHEMA)


def _data_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.parquet"))


def _csv(spark, path: str):
    return spark.read.option("sep", ";").option("header", "true").schema(SCHEMA).csv(path)


def test_replay_of_committed_batch_writes_nothing_and_reports_the_committed_batch(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    first = DeltaWriter().write(_df(spark), path, batch=Batch("app", 1))
    files = _data_files(tmp_path / "t")
    replay = DeltaWriter().write(_df(spark), path, batch=Batch("app", 1))
    assert (first.rows, first.skipped, first.batch_rows, first.table_version) == (5, False, 5, 0)
    assert replay.skipped and replay.reason == "batch 1 already committed (app app, table version 0)"
    assert (replay.rows, replay.batch_rows, replay.table_version) == (0, 5, 0)
    assert _data_files(tmp_path / "t") == files
    assert spark.read.format("delta").load(path).count() == 5


def test_older_batch_that_never_committed_is_refused_not_reported_as_skipped(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    DeltaWriter().write(_df(spark, 2), path, batch=Batch("app", 2))
    with pytest.raises(WriteRefusedError, match="batch 1 of app app is older than batch 2") as refused:
        DeltaWriter().write(_df(spark, 3, start=10), path, batch=Batch("app", 1))
    assert refused.value.getCondition() == "BATCH_OUT_OF_ORDER"
    assert refused.value.getMessageParameters() == {"path": path, "app_id": "app", "version": 1, "recorded": 2}
    assert spark.read.format("delta").load(path).count() == 2


def test_batch_that_lost_a_conflict_then_retried_is_refused_while_committed_ones_skip(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    writer = DeltaWriter()
    writer.write(_df(spark, 1), path, batch=Batch("app", 1))
    writer.write(_df(spark, 3, start=100), path, batch=Batch("app", 3))  # batch 3 wins; batch 2 is retried later
    with pytest.raises(WriteRefusedError) as refused:
        writer.write(_df(spark, 2, start=50), path, batch=Batch("app", 2))
    assert refused.value.getCondition() == "BATCH_OUT_OF_ORDER"
    assert writer.write(_df(spark, 1), path, batch=Batch("app", 1)).skipped
    assert writer.write(_df(spark, 3), path, batch=Batch("app", 3)).batch_rows == 3
    assert writer.write(_df(spark, 1), path, batch=Batch("other", 1)).rows == 1
    assert spark.read.format("delta").load(path).count() == 5


def test_overwrite_mode_replay_keeps_table_and_new_version_replaces(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    writer = DeltaWriter(mode="overwrite")
    writer.write(_df(spark, 3), path, batch=Batch("app", 1))
    assert writer.write(_df(spark, 7), path, batch=Batch("app", 1)).skipped
    assert spark.read.format("delta").load(path).count() == 3
    writer.write(_df(spark, 7), path, batch=Batch("app", 2))
    assert spark.read.format("delta").load(path).count() == 7


@pytest.mark.parametrize("writer", [DeltaWriter(), CsvWriter()], ids=["delta", "csv"])
def test_empty_batch_is_refused_and_its_version_stays_free(spark, tmp_path: Path, writer) -> None:
    path = str(tmp_path / "out")
    with pytest.raises(WriteRefusedError, match="has no rows") as refused:
        writer.write(_df(spark, 0), path, batch=Batch("app", 1))
    assert refused.value.getCondition() == "EMPTY_BATCH"
    result = writer.write(_df(spark, 4), path, batch=Batch("app", 1))
    assert (result.skipped, result.rows) == (False, 4)


def test_empty_batch_is_written_when_allowed(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    result = DeltaWriter(allow_empty=True).write(_df(spark, 0), path, batch=Batch("app", 1))
    assert (result.rows, result.skipped) == (0, False)
    assert delta_log.latest_txn(Storage(spark), path, "app") == 1


def test_concurrent_writers_of_one_batch_commit_it_once_and_report_the_other_as_skipped(spark, tmp_path: Path,
                                                                                       monkeypatch) -> None:
    path = str(tmp_path / "t")
    DeltaWriter().write(_df(spark, 1), path, batch=Batch("seed", 1))  # the table exists: both race on batch 1
    both_checked = threading.Barrier(2, timeout=120)
    checked = threading.local()
    skip_rule = DeltaWriter.committed

    def committed_then_meet(self, storage, target, batch):  # both writers pass the skip rule before either commits
        found = skip_rule(self, storage, target, batch)
        if not getattr(checked, "once", False):
            checked.once = True
            both_checked.wait()
        return found

    monkeypatch.setattr(DeltaWriter, "committed", committed_then_meet)
    results, errors = [], []

    def write() -> None:
        try:
            results.append(DeltaWriter().write(_df(spark, 6), path, batch=Batch("app", 1)))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.skipped for r in results) == [False, True]
    skipped = next(r for r in results if r.skipped)
    assert "committed concurrently by another writer" in skipped.reason and skipped.batch_rows == 6
    assert spark.read.format("delta").load(path).count() == 7


def test_persistent_conflict_is_told_in_the_library_s_words() -> None:
    from delta.exceptions import ConcurrentAppendException

    calls = []

    def conflicting() -> None:
        calls.append(1)
        raise ConcurrentAppendException(message="[DELTA_CONCURRENT_APPEND] files were added")

    with pytest.raises(Exception, match="another writer changed the same files at the same time") as failed:
        delta_conflicts.retry_on_conflict(conflicting, path="/t", attempts=2)
    assert failed.value.getCondition() == "CONCURRENT_WRITE" and len(calls) == 2
    assert not delta_conflicts.is_conflict(ValueError("ConcurrentAppendException mentioned in a message only"))


def test_csv_is_published_atomically_with_its_marker(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "out" / "csv")
    result = CsvWriter().write(_df(spark), path, batch=Batch("a", 1))
    assert result.rows == 5 and not result.skipped
    marker = Storage(spark).read_json(str(tmp_path / "out" / "csv" / PUBLISHED_MARKER))
    assert (marker["app_id"], marker["version"], marker["rows"], marker["batches"]) == ("a", 1, 5, {"a": {"1": 5}})
    assert not (tmp_path / "out" / "_staging" / "csv").exists(), "staging left behind"
    assert_df_equality(_csv(spark, path), _df(spark), ignore_row_order=True)


def test_csv_replay_is_a_no_op_and_new_batch_replaces(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "csv")
    writer = CsvWriter()
    writer.write(_df(spark, 2), path, batch=Batch("a", 1))
    files = sorted(p.name for p in (tmp_path / "csv").iterdir())
    replay = writer.write(_df(spark, 9), path, batch=Batch("a", 1))
    assert replay.skipped and replay.batch_rows == 2
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == files
    writer.write(_df(spark, 9), path, batch=Batch("a", 2))
    assert _csv(spark, path).count() == 9


def test_parquet_replay_of_an_older_published_batch_never_republishes_over_newer(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "pq")
    writer = ParquetWriter()
    writer.write(_df(spark, 2), path, batch=Batch("a", 1))
    writer.write(_df(spark, 9), path, batch=Batch("a", 2))
    replay = writer.write(_df(spark, 2), path, batch=Batch("a", 1))
    assert replay.skipped and replay.reason == "batch 1 published before batch 2 replaced it (app a)"
    assert spark.read.parquet(path).count() == 9
    other = str(tmp_path / "pq2")
    writer.write(_df(spark, 2), other, batch=Batch("a", 5))
    with pytest.raises(WriteRefusedError) as refused:
        writer.write(_df(spark, 2), other, batch=Batch("a", 4))
    assert refused.value.getCondition() == "BATCH_OUT_OF_ORDER"


def test_crash_debris_in_staging_is_cleaned_also_by_a_replay_that_skips(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "csv")
    CsvWriter().write(_df(spark), path, batch=Batch("a", 1))
    debris = tmp_path / "_staging" / "csv" / "a-2-dead"
    debris.mkdir(parents=True)
    (debris / "part-0000.csv").write_text("half a row")
    assert CsvWriter().write(_df(spark), path, batch=Batch("a", 1)).skipped
    assert not (tmp_path / "_staging").exists()
    assert _csv(spark, path).count() == 5


def test_an_output_moved_aside_by_a_crashed_publish_is_restored_never_deleted(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "csv")
    CsvWriter().write(_df(spark, 3), path, batch=Batch("a", 1))
    # the crash: the previous output was moved aside, the new one never arrived
    retired = tmp_path / "_staging" / "csv" / "retired-dead"
    retired.parent.mkdir(parents=True)
    (tmp_path / "csv").rename(retired)
    replay = CsvWriter().write(_df(spark, 3), path, batch=Batch("a", 1))
    assert replay.skipped, "the restored output already holds batch 1"
    assert _csv(spark, path).count() == 3 and not retired.exists()


def test_a_target_spark_flows_did_not_publish_is_never_replaced_unless_asked(spark, tmp_path: Path) -> None:
    users = tmp_path / "users_dir"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    plain = tmp_path / "plain_file"
    plain.write_text("also mine")
    for target in (users, plain):
        with pytest.raises(WriteRefusedError, match="was not published by spark_flows") as refused:
            CsvWriter().write(_df(spark), str(target), batch=Batch("a", 1))
        assert refused.value.getCondition() == "OUTPUT_NOT_OWNED"
    assert (users / "notes.txt").read_text() == "mine" and plain.read_text() == "also mine"
    with pytest.raises(WriteRefusedError, match="is not a Delta table"):
        DeltaWriter().write(_df(spark), str(users))
    CsvWriter(replace_foreign=True).write(_df(spark), str(users), batch=Batch("a", 1))
    assert not (users / "notes.txt").exists() and _csv(spark, str(users)).count() == 5


def test_an_output_is_never_written_through_a_symbolic_link(spark, tmp_path: Path) -> None:
    real = tmp_path / "real"
    CsvWriter().write(_df(spark), str(real), batch=Batch("a", 1))
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    for link, state in (("link", ""), ("dangling", ", which does not exist")):
        for writer in (CsvWriter(), DeltaWriter()):
            with pytest.raises(WriteRefusedError, match=f"is a symbolic link to .*{state}") as refused:
                writer.write(_df(spark, 2), str(tmp_path / link), batch=Batch("a", 2))
            assert refused.value.getCondition() == "OUTPUT_IS_LINK"
        assert (tmp_path / link).is_symlink(), "the link was replaced"
    assert _csv(spark, str(real)).count() == 5 and not (tmp_path / "gone").exists()


def test_outputs_never_nest_inside_another_table(spark, tmp_path: Path) -> None:
    table = tmp_path / "exports" / "devices_delta"
    DeltaWriter().write(_df(spark), str(table))
    for writer in (CsvWriter(), DeltaWriter()):
        with pytest.raises(WriteRefusedError, match=r"inside .*devices_delta, which is a Delta table") as refused:
            writer.write(_df(spark), str(table / "date=20240301"))
        assert refused.value.getCondition() == "OUTPUT_NESTED"
    assert not (table / "date=20240301").exists()


def test_a_table_is_never_created_around_another_output(spark, tmp_path: Path) -> None:
    """A table one level above another output: its VACUUM would delete the inner output's files."""
    for inner_writer in (DeltaWriter(), CsvWriter()):
        outer = tmp_path / f"around_{inner_writer.output_type}"
        inner = outer / "date=20240302"
        inner_writer.write(_df(spark), str(inner), batch=Batch("inner", 1))
        for writer in (DeltaWriter(), CsvWriter()):
            with pytest.raises(WriteRefusedError, match=r"date=20240302 inside it is a (Delta table|published output)"
                               ) as refused:
                writer.write(_df(spark), str(outer), batch=Batch("outer", 1))
            assert refused.value.getCondition() == "OUTPUT_NESTED"
        assert not (outer / "_delta_log").exists() and not (outer / PUBLISHED_MARKER).exists()
    rows = (spark.read.format("delta").load(str(tmp_path / "around_delta" / "date=20240302")).count(),
            _csv(spark, str(tmp_path / "around_csv" / "date=20240302")).count())
    assert rows == (5, 5), "the inner outputs are whole"


def test_a_directory_of_plain_parquet_is_not_taken_for_a_table_being_created(spark, tmp_path: Path,
                                                                             monkeypatch) -> None:
    monkeypatch.setattr(DeltaWriter, "creation_wait_s", 0.5)  # no first commit ever comes: the wait's bound
    for name, save in (("with_success", lambda df, p: df.write.parquet(p)),
                       ("without_success", lambda df, p: df.write.option(
                           "mapreduce.fileoutputcommitter.marksuccessfuljobs", "false").parquet(p)),
                       ("partitioned", lambda df, p: df.write.partitionBy("id").parquet(p)),
                       ("pyarrow", lambda df, p: pq.write_table(pa.Table.from_pylist(
                           [r.asDict() for r in df.collect()]), Path(p, "data.parquet").as_posix()))):
        plain = str(tmp_path / name)
        Path(plain).mkdir() if name == "pyarrow" else None
        save(_df(spark), plain)
        with pytest.raises(WriteRefusedError, match="is not a Delta table") as refused:
            DeltaWriter().write(_df(spark), plain, batch=Batch("a", 1))
        assert refused.value.getCondition() == "OUTPUT_NOT_OWNED", name
        assert spark.read.parquet(plain).count() == 5 and not (tmp_path / name / "_delta_log").exists()


def test_replace_partition_keeps_other_dates_under_concurrent_writers(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "cube")
    errors: list[BaseException] = []

    def write(key: str, n: int) -> None:
        try:
            DeltaWriter(replace={"date": key}).write(_df(spark, n), path)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"2024010{i}", i)) for i in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = DeltaWriter(replace={"date": "20240102"}).write(_df(spark, 7), path)
    counts = {r.date: r["count"] for r in spark.read.format("delta").load(path).groupBy("date").count().collect()}
    assert counts == {"20240101": 1, "20240102": 7, "20240103": 3}
    assert dict(result.partition) == {"date": "20240102"}
    assert delta_log.table_rows(Storage(spark), path, partition={"date": "20240102"}) == 7


@pytest.mark.oracle
def test_log_reader_agrees_with_spark_across_a_checkpoint(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    spark.conf.set("spark.databricks.delta.properties.defaults.checkpointInterval", "2")  # new tables only
    try:
        for version in range(1, 5):  # table versions 0..3; Delta writes a checkpoint at version 2
            DeltaWriter().write(_df(spark, version), path, batch=Batch("app", version))
    finally:
        spark.conf.unset("spark.databricks.delta.properties.defaults.checkpointInterval")
    DeltaWriter(mode="overwrite").write(_df(spark, 4), path, batch=Batch("other", 1))
    storage = Storage(spark)
    assert any(p.name.endswith(".checkpoint.parquet") for p in (tmp_path / "t" / "_delta_log").iterdir())
    assert delta_log.latest_txn(storage, path, "app") == 4 and delta_log.latest_txn(storage, path, "other") == 1
    assert delta_log.table_version(storage, path) == 4
    assert delta_log.table_rows(storage, path) == 4 == spark.read.format("delta").load(path).count()
    as_of_3 = spark.read.format("delta").option("versionAsOf", 3).load(path).count()
    assert delta_log.table_rows(storage, path, 3) == 1 + 2 + 3 + 4 == as_of_3
    assert delta_log.find_txn(storage, path, "app", 4) == delta_log.TxnCommit("app", 4, 3, 4)
    assert delta_log.latest_txn(storage, path, "never") is None and delta_log.find_txn(storage, path, "app", 99) is None


def test_invalid_arguments_are_named() -> None:
    with pytest.raises(SparkFlowsValueError, match="app_id") as bad_app:
        Batch("bad id", 1)
    assert bad_app.value.getMessageParameters()["argument"] == "batch app_id"
    with pytest.raises(ValueError, match="version"):
        Batch("a", -1)
    with pytest.raises(ValueError, match="file_format"):
        FilesWriter("xml")
    with pytest.raises(ValueError, match="mode"):
        DeltaWriter(mode="merge")


def test_files_append_keeps_every_batch_and_a_crashed_append_never_duplicates(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "legacy")
    writer = CsvWriter(mode="append")
    writer.write(_df(spark, 5), path, batch=Batch("app", 1))
    writer.write(_df(spark, 3, start=5), path, batch=Batch("app", 2))
    replay = writer.write(_df(spark, 3, start=5), path, batch=Batch("app", 2))
    assert replay.skipped and replay.batch_rows == 3
    crashed = next(tmp_path.glob("legacy/appended-*.csv"))  # a batch 3 whose files moved in, never recorded
    (tmp_path / "legacy" / f"appended-0123456789ab-{crashed.name.split('-', 2)[2]}").write_bytes(crashed.read_bytes())
    writer.write(_df(spark, 2, start=8), path, batch=Batch("app", 3))
    assert sorted(r.id for r in _csv(spark, path).collect()) == list(range(10))
    published = Storage(spark).read_json(f"{path}/{PUBLISHED_MARKER}")
    assert (published["rows"], len(published["appends"])) == (10, 3)
    assert sorted(published["batches"]["app"]) == ["1", "2", "3"]


def test_a_crashed_files_append_is_never_visible_to_plain_readers(spark, tmp_path: Path, monkeypatch) -> None:
    from spark_flows.io.writers.files import read_published

    path, out = str(tmp_path / "out"), tmp_path / "out"
    writer = CsvWriter(mode="append")
    writer.write(_df(spark, 5), path, batch=Batch("app", 1))

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt("killed before the commit point")

    with monkeypatch.context() as patched:  # the process dies once batch 2's files are in, before its record
        patched.setattr(CsvWriter, "_record", staticmethod(killed))
        with pytest.raises(KeyboardInterrupt):
            writer.write(_df(spark, 3, start=5), path, batch=Batch("app", 2))
    assert list(out.glob(".appended-*.csv")), "batch 2's files moved in (hidden)"
    assert (_csv(spark, path).count(), read_published(spark, path).count()) == (5, 5)
    writer.write(_df(spark, 3, start=5), path, batch=Batch("app", 2))  # the retry: debris dropped, batch 2 in
    # a crash after the record, before the files were revealed: the next reader rolls it forward
    last = Storage(spark).read_json(f"{path}/{PUBLISHED_MARKER}")["appends"][-1]
    for file in out.glob(f"appended-{last}-*.csv"):
        file.rename(file.with_name(f".{file.name}"))
    assert _csv(spark, path).count() == 5
    assert sorted(r.id for r in read_published(spark, path).collect()) == list(range(8))
    assert sorted(r.id for r in _csv(spark, path).collect()) == list(range(8)) and not list(out.glob(".appended-*"))


def test_a_writer_keeps_another_live_writer_s_staged_files_and_drops_a_dead_one_s(spark, tmp_path: Path) -> None:
    import socket
    import subprocess

    path = str(tmp_path / "out")
    CsvWriter(mode="append").write(_df(spark, 2), path, batch=Batch("app", 1))
    other = subprocess.Popen(["sleep", "300"])  # the other writer's process
    try:
        staged = tmp_path / "_staging" / "out" / f"app-9-0123456789ab~{socket.gethostname()}~{other.pid}"
        staged.mkdir(parents=True)
        (staged / "part-00000.csv").write_text("id;name\n99;x\n")
        moved_in = tmp_path / "out" / ".appended-0123456789ab-part-00000.csv"  # its batch, moved in, not recorded
        moved_in.write_text("id;name\n99;x\n")
        CsvWriter(mode="append").write(_df(spark, 2, start=2), path, batch=Batch("app", 2))
        assert staged.exists() and moved_in.exists(), "a live writer's files were deleted"
    finally:
        other.kill()
        other.wait()
    CsvWriter(mode="append").write(_df(spark, 2, start=4), path, batch=Batch("app", 3))
    assert not staged.exists() and not moved_in.exists(), "a dead writer's debris was kept"
    assert sorted(r.id for r in _csv(spark, path).collect()) == list(range(6))


def test_two_appends_recording_at_once_never_lose_a_batch_from_the_record(spark, tmp_path: Path,
                                                                        monkeypatch) -> None:
    """The other writer records its batch while this one moves its files in: this one's record must fail."""
    path = str(tmp_path / "out")
    CsvWriter(mode="append").write(_df(spark, 2), path, batch=Batch("app", 1))
    move_in = CsvWriter._move_in

    def meanwhile(storage, staged, target, prefix, **kw):
        monkeypatch.setattr(CsvWriter, "_move_in", staticmethod(move_in))
        CsvWriter(mode="append").write(_df(spark, 2, start=10), path, batch=Batch("other", 1))
        return move_in(storage, staged, target, prefix, **kw)

    monkeypatch.setattr(CsvWriter, "_move_in", staticmethod(meanwhile))
    with pytest.raises(Exception, match="published by another writer") as lost:
        CsvWriter(mode="append").write(_df(spark, 2, start=2), path, batch=Batch("app", 2))
    assert lost.value.getCondition() == "CONCURRENT_PUBLISH"
    published = Storage(spark).read_json(f"{path}/{PUBLISHED_MARKER}")
    assert sorted(published["batches"]) == ["app", "other"] and published["rows"] == 4
    CsvWriter(mode="append").write(_df(spark, 2, start=2), path, batch=Batch("app", 2))  # the retry
    assert sorted(r.id for r in _csv(spark, path).collect()) == [0, 1, 2, 3, 10, 11]


def test_files_replace_one_partition_and_keep_the_others(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "by_date")
    for day, start in (("20240301", 0), ("20240302", 10), ("20240301", 20)):
        result = ParquetWriter(replace={"date": day}).write(_df(spark, 3, start=start), path)
        assert result.partition == {"date": day} and result.path.endswith(f"date={day}")
    back = spark.read.parquet(path)
    assert {(str(r.date), r.id) for r in back.collect()} == {("20240301", i) for i in range(20, 23)} | {
        ("20240302", i) for i in range(10, 13)}
    with pytest.raises(ValueError, match="used with mode='overwrite'"):
        CsvWriter(mode="append", replace={"date": "x"})


def test_csv_writes_nested_columns_as_json_text_or_names_them(spark, tmp_path: Path) -> None:
    nested = spark.createDataFrame([(1, (2, "x"), [1, 2])], "id int, ctx struct<n:int,s:string>, tags array<int>")
    CsvWriter().write(nested, str(tmp_path / "flat"))  # the book's to_json conversion
    row = spark.read.options(sep=";", header="true").csv(str(tmp_path / "flat")).first()
    assert (row.ctx, row.tags) == ('{"n":2,"s":"x"}', "[1,2]")
    with pytest.raises(WriteRefusedError, match=r"columns \['ctx', 'tags'\] are nested") as refused:
        CsvWriter(nested="error").write(nested, str(tmp_path / "refused"))
    assert refused.value.getCondition() == "NESTED_COLUMNS" and not (tmp_path / "refused").exists()


@pytest.mark.oracle
def test_a_replay_after_delta_s_log_cleanup_is_skipped_as_delta_skips_it(spark, tmp_path: Path, caplog) -> None:
    path, log = str(tmp_path / "t"), tmp_path / "t" / "_delta_log"
    DeltaWriter().write(_df(spark), path, batch=Batch("loader", 1))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.logRetentionDuration = 'interval 7 days', "
              "delta.checkpointInterval = 10)")  # table version 1
    for version in range(1, 9):  # table versions 2..9
        DeltaWriter().write(_df(spark, 1, start=version), path, batch=Batch("other", version))
    aged = time.time() - 10 * 86400  # older than the retention (Delta cleans whole days before its cut-off)
    for file in log.iterdir():
        os.utime(file, (aged, aged))
    DeltaWriter().write(_df(spark, 1, start=9), path, batch=Batch("other", 9))  # version 10: checkpoint, cleanup
    assert (log / f"{10:020d}.checkpoint.parquet").exists()
    assert not (log / f"{0:020d}.json").exists(), sorted(p.name for p in log.iterdir())  # Delta's own cleanup ran
    assert delta_log.oldest_commit(Storage(spark), path) == 10
    rows = spark.read.format("delta").load(path).count()

    replay = DeltaWriter().write(_df(spark), path, batch=Batch("loader", 1))
    assert replay.skipped and "recorded in the checkpoint at table version 10" in replay.reason, replay
    assert (replay.table_version, replay.batch_rows) == (None, None)
    assert "never committed" not in replay.reason
    with caplog.at_level("WARNING", logger="spark_flows.io.writers.delta"):
        older = DeltaWriter().write(_df(spark), path, batch=Batch("other", 4))  # below 9; its commit cleaned up
    assert older.skipped and "not proven committed" in older.reason, older
    assert any("cleaned from the log" in r.getMessage() for r in caplog.records)
    newest = DeltaWriter().write(_df(spark), path, batch=Batch("other", 9))
    assert newest.skipped and newest.table_version == 10 and newest.batch_rows == 1
    assert spark.read.format("delta").load(path).count() == rows  # nothing written by any replay


def test_an_out_of_order_batch_is_refused_while_the_whole_log_is_there_even_past_a_checkpoint(spark, tmp_path: Path
                                                                                               ) -> None:
    path = str(tmp_path / "t")
    spark.conf.set("spark.databricks.delta.properties.defaults.checkpointInterval", "2")  # new tables only
    try:
        for version in (1, 2, 4, 5):  # batch 3 never written; checkpoints at table versions 2
            DeltaWriter().write(_df(spark, 1, start=version), path, batch=Batch("app", version))
    finally:
        spark.conf.unset("spark.databricks.delta.properties.defaults.checkpointInterval")
    assert delta_log.snapshot(Storage(spark), path).checkpoint == 2
    with pytest.raises(WriteRefusedError, match="no commit in the table's log recorded it") as refused:
        DeltaWriter().write(_df(spark), path, batch=Batch("app", 3))
    assert refused.value.getCondition() == "BATCH_OUT_OF_ORDER"
    early = DeltaWriter().write(_df(spark), path, batch=Batch("app", 1))  # found among the older retained commits
    assert early.skipped and early.table_version == 0


@pytest.mark.oracle
def test_rows_marked_by_deletion_vectors_are_not_counted_and_their_table_is_not_read_around_them(
        spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    DeltaWriter().write(spark.range(100).repartition(1).selectExpr("id", "cast(id as string) as name"), path,
                        batch=Batch("loader", 1))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 10 = 0")  # 10 rows marked, the Parquet file kept
    storage = Storage(spark)
    assert list((tmp_path / "t").glob("deletion_vector_*.bin")), "Delta wrote a deletion vector"
    assert delta_log.table_rows(storage, path) == 90 == spark.read.format("delta").load(path).count()
    assert delta_log.table_rows(storage, path, 1) == 100  # before the delete
    with pytest.raises(Exception, match="deletion vectors") as refused:
        delta_log.read_rows(storage, path)
    assert refused.value.getCondition() == "UNSUPPORTED_TABLE_FEATURE"


def test_a_table_whose_log_the_reader_cannot_read_is_refused_by_name_never_answered(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    DeltaWriter().write(_df(spark), path, batch=Batch("loader", 1))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointPolicy' = 'v2')")
    for batch in (Batch("loader", 1), Batch("loader", 2)):  # a replay, and a new batch
        with pytest.raises(Exception, match=r"reader feature.* v2Checkpoint") as refused:
            DeltaWriter().write(_df(spark), path, batch=batch)
        assert refused.value.getCondition() == "UNSUPPORTED_TABLE_FEATURE"
    assert spark.read.format("delta").load(path).count() == 5  # nothing written by the refused writes


@pytest.mark.oracle
def test_the_log_reader_agrees_with_spark_on_multi_part_checkpoints_column_mapping_and_partition_overwrites(
        spark, tmp_path: Path) -> None:
    storage = Storage(spark)
    multi = str(tmp_path / "multi")
    spark.conf.set("spark.databricks.delta.checkpoint.partSize", "1")  # one action per part: many parts
    spark.conf.set("spark.databricks.delta.properties.defaults.checkpointInterval", "2")
    try:
        for version in (1, 2, 3):  # table versions 0..2: a multi-part checkpoint at 2
            DeltaWriter().write(_df(spark, 2, start=version * 10), multi, batch=Batch("app", version))
    finally:
        spark.conf.unset("spark.databricks.delta.checkpoint.partSize")
        spark.conf.unset("spark.databricks.delta.properties.defaults.checkpointInterval")
    snap = delta_log.snapshot(storage, multi)
    assert snap.checkpoint == 2 and len(snap.checkpoint_files) > 1, snap
    assert delta_log.latest_txn(storage, multi, "app", snap) == 3
    assert delta_log.table_rows(storage, multi) == 6 == spark.read.format("delta").load(multi).count()

    mapped = str(tmp_path / "mapped")
    DeltaWriter().write(_df(spark), mapped, batch=Batch("app", 1))
    spark.sql(f"ALTER TABLE delta.`{mapped}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
              "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')")
    spark.sql(f"ALTER TABLE delta.`{mapped}` RENAME COLUMN name TO label")
    DeltaWriter().write(_df(spark, 3, start=5).withColumnRenamed("name", "label"), mapped, batch=Batch("app", 2))
    assert delta_log.latest_txn(storage, mapped, "app") == 2
    assert delta_log.table_rows(storage, mapped) == 8 == spark.read.format("delta").load(mapped).count()
    assert DeltaWriter().write(_df(spark), mapped, batch=Batch("app", 2)).skipped

    parted = str(tmp_path / "parted")
    days = _df(spark, 6).selectExpr("id", "name", "cast(id % 3 as string) as day")
    DeltaWriter(partition_by=["day"]).write(days, parted, batch=Batch("app", 1))
    DeltaWriter(replace={"day": "1"}).write(_df(spark, 4, start=100), parted, batch=Batch("app", 2))
    assert delta_log.table_rows(storage, parted) == 8 == spark.read.format("delta").load(parted).count()
    assert delta_log.table_rows(storage, parted, partition={"day": "1"}) == 4
    assert delta_log.table_rows(storage, parted, 0, partition={"day": "1"}) == 2


def _corpus(spark, root: Path) -> dict[str, str]:
    """Tables written by Delta Spark itself, each with a shape the log reader must read as Spark does."""
    tables = {name: str(root / name) for name in ("checkpointed", "cleaned", "deleted", "mapped", "replaced")}
    spark.conf.set("spark.databricks.delta.properties.defaults.checkpointInterval", "3")  # new tables only
    try:
        for version in range(1, 6):  # a checkpoint at 3, commits after it, each with its metadata
            DeltaWriter(metadata={"batch": version}).write(_df(spark, version, start=10 * version),
                                                            tables["checkpointed"], batch=Batch("app", version))
        DeltaWriter().write(_df(spark, 7), tables["cleaned"], batch=Batch("app", 1))
        spark.sql(f"ALTER TABLE delta.`{tables['cleaned']}` SET TBLPROPERTIES "
                  "(delta.logRetentionDuration = 'interval 7 days')")
        DeltaWriter().write(_df(spark, 2, start=50), tables["cleaned"], batch=Batch("other", 1))  # version 2
        aged = time.time() - 10 * 86400
        for file in (root / "cleaned" / "_delta_log").iterdir():
            os.utime(file, (aged, aged))
        DeltaWriter(metadata={"after": "cleanup"}).write(_df(spark, 1, start=90), tables["cleaned"],
                                                         batch=Batch("other", 2))  # version 3: checkpoint, cleanup
    finally:
        spark.conf.unset("spark.databricks.delta.properties.defaults.checkpointInterval")
    DeltaWriter().write(spark.range(40).repartition(1).selectExpr("id", "cast(id as string) as name"),
                        tables["deleted"], batch=Batch("app", 1))
    spark.sql(f"ALTER TABLE delta.`{tables['deleted']}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{tables['deleted']}` WHERE id % 4 = 0")
    DeltaWriter().write(_df(spark), tables["mapped"], batch=Batch("app", 1))
    spark.sql(f"ALTER TABLE delta.`{tables['mapped']}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
              "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')")
    spark.sql(f"ALTER TABLE delta.`{tables['mapped']}` RENAME COLUMN name TO label")
    DeltaWriter(metadata={"renamed": True}).write(_df(spark, 3, start=5).withColumnRenamed("name", "label"),
                                                  tables["mapped"], batch=Batch("app", 2))
    days = _df(spark, 6).selectExpr("id", "name", "cast(id % 3 as string) as day")
    DeltaWriter(partition_by=["day"]).write(days, tables["replaced"], batch=Batch("app", 1))
    DeltaWriter(replace={"day": "1"}, metadata={"day": "1"}).write(_df(spark, 4, start=100), tables["replaced"],
                                                                   batch=Batch("app", 2))
    return tables


@pytest.mark.oracle
def test_every_table_of_the_corpus_gives_the_version_txn_rows_and_commit_metadata_spark_reports(
        spark, tmp_path: Path) -> None:
    """The log reader against Delta Spark's own answers: ``DESCRIBE HISTORY`` (version, ``userMetadata``,
    ``numOutputRows``), ``count()``, and Delta's own skip of a ``txnAppId``/``txnVersion`` write."""
    storage = Storage(spark)
    for name, path in _corpus(spark, tmp_path).items():
        history = {r.version: r for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()}
        assert delta_log.table_version(storage, path) == max(history), name
        assert delta_log.table_rows(storage, path) == spark.read.format("delta").load(path).count(), name
        for version in delta_log.retained_commits(storage, path):
            entry = history[version]
            expected = json.loads(entry.userMetadata) if entry.userMetadata else {}
            assert delta_log.commit_metadata(storage, path, version) == expected, (name, version)
            rows = entry.operationMetrics.get("numOutputRows")
            assert delta_log.commit_rows(storage, path, version) == (int(rows) if rows is not None else None), (
                name, version, entry.operation)
        apps = delta_log.app_ids(storage, path)
        assert apps, name
        for app, recorded in apps.items():  # Delta skips a write of the recorded txn, and takes the next one
            before = delta_log.table_version(storage, path)
            row = spark.read.format("delta").load(path).limit(1)  # one row of the table's own schema
            for txn in (recorded, recorded + 1):
                row.write.format("delta").mode("append").option("txnAppId", app).option("txnVersion", txn).save(path)
            assert delta_log.table_version(storage, path) == before + 1, (name, app)
            assert delta_log.latest_txn(storage, path, app) == recorded + 1, (name, app)
    assert delta_log.retained_commits(storage, str(tmp_path / "cleaned"))[0] == 3  # Delta's cleanup ran


def test_a_write_to_a_full_disk_is_disk_full_in_one_line_and_leaves_nothing_visible(spark, full_disk: Path) -> None:
    for writer in (DeltaWriter(), CsvWriter()):
        target = full_disk / writer.output_type
        with pytest.raises(StorageError) as failed:
            writer.write(_df(spark), str(target), batch=Batch("a", 1))
        assert failed.value.getCondition() == "DISK_FULL", failed.value
        assert "the disk is full" in str(failed.value) and len(str(failed.value).splitlines()) == 1
        assert not (target / "_delta_log" / f"{0:020d}.json").exists() and not (target / PUBLISHED_MARKER).exists()
