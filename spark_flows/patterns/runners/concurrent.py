"""Concurrent Runner: a function, or a bundled job, for many partitions (backfill dates) with at most N at once.

:func:`run_concurrently` runs inside one Spark application, each partition in its own job group and FAIR
pool; :func:`run_processes` runs separate ``spark-submit`` processes.

Example
-------
>>> run_concurrently(spark, lambda day: None, ["2024-01-01", "2024-01-02"], concurrency=2).ok
True
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pyspark.sql import SparkSession

from spark_flows.core.scheduling import Outcome, Outcomes, run_bounded
from spark_flows.core.submit import submit_env
from spark_flows.errors import (
    ConfigError,
    JobFailedError,
)
from spark_flows.flow.graph import Graph, note

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConcurrentRunner:
    """A Concurrent Runner over partitions (a backfill's dates) as a value: at most ``concurrency`` at once,
    as threads of this Spark application (:meth:`run`) or as one process each (:meth:`run_processes`).
    :meth:`graph` draws the runner and one node per partition, ``<name>.<partition>`` (``label``: what each
    runs), or one node for them all when they are not known yet.

    >>> runner = ConcurrentRunner("backfill", ("a", "b", "c"), concurrency=2)
    >>> runner.run(spark, lambda part: spark.range(3).count() == 3).ok
    True
    >>> [(e.target, e.rule) for e in runner.graph().edges][0]
    ('backfill.a', 'at most 2 at once')
    """

    name: str
    partitions: tuple[Any, ...] = ()
    concurrency: int = 2
    fail_fast: bool = False
    label: str = "run"

    def graph(self) -> Graph:
        """The runner, then its partitions side by side, the bound on every edge."""
        head = Graph.single(self.name, "runner", f"concurrent runner: {self.name}", at_most=self.concurrency)
        parts = [Graph.single(f"{self.name}.{p}", "step", f"{self.label} {p}") for p in self.partitions] or [
            Graph.single(f"{self.name}.each", "step", f"{self.label} per partition")]
        return Graph.chain(self.name, head, Graph.group(f"{self.name}.partitions", *parts),
                           rules={0: f"at most {self.concurrency} at once"})

    def run(self, spark: SparkSession, fn: Callable[[Any], Any]) -> Outcomes:
        """:func:`run_concurrently` over the partitions; their outcomes are noted on their nodes."""
        return self._noted(run_concurrently(spark, fn, self.partitions, concurrency=self.concurrency,
                                            name=self.name, fail_fast=self.fail_fast))

    def run_processes(self, command: Callable[[Any], Sequence[str]], *, timeout: float | None = None) -> Outcomes:
        """:func:`run_processes`: ``command(partition)`` as a process per partition; outcomes noted."""
        return self._noted(run_processes([(str(p), command(p)) for p in self.partitions],
                                         concurrency=self.concurrency, name=self.name, timeout=timeout,
                                         fail_fast=self.fail_fast))

    def _noted(self, summary: Outcomes) -> Outcomes:
        note(self.name, status="ran" if summary.ok else "failed", concurrency=self.concurrency)
        for outcome in summary:
            note(f"{self.name}.{outcome.name}", status=outcome.status, seconds=round(outcome.seconds, 1),
                 reason=outcome.error)
        return summary


class _Progress:
    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done, self.failed = total, label, 0, 0
        self.began = time.monotonic()
        self.lock = threading.Lock()

    def finished(self, ok: bool) -> None:
        with self.lock:
            self.done += 1
            self.failed += 0 if ok else 1
            logger.info("%s: %d/%d done, %d failed, %.1fs elapsed", self.label, self.done, self.total, self.failed,
                        time.monotonic() - self.began)


def run_concurrently(spark: SparkSession, fn: Callable[[Any], Any], partitions: Sequence[Any], *,
                     concurrency: int = 2, name: str = "backfill", fail_fast: bool = False) -> Outcomes:
    """Run ``fn(partition)`` for every partition, at most ``concurrency`` at once, in this Spark application.

    Each partition runs in a thread that carries Spark's local properties, in its own job group and FAIR
    scheduler pool (:func:`spark_flows.core.scheduling.run_bounded`). A partition fails when ``fn`` raises or
    returns something other than ``None``, ``True`` or ``0`` (a job's exit code); the others go on, unless
    ``fail_fast``: then the running partitions' jobs are cancelled and the pending ones skipped.
    """
    progress = _Progress(len(partitions), name)

    def task(partition: Any) -> Callable[[], Any]:
        def run() -> Any:
            outcome = fn(partition)
            if not (outcome is None or outcome is True or outcome == 0):
                raise JobFailedError(f"partition {partition} returned {outcome!r}",
                                     parameters={"partition": str(partition), "returned": repr(outcome)})
            return outcome
        return run

    def done(outcome: Outcome) -> None:
        progress.finished(outcome.ok)
        if not outcome.ok:
            logger.error("%s: partition %s failed: %s", name, outcome.name, outcome.error)

    began = time.monotonic()
    outcomes = run_bounded(spark, [(str(p), task(p)) for p in partitions], concurrency=concurrency, name=name,
                           cancel_on_failure=fail_fast, on_done=done)
    return Outcomes(name, tuple(outcomes[str(p)] for p in partitions), time.monotonic() - began, "partition")


def run_processes(commands: Sequence[tuple[str, Sequence[str]]], *, concurrency: int = 2,
                  name: str = "backfill", timeout: float | None = None, fail_fast: bool = False) -> Outcomes:
    """Run ``(partition, spark-submit argument list)`` pairs as separate processes, at most N at once.

    The same bounded runner as :func:`run_concurrently` (:func:`spark_flows.core.scheduling.run_bounded`): a
    partition fails when its process exits non-zero, and its error is the job's own one-line error
    (``<job>: error: ...``); with ``fail_fast`` the running processes are killed and the pending ones skipped.
    """
    progress = _Progress(len(commands), name)
    processes: dict[str, subprocess.Popen[str]] = {}
    cancelled: set[str] = set()
    guard = threading.Lock()

    def task(partition: str, command: Sequence[str]) -> Callable[[], None]:
        def run() -> None:
            with guard:  # a cancel that came before the start wins: the process never starts
                if partition in cancelled:
                    raise JobFailedError("cancelled: an earlier task failed", parameters={"partition": partition})
                proc = subprocess.Popen(list(command), env=submit_env(), text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
                processes[partition] = proc
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                out, err = proc.communicate()
            if proc.returncode != 0:
                raise JobFailedError(f"exit {proc.returncode}: {job_error_line(out + err) or 'no error line'}",
                                     parameters={"partition": partition, "exit_code": proc.returncode})
        return run

    def cancel(partition: str) -> None:
        with guard:
            cancelled.add(partition)
            proc = processes.get(partition)
        if proc is not None:
            _kill(proc)

    def done(outcome: Outcome) -> None:
        progress.finished(outcome.ok)

    began = time.monotonic()
    outcomes = run_bounded(None, [(p, task(p, c)) for p, c in commands], concurrency=concurrency, name=name,
                           cancel_on_failure=fail_fast, on_done=done, on_cancel=cancel)
    results = tuple(replace(o, error=_strip_condition(o.error)) for o in (outcomes[p] for p, _ in commands))
    return Outcomes(name, results, time.monotonic() - began, "partition")


_S3_SCHEMES = ("s3", "s3a", "s3n")
_SINGLE_DRIVER_STORE = "S3SingleDriverLogStore"


def require_many_driver_commits(spark: SparkSession, root: str, *, drivers: int) -> None:
    """Refuse ``drivers`` > 1 Spark applications committing to Delta tables under ``root`` on S3 when Delta's
    log store for that scheme is its default, safe for one driver only.

    Delta commits to S3 through ``S3SingleDriverLogStore`` unless ``spark.delta.logStore.<scheme>.impl`` names
    another (``io.delta.storage.S3DynamoDBLogStore``): two drivers writing one table can then both write the
    same commit file and one commit is lost. Threads of one application (``--isolation thread``) share its
    driver and are safe. Local disk, HDFS and the other schemes pass.

    Raises
    ------
    ConfigError: ``UNSAFE_CONCURRENT_DRIVERS``, naming the setting and the two ways out.
    """
    scheme = root.split("://", 1)[0].lower() if "://" in root else ""
    if drivers <= 1 or scheme not in _S3_SCHEMES:
        return
    key = f"spark.delta.logStore.{scheme}.impl"
    store = spark.conf.get(key, None) or spark.conf.get("spark.delta.logStore.class", None) or ""
    if store and _SINGLE_DRIVER_STORE not in store:
        return
    raise ConfigError(f"{drivers} Spark applications at once would commit to Delta tables under {root} through "
                      f"Delta's single-driver S3 log store, and concurrent commits can be lost: run the dates as "
                      f"threads of one application (--isolation thread), one at a time (--concurrency 1), or set "
                      f"{key} to a multi-driver log store (io.delta.storage.S3DynamoDBLogStore)",
                      condition="UNSAFE_CONCURRENT_DRIVERS", parameters={"root": root, "setting": key})


def _strip_condition(error: str | None) -> str | None:
    return error.removeprefix(f"[{JobFailedError.condition}] ") if error else error


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_ERROR_LINE = re.compile(r"^[\w.-]+(?: [\w.-]+)?: error: .*$", re.MULTILINE)


def job_error_line(output: str) -> str | None:
    """The last ``<job>: error: ...`` line a job printed, if any.

    Example
    -------
    >>> job_error_line("noise\\nvisits_cube: error: [INPUT_NOT_FOUND] input path x does not exist\\nmore noise")
    'visits_cube: error: [INPUT_NOT_FOUND] input path x does not exist'
    """
    found = _ERROR_LINE.findall(output)
    return found[-1] if found else None
