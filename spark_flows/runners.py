"""Single Runner and Concurrent Runner: at most one run of a job at a time, or a bounded number at once.

* :class:`RunLock` is a lock file on the job's storage, created exclusively (so it holds across processes
  and machines sharing the filesystem). Its content (holder: host, pid, run id, since) never changes; a
  heartbeat thread advances its modification time while the run lives. A lock whose heartbeat is older than
  its TTL belongs to a dead run and may be taken over: the taker renames it atomically to a tombstone
  (only one taker can), checks it moved the stale holder, creates its own, and records the take-over.
  Guarantees: local filesystem and HDFS give exclusive create and atomic rename, so at most one holder;
  on S3 (S3A) neither is atomic without conditional writes, so the lock is best effort there.
* :class:`RunLedger` is an append-only Delta table of run events (job, execution date, attempt, status,
  time, error): appends never conflict, the latest event per attempt is its status. ``depends_on_past``:
  a run for D starts only if D-1 succeeded, unless no earlier date of the job was ever run.
* :func:`single_run` puts both together; :func:`run_concurrently` runs a function for many partitions
  (backfill dates) with at most N at once inside one Spark application, each in its own job group and FAIR
  pool, and :func:`run_processes` does the same with separate ``spark-submit`` processes.

Example (needs a SparkSession ``spark``; not run as a doctest)::

    from spark_flows.runners import RunLedger, RunLock, run_concurrently, single_run
    with single_run(spark, "trend", day, lock_root="data/_locks", ledger=RunLedger(spark, "data/_ledger")):
        build_trend(day)
    summary = run_concurrently(spark, lambda d: cube_for(d), dates, concurrency=4)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from spark_flows.errors import DependsOnPastError, RunLockedError, error_summary
from spark_flows.scheduling import TaskOutcome, run_bounded
from spark_flows.storage import Storage
from spark_flows.submit import submit_env
from spark_flows.writers import retry_on_conflict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run lock."""

    job: str
    run_id: str
    host: str
    pid: int
    since: str
    ttl_seconds: int
    took_over_from: str | None = None


class RunLock:
    """An exclusive, heartbeated run lock for ``job`` under ``lock_root`` (any Hadoop filesystem)."""

    def __init__(self, spark: SparkSession, lock_root: str, job: str, *, ttl_seconds: int = 120,
                 heartbeat_seconds: int = 20, run_id: str | None = None) -> None:
        if heartbeat_seconds <= 0 or ttl_seconds <= heartbeat_seconds:
            raise ValueError(f"need 0 < heartbeat_seconds < ttl_seconds, got {heartbeat_seconds} and {ttl_seconds}")
        self.storage = Storage(spark)
        self.path = f"{lock_root.rstrip('/')}/{job}.lock"
        self.job, self.ttl, self.heartbeat = job, ttl_seconds, heartbeat_seconds
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.holder: LockHolder | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def current(self) -> tuple[LockHolder, float] | None:
        """The holder and the age of its heartbeat in seconds, or ``None`` when unlocked."""
        try:
            holder = LockHolder(**json.loads(self.storage.read_text(self.path)))
            age = time.time() - self.storage.modified_ms(self.path) / 1000
        except Exception:  # released between the calls
            return None
        return holder, age

    def _describe(self, holder: LockHolder, age: float) -> str:
        return (f"job {self.job} is locked by run {holder.run_id} on {holder.host} (pid {holder.pid}) since "
                f"{holder.since}, last heartbeat {age:.0f}s ago (TTL {holder.ttl_seconds}s): {self.path}")

    def acquire(self, *, wait_timeout: float = 0.0, poll_interval: float = 1.0) -> LockHolder:
        """Take the lock, waiting up to ``wait_timeout`` seconds for a live holder to finish.

        Raises
        ------
        RunLockedError: a live run holds the lock; the message names it (host, pid, run id, since).
        """
        deadline = time.monotonic() + wait_timeout
        took_over: str | None = None
        while True:
            mine = LockHolder(self.job, self.run_id, socket.gethostname(), os.getpid(),
                              dt.datetime.now(dt.UTC).isoformat(), self.ttl, took_over)
            if self.storage.create_exclusive(self.path, json.dumps(asdict(mine))):
                self.holder = mine
                self._start_heartbeat()
                logger.info("run lock %s acquired by run %s%s", self.path, self.run_id,
                            f" (took over from {took_over})" if took_over else "")
                return mine
            seen = self.current()
            if seen is None:
                continue
            holder, age = seen
            if age > holder.ttl_seconds:
                took_over = self._take_over(holder) or took_over
                continue
            if time.monotonic() >= deadline:
                raise RunLockedError(self._describe(holder, age))
            time.sleep(poll_interval)

    def _take_over(self, stale: LockHolder) -> str | None:
        tombstone = f"{self.path}.stale-{uuid.uuid4().hex[:8]}"
        if not self.storage.rename(self.path, tombstone):
            return None  # another taker moved it first
        moved = LockHolder(**json.loads(self.storage.read_text(tombstone)))
        if moved.run_id != stale.run_id and not self.storage.rename(tombstone, self.path):
            logger.warning("displaced a fresh lock of run %s while taking over; it will be retaken", moved.run_id)
        self.storage.delete(tombstone)
        logger.warning("run lock %s: taking over from dead run %s on %s (pid %d)", self.path, stale.run_id,
                       stale.host, stale.pid)
        return f"{stale.run_id}@{stale.host}:{stale.pid}"

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat):
                try:
                    self.storage.touch(self.path)
                except Exception as exc:  # the session may be stopping; the TTL covers a missed beat
                    logger.debug("heartbeat of %s failed: %s", self.path, exc)

        self._beat = threading.Thread(target=beat, name=f"heartbeat-{self.job}", daemon=True)
        self._beat.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if this run still holds it."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        seen = self.current()
        if seen is not None and seen[0].run_id == self.run_id:
            self.storage.delete(self.path)
        self.holder = None


