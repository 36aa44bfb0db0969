"""Local Sequencer: named steps chained with ``DataFrame.transform``, with restart boundaries.

A :class:`Sequence` is plain data (its steps, their kinds and order) and composes lazily: chaining launches
no Spark job. A step marked as a *boundary* persists its output as a Delta table under a run id when the
sequence is run; a rerun of the same run id after a later step failed starts from the last completed
boundary instead of recomputing everything before it, and a new run id recomputes from the start.

Example
-------
>>> from pyspark.sql import functions as F
>>> from spark_flows.patterns.sequence import Sequence, step
>>> seq = Sequence("devices", [
...     step("validate", lambda df: df.where(F.length("type") > 3), boundary=True),
...     step("enrich", lambda df: df.withColumn("full_name", F.concat_ws(" ", "full_name", "version"))),
... ])
>>> [(s["name"], s["kind"]) for s in seq.describe()]
[('validate', 'boundary'), ('enrich', 'step')]
>>> # lazy: raw.transform(seq); with restarts: seq.run(raw, run_id="2024-01-01", boundary_root="/tmp/b")
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

from pyspark.sql import DataFrame

from spark_flows.errors import (
    SparkFlowsValueError,
    StepFailedError,
    checked_name,
    error_summary,
    invalid_argument,
    not_callable,
)
from spark_flows.flow.graph import Edge, Graph, Node, note
from spark_flows.io.storage import Storage

logger = logging.getLogger(__name__)

Transform = Callable[[DataFrame], DataFrame]
_FIRST_COMMIT = "_delta_log/00000000000000000000.json"


@dataclass(frozen=True)
class Step:
    """One named ``DataFrame -> DataFrame`` function; ``boundary`` steps persist their output when run."""

    name: str
    transform: Transform
    boundary: bool = False

    @property
    def kind(self) -> str:
        """``"boundary"`` or ``"step"``."""
        return "boundary" if self.boundary else "step"


def step(name: str, transform: Transform, *, boundary: bool = False) -> Step:
    """Build a :class:`Step`, validating its name (letters, digits, ``_ . -``)."""
    checked_name("step name", name)
    if not callable(transform):
        raise not_callable(f"step {name!r}: transform", transform)
    return Step(name, transform, boundary)


def _apply(df: DataFrame, current: Step, position: str, sequence: str) -> DataFrame:
    logger.info("sequence %s: step %s (%s)", sequence, current.name, position)
    try:
        result = df.transform(current.transform)
        result.schema  # noqa: B018  (analysis now, so a bad step is named; Spark Connect analyses lazily)
    except Exception as exc:
        raise StepFailedError(
            f"step '{current.name}' ({position}) of sequence '{sequence}' failed: {error_summary(exc)}",
            parameters={"step": current.name, "position": position, "sequence": sequence},
        ) from exc
    return result


def chain(df: DataFrame, steps: Seq[Step], *, name: str = "chain") -> DataFrame:
    """Apply ``steps`` in order with ``DataFrame.transform``; lazy, launches no Spark job.

    Boundaries are treated as plain steps here; use :meth:`Sequence.run` for restarts.
    """
    for index, current in enumerate(steps, start=1):
        df = _apply(df, current, f"{index}/{len(steps)}", name)
    return df


@dataclass(frozen=True)
class SequenceRun:
    """Outcome of :meth:`Sequence.run`: the final (lazy) DataFrame and what was computed or reused."""

    frame: DataFrame
    run_id: str | None
    resumed_from: str | None
    steps_run: tuple[str, ...]
    steps_skipped: tuple[str, ...]
    boundaries_written: tuple[str, ...] = field(default_factory=tuple)


class Sequence:
    """An ordered, named list of steps: inspectable without running, chainable, restartable."""

    def __init__(self, name: str, steps: Seq[Step]) -> None:
        checked_name("sequence name", name)
        if not steps:
            raise invalid_argument(f"sequence {name!r} steps", list(steps), "at least one step")
        names = [s.name for s in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SparkFlowsValueError(f"sequence {name!r} has duplicate step names: {duplicates}",
                                       parameters={"argument": "steps", "duplicates": duplicates})
        self.name = name
        self.steps: tuple[Step, ...] = tuple(steps)

    def __call__(self, df: DataFrame) -> DataFrame:
        """Chain every step lazily, so ``df.transform(sequence)`` works."""
        return chain(df, self.steps, name=self.name)

    def describe(self) -> list[dict[str, object]]:
        """The steps as plain data: ``[{"index", "name", "kind"}, ...]``."""
        return [{"index": i, "name": s.name, "kind": s.kind} for i, s in enumerate(self.steps, start=1)]

    def graph(self) -> Graph:
        """The sequence's structure: one node per step (``step`` or ``boundary``), chained in order; an edge
        leaving a boundary carries the restart rule.

        >>> from spark_flows.book.transforms import devices_sequence
        >>> [(e.source, e.target, e.rule) for e in devices_sequence().graph().edges][:1]
        [('devices.validate', 'devices.enrich', 'restart point: a rerun resumes after validate')]
        """
        ids = [self.node_id(s) for s in self.steps]
        nodes = tuple(Node(i, s.kind, s.name, {"restart": "resume after this step"} if s.boundary else {})
                      for i, s in zip(ids, self.steps, strict=True))
        edges = tuple(Edge(a, b, f"restart point: a rerun resumes after {s.name}" if s.boundary else "")
                      for a, b, s in zip(ids, ids[1:], self.steps, strict=False))
        return Graph(self.name, nodes, edges, (ids[0],), (ids[-1],))

    def node_id(self, current: Step) -> str:
        """The id of ``current``'s node in :meth:`graph`."""
        return f"{self.name}.{current.name}"

    def edges(self) -> list[tuple[str, str]]:
        """The sequence's edges as ``(from, to)`` step-name pairs."""
        return [(a.name, b.name) for a, b in zip(self.steps, self.steps[1:], strict=False)]

    def boundary_path(self, boundary_root: str, run_id: str, current: Step) -> str:
        """Where ``current``'s output is persisted for ``run_id``."""
        index = self.steps.index(current) + 1
        return f"{boundary_root.rstrip('/')}/{self.name}/{run_id}/{index:02d}_{current.name}"

    def run(self, df: DataFrame, *, run_id: str | None = None, boundary_root: str | None = None) -> SequenceRun:
        """Run the sequence, persisting boundaries under ``boundary_root/<name>/<run_id>`` and resuming.

        Without ``run_id`` or ``boundary_root`` this is :func:`chain`. Otherwise the last boundary whose
        Delta table is committed for this run id is read back and only the steps after it are applied;
        the input ``df`` is then not evaluated at all. Each boundary written triggers one Spark job.

        Raises
        ------
        StepFailedError: a step raised; the message names it and its position.
        """
        if run_id is not None:
            checked_name("run_id", run_id)
        if run_id is None or boundary_root is None:
            return SequenceRun(self(df), run_id, None, tuple(s.name for s in self.steps), ())
        spark = df.sparkSession
        storage = Storage(spark)
        start, resumed_from = 0, None
        for index in range(len(self.steps) - 1, -1, -1):
            candidate = self.steps[index]
            path = self.boundary_path(boundary_root, run_id, candidate)
            if candidate.boundary and storage.exists(f"{path}/{_FIRST_COMMIT}"):
                df = spark.read.format("delta").load(path)
                start, resumed_from = index + 1, candidate.name
                logger.info("sequence %s: resuming run %s after boundary %s", self.name, run_id, path)
                for skipped in self.steps[:start]:
                    note(self.node_id(skipped), status="skipped", reason=f"resumed after {candidate.name}")
                break
        written: list[str] = []
        total = len(self.steps)
        for index in range(start, total):
            current = self.steps[index]
            df = _apply(df, current, f"{index + 1}/{total}", self.name)
            if current.boundary:
                path = self.boundary_path(boundary_root, run_id, current)
                began = time.monotonic()
                try:
                    df.write.format("delta").mode("overwrite").save(path)
                except Exception as exc:
                    raise StepFailedError(
                        f"boundary '{current.name}' ({index + 1}/{total}) of sequence '{self.name}' "
                        f"failed while persisting to {path}: {error_summary(exc)}",
                        parameters={"step": current.name, "position": f"{index + 1}/{total}",
                                    "sequence": self.name, "path": path},
                    ) from exc
                logger.info(
                    "sequence %s: boundary %s persisted in %.1fs", self.name, current.name, time.monotonic() - began
                )
                written.append(path)
                df = spark.read.format("delta").load(path)
                note(self.node_id(current), persisted_seconds=round(time.monotonic() - began, 1))
            note(self.node_id(current), status="ran")
        return SequenceRun(
            frame=df,
            run_id=run_id,
            resumed_from=resumed_from,
            steps_run=tuple(s.name for s in self.steps[start:]),
            steps_skipped=tuple(s.name for s in self.steps[:start]),
            boundaries_written=tuple(written),
        )

    def discard(self, spark_storage: Storage, boundary_root: str, run_id: str) -> bool:
        """Delete the boundaries persisted for ``run_id`` (after the run's output is safely written)."""
        return spark_storage.delete(f"{boundary_root.rstrip('/')}/{self.name}/{run_id}")
