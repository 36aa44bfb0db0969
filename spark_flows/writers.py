"""Output writers that never write a batch twice: Delta with ``txnAppId``/``txnVersion``, files staged.

* :class:`DeltaWriter` passes ``txnAppId``/``txnVersion`` as **writer options** (never the session confs,
  which all threads share). Delta skips a write whose version is ``<=`` the one recorded for the app id on
  that table *silently*; the writer compares the table's recorded version first and reports
  ``skipped: batch 7 already committed`` instead. With ``mode="overwrite"`` the same rule holds: a replayed
  (app id, version) leaves the table as it is, a new version replaces it.
* :class:`FilesWriter` (CSV, Parquet, JSON) writes to ``<parent>/_staging/<name>/<batch>``, puts a
  ``_PUBLISHED.json`` marker (rows, schema, batch) inside, then publishes data and marker together with one
  atomic rename. Readers see the old output, nothing, or the whole new one; never a partial directory. A
  crashed run leaves only staging debris, which the next write for that target removes.

Example (needs a SparkSession ``spark``; not run as a doctest)::

    from spark_flows.writers import Batch, DeltaWriter, FilesWriter
    DeltaWriter().write(df, "data/tables/devices", batch=Batch("devices_loader", 7))
    # -> WriteResult(path='data/tables/devices', output_type='delta', rows=1000, skipped=False, ...)
    FilesWriter("csv", options={"sep": ";", "header": "true"}).write(df, "out/devices_csv", batch=...)
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from spark_flows.storage import Storage

logger = logging.getLogger(__name__)

PUBLISHED_MARKER = "_PUBLISHED.json"
STAGING_DIR = "_staging"
_APP_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Batch:
    """Identity of one write for idempotency: an application id and a monotonically growing version."""

    app_id: str
    version: int

    def __post_init__(self) -> None:
        if not _APP_ID.match(self.app_id or ""):
            raise ValueError(f"batch app_id must match {_APP_ID.pattern}, got {self.app_id!r}")
        if not isinstance(self.version, int) or self.version < 0:
            raise ValueError(f"batch version must be a non-negative int, got {self.version!r}")

    @property
    def tag(self) -> str:
        """``<app_id>-<version>``, used in staging and marker names."""
        return f"{self.app_id}-{self.version}"


@dataclass(frozen=True)
class WriteResult:
    """What a writer did: where, how many rows, or why it wrote nothing."""

    path: str
    output_type: str
    rows: int | None
    skipped: bool = False
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


def _observed(df: DataFrame) -> tuple[DataFrame, Observation]:
    observation = Observation()
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


def _rows(observation: Observation) -> int | None:
    try:
        return int(observation.get["rows"])
    except Exception:  # the action ran on an empty plan, or the observation was not reported
        return None


class Writer(ABC):
    """Base of every output writer: ``write(df, path, batch=...) -> WriteResult``."""

    output_type: ClassVar[str] = ""

    @abstractmethod
    def write(self, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
        """Write ``df`` to ``path``; with ``batch``, a replay of an already written batch writes nothing."""

    def session_conf(self) -> Mapping[str, str]:
        """Session configuration this writer needs (the factory applies it); none by default."""
        return {}


def delta_snapshot(spark: SparkSession, path: str) -> Any:
    """The current snapshot of the Delta table at ``path`` (JVM object), read on the driver."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    return log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty())


def delta_txn_version(spark: SparkSession, path: str, app_id: str) -> int | None:
    """The last ``txnVersion`` Delta recorded for ``app_id`` on the table at ``path`` (``None``: never).

    Reads the table's log snapshot on the driver; launches no Spark job for a table without checkpoints.
    """
    if not Storage(spark).exists(f"{path.rstrip('/')}/_delta_log"):
        return None
    recorded = delta_snapshot(spark, path).transactions().get(app_id)
    return int(recorded.get()) if recorded.isDefined() else None


