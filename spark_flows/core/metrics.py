"""Costs measured from Spark's own bookkeeping: jobs launched and source scans.

:class:`SparkMeter` counts the Spark jobs a block of code launches (status tracker, through a job group of
its own) and, from the SQL status store (what the UI's SQL tab and the monitoring REST API show), how many
rows each file scan node produced, so "read once" is checked rather than assumed.

Example
-------
>>> with SparkMeter(spark) as meter:
...     df = spark.range(5).filter("id > 1")                         # no action
>>> meter.jobs
0
>>> with SparkMeter(spark) as meter:
...     spark.range(5).collect()[-1].id
4
>>> meter.jobs >= 1
True
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from pyspark.sql import SparkSession

from spark_flows.core import backend

_METADATA_LENGTH = "spark.sql.maxMetadataStringLength"
_RDD_COLUMNS = re.compile(r"([^,\s]+)#\d+L?")
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
    #: scans of RDD-backed DataFrames (``location``: their columns), such as a streaming micro-batch in
    #: ``foreachBatch``, which Spark hands over as an RDD: each read of it not served by a cache runs the
    #: micro-batch's source scan again (Delta's own bookkeeping also scans small RDDs)
    rdd: list[ScanRecord] = field(default_factory=list)

    @property
    def scans(self) -> int:
        """Number of file scans that produced rows."""
        return len(self.records)

    @property
    def rows(self) -> int:
        """Rows produced by all file scans."""
        return sum(r.rows for r in self.records)

    def micro_batch(self, columns: Sequence[str]) -> list[ScanRecord]:
        """The scans of a ``foreachBatch`` micro-batch with exactly these ``columns`` (its schema's names)."""
        return [r for r in self.rdd if r.location == ",".join(columns)]

    def of(self, path: str) -> list[ScanRecord]:
        """The scans whose location contains ``path`` (e.g. the source directory's last segments)."""
        needle = path.rstrip("/")
        return [r for r in self.records if needle in r.location]


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
    rows (a scan served from a persisted cache is not a scan of the source). Needs classic Spark (the
    application's status store); on Spark Connect it raises :class:`~spark_flows.errors.ClassicOnlyError`.
    """

    def __init__(self, spark: SparkSession, *, all_threads: bool = False) -> None:
        backend.context(spark, needed_by="SparkMeter")
        self._spark = spark
        self._group = f"spark-flows-meter-{uuid.uuid4().hex[:8]}"
        self._all_threads = all_threads
        self._previous_group: str | None = None
        self._previous_length: str | None = None
        self._first_execution = 0
        self._first_job = 0
        self.jobs = 0
        self.job_ids: list[int] = []
        self.scan = ScanStats()

    def __enter__(self) -> SparkMeter:
        # plan descriptions are cut at this length: long scan locations would not be recognisable
        self._previous_length = self._spark.conf.get(_METADATA_LENGTH, None)
        self._spark.conf.set(_METADATA_LENGTH, "100000")
        self._previous_group = backend.of(self._spark).local_property("spark.jobGroup.id")
        if not self._all_threads:
            backend.of(self._spark).enter_group(self._group, "spark_flows meter", pool="default")
        ids = backend.sql_execution_ids(self._spark)
        self._first_execution = max(ids) + 1 if ids else 0
        self._first_job = backend.max_job_id(self._spark) + 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._all_threads:
            self.job_ids = backend.job_ids_since(self._spark, self._first_job)
        else:
            self.job_ids = backend.group_job_ids(self._spark, self._group)
            backend.of(self._spark).leave_group(self._group)
            backend.of(self._spark).set_local_property("spark.jobGroup.id", self._previous_group)
        self.jobs = len(self.job_ids)
        self.scan = self._scan_stats()
        if self._previous_length is None:
            self._spark.conf.unset(_METADATA_LENGTH)
        else:
            self._spark.conf.set(_METADATA_LENGTH, self._previous_length)

    def _scan_stats(self) -> ScanStats:
        stats = ScanStats()
        for execution_id in backend.sql_execution_ids(self._spark):
            if execution_id < self._first_execution:
                continue
            for name, desc, metric in backend.scan_nodes(self._spark, execution_id):
                if not name.startswith("Scan "):
                    continue
                rows = _metric_number(metric)
                if rows > 0 and name.startswith("Scan ExistingRDD"):
                    columns = _RDD_COLUMNS.findall(desc.partition("[")[2].partition("]")[0])
                    stats.rdd.append(ScanRecord(execution_id, "rdd", ",".join(columns), rows))
                elif rows > 0:
                    location = _LOCATION.search(desc)
                    stats.records.append(ScanRecord(execution_id=execution_id, file_format=name.split(" ")[1],
                                                    location=location.group(1) if location else "", rows=rows))
        return stats
