"""The streaming query: :class:`MicroBatches` (the ``foreachBatch`` function), :func:`start`, the query id
kept in the checkpoint and the app id made from it, and the query's drawing."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from spark_flows.errors import StreamingError, checked_name, invalid_argument, not_callable
from spark_flows.flow.graph import Edge, Graph, Node, current, note, recording_into
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers.contract import Batch, BatchHandler

logger = logging.getLogger(__name__)


#: where Spark keeps a query's id inside its checkpoint (``{"id": "<uuid>"}``)
QUERY_METADATA = "metadata"


def query_id(storage: Storage, checkpoint: str) -> str:
    """The id Spark recorded for the query in ``checkpoint`` (kept across restarts from it).

    Raises
    ------
    StreamingError: ``CHECKPOINT_WITHOUT_QUERY_ID``: the query was never started on this checkpoint.
    """
    path = f"{checkpoint.rstrip('/')}/{QUERY_METADATA}"
    if not storage.exists(path):
        raise StreamingError(f"{path} does not exist: the query was not started with checkpointLocation "
                             f"{checkpoint}. Start it with spark_flows.streaming.start(..., checkpoint=...) or set the "
                             "same checkpointLocation on the query", condition="CHECKPOINT_WITHOUT_QUERY_ID",
                             parameters={"checkpoint": checkpoint})
    return str(json.loads(storage.read_text(path).splitlines()[0])["id"])


def check_checkpoint_kept(storage: Storage, name: str, checkpoint: str, sinks: Sequence[str]) -> None:
    """Refuse to start the stream ``name`` on a new ``checkpoint`` while a Delta sink of ``sinks`` holds
    micro-batches of an earlier query of that name: its checkpoint was deleted or moved, and a new query would
    read the whole input again into sinks that hold it (under a new app id, so no sink would skip it).

    Raises
    ------
    StreamingError: ``CHECKPOINT_LOST``, naming the sink and the earlier query; restore the checkpoint, or
        delete the sinks with it to start over.
    """
    if storage.exists(f"{checkpoint.rstrip('/')}/{QUERY_METADATA}"):
        return
    for sink in sinks:
        earlier = sorted(a for a in delta_log.app_ids(storage, sink) if a.startswith(f"{name}."))
        if earlier:
            raise StreamingError(
                f"the checkpoint {checkpoint} is new, but {sink} holds micro-batches of the earlier query "
                f"{earlier[-1]}: its checkpoint was deleted or moved, and a new query would write the whole input "
                "again. Restore the checkpoint, or delete the sinks with it to start over",
                condition="CHECKPOINT_LOST", parameters={"checkpoint": checkpoint, "sink": sink, "queries": earlier})


def committed_batches(storage: Storage, checkpoint: str) -> list[int]:
    """The micro-batch ids Spark recorded as done in ``checkpoint`` (``commits/``), oldest first. Readable
    after the query stopped, on any backend (a Connect client keeps no progress of a stopped query)."""
    return sorted(int(i.name) for i in storage.list(f"{checkpoint.rstrip('/')}/commits") if i.name.isdigit())


def stream_app_id(name: str, query: str) -> str:
    """``<name>.<query id>``: the app id every sink records micro-batches under (see the module notes)."""
    return f"{name}.{query}"


class MicroBatches:
    """The ``foreachBatch`` function: persist the micro-batch once, run ``handler`` on it as a
    :class:`Batch` (app id ``<name>.<query id>``, version the micro-batch id), release it.

    An empty micro-batch is logged and skipped (sinks refuse empty batches). A handler's error fails the
    micro-batch, and so the query; restarted from its checkpoint, the query runs the same micro-batch id
    again, and the sinks that committed it skip it.

    Parameters
    ----------
    checkpoint: the query's checkpoint location (its query id makes the app id).
    storage_level: how the micro-batch is persisted; ``None`` to hand it over as it is (each action then
        reads the source again).
    """

    def __init__(self, name: str, handler: BatchHandler, *, checkpoint: str,
                 storage_level: StorageLevel | None = StorageLevel.MEMORY_AND_DISK) -> None:
        checked_name("stream name", name)
        if not callable(handler):
            raise not_callable(f"stream {name!r}: handler", handler)
        self.name = name
        self.handler = handler
        self.checkpoint = checkpoint
        self.storage_level = storage_level
        self._app_id: str | None = None
        self._batches, self._rows = 0, 0
        self._run = current()  # the job's recording: notes from the callback thread land there

    def __getstate__(self) -> dict[str, Any]:  # Spark Connect pickles the function to run it on the server
        return {**self.__dict__, "_run": None}

    def app_id(self, storage: Storage) -> str:
        """The app id of this query (read once from its checkpoint)."""
        if self._app_id is None:
            self._app_id = stream_app_id(self.name, query_id(storage, self.checkpoint))
        return self._app_id

    def __call__(self, df: DataFrame, batch_id: int) -> None:
        with recording_into(self._run):
            self._micro_batch(df, int(batch_id))

    def _micro_batch(self, df: DataFrame, batch_id: int) -> None:
        began = time.monotonic()
        batch = Batch(self.app_id(Storage(df.sparkSession)), batch_id)
        frame = df.persist(self.storage_level) if self.storage_level is not None else df
        try:
            rows = frame.count()  # fills the cache: the one scan of the source for this micro-batch
            if rows == 0:
                logger.info("stream %s: micro-batch %d is empty: nothing to write", self.name, batch_id)
                note(self.name, status="skipped", batch=batch.version, reason="empty micro-batch")
                return
            logger.info("stream %s: micro-batch %d: %d rows (app %s)", self.name, batch_id, rows, batch.app_id)
            self.handler(frame, batch)
        finally:
            if self.storage_level is not None:
                frame.unpersist(blocking=True)
        logger.info("stream %s: micro-batch %d done in %.1fs", self.name, batch_id, time.monotonic() - began)
        self._batches, self._rows = self._batches + 1, self._rows + rows
        note(self.name, status="ran", batches=self._batches, rows=self._rows, last_batch=batch.version)


def start(df: DataFrame, handler: BatchHandler, *, name: str, checkpoint: str, trigger: str = "available_now",
          interval: str = "0 seconds", storage_level: StorageLevel | None = StorageLevel.MEMORY_AND_DISK,
          options: Mapping[str, str] | None = None) -> StreamingQuery:
    """Start ``df`` (a streaming DataFrame) with ``handler`` on each micro-batch; returns the running query.

    ``trigger``: ``"available_now"`` processes what the source holds now, in micro-batches, then stops;
    ``"processing_time"`` runs until stopped, one micro-batch every ``interval`` (Spark's continuous
    processing trigger does not run ``foreachBatch``).
    """
    if not df.isStreaming:
        raise invalid_argument("df", "a batch DataFrame", "a streaming DataFrame (spark.readStream...)")
    writer = (df.writeStream.queryName(name).option("checkpointLocation", checkpoint).options(**dict(options or {}))
              .foreachBatch(MicroBatches(name, handler, checkpoint=checkpoint, storage_level=storage_level)))
    if trigger == "available_now":
        writer = writer.trigger(availableNow=True)
    elif trigger == "processing_time":
        writer = writer.trigger(processingTime=interval)
    else:
        raise invalid_argument("trigger", trigger, "'available_now' or 'processing_time'")
    return writer.start()


def stream_graph(name: str, source: str, handler_graph: Graph, *, trigger: str = "available_now") -> Graph:
    """The structure of a streaming query: its source, each micro-batch persisted once, then the handler's
    graph (sinks, markers)."""
    nodes = (Node(f"{name}.source", "input", source, {"trigger": trigger}),
             Node(name, "micro_batch", f"{name}: each micro-batch, persisted once",
                  {"batch": f"app {name}.<query id>, version = micro-batch id"}))
    head = Graph(name, nodes, (Edge(f"{name}.source", name, "foreachBatch"),), (f"{name}.source",), (name,))
    return Graph.chain(name, head, handler_graph)