class DeltaWriter(Writer):
    """Append (default) or overwrite a Delta table, idempotently per :class:`Batch`."""

    output_type = "delta"

    def __init__(
        self,
        *,
        mode: str = "append",
        partition_by: Sequence[str] = (),
        options: Mapping[str, str] | None = None,
    ) -> None:
        if mode not in ("append", "overwrite"):
            raise ValueError(f"DeltaWriter mode must be 'append' or 'overwrite', got {mode!r}")
        self.mode = mode
        self.partition_by = tuple(partition_by)
        self.options = dict(options or {})

    def write(self, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
        """Write ``df``; skip (and say so) if ``batch`` is already recorded on the table.

        Triggers one Spark job when it writes, none when it skips.
        """
        spark = df.sparkSession
        if batch is not None:
            recorded = delta_txn_version(spark, path, batch.app_id)
            if recorded is not None and recorded >= batch.version:
                reason = f"batch {batch.version} already committed (app {batch.app_id} at {recorded})"
                logger.info("delta %s: skipped: %s", path, reason)
                return WriteResult(path, self.output_type, 0, skipped=True, reason=reason)
        observed, observation = _observed(df)
        writer = observed.write.format("delta").mode(self.mode).options(**self.options)
        if batch is not None:
            writer = writer.option("txnAppId", batch.app_id).option("txnVersion", str(batch.version))
        if self.partition_by:
            writer = writer.partitionBy(*self.partition_by)
        writer.save(path)
        if batch is not None and delta_txn_version(spark, path, batch.app_id) != batch.version:
            # a concurrent writer committed this batch between our check and our commit; Delta skipped ours
            return WriteResult(path, self.output_type, 0, skipped=True, reason=f"batch {batch.version} committed "
                               "concurrently by another writer")
        return WriteResult(path, self.output_type, _rows(observation))


class FilesWriter(Writer):
    """CSV, Parquet or JSON files written to staging and published with one atomic rename."""

    output_type = "files"
    FORMATS: ClassVar[tuple[str, ...]] = ("csv", "parquet", "json")

    def __init__(self, file_format: str, *, options: Mapping[str, str] | None = None,
                 partition_by: Sequence[str] = ()) -> None:
        if file_format not in self.FORMATS:
            raise ValueError(f"file_format must be one of {list(self.FORMATS)}, got {file_format!r}")
        self.file_format = file_format
        self.options = dict(options or {})
        self.partition_by = tuple(partition_by)

    @staticmethod
    def staging_root(path: str) -> str:
        """Where staged attempts for ``path`` live: ``<parent>/_staging/<name>``."""
        parent, _, name = path.rstrip("/").rpartition("/")
        return f"{parent or '.'}/{STAGING_DIR}/{name}"

    def published_batch(self, storage: Storage, path: str) -> dict[str, Any] | None:
        """The marker of the output published at ``path``, or ``None``."""
        marker = f"{path.rstrip('/')}/{PUBLISHED_MARKER}"
        return storage.read_json(marker) if storage.exists(marker) else None

    def write(self, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
        """Stage, mark and publish ``df`` at ``path``; a replay of the published batch is a no-op.

        Triggers one Spark job when it writes, none when it skips.
        """
        spark = df.sparkSession
        storage = Storage(spark)
        published = self.published_batch(storage, path)
        if batch is not None and published and published.get("batch") == batch.tag:
            reason = f"batch {batch.version} already published (app {batch.app_id})"
            logger.info("%s %s: skipped: %s", self.file_format, path, reason)
            return WriteResult(path, self.file_format, 0, skipped=True, reason=reason)
        staging_root = self.staging_root(path)
        storage.delete(staging_root)  # debris of crashed attempts: never visible, safe to drop
        staged = f"{staging_root}/{batch.tag if batch else 'run'}-{uuid.uuid4().hex[:8]}"
        observed, observation = _observed(df)
        writer = observed.write.format(self.file_format).mode("errorifexists").options(**self.options)
        if self.partition_by:
            writer = writer.partitionBy(*self.partition_by)
        writer.save(staged)
        rows = _rows(observation)
        storage.write_json(f"{staged}/{PUBLISHED_MARKER}", {
            "batch": batch.tag if batch else None,
            "rows": rows,
            "format": self.file_format,
            "schema": df.schema.json(),
            "published_at": dt.datetime.now(dt.UTC).isoformat(),
        })
        self._publish(storage, staged, path)
        storage.delete(staging_root)
        storage.delete_if_empty(staging_root.rpartition("/")[0])
        return WriteResult(path, self.file_format, rows, details={"staged": staged})

    @staticmethod
    def _publish(storage: Storage, staged: str, path: str) -> None:
        if storage.exists(path):
            retired = f"{FilesWriter.staging_root(path)}/retired-{uuid.uuid4().hex[:8]}"
            if not storage.rename(path, retired):
                raise OSError(f"could not move the previous output {path} aside to {retired}")
        if not storage.rename(staged, path):
            raise OSError(f"could not publish {staged} to {path}")


def timed_write(writer: Writer, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
    """``writer.write`` with an INFO line giving rows and seconds (used by split branches)."""
    began = time.monotonic()
    result = writer.write(df, path, batch=batch)
    logger.info("%s %s: %s in %.1fs", result.output_type, path,
                result.reason if result.skipped else f"{result.rows} rows", time.monotonic() - began)
    return result


class CsvWriter(FilesWriter):
    """CSV in the book's legacy format (``;``-separated, header row), staged and published atomically."""

    output_type = "csv"
    DEFAULT_OPTIONS: ClassVar[dict[str, str]] = {"sep": ";", "header": "true"}

    def __init__(self, *, options: Mapping[str, str] | None = None, partition_by: Sequence[str] = ()) -> None:
        super().__init__("csv", options={**self.DEFAULT_OPTIONS, **(options or {})}, partition_by=partition_by)


class ParquetWriter(FilesWriter):
    """Parquet files, staged and published atomically, with timestamps other engines read (micros)."""

    output_type = "parquet"

    def __init__(self, *, options: Mapping[str, str] | None = None, partition_by: Sequence[str] = ()) -> None:
        super().__init__("parquet", options=options, partition_by=partition_by)

    def session_conf(self) -> Mapping[str, str]:
        return {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


_CONFLICTS = ("ConcurrentAppend", "ConcurrentWrite", "ConcurrentDelete", "ConcurrentTransaction",
              "ProtocolChanged", "MetadataChanged", "DELTA_CONCURRENT", "DELTA_PROTOCOL_CHANGED",
              "DELTA_METADATA_CHANGED")


def retry_on_conflict(action: Any, *, attempts: int = 5, what: str = "delta write") -> Any:
    """Call ``action()``, retrying Delta's optimistic-concurrency conflicts (e.g. two runs creating one table).

    Writers whose commits do not logically overlap (disjoint ``replaceWhere`` partitions, blind appends)
    can still collide on a table's first commit; a retry sees the committed table and succeeds.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not any(c in str(exc) or c in type(exc).__name__ for c in _CONFLICTS):
                raise
            logger.info("%s: concurrent commit conflict (attempt %d/%d), retrying", what, attempt, attempts)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")
