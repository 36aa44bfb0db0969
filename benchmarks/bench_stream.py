"""Streaming Parallel Split per micro-batch: the naive ``foreachBatch`` (each sink written from the
un-persisted micro-batch) vs spark_flows' :func:`split_each_batch` (the micro-batch persisted once), three
sinks (two Delta tables, one CSV), the same file source; micro-batch scans from Spark's SQL metrics."""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.common import WORK, fresh, stopwatch, table
from spark_flows.metrics import SparkMeter
from spark_flows.samples import VISIT_EVENTS_SCHEMA
from spark_flows.split import write_branch
from spark_flows.streaming import split_each_batch, start
from spark_flows.writers import Batch, CsvWriter, DeltaWriter

ROWS = int(os.environ.get("SPARK_FLOWS_BENCH_STREAM_ROWS", "2000000"))
FILES = 4  # one file per micro-batch


def _per_page(df: DataFrame) -> DataFrame:
    return df.groupBy(F.to_date("event_time").alias("event_date"), "page").agg(F.count(F.lit(1)).alias("visits"))


def _write_source(spark: SparkSession, path: str) -> None:
    spark.range(ROWS).select(
        F.concat(F.lit("e-"), F.col("id").cast("string")).alias("visit_id"),
        F.timestamp_seconds(F.lit(1704067200) + F.col("id") % 172800).alias("event_time"),
        F.concat(F.lit("u"), (F.col("id") % 500).cast("string")).alias("user_id"),
        F.concat(F.lit("page_"), (F.col("id") % 9).cast("string")).alias("page"),
        (F.col("id") % 60000).alias("duration_ms"),
    ).repartition(FILES).write.json(path)


def _naive(out: str):
    def write(df: DataFrame, batch_id: int) -> None:  # what a foreachBatch usually looks like
        txn = {"txnAppId": "naive", "txnVersion": str(batch_id)}
        df.write.format("delta").options(**txn).mode("append").save(f"{out}/events")
        _per_page(df).write.format("delta").options(**txn).mode("append").save(f"{out}/pages")
        df.write.mode("overwrite").option("header", "true").csv(f"{out}/csv/batch={batch_id}")
    return write


def _branches(out: str):
    return lambda batch: [
        write_branch("events", DeltaWriter(), f"{out}/events", batch=batch),
        write_branch("pages", DeltaWriter(), f"{out}/pages", batch=batch, transform=_per_page),
        write_branch("csv", CsvWriter(replace={"batch": str(batch.version)}), f"{out}/csv", batch=batch),
    ]


def run(spark: SparkSession) -> list[str]:
    source = fresh(WORK / "stream" / "source")
    _write_source(spark, source)

    def stream() -> DataFrame:
        return spark.readStream.schema(VISIT_EVENTS_SCHEMA).option("maxFilesPerTrigger", 1).json(source)

    # untimed warm-up (JIT, codegen, Delta's first commits) on the same source
    warm = fresh(WORK / "stream" / "warm")
    split_each_batch("warm", _branches(warm))(spark.read.schema(VISIT_EVENTS_SCHEMA).json(source).limit(20_000),
                                              Batch("warm", 0))
    results = []
    for label, concurrency in (("a naive foreachBatch", 0), ("b spark_flows split_each_batch", 1),
                               ("c spark_flows, 3 sinks at once", 3)):
        out = fresh(WORK / "stream" / label[0])
        with SparkMeter(spark, all_threads=True) as meter, stopwatch() as elapsed:
            if concurrency:
                query = start(stream(), split_each_batch("bench", _branches(out), concurrency=concurrency),
                              name=f"bench_{label[0]}", checkpoint=f"{out}/_checkpoint")
            else:
                query = (stream().writeStream.foreachBatch(_naive(out))
                         .option("checkpointLocation", f"{out}/_checkpoint").trigger(availableNow=True).start())
            query.awaitTermination()
        batches = len([p for p in query.recentProgress if p["numInputRows"]])
        written = spark.read.format("delta").load(f"{out}/events").count()
        assert written == ROWS and batches == FILES, (label, written, batches)
        scans = len(meter.scan.micro_batch(VISIT_EVENTS_SCHEMA.fieldNames()))
        results.append((label, elapsed(), scans / batches, written / elapsed()))
    base = results[0][3]
    rows_out = [(label, f"{secs:.1f}", f"{scans:.1f}", f"{rate:,.0f}", f"{rate / base:.2f}x")
                for label, secs, scans, rate in results]
    return [table(f"Streaming split: {ROWS:,} visit events in {FILES} micro-batches (JSON files), 3 sinks "
                  "(2 Delta, 1 CSV), local[2]", ["mode", "wall s", "scans per micro-batch", "rows/s", "ratio to a"],
                  rows_out)]
