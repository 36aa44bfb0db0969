"""Batch handlers: the batch patterns on each persisted micro-batch (split, sequence, choice, several in
order), and the sources of a micro-batch tagged and counted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_flows.core.scheduling import Outcomes
from spark_flows.errors import invalid_argument, not_callable
from spark_flows.flow.graph import Graph, note, note_route
from spark_flows.io.writers.contract import Batch, BatchHandler, PendingBatch
from spark_flows.patterns.choice import Route
from spark_flows.patterns.fan_in.alignment import union_by_name
from spark_flows.patterns.fan_in.completeness import Completeness
from spark_flows.patterns.sequence import Sequence as StepSequence
from spark_flows.patterns.split import Branch, Split

logger = logging.getLogger(__name__)


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
