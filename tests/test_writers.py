from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality

from spark_flows.writers import PUBLISHED_MARKER, Batch, DeltaWriter, FilesWriter, delta_txn_version


def _df(spark, n: int = 5):
    return spark.createDataFrame([(i, f"n{i}") for i in range(n)], "id int, name string")


def _data_files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*.parquet")]


def test_replay_of_committed_batch_writes_nothing(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    first = DeltaWriter().write(_df(spark), path, batch=Batch("app", 1))
    files = _data_files(tmp_path / "t")
    replay = DeltaWriter().write(_df(spark), path, batch=Batch("app", 1))
    assert (first.rows, first.skipped) == (5, False)
    assert replay.skipped and replay.reason == "batch 1 already committed (app app at 1)"
    assert _data_files(tmp_path / "t") == files
    assert spark.read.format("delta").load(path).count() == 5


def test_older_batch_is_skipped_and_new_batch_appends(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    DeltaWriter().write(_df(spark), path, batch=Batch("app", 5))
    assert DeltaWriter().write(_df(spark), path, batch=Batch("app", 4)).skipped
    assert not DeltaWriter().write(_df(spark), path, batch=Batch("app", 6)).skipped
    assert DeltaWriter().write(_df(spark), path, batch=Batch("other", 1)).rows == 5
    assert spark.read.format("delta").load(path).count() == 15
    assert delta_txn_version(spark, path, "app") == 6 and delta_txn_version(spark, path, "nope") is None


def test_overwrite_mode_replay_keeps_table_and_new_version_replaces(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    writer = DeltaWriter(mode="overwrite")
    writer.write(_df(spark, 3), path, batch=Batch("app", 1))
    assert writer.write(_df(spark, 7), path, batch=Batch("app", 1)).skipped
    assert spark.read.format("delta").load(path).count() == 3
    writer.write(_df(spark, 7), path, batch=Batch("app", 2))
    assert spark.read.format("delta").load(path).count() == 7


def test_csv_is_published_atomically_with_its_marker(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "out" / "csv")
    result = FilesWriter("csv", options={"sep": ";", "header": "true"}).write(_df(spark), path, batch=Batch("a", 1))
    assert result.rows == 5 and not result.skipped
    marker = (tmp_path / "out" / "csv" / PUBLISHED_MARKER)
    assert marker.exists() and '"batch": "a-1"' in marker.read_text()
    assert not (tmp_path / "out" / "_staging" / "csv").exists(), "staging left behind"
    back = spark.read.option("sep", ";").option("header", "true").schema("id int, name string").csv(path)
    assert_df_equality(back, _df(spark), ignore_row_order=True)


def test_csv_replay_is_a_no_op_and_new_batch_replaces(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "csv")
    writer = FilesWriter("parquet")
    writer.write(_df(spark, 2), path, batch=Batch("a", 1))
    files = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert writer.write(_df(spark, 9), path, batch=Batch("a", 1)).skipped
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == files
    writer.write(_df(spark, 9), path, batch=Batch("a", 2))
    assert spark.read.parquet(path).count() == 9


def test_crash_debris_in_staging_is_cleaned_and_never_visible(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "csv")
    debris = tmp_path / "_staging" / "csv" / "a-1-dead"
    debris.mkdir(parents=True)
    (debris / "part-0000.csv").write_text("half a row")
    assert not (tmp_path / "csv").exists()
    FilesWriter("csv").write(_df(spark), path, batch=Batch("a", 1))
    assert not debris.exists()
    assert spark.read.csv(path).count() == 5


def test_invalid_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="app_id"):
        Batch("bad id", 1)
    with pytest.raises(ValueError, match="version"):
        Batch("a", -1)
    with pytest.raises(ValueError, match="file_format"):
        FilesWriter("xml")
    with pytest.raises(ValueError, match="mode"):
        DeltaWriter(mode="merge")
