"""Parallel Split: read once, run several isolated branches, always release the cache.

The input is persisted once (``MEMORY_AND_DISK`` by default) and every branch reads it from there. Branches
run one after another or concurrently (at most ``concurrency`` at once), each in a Spark job group and
scheduler pool named after it, so its jobs can be identified in the UI and cancelled. A failing branch
does not stop or corrupt the others; the caller decides what a failure means
(:meth:`~spark_flows.core.scheduling.Outcomes.raise_for_failures`).

Example
-------
>>> import tempfile
>>> from spark_flows.io.writers import Batch, DeltaWriter
>>> out, batch = tempfile.mkdtemp(), Batch("example", 1)
>>> raw = spark.range(6).selectExpr("id", "id % 2 AS k")
>>> by_parity = Split("by_parity", (
...     branch("even", lambda df: DeltaWriter().write(df.where("k = 0"), f"{out}/even", batch=batch)),
...     branch("odd", lambda df: DeltaWriter().write(df.where("k = 1"), f"{out}/odd", batch=batch)),
... ), concurrency=2)
>>> result = by_parity.run(raw)
>>> result.ok, [b.rows for b in result]
(True, [3, 3])
>>> [(e.source, e.target) for e in by_parity.graph().edges]
[('by_parity', 'by_parity.even'), ('by_parity', 'by_parity.odd')]

:func:`split` is the same in one call: ``split(raw, branches, concurrency=2)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from spark_flows.core.scheduling import Outcome, Outcomes, run_bounded
from spark_flows.errors import (
    WriteRefusedError,
    checked_name,
    error_summary,
    invalid_argument,
    not_callable,
)
from spark_flows.flow.graph import Edge, Graph, Node, note
from spark_flows.io.writers import Batch, PendingBatch, Writer, WriteResult

logger = logging.getLogger(__name__)

BranchFn = Callable[[DataFrame], "WriteResult | None"]
CommittedFn = Callable[["SparkSession | None"], "WriteResult | None"]  # None: no session, local files


@dataclass(frozen=True)
class Branch:
    """A named consumer of the split's input; returns the :class:`WriteResult` of its output, if any.

    ``committed`` (optional) tells from metadata alone whether the branch's output already holds its batch
    (the skipped :class:`WriteResult`, else ``None``): when every branch's output does, the split reads
    nothing at all.
    """

    name: str
    run: BranchFn
    committed: CommittedFn | None = None
    key: str = ""
    path: str = ""  # the output it writes, when one path says it (write_branch)


def branch(name: str, run: BranchFn, *, committed: CommittedFn | None = None, key: str = "",
           path: str = "") -> Branch:
    """Build a :class:`Branch`, validating its name (it names a job group and a scheduler pool).

    ``key`` describes what makes a retry of the branch write nothing twice (drawn on its edge); ``path`` is
    the output it writes, if one.
    """
    checked_name("branch name", name)
    if not callable(run):
        raise not_callable(f"branch {name!r}: run", run)
    return Branch(name, run, committed, key, path)


def write_branch(name: str, writer: Writer, path: str, *, batch: Batch | PendingBatch,
                 transform: Callable[[DataFrame], DataFrame] | None = None) -> Branch:
    """A branch that writes ``transform(input)`` with ``writer`` as ``batch``; a replay of a committed batch
    is known before anything is read (the writer's skip rule, from metadata). Its idempotency key (drawn on
    its edge) is the writer's rule and the batch's label. With a :class:`PendingBatch` the branch only draws.
    """
    key = f"{writer.idempotency} {batch.label}"
    if isinstance(batch, PendingBatch):
        def pending(df: DataFrame) -> WriteResult | None:
            raise invalid_argument(f"branch {name!r}: batch", batch, "a Batch with a version to write")
        return branch(name, pending, key=key, path=path)
    shape = transform or (lambda df: df)
    written = batch
    return branch(name, lambda df: writer.write(shape(df), path, batch=written),
                  committed=lambda spark: writer.already_committed(spark, path, written), key=key, path=path)


@dataclass(frozen=True)
class Split:
    """A Parallel Split as a value: its name, its branches and how they run. :meth:`run` persists the input
    once, runs the branches on it and unpersists; :meth:`graph` draws the same branches.

    ``storage_level``: how the input is persisted; ``None`` when the caller already persisted (and filled)
    it. ``concurrency``: branches running at once (1: one after another, in declaration order).
    ``cancel_on_failure``: cancel the other running branches' jobs as soon as one fails.
    """

    name: str
    branches: tuple[Branch, ...]
    concurrency: int = 1
    storage_level: StorageLevel | None = field(default_factory=lambda: StorageLevel.MEMORY_AND_DISK)
    cancel_on_failure: bool = False

    def __post_init__(self) -> None:
        if not self.branches:
            raise invalid_argument("branches", list(self.branches), "at least one branch")
        object.__setattr__(self, "branches", tuple(self.branches))
        names = [b.name for b in self.branches]
        if len(set(names)) != len(names):
            raise invalid_argument("branch names", names, "unique")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise invalid_argument("concurrency", self.concurrency, "an int >= 1")

    def graph(self) -> Graph:
        """The persisted input, then one node per branch, the branch's idempotency key on its edge."""
        name = self.name
        nodes = [Node(name, "split", name, {"input": "persisted once", "concurrency": self.concurrency})]
        nodes += [Node(f"{name}.{b.name}", "branch", b.name, {"idempotency": b.key} if b.key else {})
                  for b in self.branches]
        edges = tuple(Edge(name, f"{name}.{b.name}", b.key) for b in self.branches)
        return Graph(name, tuple(nodes), edges, (name,), tuple(f"{name}.{b.name}" for b in self.branches))

    def run(self, df: DataFrame | Callable[[], DataFrame]) -> Outcomes:
        """Persist ``df`` once, run the branches on it, unpersist, and return every branch's :class:`Outcome`.

        ``df`` is the input, or a function that loads it: it is then called only if a branch has to run (a
        replay whose every output already holds its batch reads nothing). The persisted input is filled by
        one Spark job (the one scan of the source) before any branch starts. Never raises for a branch's
        failure (see :meth:`Outcomes.raise_for_failures`).
        """
        name, branches = self.name, self.branches
        began = time.monotonic()
        is_frame = hasattr(df, "sparkSession")  # a classic or a Spark Connect DataFrame, not a loader
        spark = cast(DataFrame, df).sparkSession if is_frame else None
        done, refused = _already_committed(branches, spark)
        pending = [b for b in branches if b.name not in done]
        outcomes = {n: Outcome(n, True, 0.0, value=result) for n, result in done.items()}
        if refused:  # one output refuses the batch: writing it to the others would make the outputs disagree
            first = next(iter(refused))
            logger.error("split %s: branch %s refuses the batch (%s): no branch writes", name, first, refused[first])
            outcomes.update({b.name: Outcome(b.name, False, 0.0, error=refused.get(
                b.name, f"not run: branch {first} refuses the batch: {refused[first]}")) for b in pending})
            pending = []
        if pending:
            frame = cast(DataFrame, df) if is_frame else cast(Callable[[], DataFrame], df)()
            outcomes.update(self._run_branches(frame, pending))
        elif not refused:
            logger.info("split %s: every branch's output already holds its batch: nothing read", name)
        return self._noted(outcomes, began, status=("failed", "an output refuses the batch") if refused else
                           ("ran", None) if pending else ("skipped", "every output holds its batch"))

    def _run_branches(self, frame: DataFrame, pending: Sequence[Branch]) -> dict[str, Outcome]:
        source = frame.persist(self.storage_level) if self.storage_level is not None else frame

        def task(current: Branch) -> Callable[[], WriteResult | None]:
            def run() -> WriteResult | None:
                logger.info("branch %s: started", current.name)
                return current.run(source)
            return run

        try:
            if self.storage_level is not None:
                # Fill the cache before branches start: concurrent branches would otherwise race to fill it
                # and each scan part of the source. This count is the one scan of the source.
                logger.info("split %s: input persisted (%d rows)", self.name, source.count())
            return run_bounded(source.sparkSession, [(b.name, task(b)) for b in pending],
                               concurrency=self.concurrency, name=self.name, cancel_on_failure=self.cancel_on_failure)
        finally:
            if self.storage_level is not None:
                source.unpersist(blocking=True)

    def replayed(self) -> Outcomes | None:
        """The :meth:`run` result of a replay whose every branch output already holds its batch, told from
        metadata on local disk without Spark (``Storage(None)``); ``None`` when some branch would write,
        refuses the batch, or cannot tell. A job asks it before its session starts: a replay then costs no
        Spark at all. Use it only with outputs on local disk (no Spark, so no Hadoop configuration to reach
        others with).
        """
        began = time.monotonic()
        done, refused = _already_committed(self.branches, None, without_spark=True)
        if refused or len(done) != len(self.branches):
            return None
        logger.info("split %s: every branch's output already holds its batch: nothing read, no Spark", self.name)
        outcomes = {n: Outcome(n, True, 0.0, value=result) for n, result in done.items()}
        return self._noted(outcomes, began, status=("skipped", "every output holds its batch"))

    def _noted(self, outcomes: Mapping[str, Outcome], began: float, *, status: tuple[str, str | None]) -> Outcomes:
        """The split's result, its facts noted on the split's node and each branch's."""
        result = Outcomes(self.name, tuple(_result(outcomes[b.name]) for b in self.branches),
                          time.monotonic() - began, "branch")
        note(self.name, status=status[0], reason=status[1], seconds=round(result.seconds, 1))
        for outcome in result:
            note(f"{self.name}.{outcome.name}", status=outcome.status, rows=outcome.rows,
                 seconds=round(outcome.seconds, 1), reason=outcome.error or outcome.reason)
        return result


