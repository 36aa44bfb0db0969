"""Streaming Parallel Split per micro-batch: the naive ``foreachBatch`` (each sink written from the
un-persisted micro-batch) vs spark_flows' :func:`split_each_batch` (the micro-batch persisted once), three
sinks (two Delta tables, one CSV), the same file source; micro-batch scans from Spark's SQL metrics."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.common import WORK, Timing, fresh, load, repeat, stopwatch, table
from spark_flows.book.samples import VISIT_EVENTS_SCHEMA
from spark_flows.core.metrics import SparkMeter
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter
from spark_flows.patterns.split import Branch, write_branch
from spark_flows.patterns.streaming import split_each_batch, start

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


def _naive(out: str) -> Callable[[DataFrame, int], None]:
    def write(df: DataFrame, batch_id: int) -> None:  # what a foreachBatch usually looks like
        txn = {"txnAppId": "naive", "txnVersion": str(batch_id)}
        df.write.format("delta").options(**txn).mode("append").save(f"{out}/events")
        _per_page(df).write.format("delta").options(**txn).mode("append").save(f"{out}/pages")
        df.write.mode("overwrite").option("header", "true").csv(f"{out}/csv/batch={batch_id}")
    return write


def _branches(out: str) -> Callable[[Batch], list[Branch]]:
    return lambda batch: [
        write_branch("events", DeltaWriter(), f"{out}/events", batch=batch),
        write_branch("pages", DeltaWriter(), f"{out}/pages", batch=batch, transform=_per_page),
        write_branch("csv", CsvWriter(replace={"batch": str(batch.version)}), f"{out}/csv", batch=batch),
    ]


def run(spark: SparkSession) -> list[str]:
    before = load()
    source = fresh(WORK / "stream" / "source")
    _write_source(spark, source)

    def stream() -> DataFrame:
        return spark.readStream.schema(VISIT_EVENTS_SCHEMA).option("maxFilesPerTrigger", 1).json(source)

    # untimed warm-up (JIT, codegen, Delta's first commits) on the same source
    warm = fresh(WORK / "stream" / "warm")
    split_each_batch("warm", _branches(warm))(spark.read.schema(VISIT_EVENTS_SCHEMA).json(source).limit(20_000),
                                              Batch("warm", 0))
    def limit_once(i: int) -> float:
        """Each micro-batch's file read once into the cache, then each sink written from it alone."""
        out, total = fresh(WORK / "stream" / "limit"), 0.0
        for version, part in enumerate(sorted(Path(source).glob("part-*.json"))):
            cached = spark.read.schema(VISIT_EVENTS_SCHEMA).json(str(part)).persist()
            try:
                with stopwatch() as read:
                    cached.count()
                total += read()
                for sink in _branches(out)(Batch("limit", version)):
                    with stopwatch() as write:
                        sink.run(cached)
                    total += write()
            finally:
                cached.unpersist(blocking=True)
        return total

    scans: dict[str, float] = {}

    def mode(label: str, concurrency: int) -> Timing:
        def once(i: int) -> float:
            out = fresh(WORK / "stream" / label[0])
            with SparkMeter(spark, all_threads=True) as meter, stopwatch() as elapsed:
                if concurrency:
                    query = start(stream(), split_each_batch("bench", _branches(out), concurrency=concurrency),
                                  name=f"bench_{label[0]}_{i}", checkpoint=f"{out}/_checkpoint")
                else:
                    query = (stream().writeStream.foreachBatch(_naive(out))
                             .option("checkpointLocation", f"{out}/_checkpoint").trigger(availableNow=True).start())
                query.awaitTermination()
            batches = len([p for p in query.recentProgress if p["numInputRows"]])
            written = spark.read.format("delta").load(f"{out}/events").count()
            assert written == ROWS and batches == FILES, (label, written, batches)
            scans[label] = len(meter.scan.micro_batch(VISIT_EVENTS_SCHEMA.fieldNames())) / batches
            return elapsed()
        return repeat(once)

    limit = repeat(limit_once)
    results = [(label, mode(label, concurrency)) for label, concurrency in (
        ("a naive foreachBatch", 0), ("b spark_flows split_each_batch", 1), ("c spark_flows, 3 sinks at once", 3))]
    naive = results[0][1]
    rows_out: list[tuple[object, ...]] = [("limit: each micro-batch read once + each sink alone", limit.cell(),
                                           f"{ROWS / limit.median:,.0f}", "1.00x", limit.ratio(naive), "1.0")]
    rows_out += [(label, t.cell(), f"{ROWS / t.median:,.0f}", t.ratio(limit), t.ratio(naive), f"{scans[label]:.1f}")
                 for label, t in results]
    return [table(f"Streaming split: {ROWS:,} visit events in {FILES} micro-batches (JSON files), 3 sinks "
                  "(2 Delta, 1 CSV), local[2]", ["mode", "wall s", "rows/s", "time to limit", "time to a",
                                                  "scans per micro-batch"], rows_out, load_before=before)]