LEDGER_SCHEMA = StructType([
    StructField("job", StringType()),
    StructField("execution_date", StringType()),
    StructField("attempt", IntegerType()),
    StructField("status", StringType()),
    StructField("at", TimestampType()),
    StructField("run_id", StringType()),
    StructField("error", StringType()),
])


class RunLedger:
    """Append-only Delta table of run events; :meth:`runs` gives each attempt's latest status."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        self.spark, self.path = spark, path

    def _events(self) -> DataFrame | None:
        if not Storage(self.spark).exists(f"{self.path}/_delta_log"):
            return None
        return self.spark.read.format("delta").load(self.path)

    def record(self, job: str, execution_date: dt.date, attempt: int, status: str, run_id: str,
               error: str | None = None) -> None:
        """Append one event (a blind append: concurrent runs never conflict on it)."""
        row = (job, execution_date.isoformat(), attempt, status, dt.datetime.now(dt.UTC).replace(tzinfo=None),
               run_id, error)
        frame = self.spark.createDataFrame([row], LEDGER_SCHEMA)
        retry_on_conflict(lambda: frame.write.format("delta").mode("append").save(self.path), what="run ledger")

    def runs(self, job: str | None = None) -> DataFrame:
        """One row per (job, execution_date, attempt): its latest status, start and end (lazy)."""
        events = self._events()
        if events is None:
            return self.spark.createDataFrame([], "job string, execution_date string, attempt int, status string, "
                                                  "started_at timestamp, ended_at timestamp, run_id string, "
                                                  "error string")
        if job is not None:
            events = events.where(F.col("job") == job)
        latest = F.max_by(F.struct("status", "error", "run_id"), "at")
        return events.groupBy("job", "execution_date", "attempt").agg(
            latest.alias("last"), F.min("at").alias("started_at"),
            F.max(F.when(F.col("status") != "running", F.col("at"))).alias("ended_at"),
        ).select("job", "execution_date", "attempt", "last.status", "started_at", "ended_at", "last.run_id",
                 "last.error").orderBy("execution_date", "attempt")

    def statuses(self, job: str) -> dict[str, str]:
        """Latest status per execution date (ISO string) of ``job``; triggers one Spark job."""
        return {r.execution_date: r.status for r in self.runs(job).collect()}

    def next_attempt(self, job: str, execution_date: dt.date) -> int:
        rows = self.runs(job).where(F.col("execution_date") == execution_date.isoformat()).collect()
        return max((r.attempt for r in rows), default=0) + 1


def check_depends_on_past(ledger: RunLedger, job: str, execution_date: dt.date) -> None:
    """Raise :class:`DependsOnPastError` unless D-1 succeeded or no date before D was ever run."""
    statuses = ledger.statuses(job)
    previous = (execution_date - dt.timedelta(days=1)).isoformat()
    earlier = [d for d in statuses if d < execution_date.isoformat()]
    if earlier and statuses.get(previous) != "succeeded":
        state = statuses.get(previous, "never run")
        raise DependsOnPastError(f"{job} for {execution_date} depends on {previous}, which is {state}; "
                                 f"run {previous} first (latest earlier date run: {max(earlier)})")


@contextmanager
def single_run(spark: SparkSession, job: str, execution_date: dt.date, *, lock_root: str, ledger: RunLedger,
               depends_on_past: bool = True, ttl_seconds: int = 120, heartbeat_seconds: int = 20,
               wait_timeout: float = 0.0) -> Iterator[RunLock]:
    """Run a block as the only active run of ``job``, recorded in the ledger, after D-1 when required."""
    lock = RunLock(spark, lock_root, job, ttl_seconds=ttl_seconds, heartbeat_seconds=heartbeat_seconds)
    lock.acquire(wait_timeout=wait_timeout)
    try:
        if depends_on_past:
            check_depends_on_past(ledger, job, execution_date)
        attempt = ledger.next_attempt(job, execution_date)
        ledger.record(job, execution_date, attempt, "running", lock.run_id)
        try:
            yield lock
        except BaseException as exc:
            ledger.record(job, execution_date, attempt, "failed", lock.run_id, error_summary(exc))
            raise
        ledger.record(job, execution_date, attempt, "succeeded", lock.run_id)
    finally:
        lock.release()


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
                raise RuntimeError(f"returned {outcome!r}")
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
                  name: str = "backfill", timeout: float | None = None) -> RunSummary:
    """Run ``(partition, spark-submit argument list)`` pairs as separate processes, at most N at once."""
    gate = threading.BoundedSemaphore(max(1, concurrency))
    results: dict[str, PartitionResult] = {}
    progress = _Progress(len(commands), name)

    def work(partition: str, command: Sequence[str]) -> None:
        with gate:
            began = time.monotonic()
            done = subprocess.run(list(command), env=submit_env(), capture_output=True, text=True,
                                  timeout=timeout, check=False)
            last = (done.stderr.strip().splitlines() or [""])[-1]
            results[partition] = PartitionResult(partition, done.returncode == 0, time.monotonic() - began,
                                                 None if done.returncode == 0 else f"exit {done.returncode}: {last}")
            progress.finished(done.returncode == 0)

    began = time.monotonic()
    threads = [threading.Thread(target=work, args=(p, c)) for p, c in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return RunSummary(tuple(results[p] for p, _ in commands), time.monotonic() - began)
