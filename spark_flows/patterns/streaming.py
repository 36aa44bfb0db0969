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

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from spark_flows.core.scheduling import Outcomes
from spark_flows.errors import StreamingError, checked_name, invalid_argument, not_callable
from spark_flows.flow.graph import Edge, Graph, Node, current, note, note_route, recording_into
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers.contract import Batch, BatchHandler, PendingBatch, WriteResult
from spark_flows.patterns.choice import Route
from spark_flows.patterns.fan_in.alignment import union_by_name
from spark_flows.patterns.fan_in.completeness import Completeness
from spark_flows.patterns.markers import markers_dir, read_marker, write_marker
from spark_flows.patterns.sequence import Sequence as StepSequence
from spark_flows.patterns.split import Branch, Split

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


_MICRO_BATCHES = PendingBatch("(query)", "(micro-batch id)")


@dataclass(frozen=True)
class SplitEachBatch:
    """A Parallel Split on each (already persisted) micro-batch, as a value: ``branches(batch)`` gives the
    sinks of a micro-batch; called as a handler it runs them (:class:`~spark_flows.patterns.split.Split`),
    and :meth:`graph` draws the sinks of ``drawn_as``, a :class:`~spark_flows.io.writers.PendingBatch` that
    names the micro-batches to come.

    With ``raise_for_failures`` (default) a failed branch fails the micro-batch after the other branches
    ran: the restarted query retries it, and the branches that committed skip it.
    """

    name: str
    branches: Callable[[Batch | PendingBatch], Sequence[Branch]]
    concurrency: int = 1
    raise_for_failures: bool = True
    drawn_as: PendingBatch = _MICRO_BATCHES

    def __post_init__(self) -> None:
        if not callable(self.branches):
            raise not_callable(f"split {self.name!r}: branches", self.branches)

    def split(self, batch: Batch | PendingBatch) -> Split:
        """The split of one micro-batch (of ``batch``)."""
        return Split(self.name, tuple(self.branches(batch)), concurrency=self.concurrency, storage_level=None)

    def graph(self) -> Graph:
        """The split's sinks, their keys naming the micro-batches to come."""
        return self.split(self.drawn_as).graph()

    def __call__(self, df: DataFrame, batch: Batch) -> Outcomes:
        result = self.split(batch).run(df)
        if self.raise_for_failures:
            result.raise_for_failures()
        return result


def split_each_batch(name: str, branches: Callable[[Batch | PendingBatch], Sequence[Branch]], *,
                     concurrency: int = 1, raise_for_failures: bool = True) -> SplitEachBatch:
    """:class:`SplitEachBatch` in one call: ``branches(batch)`` gives the sinks of each micro-batch."""
    return SplitEachBatch(name, branches, concurrency, raise_for_failures)


def sequence_each_batch(sequence: StepSequence, then: BatchHandler, *, boundary_root: str | None = None
                        ) -> BatchHandler:
    """Run ``sequence`` on each micro-batch, then ``then`` on its output.

    With ``boundary_root`` the sequence's boundaries are kept per micro-batch (run id ``<app id>-<batch>``):
    a micro-batch retried after a failure resumes after its last boundary.
    """
    if not callable(then):
        raise not_callable(f"sequence {sequence.name!r}: then", then)

    def handle(df: DataFrame, batch: Batch) -> object:
        run = sequence.run(df, run_id=batch.tag if boundary_root else None, boundary_root=boundary_root)
        if boundary_root is None:  # a plain chain notes nothing itself
            for current in sequence.steps:
                note(sequence.node_id(current), status="ran")
        return then(run.frame, batch)

    return handle


def choose_each_batch(choose: Callable[[DataFrame, Batch], Route | str], handlers: Mapping[str, BatchHandler]
                      ) -> BatchHandler:
    """An Exclusive Choice per micro-batch: ``choose`` names the branch (a :class:`Route` says why), exactly
    one handler of ``handlers`` runs. The route is logged and noted; an unknown branch fails the batch."""
    if not handlers:
        raise invalid_argument("handlers", dict(handlers), "at least one branch")

    def handle(df: DataFrame, batch: Batch) -> object:
        chosen = choose(df, batch)
        branch, reason = (chosen.branch, chosen.reason) if isinstance(chosen, Route) else (chosen, "chosen")
        if branch not in handlers:
            raise invalid_argument("chosen branch", branch, f"one of {sorted(handlers)}")
        logger.info("micro-batch %d: route %s (%s)", batch.version, branch, reason)
        if not isinstance(chosen, Route):  # a Route from spark_flows.patterns.choice noted itself when it was taken
            note_route(branch, tuple(handlers), reason)
        return handlers[branch](df, batch)

    return handle


