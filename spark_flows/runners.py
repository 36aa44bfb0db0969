"""Single Runner and Concurrent Runner: at most one run of a job at a time, or a bounded number at once.

* :class:`~spark_flows.locks.RunLock` (in :mod:`spark_flows.locks`, re-exported here) is the exclusive,
  heartbeated run lock on the job's storage, taken over from dead runs after its TTL.
* :class:`RunLedger` is an append-only Delta table of run events (job, execution date, attempt, status,
  time, error): appends never conflict, the latest event per attempt is its status. ``depends_on_past``:
  a run for D starts only if D-1 succeeded, unless no earlier date of the job was ever run.
* :func:`single_run` puts both together; :func:`run_concurrently` runs a function for many partitions
  (backfill dates) with at most N at once inside one Spark application, each in its own job group and FAIR
  pool, and :func:`run_processes` does the same with separate ``spark-submit`` processes.

Example
-------
>>> import datetime as dt, tempfile
>>> root = tempfile.mkdtemp()
>>> ledger = RunLedger(spark, f"{root}/ledger")
>>> with single_run(spark, "trend", dt.date(2024, 1, 1), lock_root=f"{root}/locks", ledger=ledger):
...     pass
>>> ledger.statuses("trend")
{'2024-01-01': 'succeeded'}
>>> run_concurrently(spark, lambda day: None, ["2024-01-01", "2024-01-02"], concurrency=2).ok
True
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from spark_flows.errors import (
    CannotAppendError,
    ConfigError,
    DependsOnPastError,
    JobFailedError,
    RunLockedError,
    SparkFlowsError,
    error_summary,
)
from spark_flows.filesystems import is_local
from spark_flows.ledger import (
    LEDGER_SCHEMA,
    REFUSED,
    RunLedger,
    check_depends_on_past,
    next_attempt_of,
    read_runs,
    record_without_spark,
    require_past,
    statuses_of,
)
from spark_flows.locks import LockHolder, RunLock
from spark_flows.scheduling import TaskOutcome, run_bounded
from spark_flows.storage import local_storage
from spark_flows.structure import Graph, note
from spark_flows.submit import submit_env

logger = logging.getLogger(__name__)

__all__ = [
    "LEDGER_SCHEMA", "LockHolder", "PartitionResult", "RunLedger", "RunLock", "RunSummary", "check_depends_on_past",
    "concurrent_graph", "refusal_from_files", "require_many_driver_commits", "run_concurrently", "run_processes",
    "single_run", "single_run_graph",
]


def single_run_graph(job: str, *, depends_on_past: bool = True) -> Graph:
    """The structure of :func:`single_run`: one node, id ``single_run``, with its rules."""
    return Graph.single("single_run", "runner", f"single runner: {job}", at_most=1, depends_on_past=depends_on_past)


def concurrent_graph(name: str, *, concurrency: int) -> Graph:
    """The structure of a Concurrent Runner over partitions (a backfill): at most ``concurrency`` at once."""
    return Graph.single(name, "runner", f"concurrent runner: {name}", at_most=concurrency)


@contextmanager
def single_run(spark: SparkSession, job: str, execution_date: dt.date, *, lock_root: str, ledger: RunLedger,
               depends_on_past: bool = True, ttl_seconds: int = 120, heartbeat_seconds: int = 20,
               wait_timeout: float = 0.0) -> Iterator[RunLock]:
    """Run a block as the only active run of ``job``, recorded in the ledger, after D-1 when required.

    The yielded lock's ``first_run`` tells the block that no earlier date ever ran (a job with no history).
    Every attempt is in the ledger: a run refused because the lock is held or D-1 did not succeed is
    recorded as ``refused`` with the reason; a dead run whose lock this run took over is closed as
    ``abandoned``.

    Raises
    ------
    RunLockedError: another live run holds the lock.
    DependsOnPastError: ``depends_on_past`` and D-1 did not succeed.
    """
    lock = RunLock(spark, lock_root, job, ttl_seconds=ttl_seconds, heartbeat_seconds=heartbeat_seconds)
    try:
        lock.acquire(wait_timeout=wait_timeout)
    except RunLockedError as exc:
        note("single_run", status="failed", reason=error_summary(exc))
        ledger.record(job, execution_date, 0, REFUSED, lock.run_id, error_summary(exc))
        raise
    try:
        runs = ledger.runs(job).collect()  # one read of the ledger for every check
        if lock.taken_over is not None:
            _abandon(ledger, runs, lock.taken_over, lock.run_id)
        attempt = next_attempt_of(runs, execution_date)
        lock.first_run = not any(d < execution_date.isoformat() for d in statuses_of(runs))
        if depends_on_past:
            try:
                require_past(statuses_of(runs), job, execution_date)
            except DependsOnPastError as exc:
                note("single_run", status="failed", reason=error_summary(exc))
                ledger.record(job, execution_date, attempt, REFUSED, lock.run_id, error_summary(exc))
                raise
        ledger.record(job, execution_date, attempt, "running", lock.run_id)
        note("single_run", status="ran", attempt=attempt, first_run=lock.first_run, run_id=lock.run_id)
        logger.info("%s %s: run %s started (attempt %d)", job, execution_date, lock.run_id, attempt)
        try:
            yield lock
        except BaseException as exc:
            ledger.record(job, execution_date, attempt, "failed", lock.run_id, error_summary(exc))
            raise
        ledger.record(job, execution_date, attempt, "succeeded", lock.run_id)
    finally:
        lock.release()


def refusal_from_files(job: str, execution_date: dt.date, *, lock_root: str, ledger_path: str,
                       depends_on_past: bool = True, wait_timeout: float = 0.0) -> SparkFlowsError | None:
    """The refusal :func:`single_run` would give, decided and recorded in the ledger without Spark, or None.

    A job asks before its session starts (``run_job(..., preflight=...)``): a live holder of the lock, or an
    unmet depends-on-past, is read from the lock file and the ledger's files, recorded as ``refused`` as
    :func:`single_run` records it, and returned, so the job exits with it and never pays for Spark. ``None``
    when the run may go ahead, or when only a run with Spark can tell: a wait for the lock was asked, the
    lock is stale (the run that takes it over closes the dead run's attempt), or the lock or the ledger is
    not on local disk (:mod:`spark_flows.delta_append`).
    """
    if wait_timeout > 0 or not (is_local(lock_root) and is_local(ledger_path)):
        return None
    storage = local_storage()
    lock = RunLock(None, lock_root, job)
    run_id, seen = lock.run_id, lock.current()
    refusal: SparkFlowsError | None = None
    attempt = 0
    if seen is not None and seen[1] <= seen[0].ttl_seconds:
        refusal = lock.held_by(*seen)
    elif seen is None and depends_on_past:
        runs = read_runs(ledger_path, job, storage=storage)
        try:
            require_past(statuses_of(runs), job, execution_date)
        except DependsOnPastError as exc:
            refusal, attempt = exc, next_attempt_of(runs, execution_date)
    if refusal is None:
        return None
    try:
        record_without_spark(ledger_path, job, execution_date, attempt, REFUSED, run_id, error_summary(refusal),
                             storage=storage)
    except CannotAppendError as exc:
        logger.debug("%s %s: the refusal is left to the run with Spark: %s", job, execution_date, exc)
        return None
    note("single_run", status="failed", reason=error_summary(refusal))
    return refusal


def _abandon(ledger: RunLedger, runs: Sequence[Any], dead: LockHolder, taker: str) -> None:
    """Close the dead holder's open attempts: it will never record their end itself."""
    for run in runs:
        if run.run_id == dead.run_id and run.status == "running":
            ledger.record(run.job, dt.date.fromisoformat(run.execution_date), run.attempt, "abandoned", run.run_id,
                          f"abandoned: its lock went stale (host {dead.host}, pid {dead.pid}) and run {taker} "
                          "took it over")


@dataclass(frozen=True)
class PartitionResult:
    """Outcome of one partition of a concurrent run."""

    partition: str
    ok: bool
    seconds: float
    error: str | None = None
    job_group: str = ""


@dataclass(frozen=True)
class RunSummary:
    """Outcome of :func:`run_concurrently` / :func:`run_processes`, partitions in input order."""

    results: tuple[PartitionResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.partition for r in self.results if not r.ok]

    def table(self) -> str:
        """A printable summary: one line per partition with status and duration."""
        lines = [f"{r.partition}  {'ok    ' if r.ok else 'FAILED'}  {r.seconds:6.1f}s  {r.error or ''}".rstrip()
                 for r in self.results]
        return "\n".join([*lines, f"{len(self.results) - len(self.failed)} ok, {len(self.failed)} failed "
                                  f"in {self.seconds:.1f}s"])


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
                     concurrency: int = 2, name: str = "backfill", fail_fast: bool = False) -> RunSummary:
    """Run ``fn(partition)`` for every partition, at most ``concurrency`` at once, in this Spark application.

    Each partition runs in a thread that carries Spark's local properties, in its own job group and FAIR
    scheduler pool (:func:`spark_flows.scheduling.run_bounded`). A partition fails when ``fn`` raises or
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

    def done(outcome: TaskOutcome) -> None:
        progress.finished(outcome.ok)
        if not outcome.ok:
            logger.error("%s: partition %s failed: %s", name, outcome.key, outcome.error)

    began = time.monotonic()
    outcomes = run_bounded(spark, [(str(p), task(p)) for p in partitions], concurrency=concurrency, name=name,
                           cancel_on_failure=fail_fast, on_done=done)
    results = tuple(PartitionResult(o.key, o.ok, o.seconds, o.error, o.job_group)
                    for o in (outcomes[str(p)] for p in partitions))
    return RunSummary(results, time.monotonic() - began)


def run_processes(commands: Sequence[tuple[str, Sequence[str]]], *, concurrency: int = 2,
                  name: str = "backfill", timeout: float | None = None, fail_fast: bool = False) -> RunSummary:
    """Run ``(partition, spark-submit argument list)`` pairs as separate processes, at most N at once.

    The same bounded runner as :func:`run_concurrently` (:func:`spark_flows.scheduling.run_bounded`): a
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

    def done(outcome: TaskOutcome) -> None:
        progress.finished(outcome.ok)

    began = time.monotonic()
    outcomes = run_bounded(None, [(p, task(p, c)) for p, c in commands], concurrency=concurrency, name=name,
                           cancel_on_failure=fail_fast, on_done=done, on_cancel=cancel)
    results = tuple(PartitionResult(o.key, o.ok, o.seconds, _strip_condition(o.error), o.job_group)
                    for o in (outcomes[p] for p, _ in commands))
    return RunSummary(results, time.monotonic() - began)


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
