"""Spark on the suite's S3 server through Hadoop's S3A (``hadoop-aws`` matching pyspark's Hadoop), on classic
Spark and on Spark Connect: spark_flows' writers, their skip rule and their manifests on ``s3a://``.
"""

from __future__ import annotations

import uuid

import pytest
from pyspark.sql import SparkSession

from spark_flows.core.config import Settings, hadoop_aws_package
from spark_flows.errors import ConcurrentWriteError, InputNotFoundError
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter, FilesWriter, read_published
from spark_flows.testing.s3_server import S3Server


@pytest.mark.classic
def test_the_s3a_package_matches_the_hadoop_spark_runs_and_the_settings_name_the_server(spark: SparkSession) -> None:
    running = spark.sparkContext._jvm.org.apache.hadoop.util.VersionInfo.getVersion()  # the JVM's own Hadoop
    assert hadoop_aws_package() == f"org.apache.hadoop:hadoop-aws:{running}"
    settings = Settings(s3_endpoint="http://127.0.0.1:8333", s3_path_style=True, s3_region="us-east-1")
    assert settings.packages()[1] == hadoop_aws_package()
    assert settings.storage_conf() == {
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:8333", "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.path.style.access": "true", "spark.hadoop.fs.s3a.endpoint.region": "us-east-1"}
    assert Settings().packages() == [Settings().delta_package]  # no S3A unless asked


def test_a_delta_batch_on_s3_is_written_once_and_its_replay_is_skipped(spark: SparkSession, s3_root: str) -> None:
    path = f"{s3_root}/tables/devices"
    df = spark.range(1000).selectExpr("id", "cast(id % 7 as string) as type")
    first = DeltaWriter().write(df, path, batch=Batch("loader", 1))
    assert (first.skipped, first.rows, first.table_version) == (False, 1000, 0)
    replay = DeltaWriter().write(df, path, batch=Batch("loader", 1))
    assert replay.skipped and "already committed" in replay.reason, replay
    storage = Storage(spark)
    assert storage.qualify(path).startswith("s3a://") and delta_log.table_version(storage, path) == 0
    assert spark.read.format("delta").load(path).count() == 1000
    second = DeltaWriter().write(df.limit(10), path, batch=Batch("loader", 2))
    assert (second.skipped, second.table_version) == (False, 1)
    assert spark.read.format("delta").load(path).count() == 1010


def test_a_csv_batch_on_s3_is_published_with_its_manifest_and_read_back_whole(spark: SparkSession, s3_root: str
                                                                              ) -> None:
    path = f"{s3_root}/exports/devices"
    df = spark.range(50).selectExpr("id", "concat('d', id) as name")
    result = CsvWriter().write(df, path, batch=Batch("exporter", 1))
    assert (result.skipped, result.rows) == (False, 50)
    storage = Storage(spark)
    assert storage.exists(f"{path}/_PUBLISHED.json")
    back = spark.read.option("header", "true").option("sep", ";").csv(path)
    assert sorted(r.name for r in back.collect()) == sorted(f"d{i}" for i in range(50))
    assert CsvWriter().write(df, path, batch=Batch("exporter", 1)).skipped


def _data_files(storage: Storage, path: str) -> list[str]:
    found = []
    for info in storage.list(path):
        if info.is_dir and not info.name.startswith(("_", ".")):
            found += [f"{info.name}/{name}" for name in _data_files(storage, info.path)]
        elif not info.name.startswith(("_", ".")):
            found.append(info.name)
    return sorted(found)


def test_without_rename_the_manifest_is_the_commit_point_and_the_safe_reader_reads_only_what_it_names(
        spark: SparkSession, s3_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path, storage = f"{s3_root}/exports/by_manifest", Storage(spark)
    assert not storage.guarantees(path).atomic_rename and storage.guarantees(path).compare_and_swap
    old = spark.range(30).selectExpr("id", "cast(id % 3 as string) as part")
    CsvWriter(partition_by=["part"]).write(old, path, batch=Batch("exporter", 1))
    published = storage.read_json(f"{path}/_PUBLISHED.json")
    assert sorted(published["files"]) == _data_files(storage, path) and len(published["files"]) >= 3
    assert sorted(r.id for r in read_published(spark, path).collect()) == list(range(30))

    # the publish of batch 2 dies after its files were copied in, before its manifest: its commit point
    def crash(*_: object, **__: object) -> None:
        raise OSError("killed before the manifest")

    monkeypatch.setattr(FilesWriter, "_record", staticmethod(crash))
    with pytest.raises(OSError, match="killed before the manifest"):
        CsvWriter(partition_by=["part"]).write(spark.range(100, 110).selectExpr("id", "'x' as part"), path,
                                               batch=Batch("exporter", 2))
    monkeypatch.undo()
    def plain() -> int:
        return spark.read.option("header", "true").option("sep", ";").csv(path).count()

    assert plain() == 40  # what the module docstring says a plain read of the directory may see
    assert sorted(r.id for r in read_published(spark, path).collect()) == list(range(30))  # batch 1, whole
    assert storage.read_json(f"{path}/_PUBLISHED.json")["batches"] == {"exporter": {"1": 30}}

    CsvWriter(partition_by=["part"]).write(spark.range(100, 110).selectExpr("id", "'x' as part"), path,
                                           batch=Batch("exporter", 2))
    named = storage.read_json(f"{path}/_PUBLISHED.json")["files"]
    assert _data_files(storage, path) == sorted(named) and all(n.startswith("part=x/") for n in named)
    assert sorted(r.id for r in read_published(spark, path).collect()) == list(range(100, 110))
    assert plain() == 10 and storage.size(f"{s3_root}/exports/_staging") == 0  # no staged file left


def test_a_publish_that_lost_the_race_for_the_manifest_is_refused_and_the_winner_stays_whole(
        spark: SparkSession, s3_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path, storage = f"{s3_root}/exports/raced", Storage(spark)
    CsvWriter().write(spark.range(5).selectExpr("id"), path, batch=Batch("exporter", 1))
    move_in = FilesWriter._move_in

    def then_another_writer(*args: object) -> list[str]:  # the other writer publishes while this one copies
        moved = move_in(*args)  # type: ignore[arg-type]
        monkeypatch.setattr(FilesWriter, "_move_in", staticmethod(move_in))
        CsvWriter().write(spark.range(200, 207).selectExpr("id"), path, batch=Batch("exporter", 3))
        return moved

    monkeypatch.setattr(FilesWriter, "_move_in", staticmethod(then_another_writer))
    with pytest.raises(ConcurrentWriteError, match="published by another writer") as lost:
        CsvWriter().write(spark.range(100, 150).selectExpr("id"), path, batch=Batch("exporter", 2))
    assert lost.value.getCondition() == "CONCURRENT_PUBLISH"
    assert sorted(r.id for r in read_published(spark, path).collect()) == list(range(200, 207))
    assert storage.read_json(f"{path}/_PUBLISHED.json")["batches"]["exporter"] == {"1": 5, "3": 7}


def test_appends_on_s3_are_recorded_by_compare_and_swap_and_read_back_batch_by_batch(
        spark: SparkSession, s3_root: str) -> None:
    path = f"{s3_root}/exports/appended"
    for version in (1, 2):
        CsvWriter(mode="append").write(spark.range(version * 10, version * 10 + 4).selectExpr("id"), path,
                                       batch=Batch("appender", version))
    assert CsvWriter(mode="append").write(spark.range(3).selectExpr("id"), path, batch=Batch("appender", 1)).skipped
    assert sorted(r.id for r in read_published(spark, path).collect()) == [10, 11, 12, 13, 20, 21, 22, 23]
    with pytest.raises(InputNotFoundError, match=r"nothing is published at .*/exports/never") as none:
        read_published(spark, f"{s3_root}/exports/never")
    assert none.value.getCondition() == "NOT_PUBLISHED"


@pytest.mark.classic  # the log reader is the same code on Connect; growing the table there cost ~45 s of suite
def test_the_replay_check_on_s3_costs_the_same_requests_however_long_the_table_s_history(
        spark: SparkSession, s3_root: str, spark_flows_s3_server: S3Server) -> None:
    path = f"{s3_root}/tables/long_lived"
    spark.conf.set("spark.databricks.delta.properties.defaults.checkpointInterval", "2")  # new tables only
    try:
        DeltaWriter().write(spark.range(5).selectExpr("id"), path, batch=Batch("loader", 1))  # table version 0
    finally:
        spark.conf.unset("spark.databricks.delta.properties.defaults.checkpointInterval")

    def grow_to(version: int) -> None:
        while delta_log.table_version(Storage(spark), path) < version:
            DeltaWriter(mode="append").write(spark.range(1).selectExpr("id"), path, batch=None)

    def requests_to_check(batch: Batch) -> dict[str, float]:
        before = spark_flows_s3_server.request_counts()
        result = DeltaWriter().already_committed(spark, path, batch)
        after = spark_flows_s3_server.request_counts()
        assert result is not None and result.skipped, result
        return {action: after[action] - before.get(action, 0.0) for action in after
                if after[action] > before.get(action, 0.0)}

    grow_to(3)  # checkpoint at 2, one commit after it
    young = requests_to_check(Batch("loader", 1))
    grow_to(7)  # checkpoint at 6, one commit after it: four more versions of history, each a commit file
    old = requests_to_check(Batch("loader", 1))
    assert delta_log.snapshot(Storage(spark), path).checkpoint == 6
    assert sum(young.values()) > 0 and old == young, f"requests at table version 3: {young}; at 7: {old}"


@pytest.mark.classic
def test_a_process_backfill_on_s3_is_refused_before_any_driver_starts(spark: SparkSession, s3_root: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from jobs import backfill

    code = backfill.main(["--data-root", f"{s3_root}/backfilled", "--job", "visits_cube", "--from", "2024-01-01",
                          "--to", "2024-01-03", "--concurrency", "2", "--isolation", "process"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) >= 1
    assert "UNSAFE_CONCURRENT_DRIVERS" in err[-1] and "--isolation thread" in err[-1], err
    assert not Storage(spark).exists(f"{s3_root}/backfilled/visits"), "no date ran"


@pytest.mark.classic
def test_a_job_on_a_missing_bucket_exits_1_with_one_line_naming_it(
        spark: SparkSession, s3_root: str, spark_flows_s3_server: S3Server, capsys: pytest.CaptureFixture[str]
        ) -> None:
    from jobs import devices_loader

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"  # its own name: SeaweedFS makes a bucket on a first write
    for key, value in spark_flows_s3_server.bucket_conf(bucket).items():  # the server, a bucket it lacks
        hadoop.set(key, value)
    code = devices_loader.main(["--data-root", f"s3a://{bucket}/data", "--batch-id", "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1 and err, err
    assert bucket in err[-1] and "Traceback" not in "\n".join(err) and " at org." not in err[-1], err
