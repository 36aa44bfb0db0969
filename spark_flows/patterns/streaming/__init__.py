"""Structured Streaming: the patterns on each micro-batch (``foreachBatch``), exactly once in every sink.

A streaming query hands each micro-batch to a function; :class:`MicroBatches` is that function. It persists
the micro-batch once (one scan of the source), gives it to a *batch handler* as a :class:`Batch` whose
version is the micro-batch id, and releases it. Handlers compose the batch patterns:

* :func:`split_each_batch`: a Parallel Split into several sinks (Delta tables, staged files); each sink
  skips a micro-batch it already holds, so a query restarted from its checkpoint re-runs the interrupted
  micro-batch and writes nothing twice (Delta ``txnAppId``/``txnVersion``, ``_PUBLISHED.json``).
* :func:`sequence_each_batch`: a Local Sequencer on the micro-batch, then the next handler.
* :func:`choose_each_batch`: an Exclusive Choice per micro-batch, the route logged and noted.
* :class:`PeriodMarkers`: a readiness marker per event-time day once the sink's own watermark passed it
  (Isolated Sequencer to a batch consumer).
* :func:`each_batch`: several handlers, one after another, on the same persisted micro-batch.

**The app id.** Every sink records the micro-batch under ``<name>.<query id>``. Spark keeps the query id in
the checkpoint (``<checkpoint>/metadata``): a restart from the same checkpoint has the same id, so the
interrupted micro-batch is recognised and skipped where it committed. A *new* checkpoint is a new query:
its micro-batch ids start again at 0 under a new app id, so they are written, not mistaken for the old
query's batches (a fixed app id would silently skip them). What the new query reads again from its source
(a file source re-reads every file) is then written again: delete the sinks with the checkpoint, or start
the new query from where the old one stopped. Renaming the query (``name``) also changes the app id.

The public names are re-exported by :mod:`spark_flows.streaming`, whose example runs a query.
"""


from __future__ import annotations

from spark_flows.io.writers.contract import BatchHandler
from spark_flows.patterns.streaming.handlers import (
    SplitEachBatch,
    choose_each_batch,
    each_batch,
    sequence_each_batch,
    sources_completeness,
    split_each_batch,
    tag_sources,
)
from spark_flows.patterns.streaming.period_markers import PeriodMarkers, PeriodState
from spark_flows.patterns.streaming.query import (
    QUERY_METADATA,
    MicroBatches,
    check_checkpoint_kept,
    committed_batches,
    query_id,
    start,
    stream_app_id,
    stream_graph,
)

__all__ = [
    "QUERY_METADATA", "BatchHandler", "MicroBatches", "PeriodMarkers", "PeriodState", "SplitEachBatch",
    "check_checkpoint_kept", "choose_each_batch", "committed_batches", "each_batch", "query_id",
    "sequence_each_batch", "sources_completeness", "split_each_batch", "start", "stream_app_id", "stream_graph",
    "tag_sources",
]