def each_batch(*handlers: BatchHandler) -> BatchHandler:
    """Run ``handlers`` one after another on the same micro-batch (e.g. the sinks, then the markers)."""
    for handler in handlers:
        if not callable(handler):
            raise not_callable("each_batch handler", handler)

    def handle(df: DataFrame, batch: Batch) -> list[object]:
        return [handler(df, batch) for handler in handlers]

    return handle


def tag_sources(frames: Mapping[str, DataFrame], *, column: str = "source", **union: Any) -> DataFrame:
    """Fan-in of streams: :func:`~spark_flows.patterns.fan_in.alignment.union_by_name` (the same schema
    checks, on streaming DataFrames too) with a ``column`` naming each row's source, so each micro-batch can
    tell who contributed (:func:`sources_completeness`)."""
    return union_by_name({name: df.withColumn(column, F.lit(name)) for name, df in frames.items()}, **union)


def sources_completeness(df: DataFrame, expected: Sequence[str], *, column: str = "source") -> Completeness:
    """Which ``expected`` sources contributed rows to this micro-batch (one small aggregation).

    Unlike a batch fan-in, a source absent from a micro-batch is not known to be missing: a stream has no
    end, its rows may come in the next micro-batch. Read the ratio as "who delivered in this micro-batch";
    whether an event-time period is complete is the watermark's question (:class:`PeriodMarkers`).
    """
    seen = {row[0] for row in df.select(column).distinct().collect()}
    return Completeness(tuple(expected), {s: "no rows in this micro-batch" for s in expected if s not in seen})


@dataclass(frozen=True)
class PeriodState:
    """The sink-side watermark of :class:`PeriodMarkers`: the latest event time seen, the event days seen
    and not marked since, and the last micro-batch of each app id already counted."""

    max_event_time: str | None = None
    days: tuple[str, ...] = ()
    batches: Mapping[str, int] = field(default_factory=dict)

    def watermark(self, delay: dt.timedelta) -> dt.datetime | None:
        """The latest event time seen minus ``delay`` (``None`` before any row)."""
        return dt.datetime.fromisoformat(self.max_event_time) - delay if self.max_event_time else None


