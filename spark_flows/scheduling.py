"""Run callables at most N at once in threads that carry Spark's local properties, one job group each.

The one place where spark_flows runs Spark work concurrently inside an application: the Parallel Split's
branches and the Concurrent Runner's partitions both come through :func:`run_bounded`. Each task runs in
a ``pyspark.InheritableThread`` (pinned-thread mode), in a job group and FAIR scheduler pool of its own, so
its jobs can be told apart and cancelled (``SparkContext.cancelJobGroup``, which does cancel running jobs
in classic mode).

Example (needs a SparkSession ``spark``; not run as a doctest)::

    from spark_flows.scheduling import run_bounded
    tasks = [("a", lambda: df.count()), ("b", lambda: df.count())]
    outcomes = run_bounded(spark, tasks, concurrency=2)
    outcomes["a"].ok, outcomes["a"].value
    # -> (True, 300)
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

from spark_flows.errors import error_summary

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
    spark: SparkSession,
    tasks: Sequence[tuple[str, Callable[[], Any]]],
    *,
    concurrency: int = 1,
    name: str = "task",
    cancel_on_failure: bool = False,
    on_done: Callable[[TaskOutcome], None] | None = None,
) -> dict[str, TaskOutcome]:
    """Run ``(key, callable)`` tasks, at most ``concurrency`` at once, and return their outcomes by key.

    A task fails when it raises. With ``cancel_on_failure`` the jobs of the tasks still running are
    cancelled and the tasks not yet started are skipped. With ``concurrency=1`` tasks run in declaration
    order in the calling thread. The caller's job group is restored afterwards.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    keys = [k for k, _ in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"task keys must be unique, got {keys}")
    sc = spark.sparkContext
    suffix = uuid.uuid4().hex[:6]
    groups = {key: f"{name}-{key}-{suffix}" for key in keys}
    outcomes: dict[str, TaskOutcome] = {}
    guard = threading.Lock()
    stop = threading.Event()
    gate = threading.BoundedSemaphore(concurrency)
    previous_group = sc.getLocalProperty("spark.jobGroup.id")

    def finish(outcome: TaskOutcome) -> None:
        with guard:
            outcomes[outcome.key] = outcome
        if on_done is not None:
            on_done(outcome)
        if not outcome.ok and outcome.error != SKIPPED and cancel_on_failure:
            stop.set()
            for other, group in groups.items():
                if other != outcome.key and other not in outcomes:
                    sc.cancelJobGroup(group)

    def run_one(key: str, task: Callable[[], Any]) -> None:
        with gate:
            if stop.is_set():
                finish(TaskOutcome(key, False, 0.0, error=SKIPPED, job_group=groups[key]))
                return
            sc.setJobGroup(groups[key], f"{name} {key}", interruptOnCancel=True)
            sc.setLocalProperty("spark.scheduler.pool", key)
            began = time.monotonic()
            try:
                value = task()
            except Exception as exc:
                finish(TaskOutcome(key, False, time.monotonic() - began, error=error_summary(exc),
                                   job_group=groups[key]))
            else:
                finish(TaskOutcome(key, True, time.monotonic() - began, value=value, job_group=groups[key]))
            finally:
                sc.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]

    try:
        if concurrency == 1:
            for key, task in tasks:
                run_one(key, task)
        else:
            threads = [InheritableThread(target=run_one, args=(k, t), name=f"{name}-{k}") for k, t in tasks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", previous_group)  # type: ignore[arg-type]
    return outcomes
