"""A readiness marker per event-time period (a day) once the sink's own watermark passed it: the Isolated
Sequencer from a stream to a batch consumer."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_flows.errors import invalid_argument
from spark_flows.flow.graph import Graph, note
from spark_flows.io import delta_log
from spark_flows.io.storage import Storage
from spark_flows.io.writers.contract import Batch, WriteResult
from spark_flows.patterns.markers import markers_dir, read_marker, write_marker

logger = logging.getLogger(__name__)


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
