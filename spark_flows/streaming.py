"""Structured Streaming: the patterns on each micro-batch (``foreachBatch``), exactly once in every sink.

The public face of :mod:`spark_flows.patterns.streaming`: start a query whose micro-batches run a Parallel
Split (:func:`split_each_batch`), a Local Sequencer (:func:`sequence_each_batch`), an Exclusive Choice
(:func:`choose_each_batch`) or several of them (:func:`each_batch`), with readiness markers per event-time
period (:class:`PeriodMarkers`).

Example
-------
>>> import tempfile
>>> import spark_flows as sf
>>> import spark_flows.streaming as sfs
>>> root = tempfile.mkdtemp()
>>> spark.range(4).write.json(f"{root}/in")
>>> stream = spark.readStream.schema("id LONG").json(f"{root}/in")
>>> query = sfs.start(stream, sfs.split_each_batch("ids", lambda batch: [
...     sf.write_branch("copy", sf.DeltaWriter(), f"{root}/copy", batch=batch)]),
...     name="ids", checkpoint=f"{root}/checkpoint")
>>> query.awaitTermination(); spark.read.format("delta").load(f"{root}/copy").count()
4
"""

from __future__ import annotations

from spark_flows.io.sources import checked_each_batch, read_json_stream
from spark_flows.patterns.streaming import (
    BatchHandler,
    MicroBatches,
    PeriodMarkers,
    SplitEachBatch,
    choose_each_batch,
    committed_batches,
    each_batch,
    query_id,
    sequence_each_batch,
    sources_completeness,
    split_each_batch,
    start,
    stream_app_id,
    tag_sources,
)

__all__ = [
    "BatchHandler", "MicroBatches", "PeriodMarkers", "SplitEachBatch", "checked_each_batch", "choose_each_batch",
    "committed_batches", "each_batch", "query_id", "read_json_stream", "sequence_each_batch", "sources_completeness",
    "split_each_batch", "start", "stream_app_id", "tag_sources",
]
