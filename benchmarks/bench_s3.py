"""What spark_flows costs on an object store: requests per operation, counted by the S3 server itself.

A local S3 server (SeaweedFS, the suite's) behind classic Spark's S3A. For each operation the server's request
counters are read before and after, so a row counts every request the operation made, Spark's S3A and
spark_flows' own (boto3) together:

* a batch of 1,000 rows written by ``DeltaWriter`` with its batch, beside the same rows written by plain Spark
  (``df.write.format("delta").mode("append")``): the limit, what Delta itself costs;
* its replay check (``already_committed``) of the app's last batch, on a table of 10 and of 60 versions: flat,
  not growing; and of an older batch, which is proven committed (or refused as out of order) only by searching
  the retained commits, so it grows with the log kept;
* a marker poll (``read_marker`` of a published date) and a lock heartbeat (``RunLock.renew``).

Wall time is the median of the repeats with its spread; requests are the median count (they do not vary).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from pyspark.sql import SparkSession

from benchmarks.common import table
from spark_flows.errors import EnvironmentSetupError
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, DeltaWriter
from spark_flows.patterns.markers import publish, read_marker
from spark_flows.patterns.runners.locks import RunLock
from spark_flows.testing.s3_server import S3Server, weed_binary

REPEATS = int(os.environ.get("SPARK_FLOWS_BENCH_S3_REPEATS", "5"))


def _measure(server: S3Server, call: Callable[[int], object]) -> tuple[float, float, float]:
    """(requests, median seconds, spread seconds) of ``call(i)`` for i in 1..REPEATS."""
    counts, seconds = [], []
    for i in range(1, REPEATS + 1):
        before = sum(server.request_counts().values())
        began = time.perf_counter()
        call(i)
        seconds.append(time.perf_counter() - began)
        counts.append(sum(server.request_counts().values()) - before)
    return statistics.median(counts), statistics.median(seconds), max(seconds) - min(seconds)


def run(spark: SparkSession) -> list[str]:
    try:
        weed_binary()
    except EnvironmentSetupError as missing:  # the other benchmarks still run
        return [f"\nS3 benchmark not run: {missing}"]
    with S3Server(tempfile.mkdtemp(prefix="spark-flows-bench-s3-")) as server:
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        for key, value in server.bucket_conf().items():
            hadoop.set(key, value)
        root = f"s3a://{server.bucket}/bench"
        df = spark.range(1000).selectExpr("id", "cast(id % 7 as string) as type").cache()
        df.count()
        plain_path, flows_path = f"{root}/plain", f"{root}/flows"
        spark_flows_ops: dict[str, tuple[float, float, float]] = {}
        plain = _measure(server, lambda i: df.write.format("delta").mode("append").save(plain_path))
        spark_flows_ops["batch write (DeltaWriter)"] = _measure(
            server, lambda i: DeltaWriter(mode="append").write(df, flows_path, batch=Batch("bench", i)))
        while (delta_log.table_version(Storage(spark), flows_path) or 0) < 10:
            df.limit(1).write.format("delta").mode("append").save(flows_path)
        spark_flows_ops["replay check, 10 versions"] = _measure(
            server, lambda i: DeltaWriter().already_committed(spark, flows_path, Batch("bench", REPEATS)))
        while (delta_log.table_version(Storage(spark), flows_path) or 0) < 60:
            df.limit(1).write.format("delta").mode("append").save(flows_path)
        spark_flows_ops["replay check, 60 versions"] = _measure(
            server, lambda i: DeltaWriter().already_committed(spark, flows_path, Batch("bench", REPEATS)))
        spark_flows_ops["older batch's replay, 60 versions"] = _measure(  # proven by a search of the log
            server, lambda i: DeltaWriter().already_committed(spark, flows_path, Batch("bench", 1)))
        day = dt.date(2024, 1, 1)
        publish(df, f"{root}/published", DeltaWriter(), producer="bench", execution_date=day)
        spark_flows_ops["marker poll (read_marker)"] = _measure(
            server, lambda i: read_marker(spark, f"{root}/published", day))
        lock = RunLock(spark, f"{root}/locks", "bench", ttl_seconds=600, heartbeat_seconds=300)
        lock.acquire()
        try:
            spark_flows_ops["lock heartbeat (renew)"] = _measure(server, lambda i: lock.renew())
        finally:
            lock.release()
        df.unpersist()
    rows: list[list[object]] = [["plain Spark Delta append (limit)", f"{plain[0]:.0f}", "1.00x",
                                 f"{plain[1]:.2f} ± {plain[2]:.2f}", "1.00x"]]
    for name, (requests, median, spread) in spark_flows_ops.items():
        rows.append([name, f"{requests:.0f}", f"{requests / plain[0]:.2f}x", f"{median:.2f} ± {spread:.2f}",
                     f"{median / plain[1]:.2f}x"])
    return [table(f"S3 (SeaweedFS, S3A + boto3): requests and seconds per operation (median ± spread of {REPEATS}; "
                  "ratios to a plain Spark Delta append of the same 1,000 rows)",
                  ["operation", "requests", "to limit", "seconds", "to limit"], rows)]
