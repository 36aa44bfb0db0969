from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from spark_flows.errors import CannotAppendError
from spark_flows.io import delta_log
from spark_flows.io.delta_append import append
from spark_flows.io.storage import local_storage
from spark_flows.patterns.runners.ledger import RunLedger, read_runs, record_without_spark

pytestmark = pytest.mark.classic  # no Spark in what is tested; Spark only makes and reads the tables
DAY = dt.date(2024, 1, 2)


def _files(table: Path) -> list[str]:
    return sorted(p.name for p in table.glob("*.parquet"))


def _added(table: Path) -> list[str]:
    """The data files the table's commits add."""
    return sorted(json.loads(line)["add"]["path"] for commit in (table / "_delta_log").glob("*.json")
                  for line in commit.read_text().splitlines() if '"add"' in line)


def test_an_append_without_spark_is_a_commit_delta_spark_reads_and_writes_after(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "ledger")
    RunLedger(spark, path).record("job", DAY, 1, "running", "r1")
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert record_without_spark(path, "job", DAY, 1, "failed", "r1", "[BOOM] it broke") == 1
    assert record_without_spark(path, "job", DAY, 0, "refused", "r2", "[RUN_LOCKED] held") == 2
    RunLedger(spark, path).record("job", DAY, 2, "succeeded", "r3")  # Delta Spark commits on after them
    runs = {r.run_id: r for r in RunLedger(spark, path).runs("job")}
    assert {k: (r.attempt, r.status, r.error) for k, r in runs.items()} == {
        "r1": (1, "failed", "[BOOM] it broke"), "r2": (0, "refused", "[RUN_LOCKED] held"), "r3": (2, "succeeded", None)}
    assert runs["r1"].ended_at >= before.replace(microsecond=0) - dt.timedelta(seconds=1)  # a UTC instant
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    assert [(h.version, h.operation, h.isBlindAppend) for h in history] == [(v, "WRITE", True) for v in range(4)]
    assert [h.engineInfo.split()[0] for h in history] == ["Apache-Spark/" + spark.version, "spark_flows", "spark_flows",
                                                          "Apache-Spark/" + spark.version]
    assert delta_log.table_rows(local_storage(), path) == 4  # the statistics count the rows
    assert [(r.run_id, r.status) for r in read_runs(path, "job")] == [("r1", "failed"), ("r2", "refused"),
                                                                       ("r3", "succeeded")]


def test_appends_racing_for_one_version_each_land_exactly_once(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "ledger")
    RunLedger(spark, path).record("job", DAY, 1, "running", "first")
    spark_files, spark_adds = set(_files(tmp_path / "ledger")), set(_added(tmp_path / "ledger"))
    barrier, versions, errors = threading.Barrier(6), [], []

    def contend(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            versions.append(record_without_spark(path, "job", DAY, 1, "running", f"c{i}"))
        except Exception as exc:  # reported below, with which contender
            errors.append(f"c{i}: {exc}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and sorted(versions) == [1, 2, 3, 4, 5, 6], (errors, versions)
    rows = spark.read.format("delta").load(path)
    assert sorted(r.run_id for r in rows.collect()) == ["c0", "c1", "c2", "c3", "c4", "c5", "first"]
    assert set(_files(tmp_path / "ledger")) - spark_files == set(_added(tmp_path / "ledger")) - spark_adds, \
        "a contender that lost a version left a data file behind"
    assert not [p.name for p in (tmp_path / "ledger" / "_delta_log").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("make, reason", [
    ("CREATE TABLE delta.`{p}` (job STRING, day STRING) USING delta PARTITIONED BY (day)", "partitioned by"),
    ("CREATE TABLE delta.`{p}` (job STRING) USING delta; ALTER TABLE delta.`{p}` ADD CONSTRAINT named CHECK "
     "(job IS NOT NULL)", "its protocol needs"),
    ("CREATE TABLE delta.`{p}` (job STRING) USING delta TBLPROPERTIES ('delta.columnMapping.mode' = 'name')",
     "its protocol needs"),
    ("CREATE TABLE delta.`{p}` (job STRING) USING delta TBLPROPERTIES ('delta.enableRowTracking' = 'true')",
     "its protocol needs"),
    ("CREATE TABLE delta.`{p}` (job ARRAY<STRING>) USING delta", 'column job has type {"type": "array"'),
])
def test_a_table_it_cannot_append_to_as_delta_would_is_refused_and_left_as_it_was(
        spark, tmp_path: Path, make: str, reason: str) -> None:
    path = str(tmp_path / "t")
    for statement in make.format(p=path).split("; "):
        spark.sql(statement)
    version = delta_log.table_version(local_storage(), path)
    with pytest.raises(CannotAppendError, match=reason) as refused:
        append(local_storage(), path, [{"job": "x"}])
    assert refused.value.getCondition() == "CANNOT_APPEND_WITHOUT_SPARK"
    assert delta_log.table_version(local_storage(), path) == version and _files(tmp_path / "t") == []


def test_rows_that_do_not_fit_and_places_it_does_not_write_are_refused(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` (job STRING, attempt INT) USING delta")
    cases = {"the rows have column\\(s\\) \\['other'\\]": (path, [{"job": "x", "other": 1}]),
             "the rows do not fit its schema": (path, [{"job": "x", "attempt": "three"}]),
             "there is no table there yet": (str(tmp_path / "absent"), [{"job": "x"}]),
             "it is not on local disk": ("s3a://bucket/t", [{"job": "x"}])}
    for reason, (where, rows) in cases.items():
        with pytest.raises(CannotAppendError, match=reason):
            append(local_storage(), where, rows)
    assert delta_log.table_version(local_storage(), path) == 0 and _files(tmp_path / "t") == []
    assert not (tmp_path / "absent").exists()


def test_a_version_taken_by_delta_spark_meanwhile_is_not_overwritten(spark, tmp_path: Path, monkeypatch) -> None:
    from spark_flows.io import delta_append

    path = str(tmp_path / "ledger")
    RunLedger(spark, path).record("job", DAY, 1, "running", "first")
    link, calls = delta_append._link, []

    def spark_commits_first(log: str, version: int, text: str) -> bool:
        if not calls:  # between this writer's read of the log and its commit, Delta Spark takes the version
            RunLedger(spark, path).record("job", DAY, 1, "succeeded", "spark")
        calls.append(version)
        return link(log, version, text)

    monkeypatch.setattr(delta_append, "_link", spark_commits_first)
    assert record_without_spark(path, "job", DAY, 2, "running", "mine") == 2
    assert calls == [1, 2]
    assert sorted(r.run_id for r in spark.read.format("delta").load(path).collect()) == ["first", "mine", "spark"]
