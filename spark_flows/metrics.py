"""Costs measured from Spark's own bookkeeping: jobs launched and source scans.

:class:`SparkMeter` counts the Spark jobs a block of code launches (status tracker, through a job group of
its own) and, from the SQL status store (what the UI's SQL tab and the monitoring REST API show), how many
rows each file scan node produced, so "read once" is checked rather than assumed.

Example (needs a SparkSession ``spark``; not run as a doctest)::

    from spark_flows.metrics import SparkMeter
    with SparkMeter(spark) as meter:
        df = spark.range(5).filter("id > 1")                         # no action
    meter.jobs
    # -> 0
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pyspark.sql import SparkSession

_METADATA_LENGTH = "spark.sql.maxMetadataStringLength"
_LOCATION = re.compile(r"Location: \w+(?:\([^)]*\))?\[(.*?)\]")


@dataclass(frozen=True)
class ScanRecord:
    """One file scan node that produced rows in a SQL execution."""

    execution_id: int
    file_format: str
    location: str
    rows: int


@dataclass
class ScanStats:
    """File scans seen in the SQL executions of a measured block."""

    records: list[ScanRecord] = field(default_factory=list)

    @property
    def scans(self) -> int:
        """Number of file scans that produced rows."""
        return len(self.records)

    @property
    def rows(self) -> int:
        """Rows produced by all file scans."""
        return sum(r.rows for r in self.records)

    def of(self, path: str) -> list[ScanRecord]:
        """The scans whose location contains ``path`` (e.g. the source directory's last segments)."""
        needle = path.rstrip("/")
        return [r for r in self.records if needle in r.location]


def _scala_seq(seq: Any) -> list[Any]:
    return [seq.apply(i) for i in range(seq.size())]


def _metric_number(text: str | None) -> int:
    if not text:
        return 0
    head = str(text).split("\n")[0].split(" ")[0].replace(",", "")
    try:
        return int(float(head))
    except ValueError:
        return 0


class SparkMeter:
    """Context manager measuring jobs launched and file scans performed by the current thread's block.

    Triggers no Spark job itself. Jobs are counted through a job group set for the block (restored on
    exit); scans are the SQL executions started during the block whose ``Scan <format>`` nodes output
    rows (a scan served from a persisted cache is not a scan of the source).
    """

    def __init__(self, spark: SparkSession, *, all_threads: bool = False) -> None:
        self._spark = spark
        self._sc = spark.sparkContext
        self._group = f"spark-flows-meter-{uuid.uuid4().hex[:8]}"
        self._all_threads = all_threads
        self._previous_group: str | None = None
        self._previous_length: str | None = None
        self._first_execution = 0
        self.jobs = 0
        self.job_ids: list[int] = []
        self.scan = ScanStats()

    def _sql_store(self) -> Any:
        return self._spark._jsparkSession.sharedState().statusStore()

    def _execution_ids(self) -> list[int]:
        return [int(e.executionId()) for e in _scala_seq(self._sql_store().executionsList())]

    def __enter__(self) -> SparkMeter:
        # plan descriptions are cut at this length: long scan locations would not be recognisable
        self._previous_length = self._spark.conf.get(_METADATA_LENGTH, None)
        self._spark.conf.set(_METADATA_LENGTH, "100000")
        self._previous_group = self._sc.getLocalProperty("spark.jobGroup.id")
        if not self._all_threads:
            self._sc.setJobGroup(self._group, "spark_flows meter", interruptOnCancel=False)
        ids = self._execution_ids()
        self._first_execution = max(ids) + 1 if ids else 0
        self._first_job = self._max_job_id() + 1
        return self

    def _max_job_id(self) -> int:
        store = self._sc._jsc.sc().statusStore()
        jobs = _scala_seq(store.jobsList(None))
        return max((int(j.jobId()) for j in jobs), default=-1)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._all_threads:
            store = self._sc._jsc.sc().statusStore()
            self.job_ids = sorted(
                int(j.jobId()) for j in _scala_seq(store.jobsList(None)) if int(j.jobId()) >= self._first_job
            )
        else:
            self.job_ids = sorted(self._sc.statusTracker().getJobIdsForGroup(self._group))
            self._sc.setLocalProperty("spark.jobGroup.id", self._previous_group)  # type: ignore[arg-type]
        self.jobs = len(self.job_ids)
        self.scan = self._scan_stats()
        if self._previous_length is None:
            self._spark.conf.unset(_METADATA_LENGTH)
        else:
            self._spark.conf.set(_METADATA_LENGTH, self._previous_length)

    def _scan_stats(self) -> ScanStats:
        store = self._sql_store()
        stats = ScanStats()
        for execution_id in self._execution_ids():
            if execution_id < self._first_execution:
                continue
            values = store.executionMetrics(execution_id)
            for node in _scala_seq(store.planGraph(execution_id).allNodes()):
                name = str(node.name())
                if not name.startswith("Scan ") or name.startswith("Scan ExistingRDD"):
                    continue
                location = _LOCATION.search(str(node.desc()))
                for metric in _scala_seq(node.metrics()):
                    if str(metric.name()) == "number of output rows":
                        option = values.get(metric.accumulatorId())
                        rows = _metric_number(str(option.get()) if option.isDefined() else None)
                        if rows > 0:
                            stats.records.append(
                                ScanRecord(
                                    execution_id=execution_id,
                                    file_format=name.split(" ")[1],
                                    location=location.group(1) if location else "",
                                    rows=rows,
                                )
                            )
        return stats
