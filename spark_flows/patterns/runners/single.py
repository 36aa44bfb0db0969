"""Single Runner: at most one run of a job for a date at a time, and (``depends_on_past``) only after the
previous date succeeded.

:func:`single_run` puts the :class:`~spark_flows.patterns.runners.locks.RunLock` (exclusive, heartbeated, taken
over from dead runs after its TTL) and the :class:`~spark_flows.patterns.runners.ledger.RunLedger` (an
append-only Delta table of run events) together; :func:`refusal_from_files` answers the refusals that files
alone decide before Spark starts.

Example
-------
>>> import datetime as dt, tempfile
>>> root = tempfile.mkdtemp()
>>> ledger = RunLedger(spark, f"{root}/ledger")
>>> with single_run(spark, "trend", dt.date(2024, 1, 1), lock_root=f"{root}/locks", ledger=ledger):
...     pass
>>> ledger.statuses("trend")
{'2024-01-01': 'succeeded'}
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from spark_flows.core.waiting import NO_WAIT, Wait
from spark_flows.errors import (
    CannotAppendError,
    DependsOnPastError,
    RunLockedError,
    SparkFlowsError,
    error_summary,
)
from spark_flows.flow.graph import Graph, note
from spark_flows.io.filesystems import is_local
from spark_flows.io.storage import local_storage
from spark_flows.patterns.runners.ledger import (
    REFUSED,
    RunLedger,
    next_attempt_of,
    read_runs,
    record_without_spark,
    require_past,
    statuses_of,
)
from spark_flows.patterns.runners.locks import LockHolder, RunLock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SingleRunner:
    """The Single Runner of one job as a value: :meth:`run` guards a date's run (:func:`single_run`),
    :meth:`refusal_from_files` settles refusals before Spark starts, :meth:`graph` draws it.

    >>> import datetime as dt, tempfile
    >>> root = tempfile.mkdtemp()
    >>> runner = SingleRunner("trend", lock_root=f"{root}/locks", ledger_path=f"{root}/ledger")
    >>> with runner.run(spark, dt.date(2024, 1, 1)) as lock:
    ...     lock.first_run
    True
    >>> runner.graph().node("single_run").rules
    {'at_most': 1, 'depends_on_past': True}
    """

    job: str
    lock_root: str
    ledger_path: str
    depends_on_past: bool = True
    ttl_seconds: int = 120
    heartbeat_seconds: int = 20
    wait: Wait = NO_WAIT

    @property
    def gate(self) -> str:
        """What lets a run through: the rule on the edge out of the runner."""
        return "D-1 succeeded" if self.depends_on_past else "lock held"

    def graph(self) -> Graph:
        """One node, id ``single_run``, with its rules."""
        return Graph.single("single_run", "runner", f"single runner: {self.job}", at_most=1,
                            depends_on_past=self.depends_on_past)

    def run(self, spark: SparkSession, execution_date: dt.date) -> AbstractContextManager[RunLock]:
        """:func:`single_run` for ``execution_date`` with this runner's lock, ledger and rules."""
        return single_run(spark, self.job, execution_date, lock_root=self.lock_root,
                          ledger=RunLedger(spark, self.ledger_path), depends_on_past=self.depends_on_past,
                          ttl_seconds=self.ttl_seconds, heartbeat_seconds=self.heartbeat_seconds,
                          wait=self.wait)

    def refusal_from_files(self, execution_date: dt.date) -> SparkFlowsError | None:
        """:func:`refusal_from_files` for ``execution_date``."""
        return refusal_from_files(self.job, execution_date, lock_root=self.lock_root, ledger_path=self.ledger_path,
                                  depends_on_past=self.depends_on_past, wait=self.wait)


@contextmanager
def single_run(spark: SparkSession, job: str, execution_date: dt.date, *, lock_root: str, ledger: RunLedger,
               depends_on_past: bool = True, ttl_seconds: int = 120, heartbeat_seconds: int = 20,
               wait: Wait = NO_WAIT) -> Iterator[RunLock]:
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
        lock.acquire(wait=wait)
    except RunLockedError as exc:
        note("single_run", status="failed", reason=error_summary(exc))
        ledger.record(job, execution_date, 0, REFUSED, lock.run_id, error_summary(exc))
        raise
    try:
        runs = ledger.runs(job)  # one read of the ledger for every check
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
                       depends_on_past: bool = True, wait: Wait = NO_WAIT) -> SparkFlowsError | None:
    """The refusal :func:`single_run` would give, decided and recorded in the ledger without Spark, or None.

    A job asks before its session starts (its plan's ``preflight()``): a live holder of the lock, or an
    unmet depends-on-past, is read from the lock file and the ledger's files, recorded as ``refused`` as
    :func:`single_run` records it, and returned, so the job exits with it and never pays for Spark. ``None``
    when the run may go ahead, or when only a run with Spark can tell: a wait for the lock was asked, the
    lock is stale (the run that takes it over closes the dead run's attempt), or the lock or the ledger is
    not on local disk (:mod:`spark_flows.io.delta_append`).
    """
    if wait.timeout > 0 or not (is_local(lock_root) and is_local(ledger_path)):
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