class PeriodMarkers:
    """A readiness marker per event-time day of ``dataset`` once the watermark passed the day.

    The watermark is the latest event time seen minus ``delay``, as Spark computes it, kept beside the
    markers (``<markers>/_watermark.json``) and moved once per micro-batch, so a replayed micro-batch does
    not move it twice. A day is complete when the watermark is past its end: its marker then pins the
    Delta table version and the day's partition (``partition_column``), so a batch consumer
    (:func:`~spark_flows.patterns.markers.read_when_ready`) reads exactly that day as published. Rows arriving later
    for a day already marked are written like any other (nothing is dropped) and the day's marker is
    published again at the new version: consumers that read it before are reported stale.

    Run it after the sinks, on the same micro-batch (:func:`each_batch`): one small aggregation on the
    persisted micro-batch (latest event time per day), and a marker lookup per day in it; no read of the table.
    """

    def __init__(self, dataset: str, *, event_time: str, partition_column: str, delay: dt.timedelta,
                 producer: str) -> None:
        if not isinstance(delay, dt.timedelta) or delay < dt.timedelta(0):
            raise invalid_argument("delay", delay, "a non-negative datetime.timedelta")
        self.dataset = dataset
        self.event_time = event_time
        self.partition_column = partition_column
        self.delay = delay
        self.producer = producer
        self._published: list[str] = []  # days marked by this query run, in order (noted on the flow)

    @property
    def state_path(self) -> str:
        """Where the watermark state is kept."""
        return f"{markers_dir(self.dataset)}/_watermark.json"

    def state(self, storage: Storage) -> PeriodState:
        """The watermark state (empty before the first micro-batch)."""
        if not storage.exists(self.state_path):
            return PeriodState()
        raw = storage.read_json(self.state_path)
        return PeriodState(raw.get("max_event_time"), tuple(raw.get("days") or ()), dict(raw.get("batches") or {}))

    def __call__(self, df: DataFrame, batch: Batch) -> list[dt.date]:
        spark, storage = df.sparkSession, Storage(df.sparkSession)
        state = self.state(storage)
        late: set[dt.date] = set()
        if state.batches.get(batch.app_id, -1) < batch.version:  # not a replay: count the micro-batch once
            per_day = df.groupBy(F.to_date(self.event_time).alias("day")).agg(
                F.max(self.event_time).alias("high")).collect()
            days = {r["day"] for r in per_day if r["day"] is not None}
            late = {d for d in days if read_marker(spark, self.dataset, d) is not None}
            seen = [t for t in (state.max_event_time, *(_naive(r["high"]) for r in per_day)) if t]
            state = PeriodState(max(seen) if seen else None, tuple(sorted({*state.days, *map(str, days)})),
                                {**state.batches, batch.app_id: batch.version})
            self._save(storage, state)
        watermark = state.watermark(self.delay)
        if watermark is None:
            return []
        due = sorted(d for d in map(dt.date.fromisoformat, state.days) if d < watermark.date())
        if due:
            table_version = delta_log.table_version(storage, self.dataset)
            schema = spark.read.format("delta").load(self.dataset).schema  # the table's, from its log
            for day in due:
                if day in late:
                    logger.warning("%s: late rows for %s (watermark %s): its marker is published again",
                                   self.dataset, day, watermark)
                result = WriteResult(self.dataset, "delta", None, batch=batch, table_version=table_version,
                                     partition={self.partition_column: day.isoformat()})
                write_marker(spark, self.dataset, day, result, producer=self.producer, schema=schema,
                             run_id=batch.tag)
            self._save(storage, replace(state, days=tuple(d for d in state.days
                                                          if dt.date.fromisoformat(d) not in due)))
            self._published += [d.isoformat() for d in due]
        note(f"{self.producer}.markers", status="ran", watermark=watermark.isoformat(),
             published=list(self._published))
        return due

    def _save(self, storage: Storage, state: PeriodState) -> None:
        storage.write_json(self.state_path, {"max_event_time": state.max_event_time, "days": list(state.days),
                                             "batches": dict(state.batches)})

    def graph(self) -> Graph:
        """One node: the markers, with the watermark rule."""
        return Graph.single(f"{self.producer}.markers", "marker", f"readiness marker per {self.event_time} day",
                            when=f"watermark (latest {self.event_time} - {self.delay}) past the day's end")


def _naive(value: Any) -> str | None:
    """An event time as a naive ISO timestamp (Spark gives local, naive datetimes)."""
    return value.replace(tzinfo=None).isoformat() if isinstance(value, dt.datetime) else None


def stream_graph(name: str, source: str, handler_graph: Graph, *, trigger: str = "available_now") -> Graph:
    """The structure of a streaming query: its source, each micro-batch persisted once, then the handler's
    graph (sinks, markers)."""
    nodes = (Node(f"{name}.source", "input", source, {"trigger": trigger}),
             Node(name, "micro_batch", f"{name}: each micro-batch, persisted once",
                  {"batch": f"app {name}.<query id>, version = micro-batch id"}))
    head = Graph(name, nodes, (Edge(f"{name}.source", name, "foreachBatch"),), (f"{name}.source",), (name,))
    return Graph.chain(name, head, handler_graph)


__all__ = [
    "QUERY_METADATA",
    "BatchHandler",
    "MicroBatches",
    "PeriodMarkers",
    "PeriodState",
    "SplitEachBatch",
    "choose_each_batch",
    "committed_batches",
    "each_batch",
    "query_id",
    "sequence_each_batch",
    "sources_completeness",
    "split_each_batch",
    "start",
    "stream_app_id",
    "stream_graph",
    "tag_sources",
]
