"""Run callables at most N at once in threads that carry Spark's local properties, one job group each.

The one place where spark_flows runs Spark work concurrently inside an application: the Parallel Split's
branches and the Concurrent Runner's partitions both come through :func:`run_bounded`. Each task runs in
a ``pyspark.InheritableThread`` (pinned-thread mode), in a job group and FAIR scheduler pool of its own, so
its jobs can be told apart and cancelled (``SparkContext.cancelJobGroup``, which does cancel running jobs
in classic mode; an operation tag on Spark Connect, see :mod:`spark_flows.core.backend`). Work outside Spark
(a child process per partition) is cancelled through ``on_cancel``.

Example
-------
>>> df = spark.range(300)
>>> outcomes = run_bounded(spark, [("a", df.count), ("b", df.count)], concurrency=2)
>>> outcomes["a"].ok, outcomes["a"].value, outcomes["a"].status
(True, 300, 'ran')

One vocabulary for every unit of work: a task, a split's branch and a runner's partition each end as an
:class:`Outcome`, and a split's or a runner's whole run as :class:`Outcomes` (in declaration order).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark import InheritableThread
from pyspark.sql import SparkSession

from spark_flows.core import backend
from spark_flows.errors import BranchFailedError, JobFailedError, UnknownNameError, error_summary, invalid_argument

logger = logging.getLogger(__name__)

SKIPPED = "skipped: an earlier task failed"


@dataclass(frozen=True)
class Outcome:
    """What one unit of work did (a task, a split's branch, a runner's partition): its value (a branch's
    :class:`~spark_flows.io.writers.WriteResult`), or the one-line error that stopped it; ``skipped`` with
    its ``reason`` when there was nothing to do (a replay of a committed batch)."""

    name: str
    ok: bool
    seconds: float
    value: Any = None
    error: str | None = None
    job_group: str = ""
    rows: int | None = None
    skipped: bool = False
    reason: str | None = None

    @property
    def status(self) -> str:
        """``ran``, ``skipped`` or ``failed``: the word a run's flow notes for it."""
        return "failed" if not self.ok else "skipped" if self.skipped else "ran"


@dataclass(frozen=True)
class Outcomes:
    """The :class:`Outcome` of every branch of a split or partition of a runner, in declaration order."""

    name: str
    outcomes: tuple[Outcome, ...]
    seconds: float
    kind: str = "task"

    @property
    def ok(self) -> bool:
        """True when every unit succeeded."""
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[str]:
        """Names of the failed units."""
        return [o.name for o in self.outcomes if not o.ok]

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    def __getitem__(self, name: str) -> Outcome:
        for outcome in self.outcomes:
            if outcome.name == name:
                return outcome
        names = [o.name for o in self.outcomes]
        raise UnknownNameError(f"no {self.kind} named {name!r} in {self.name!r}; known: {names}",
                               parameters={"name": name, "names": names})

    def raise_for_failures(self) -> None:
        """Raise naming every failed unit and its error (:class:`BranchFailedError` for a split's branches,
        :class:`JobFailedError` otherwise)."""
        if self.ok:
            return
        details = "; ".join(f"{o.name}: {o.error}" for o in self.outcomes if not o.ok)
        error = BranchFailedError if self.kind == "branch" else JobFailedError
        units = "branch(es)" if self.kind == "branch" else f"{self.kind}(s)"
        block = "split" if self.kind == "branch" else "run"
        raise error(f"{block} '{self.name}': {len(self.failed)} of {len(self.outcomes)} {units} failed: {details}",
                    parameters={"name": self.name, "failed": self.failed,
                                "errors": {o.name: o.error for o in self.outcomes if not o.ok}})

    def table(self) -> str:
        """A printable summary: one line per unit with status and duration."""
        lines = [f"{o.name}  {'ok    ' if o.ok else 'FAILED'}  {o.seconds:6.1f}s  {o.error or ''}".rstrip()
                 for o in self.outcomes]
        return "\n".join([*lines, f"{len(self.outcomes) - len(self.failed)} ok, {len(self.failed)} failed "
                                  f"in {self.seconds:.1f}s"])


def run_bounded(
    spark: SparkSession | None,
    tasks: Sequence[tuple[str, Callable[[], Any]]],
    *,
    concurrency: int = 1,
    name: str = "task",
    cancel_on_failure: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
    on_cancel: Callable[[str], None] | None = None,
) -> dict[str, Outcome]:
    """Run ``(key, callable)`` tasks, at most ``concurrency`` at once, and return their outcomes by key.

    A task fails when it raises. With ``cancel_on_failure`` the tasks still running are cancelled (their
    Spark job group, and ``on_cancel(key)`` for work outside Spark such as a child process) and the tasks
    not yet started are skipped. With ``concurrency=1`` tasks run in declaration order in the calling
    thread. Without a session (``spark=None``) no Spark group is set. The caller's job group is restored.

    Raises
    ------
    SparkFlowsValueError: ``concurrency`` < 1 or task keys repeat.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise invalid_argument("concurrency", concurrency, "an int >= 1")
    keys = [k for k, _ in tasks]
    if len(set(keys)) != len(keys):
        raise invalid_argument("task keys", keys, "unique")
    suffix = uuid.uuid4().hex[:6]
    groups = {key: f"{name}-{key}-{suffix}" for key in keys}
    outcomes: dict[str, Outcome] = {}
    running: set[str] = set()
    guard = threading.Lock()
    stop = threading.Event()
    gate = threading.BoundedSemaphore(concurrency)
    previous_group = backend.of(spark).local_property("spark.jobGroup.id") if spark is not None else None

    def finish(outcome: Outcome) -> None:
        with guard:
            outcomes[outcome.name] = outcome
            running.discard(outcome.name)
            to_cancel = []
            if not outcome.ok and outcome.error != SKIPPED and cancel_on_failure and not stop.is_set():
                stop.set()
                to_cancel = sorted(running)
        if on_done is not None:
            on_done(outcome)
        for other in to_cancel:
            logger.info("%s: cancelling %s after %s failed", name, other, outcome.name)
            if spark is not None:
                backend.of(spark).cancel_group(groups[other])
            if on_cancel is not None:
                on_cancel(other)

    def run_one(key: str, task: Callable[[], Any]) -> None:
        with gate:
            with guard:
                skip = stop.is_set()
                if not skip:
                    running.add(key)
            if skip:
                finish(Outcome(key, False, 0.0, error=SKIPPED, job_group=groups[key]))
                return
            if spark is not None:
                backend.of(spark).enter_group(groups[key], f"{name} {key}", pool=key)
            began = time.monotonic()
            try:
                value = task()
            except Exception as exc:
                finish(Outcome(key, False, time.monotonic() - began, error=error_summary(exc),
                                   job_group=groups[key]))
            else:
                finish(Outcome(key, True, time.monotonic() - began, value=value, job_group=groups[key]))
            finally:
                if spark is not None:
                    backend.of(spark).leave_group(groups[key])

    try:
        if concurrency == 1:
            for key, task in tasks:
                run_one(key, task)
        else:
            # each thread runs in a copy of the caller's context: what its task notes lands in the caller's recording
            threads: list[threading.Thread] = [
                InheritableThread(contextvars.copy_context().run, args=(run_one, k, t), name=f"{name}-{k}",
                                  session=spark) if spark is not None
                else threading.Thread(target=contextvars.copy_context().run, args=(run_one, k, t), name=f"{name}-{k}")
                for k, t in tasks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        if spark is not None:
            backend.of(spark).set_local_property("spark.jobGroup.id", previous_group)
    return outcomes
