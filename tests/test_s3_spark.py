"""Classic Spark on the suite's S3 server through Hadoop's S3A (``hadoop-aws`` matching pyspark's Hadoop):
spark_flows' writers and their skip rule on ``s3a://``, through the session's Hadoop FileSystem (the path every
``hdfs://`` and ``s3a://`` URI takes on classic Spark).
"""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from spark_flows import delta
from spark_flows.config import Settings, hadoop_aws_package
from spark_flows.s3_server import S3Server
from spark_flows.storage import Storage
from spark_flows.writers import Batch, CsvWriter, DeltaWriter

pytestmark = pytest.mark.classic


@pytest.fixture(scope="module")
def s3_root(spark: SparkSession, spark_flows_s3_server: S3Server) -> str:
    """A folder of the server's bucket, reached by the suite's session (per-bucket S3A settings)."""
    server = spark_flows_s3_server
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in server.hadoop_conf().items():
        hadoop.set(key.replace("fs.s3a.", f"fs.s3a.bucket.{server.bucket}.", 1), value)
    return f"s3a://{server.bucket}/spark"


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
    assert storage.qualify(path).startswith("s3a://") and delta.table_version(storage, path) == 0
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
