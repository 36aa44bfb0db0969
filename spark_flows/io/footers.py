"""Parquet footers read on the driver, without a Spark job: the key-value metadata Spark writes beside the data
(the schema of the rows, for a choice made from metadata alone)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spark_flows.core import backend
from spark_flows.io.filesystems.base import local_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def parquet_key_value(spark: SparkSession, file: str, key: str) -> str | None:
    """A key-value metadata entry of a Parquet file's footer, read on the driver (no Spark job)."""
    if backend.is_remote(spark):
        import pyarrow.parquet as pq

        metadata = pq.read_metadata(local_path(file)).metadata or {}
        value = metadata.get(key.encode("utf-8"))
        return value.decode("utf-8") if value is not None else None
    jvm = backend.jvm(spark, "parquet_key_value")
    conf = backend.hadoop_configuration(spark, needed_by="parquet_key_value")
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
        jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(file), conf))
    try:
        text = reader.getFooter().getFileMetaData().getKeyValueMetaData().get(key)
    finally:
        reader.close()
    return str(text) if text is not None else None
