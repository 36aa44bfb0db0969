"""The run ledger: an append-only Delta table of run events, and the depends-on-past rule read from it.

Every attempt of a Single Runner job is there: ``running``, then ``succeeded`` or ``failed``; ``abandoned``
when its holder died and another run took its lock over; ``refused`` when it never ran (lock held, or D-1 did
not succeed). Appends never conflict; the latest event per run is its status.

Example
-------
>>> statuses_of([])
{}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from spark_flows.errors import DependsOnPastError
from spark_flows.io import delta_append, delta_log
from spark_flows.io.delta_conflicts import retry_on_conflict
from spark_flows.io.storage import Storage

REFUSED = "refused"

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
        row = (job, execution_date.isoformat(), attempt, status, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
               run_id, error)
        frame = self.spark.createDataFrame([row], LEDGER_SCHEMA)
        retry_on_conflict(lambda: frame.write.format("delta").mode("append").save(self.path), path=self.path,
                          what="run ledger")

    def runs(self, job: str | None = None) -> list[Run]:
        """One :class:`Run` per run (job, execution_date, run id): its attempt, latest status, start and end;
        one Spark job (the events of ``job``, folded as :func:`read_runs` folds them).

        Statuses: ``running``, ``succeeded``, ``failed``, ``abandoned`` (its holder died and another run
        took its lock over), ``refused`` (the lock was held, or depends-on-past was not met: nothing ran).
        """
        events = self._events()
        if events is None:
            return []
        if job is not None:
            events = events.where(F.col("job") == job)
        return _fold([row.asDict() for row in events.collect()])

    def statuses(self, job: str) -> dict[str, str]:
        """Latest status per execution date (ISO string) of ``job``; triggers one Spark job."""
        return statuses_of(self.runs(job))

    def next_attempt(self, job: str, execution_date: dt.date) -> int:
        """The attempt number a new run of ``job`` for ``execution_date`` gets; triggers one Spark job."""
        return next_attempt_of(self.runs(job), execution_date)


@dataclass(frozen=True)
class Run:
    """One run of a job as :meth:`RunLedger.runs` gives it, read without Spark by :func:`read_runs`."""

    job: str
    execution_date: str
    attempt: int
    status: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    run_id: str
    error: str | None


def read_runs(path: str, job: str | None = None, *, storage: Storage | None = None) -> list[Run]:
    """The runs in the ledger at ``path`` (of ``job``), ordered as :meth:`RunLedger.runs`, read from the
    table's log and files without Spark (``storage``: default, local files and pyarrow's filesystems).

    >>> read_runs("/nonexistent/ledger")
    []
    """
    return _fold([e for e in delta_log.read_rows(storage or Storage(), path) if job is None or e["job"] == job])


def _fold(rows: Sequence[Mapping[str, Any]]) -> list[Run]:
    """Ledger events folded into one :class:`Run` per (job, date, run id), ordered by date then start."""
    events = [{**e, "at": _utc(e["at"])} for e in rows]
    by_run: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for event in events:
        by_run.setdefault((event["job"], event["execution_date"], event["run_id"]), []).append(event)
    runs = []
    for (name, day, run_id), group in by_run.items():
        last = max(group, key=lambda e: e["at"])
        ended = [e["at"] for e in group if e["status"] != "running"]
        runs.append(Run(name, day, max(e["attempt"] for e in group), last["status"], min(e["at"] for e in group),
                        max(ended) if ended else None, run_id, last["error"]))
    return sorted(runs, key=lambda r: (r.execution_date, r.started_at or dt.datetime.min))


def _utc(at: Any) -> dt.datetime | None:
    """An event's time as a naive UTC datetime, however its file stored it (INT96 from Spark, or an instant)."""
    if at is None:
        return None
    at = at.to_pydatetime() if hasattr(at, "to_pydatetime") else at
    return at.astimezone(dt.timezone.utc).replace(tzinfo=None) if at.tzinfo is not None else at


def record_without_spark(path: str, job: str, execution_date: dt.date, attempt: int, status: str, run_id: str,
                         error: str | None = None, *, storage: Storage | None = None) -> int:
    """Append one event as :meth:`RunLedger.record` does, without Spark (a ledger on local disk); the version.

    Raises
    ------
    CannotAppendError: the ledger cannot be appended to without Spark (not on local disk, absent, or a table
        feature :mod:`spark_flows.io.delta_append` does not write); nothing was recorded.
    """
    row = {"job": job, "execution_date": execution_date.isoformat(), "attempt": attempt, "status": status,
           "at": dt.datetime.now(dt.timezone.utc), "run_id": run_id, "error": error}
    return delta_append.append(storage or Storage(), path, [row], engine="spark_flows ledger")


def statuses_of(runs: Sequence[Any]) -> dict[str, str]:
    # runs are ordered by date then start: the last run of a date that did run wins (a refusal changed nothing)
    return {r.execution_date: r.status for r in runs if r.status != REFUSED}


def next_attempt_of(runs: Sequence[Any], execution_date: dt.date) -> int:
    return max((r.attempt for r in runs if r.execution_date == execution_date.isoformat() and r.status != REFUSED),
               default=0) + 1


def check_depends_on_past(ledger: RunLedger, job: str, execution_date: dt.date) -> None:
    """Raise :class:`DependsOnPastError` unless D-1 succeeded or no date before D was ever run."""
    require_past(ledger.statuses(job), job, execution_date)


def require_past(statuses: dict[str, str], job: str, execution_date: dt.date) -> None:
    previous = (execution_date - dt.timedelta(days=1)).isoformat()
    earlier = [d for d in statuses if d < execution_date.isoformat()]
    if earlier and statuses.get(previous) != "succeeded":
        state = statuses.get(previous, "never run")
        raise DependsOnPastError(f"{job} for {execution_date} depends on {previous}, which is {state}; "
                                 f"run {previous} first (latest earlier date run: {max(earlier)})",
                                 parameters={"job": job, "execution_date": execution_date.isoformat(),
                                             "previous": previous, "previous_status": state})