def _result(outcome: Outcome) -> Outcome:
    """A branch's outcome with its rows and skip reason taken from the :class:`WriteResult` it returned."""
    output = outcome.value if isinstance(outcome.value, WriteResult) else None
    if not outcome.ok:
        logger.error("branch %s: failed after %.1fs: %s", outcome.name, outcome.seconds, outcome.error)
        return outcome
    rows = output.rows if output else None
    skipped = bool(output and output.skipped)
    reason = output.reason if skipped and output else None
    logger.info("branch %s: %s in %.1fs", outcome.name, reason or f"{rows if rows is not None else '?'} rows",
                outcome.seconds)
    return replace(outcome, value=output, rows=rows, skipped=skipped, reason=reason)


def split(
    df: DataFrame | Callable[[], DataFrame],
    branches: Sequence[Branch],
    *,
    name: str = "split",
    storage_level: StorageLevel | None = StorageLevel.MEMORY_AND_DISK,
    concurrency: int = 1,
    cancel_on_failure: bool = False,
) -> Outcomes:
    """``Split(name, branches, ...).run(df)`` in one call: persist ``df`` once, run ``branches`` on it,
    unpersist, and return every branch's :class:`Outcome` (see :class:`Split`)."""
    return Split(name, tuple(branches), concurrency, storage_level, cancel_on_failure).run(df)


def _already_committed(branches: Sequence[Branch], spark: SparkSession | None, *,
                       without_spark: bool = False) -> tuple[dict[str, WriteResult], dict[str, str]]:
    """From metadata alone: the branches whose output already holds their batch, and those whose output
    refuses it (e.g. ``BATCH_OUT_OF_ORDER``), by name, each with its one-line refusal.

    With a loader instead of a DataFrame the session is the process's live one (none ``without_spark``).
    """
    if not any(b.committed is not None for b in branches):
        return {}, {}
    if spark is None and not without_spark:
        from spark_flows.core.backend import live_session

        spark = live_session()
        if spark is None:
            return {}, {}
    found: dict[str, WriteResult] = {}
    refused: dict[str, str] = {}
    for current in branches:
        try:
            result = current.committed(spark) if current.committed is not None else None
        except WriteRefusedError as exc:  # knowable before anything is written: no branch may write the batch
            refused[current.name] = error_summary(exc)
            continue
        except Exception as exc:  # the branch will run, and fail, in isolation like any other
            logger.debug("branch %s: cannot tell whether it is committed: %s", current.name, exc)
            result = None
        if result is not None:
            found[current.name] = result
    return found, refused
