"""Parallel Split: read once, run several isolated branches, always release the cache.

The input is persisted once (``MEMORY_AND_DISK`` by default) and every branch reads it from there. Branches
run one after another or concurrently (at most ``concurrency`` at once), each in a Spark job group and
scheduler pool named after it, so its jobs can be identified in the UI and cancelled. A failing branch
does not stop or corrupt the others; the caller decides what a failure means
(:meth:`SplitResult.raise_for_failures`).

Example
-------
>>> import tempfile
>>> from spark_flows.io.writers import Batch, DeltaWriter
>>> out, batch = tempfile.mkdtemp(), Batch("example", 1)
>>> raw = spark.range(6).selectExpr("id", "id % 2 AS k")
>>> result = split(raw, [
...     branch("even", lambda df: DeltaWriter().write(df.where("k = 0"), f"{out}/even", batch=batch)),
...     branch("odd", lambda df: DeltaWriter().write(df.where("k = 1"), f"{out}/odd", batch=batch)),
... ], concurrency=2)
>>> result.ok, [b.rows for b in result.branches]
(True, [3, 3])
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from spark_flows.core.scheduling import TaskOutcome, run_bounded
from spark_flows.errors import (
    BranchFailedError,
    UnknownNameError,
    WriteRefusedError,
    error_summary,
    invalid_argument,
    not_callable,
)
from spark_flows.flow.graph import Edge, Graph, Node, note
from spark_flows.io.writers import Batch, Writer, WriteResult

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
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
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid_argument("branch name", name, f"a string matching {_NAME.pattern}")
    if not callable(run):
        raise not_callable(f"branch {name!r}: run", run)
    return Branch(name, run, committed, key, path)


def write_branch(name: str, writer: Writer, path: str, *, batch: Batch,
                 transform: Callable[[DataFrame], DataFrame] | None = None) -> Branch:
    """A branch that writes ``transform(input)`` with ``writer`` as ``batch``; a replay of a committed batch
    is known before anything is read (the writer's skip rule, from metadata)."""
    shape = transform or (lambda df: df)
    return branch(name, lambda df: writer.write(shape(df), path, batch=batch),
                  committed=lambda spark: writer.already_committed(spark, path, batch),
                  key=f"{writer.idempotency} {batch.app_id}@{batch.version}", path=path)


@dataclass(frozen=True)
class BranchResult:
    """Outcome of one branch."""

    name: str
    ok: bool
    seconds: float
    rows: int | None = None
    skipped: bool = False
    error: str | None = None
    output: WriteResult | None = None
    job_group: str = ""


@dataclass(frozen=True)
class SplitResult:
    """Outcome of :func:`split`: one :class:`BranchResult` per branch, in declaration order."""

    name: str
    branches: tuple[BranchResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """True when every branch succeeded."""
        return all(b.ok for b in self.branches)

    @property
    def failed(self) -> list[str]:
        """Names of the failed branches."""
        return [b.name for b in self.branches if not b.ok]

    def __getitem__(self, name: str) -> BranchResult:
        for result in self.branches:
            if result.name == name:
                return result
        raise UnknownNameError(f"no branch named {name!r}; branches: {[b.name for b in self.branches]}",
                               parameters={"name": name, "names": [b.name for b in self.branches]})

    def raise_for_failures(self) -> None:
        """Raise :class:`BranchFailedError` naming every failed branch and its error."""
        if not self.ok:
            details = "; ".join(f"{b.name}: {b.error}" for b in self.branches if not b.ok)
            raise BranchFailedError(
                f"split '{self.name}': {len(self.failed)} of {len(self.branches)} branch(es) failed: {details}",
                parameters={"split": self.name, "failed": self.failed,
                            "errors": {b.name: b.error for b in self.branches if not b.ok}})


def describe(branches: Sequence[Branch], *, source: str = "input") -> list[tuple[str, str]]:
    """The split's edges as plain data: ``[(source, branch), ...]`` (see :func:`split_graph`)."""
    return [(source, b.name) for b in branches]


def split_graph(branches: Sequence[Branch], *, name: str = "split", concurrency: int = 1) -> Graph:
    """The structure of :func:`split` over ``branches``: the persisted input, then one node per branch, the
    branch's idempotency key on its edge. Needs no Spark."""
    nodes = [Node(name, "split", name, {"input": "persisted once", "concurrency": concurrency})]
    nodes += [Node(f"{name}.{b.name}", "branch", b.name, {"idempotency": b.key} if b.key else {}) for b in branches]
    edges = tuple(Edge(name, f"{name}.{b.name}", b.key) for b in branches)
    return Graph(name, tuple(nodes), edges, (name,), tuple(f"{name}.{b.name}" for b in branches))


def _result(branch_name: str, outcome: TaskOutcome) -> BranchResult:
    output = outcome.value if isinstance(outcome.value, WriteResult) else None
    if not outcome.ok:
        logger.error("branch %s: failed after %.1fs: %s", branch_name, outcome.seconds, outcome.error)
        return BranchResult(branch_name, False, outcome.seconds, error=outcome.error, job_group=outcome.job_group)
    rows = output.rows if output else None
    skipped = bool(output and output.skipped)
    logger.info("branch %s: %s in %.1fs", branch_name,
                output.reason if skipped and output else f"{rows if rows is not None else '?'} rows", outcome.seconds)
    return BranchResult(branch_name, True, outcome.seconds, rows=rows, skipped=skipped, output=output,
                        job_group=outcome.job_group)


def split(
    df: DataFrame | Callable[[], DataFrame],
    branches: Sequence[Branch],
    *,
    name: str = "split",
    storage_level: StorageLevel | None = StorageLevel.MEMORY_AND_DISK,
    concurrency: int = 1,
    cancel_on_failure: bool = False,
) -> SplitResult:
    """Persist ``df`` once, run ``branches`` on it, unpersist, and return every branch's outcome.

    Parameters
    ----------
    df: the input, or a function that loads it: it is then called only if a branch has to run (a replay
        whose every output already holds its batch reads nothing).
    storage_level: how the input is persisted; ``None`` when the caller already persisted (and filled) it.
        The persisted input is filled by one Spark job (the one scan of the source) before any branch starts.
    concurrency: branches running at once (1: one after another, in declaration order).
    cancel_on_failure: cancel the other running branches' jobs as soon as one fails.

    Returns
    -------
    SplitResult; never raises for a branch's failure (see :meth:`SplitResult.raise_for_failures`).
    """
    if not branches:
        raise invalid_argument("branches", list(branches), "at least one branch")
    names = [b.name for b in branches]
    if len(set(names)) != len(names):
        raise invalid_argument("branch names", names, "unique")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise invalid_argument("concurrency", concurrency, "an int >= 1")
    began = time.monotonic()
    is_frame = hasattr(df, "sparkSession")  # a classic or a Spark Connect DataFrame, not a loader
    spark = cast(DataFrame, df).sparkSession if is_frame else None
    done, refused = _already_committed(branches, spark)
    pending = [b for b in branches if b.name not in done]
    outcomes = {n: TaskOutcome(n, True, 0.0, value=result) for n, result in done.items()}
    if refused:  # one output refuses the batch: writing it to the others would make the outputs disagree
        first = next(iter(refused))
        logger.error("split %s: branch %s refuses the batch (%s): no branch writes", name, first, refused[first])
        outcomes.update({b.name: TaskOutcome(b.name, False, 0.0, error=refused.get(
            b.name, f"not run: branch {first} refuses the batch: {refused[first]}")) for b in pending})
        pending = []
    if pending:
        frame = cast(DataFrame, df) if is_frame else cast(Callable[[], DataFrame], df)()
        source = frame.persist(storage_level) if storage_level is not None else frame

        def task(current: Branch) -> Callable[[], WriteResult | None]:
            def run() -> WriteResult | None:
                logger.info("branch %s: started", current.name)
                return current.run(source)
            return run

        try:
            if storage_level is not None:
                # Fill the cache before branches start: concurrent branches would otherwise race to fill it
                # and each scan part of the source. This count is the one scan of the source.
                logger.info("split %s: input persisted (%d rows)", name, source.count())
            outcomes.update(run_bounded(source.sparkSession, [(b.name, task(b)) for b in pending],
                                        concurrency=concurrency, name=name, cancel_on_failure=cancel_on_failure))
        finally:
            if storage_level is not None:
                source.unpersist(blocking=True)
    elif not refused:
        logger.info("split %s: every branch's output already holds its batch: nothing read", name)
    return _noted(name, names, outcomes, began, status=("failed", "an output refuses the batch") if refused else
                  ("ran", None) if pending else ("skipped", "every output holds its batch"))


def replayed(branches: Sequence[Branch], *, name: str = "split") -> SplitResult | None:
    """The :func:`split` result of a replay whose every branch output already holds its batch, told from
    metadata on local disk without Spark (``Storage(None)``); ``None`` when some branch would write, refuses
    the batch, or cannot tell. A job asks it before its session starts: a replay then costs no Spark at all.
    Use it only with outputs on local disk (no Spark, so no Hadoop configuration to reach others with).
    """
    began = time.monotonic()
    done, refused = _already_committed(branches, None, without_spark=True)
    if refused or len(done) != len(branches):
        return None
    logger.info("split %s: every branch's output already holds its batch: nothing read, no Spark", name)
    outcomes = {n: TaskOutcome(n, True, 0.0, value=result) for n, result in done.items()}
    return _noted(name, [b.name for b in branches], outcomes, began, status=("skipped", "every output holds its batch"))


def _noted(name: str, names: Sequence[str], outcomes: Mapping[str, TaskOutcome], began: float, *,
           status: tuple[str, str | None]) -> SplitResult:
    """The split's result, its facts noted on the split's node and each branch's."""
    result = SplitResult(name, tuple(_result(n, outcomes[n]) for n in names), time.monotonic() - began)
    note(name, status=status[0], reason=status[1], seconds=round(result.seconds, 1))
    for outcome in result.branches:
        state = "failed" if not outcome.ok else ("skipped" if outcome.skipped else "ran")
        note(f"{name}.{outcome.name}", status=state, rows=outcome.rows, seconds=round(outcome.seconds, 1),
             reason=outcome.error or (outcome.output.reason if outcome.skipped and outcome.output else None))
    return result


def _already_committed(branches: Sequence[Branch], spark: SparkSession | None, *,
                       without_spark: bool = False) -> tuple[dict[str, WriteResult], dict[str, str]]:
    """From metadata alone: the branches whose output already holds their batch, and those whose output
    refuses it (e.g. ``BATCH_OUT_OF_ORDER``), by name, each with its one-line refusal.

    With a loader instead of a DataFrame the session is the process's live one (none ``without_spark``).
    """
    if not any(b.committed is not None for b in branches):
        return {}, {}
    if spark is None and not without_spark:
        from spark_flows.core.session import existing_session

        spark = existing_session()
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
