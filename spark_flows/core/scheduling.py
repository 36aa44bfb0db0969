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
>>> outcomes["a"].ok, outcomes["a"].value
(True, 300)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark import InheritableThread
from pyspark.sql import SparkSession

from spark_flows.core import backend
from spark_flows.errors import error_summary, invalid_argument

logger = logging.getLogger(__name__)

SKIPPED = "skipped: an earlier task failed"


@dataclass(frozen=True)
class TaskOutcome:
    """What one task did: its value, or the one-line error that stopped it."""

    key: str
    ok: bool
    seconds: float
    value: Any = None
    error: str | None = None
    job_group: str = ""


def run_bounded(
    spark: SparkSession | None,
    tasks: Sequence[tuple[str, Callable[[], Any]]],
    *,
    concurrency: int = 1,
    name: str = "task",
    cancel_on_failure: bool = False,
    on_done: Callable[[TaskOutcome], None] | None = None,
    on_cancel: Callable[[str], None] | None = None,
) -> dict[str, TaskOutcome]:
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
    outcomes: dict[str, TaskOutcome] = {}
    running: set[str] = set()
    guard = threading.Lock()
    stop = threading.Event()
    gate = threading.BoundedSemaphore(concurrency)
    previous_group = backend.get_local_property(spark, "spark.jobGroup.id") if spark is not None else None

    def finish(outcome: TaskOutcome) -> None:
        with guard:
            outcomes[outcome.key] = outcome
            running.discard(outcome.key)
            to_cancel = []
            if not outcome.ok and outcome.error != SKIPPED and cancel_on_failure and not stop.is_set():
                stop.set()
                to_cancel = sorted(running)
        if on_done is not None:
            on_done(outcome)
        for other in to_cancel:
            logger.info("%s: cancelling %s after %s failed", name, other, outcome.key)
            if spark is not None:
                backend.cancel_group(spark, groups[other])
            if on_cancel is not None:
                on_cancel(other)

    def run_one(key: str, task: Callable[[], Any]) -> None:
        with gate:
            with guard:
                skip = stop.is_set()
                if not skip:
                    running.add(key)
            if skip:
                finish(TaskOutcome(key, False, 0.0, error=SKIPPED, job_group=groups[key]))
                return
            if spark is not None:
                backend.enter_group(spark, groups[key], f"{name} {key}", pool=key)
            began = time.monotonic()
            try:
                value = task()
            except Exception as exc:
                finish(TaskOutcome(key, False, time.monotonic() - began, error=error_summary(exc),
                                   job_group=groups[key]))
            else:
                finish(TaskOutcome(key, True, time.monotonic() - began, value=value, job_group=groups[key]))
            finally:
                if spark is not None:
                    backend.leave_group(spark, groups[key])

    try:
        if concurrency == 1:
            for key, task in tasks:
                run_one(key, task)
        else:
            threads: list[threading.Thread] = [
                InheritableThread(run_one, args=(k, t), name=f"{name}-{k}", session=spark) if spark is not None
                else threading.Thread(target=run_one, args=(k, t), name=f"{name}-{k}") for k, t in tasks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        if spark is not None:
            backend.set_local_property(spark, "spark.jobGroup.id", previous_group)
    return outcomes
