"""Output writers with one write contract: a batch is written once, a replay is reported, never repeated.

The contract, the same for every writer (:class:`DeltaWriter`, :class:`FilesWriter` and its CSV/Parquet
classes):

* **One skip rule.** A :class:`Batch` is an app id and an int version. A batch whose version is ``<=`` the
  last one recorded for its app id on the output is *skipped*, and reported as such
  (:attr:`WriteResult.skipped`, :attr:`WriteResult.reason`), only when it is known to be committed: for
  Delta, a ``txn`` action of the table's log recorded it; for files, the output's ``_PUBLISHED.json``
  lists it. An older batch that never committed is refused with ``BATCH_OUT_OF_ORDER`` (Delta would
  skip it *silently*), never reported as done.
* **An empty batch is refused** (``EMPTY_BATCH``) unless the writer allows it: writing 0 rows would use
  up the batch's version, and the real data under the same version would then be skipped for ever.
* **Outputs never nest** inside another table or published output, and a path that spark_flows did not
  publish is never replaced unless the caller says so (``replace_foreign=True``).
* :class:`WriteResult` carries what consumers need: rows written by this call, the rows of the batch as
  committed (also for a skip), the Delta table version holding it.

:class:`DeltaWriter` passes ``txnAppId``/``txnVersion`` as writer options (never the session confs, which
all threads share), reads the txn facts from the table's log (:mod:`spark_flows.delta`, no Spark job),
and retries Delta's commit conflicts; ``replace={"date": "20240101"}`` replaces one partition.
:class:`FilesWriter` writes to ``<parent>/_staging/<name>/``, puts ``_PUBLISHED.json`` inside, and
publishes with one rename: readers see the old output or the whole new one, never a partial directory;
the previous output is moved aside and deleted only once the new one is in place, and a crash in between
is rolled back by the next write.

Example (needs a SparkSession ``spark``; run as a doctest)
----------------------------------------------------------
>>> import tempfile
>>> path = tempfile.mkdtemp() + "/devices"
>>> df = spark.createDataFrame([("mac", "MacBook", "14")], "type string, full_name string, version string")
>>> DeltaWriter().write(df, path, batch=Batch("loader", 7)).rows
1
>>> replay = DeltaWriter().write(df, path, batch=Batch("loader", 7))
>>> replay.skipped, replay.reason, replay.batch_rows, replay.table_version
(True, 'batch 7 already committed (app loader, table version 0)', 1, 0)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from spark_flows import delta
from spark_flows.errors import SparkFlowsTypeError, StorageError, WriteRefusedError, invalid_argument
from spark_flows.storage import Storage

logger = logging.getLogger(__name__)

PUBLISHED_MARKER = "_PUBLISHED.json"
STAGING_DIR = "_staging"
_RETIRED = "retired-"
_APP_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Batch:
    """Identity of one write for idempotency: an application id and a monotonically growing version."""

    app_id: str
    version: int

    def __post_init__(self) -> None:
        if not isinstance(self.app_id, str) or not _APP_ID.match(self.app_id):
            raise invalid_argument("batch app_id", self.app_id, f"a string matching {_APP_ID.pattern}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise invalid_argument("batch version", self.version, "a non-negative int")

    @property
    def tag(self) -> str:
        """``<app_id>-<version>``, used in staging names."""
        return f"{self.app_id}-{self.version}"


@dataclass(frozen=True)
class WriteResult:
    """What a writer did to one output.

    Attributes
    ----------
    rows: rows this call wrote (0 when it skipped; ``None`` when Spark did not report them).
    skipped: the batch was already committed; ``reason`` says when and where.
    batch: the batch written or skipped.
    batch_rows: rows of the batch as committed, by this call or an earlier one.
    table_version: the Delta table version that holds the batch (``None`` for files).
    partition: the one partition the write replaced (``DeltaWriter(replace=...)``), else empty.
    """

    path: str
    output_type: str
    rows: int | None
    skipped: bool = False
    reason: str = ""
    batch: Batch | None = None
    batch_rows: int | None = None
    table_version: int | None = None
    partition: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``'1000 rows'`` or the skip reason."""
        return self.reason if self.skipped else f"{self.rows if self.rows is not None else '?'} rows"


def _refuse(message: str, condition: str, **parameters: Any) -> WriteRefusedError:
    return WriteRefusedError(message, condition=condition, parameters=parameters)


def _out_of_order(path: str, batch: Batch, recorded: int) -> WriteRefusedError:
    return _refuse(
        f"batch {batch.version} of app {batch.app_id} is older than batch {recorded} already committed to {path} "
        f"and was never committed itself; a write with a version <= {recorded} would be skipped for ever. "
        f"Write it as a version above {recorded}, or under another app id",
        "BATCH_OUT_OF_ORDER", path=path, app_id=batch.app_id, version=batch.version, recorded=recorded)


def _ancestors(qualified: str) -> list[str]:
    scheme, sep, rest = qualified.partition(":")
    if not sep:
        scheme, rest = "", qualified
    parts = rest.rstrip("/").split("/")
    prefix = f"{scheme}:" if sep else ""
    return [prefix + "/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if "/".join(parts[:i]).strip("/")]


def check_not_nested(storage: Storage, path: str) -> None:
    """Raise ``OUTPUT_NESTED`` if an ancestor of ``path`` is a Delta table or a published files output.

    ``VACUUM`` of the outer table would delete the inner output's files, and readers of the outer one would
    list them.
    """
    for ancestor in _ancestors(storage.qualify(path)):
        for inner, what in ((delta.LOG_DIR, "a Delta table"), (PUBLISHED_MARKER, "a published output")):
            if storage.exists(f"{ancestor}/{inner}"):
                raise _refuse(f"cannot write {path}: it is inside {ancestor}, which is {what}; choose an output "
                              "path outside any other table", "OUTPUT_NESTED", path=path, outer=ancestor)


class Writer(ABC):
    """Base of every output writer: ``write(df, path, batch=...) -> WriteResult`` under one contract.

    Parameters
    ----------
    allow_empty: write a batch with no rows (by default refused with ``EMPTY_BATCH``).
    """

    output_type: ClassVar[str] = ""

    def __init__(self, *, allow_empty: bool = False) -> None:
        self.allow_empty = allow_empty

    def write(self, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
        """Write ``df`` to ``path``; with ``batch``, a replay of an already committed batch writes nothing.

        Triggers the write's Spark job(s), plus one small job to check that a batch is not empty; none
        when the batch is skipped.

        Raises
        ------
        WriteRefusedError: ``EMPTY_BATCH``, ``BATCH_OUT_OF_ORDER``, ``OUTPUT_NESTED`` or ``OUTPUT_NOT_OWNED``;
            nothing was written.
        ConcurrentWriteError: other writers kept conflicting with this one (Delta).
        """
        if batch is not None and not isinstance(batch, Batch):
            raise SparkFlowsTypeError(f"batch must be a Batch, got {type(batch).__name__}",
                                      parameters={"argument": "batch", "type": type(batch).__name__})
        storage = Storage(df.sparkSession)
        check_not_nested(storage, path)
        self.prepare(storage, path)
        if batch is not None:
            committed = self.committed(storage, path, batch)
            if committed is not None:
                logger.info("%s %s: skipped: %s", self.output_type, path, committed.reason)
                return committed
            if not self.allow_empty and df.isEmpty():
                raise _refuse(f"batch {batch.version} of app {batch.app_id} for {path} has no rows; writing it would "
                              "use up the version and skip the real data later. Check the input, or allow empty "
                              "batches (allow_empty=True)", "EMPTY_BATCH", path=path, app_id=batch.app_id,
                              version=batch.version)
        return self._write(storage, df, path, batch)

    def prepare(self, storage: Storage, path: str) -> None:  # noqa: B027 (optional hook)
        """Checks and recovery before anything else (e.g. roll back a crashed publish); none by default."""

    @abstractmethod
    def committed(self, storage: Storage, path: str, batch: Batch) -> WriteResult | None:
        """The skip rule: a skipped :class:`WriteResult` if ``batch`` is committed, ``None`` if it is to be
        written; raises ``BATCH_OUT_OF_ORDER`` for an older batch that never committed. Reads metadata only."""

    @abstractmethod
    def _write(self, storage: Storage, df: DataFrame, path: str, batch: Batch | None) -> WriteResult:
        """Write ``df`` (the checks are done)."""

    def session_conf(self) -> Mapping[str, str]:
        """Session configuration this writer needs (the factory applies it); none by default."""
        return {}


class DeltaWriter(Writer):
    """Append (default), overwrite, or replace one partition of a Delta table, idempotently per :class:`Batch`.

    Parameters
    ----------
    mode: ``"append"`` or ``"overwrite"``.
    replace: ``{column: value}`` of the one partition to replace (``replaceWhere``): the column is added
        with that value, the table is partitioned by it, other partitions are untouched; implies overwrite.
    partition_by: partition columns (``replace``'s columns come first).
    options: extra Delta writer options.
    retries: attempts on a commit conflict with another writer.
    """

    output_type = "delta"

    def __init__(self, *, mode: str = "append", replace: Mapping[str, str] | None = None,
                 partition_by: Sequence[str] = (), options: Mapping[str, str] | None = None, retries: int = 5,
                 allow_empty: bool = False) -> None:
        super().__init__(allow_empty=allow_empty)
        if mode not in ("append", "overwrite"):
            raise invalid_argument("DeltaWriter mode", mode, "'append' or 'overwrite'")
        self.replace = dict(replace or {})
        self.mode = "overwrite" if self.replace else mode
        self.partition_by = tuple(dict.fromkeys([*self.replace, *partition_by]))
        self.options = dict(options or {})
        self.retries = retries

    def committed(self, storage: Storage, path: str, batch: Batch) -> WriteResult | None:
        recorded = delta.latest_txn(storage, path, batch.app_id) if delta.is_delta_table(storage, path) else None
        if recorded is None or batch.version > recorded:
            return None
        found = delta.find_txn(storage, path, batch.app_id, batch.version)
        if found is None:
            raise _out_of_order(path, batch, recorded)
        return WriteResult(path, self.output_type, 0, skipped=True, batch=batch, batch_rows=found.rows,
                           table_version=found.table_version, partition=self.replace,
                           reason=f"batch {batch.version} already committed (app {batch.app_id}, table version "
                                  f"{found.table_version})")

    def _write(self, storage: Storage, df: DataFrame, path: str, batch: Batch | None) -> WriteResult:
        write_id = uuid.uuid4().hex
        frame = df
        for column, value in self.replace.items():
            frame = frame.withColumn(column, F.lit(value))
        writer = frame.write.format("delta").mode(self.mode).options(**self.options)
        if self.replace:
            writer = writer.option("replaceWhere", " AND ".join(f"`{c}` = '{v}'" for c, v in self.replace.items()))
        if self.partition_by:
            writer = writer.partitionBy(*self.partition_by)
        if batch is not None:
            writer = writer.option("txnAppId", batch.app_id).option("txnVersion", str(batch.version))
        if "userMetadata" not in self.options:
            writer = writer.option("userMetadata", json.dumps({"spark_flows_write": write_id}))
        attempts = [0]

        def attempt() -> WriteResult:
            attempts[0] += 1
            if batch is not None and attempts[0] > 1:  # a conflicting writer may have committed this batch
                done = self.committed(storage, path, batch)
                if done is not None:
                    return _concurrently(done, batch)
            writer.save(path)
            return self._after_write(storage, path, batch, write_id)

        return delta.retry_on_conflict(attempt, path=path, attempts=self.retries, what="delta write")

    def _after_write(self, storage: Storage, path: str, batch: Batch | None, write_id: str) -> WriteResult:
        version = delta.table_version(storage, path)
        if batch is None:
            rows = delta.commit_rows(storage, path, version) if version is not None else None
            return WriteResult(path, self.output_type, rows, batch_rows=rows, table_version=version,
                               partition=self.replace)
        found = delta.find_txn(storage, path, batch.app_id, batch.version)
        if found is None:  # Delta skipped it: a newer batch of this app id committed meanwhile
            recorded = delta.latest_txn(storage, path, batch.app_id)
            raise _out_of_order(path, batch, recorded if recorded is not None else batch.version)
        ours = delta.commit_metadata(storage, path, found.table_version).get("spark_flows_write") == write_id
        result = WriteResult(path, self.output_type, found.rows, batch=batch, batch_rows=found.rows,
                             table_version=found.table_version, partition=self.replace)
        if not ours and "userMetadata" not in self.options:
            return _concurrently(result, batch)
        return result

    def prepare(self, storage: Storage, path: str) -> None:
        """Refuse a target that is not a Delta table: a plain file, a files output, a user's directory.

        A directory holding only what a Delta write leaves (``_delta_log``, data files, partition
        directories) is a table being created by a concurrent writer, not a foreign target.
        """
        info = storage.fs.info(path)
        if info is None or delta.is_delta_table(storage, path):
            return
        foreign = [] if info.is_dir else [path]
        if info.is_dir:
            foreign = [i.name for i in storage.list(path) if not _delta_entry(i.name)]
        if foreign:
            raise _refuse(f"{path} exists and is not a Delta table (it holds {foreign[:3]}); refusing to write a "
                          "table over it. Choose another output path", "OUTPUT_NOT_OWNED", path=path)


def _delta_entry(name: str) -> bool:
    """True for what a Delta table's directory holds: its log, data files, partition directories."""
    return (name in (delta.LOG_DIR, "_change_data", "_delta_index") or name.startswith(("part-", "."))
            or name.endswith((".parquet", ".crc")) or "=" in name)


def _concurrently(skipped: WriteResult, batch: Batch) -> WriteResult:
    return WriteResult(skipped.path, skipped.output_type, 0, skipped=True, batch=batch, batch_rows=skipped.batch_rows,
                       table_version=skipped.table_version, partition=skipped.partition,
                       reason=f"batch {batch.version} committed concurrently by another writer (app {batch.app_id}, "
                              f"table version {skipped.table_version})")


def _observed(df: DataFrame) -> tuple[DataFrame, Observation]:
    observation = Observation()
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


class FilesWriter(Writer):
    """CSV, Parquet or JSON files written to staging and published with one atomic rename.

    Parameters
    ----------
    file_format: ``"csv"``, ``"parquet"`` or ``"json"``.
    replace_foreign: replace a target that spark_flows did not publish (no ``_PUBLISHED.json``).
    """

    output_type = "files"
    FORMATS: ClassVar[tuple[str, ...]] = ("csv", "parquet", "json")

    def __init__(self, file_format: str, *, options: Mapping[str, str] | None = None,
                 partition_by: Sequence[str] = (), replace_foreign: bool = False, allow_empty: bool = False) -> None:
        super().__init__(allow_empty=allow_empty)
        if file_format not in self.FORMATS:
            raise invalid_argument("file_format", file_format, f"one of {list(self.FORMATS)}")
        self.file_format = file_format
        self.options = dict(options or {})
        self.partition_by = tuple(partition_by)
        self.replace_foreign = replace_foreign

    @staticmethod
    def staging_root(path: str) -> str:
        """Where staged attempts for ``path`` live: ``<parent>/_staging/<name>``."""
        parent, _, name = path.rstrip("/").rpartition("/")
        return f"{parent or '.'}/{STAGING_DIR}/{name}"

    @staticmethod
    def published(storage: Storage, path: str) -> dict[str, Any] | None:
        """The ``_PUBLISHED.json`` of the output at ``path``, or ``None``."""
        marker = f"{path.rstrip('/')}/{PUBLISHED_MARKER}"
        return storage.read_json(marker) if storage.exists(marker) else None

    def prepare(self, storage: Storage, path: str) -> None:
        """Refuse a foreign target; roll back a publish that crashed after moving the old output aside."""
        staging = self.staging_root(path)
        retired = [i.path for i in storage.list(staging) if i.name.startswith(_RETIRED)]
        if retired and not storage.exists(path):
            storage.rename(retired[0], path)  # the old output comes back: the crashed publish never happened
            logger.warning("%s: restored the previous output moved aside by a crashed publish", path)
        info = storage.fs.info(path)
        if info is not None and not self.replace_foreign and (
                not info.is_dir or self.published(storage, path) is None):
            raise _refuse(f"{path} exists and was not published by spark_flows (no {PUBLISHED_MARKER}); refusing to "
                          "replace it. Choose another output path, or pass replace_foreign=True",
                          "OUTPUT_NOT_OWNED", path=path)
        storage.delete(staging)  # debris of crashed attempts: never visible, safe to drop
        storage.delete_if_empty(staging.rpartition("/")[0])

    def committed(self, storage: Storage, path: str, batch: Batch) -> WriteResult | None:
        published = self.published(storage, path) or {}
        history = {int(v): rows for v, rows in (published.get("batches") or {}).get(batch.app_id, {}).items()}
        if not history or batch.version > max(history):
            return None
        recorded = max(history)
        if batch.version not in history:
            raise _out_of_order(path, batch, recorded)
        when = "already published" if batch.version == recorded else f"published before batch {recorded} replaced it"
        return WriteResult(path, self.file_format, 0, skipped=True, batch=batch, batch_rows=history[batch.version],
                           reason=f"batch {batch.version} {when} (app {batch.app_id})")

    def _write(self, storage: Storage, df: DataFrame, path: str, batch: Batch | None) -> WriteResult:
        previous = self.published(storage, path) or {}
        staged = f"{self.staging_root(path)}/{batch.tag if batch else 'run'}-{uuid.uuid4().hex[:8]}"
        observed, observation = _observed(df)
        writer = observed.write.format(self.file_format).mode("error").options(**self.options)
        if self.partition_by:
            writer = writer.partitionBy(*self.partition_by)
        writer.save(staged)
        rows = int(observation.get["rows"])  # the save above was the observed action
        batches: dict[str, dict[str, int]] = dict(previous.get("batches") or {})
        if batch is not None:
            batches[batch.app_id] = {**batches.get(batch.app_id, {}), str(batch.version): rows}
        storage.write_json(f"{staged}/{PUBLISHED_MARKER}", {
            "app_id": batch.app_id if batch else None, "version": batch.version if batch else None,
            "rows": rows, "format": self.file_format, "schema": df.schema.json(), "batches": batches,
            "published_at": dt.datetime.now(dt.UTC).isoformat(),
        })
        self._publish(storage, staged, path)
        storage.delete(self.staging_root(path))
        storage.delete_if_empty(self.staging_root(path).rpartition("/")[0])
        return WriteResult(path, self.file_format, rows, batch=batch, batch_rows=rows, details={"staged": staged})

    def _publish(self, storage: Storage, staged: str, path: str) -> None:
        retired = None
        if storage.exists(path):
            retired = f"{self.staging_root(path)}/{_RETIRED}{uuid.uuid4().hex[:8]}"
            if not storage.rename(path, retired):
                raise StorageError(f"could not move the previous output {path} aside to {retired}; nothing changed",
                                   parameters={"path": path, "to": retired})
        if not storage.rename(staged, path):
            if retired is not None:
                storage.rename(retired, path)
            raise StorageError(f"could not publish {staged} to {path}; the previous output is still in place",
                               parameters={"path": path, "staged": staged})
        if retired is not None:
            storage.delete(retired)  # only now: the new output is in place


def timed_write(writer: Writer, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
    """``writer.write`` with an INFO line giving rows and seconds (used by split branches)."""
    began = time.monotonic()
    result = writer.write(df, path, batch=batch)
    logger.info("%s %s: %s in %.1fs", result.output_type, path, result.describe(), time.monotonic() - began)
    return result


class CsvWriter(FilesWriter):
    """CSV in the book's legacy format (``;``-separated, header row), staged and published atomically."""

    output_type = "csv"
    DEFAULT_OPTIONS: ClassVar[dict[str, str]] = {"sep": ";", "header": "true"}

    def __init__(self, *, options: Mapping[str, str] | None = None, partition_by: Sequence[str] = (),
                 replace_foreign: bool = False, allow_empty: bool = False) -> None:
        super().__init__("csv", options={**self.DEFAULT_OPTIONS, **(options or {})}, partition_by=partition_by,
                         replace_foreign=replace_foreign, allow_empty=allow_empty)


class ParquetWriter(FilesWriter):
    """Parquet files, staged and published atomically, with timestamps other engines read (micros)."""

    output_type = "parquet"

    def __init__(self, *, options: Mapping[str, str] | None = None, partition_by: Sequence[str] = (),
                 replace_foreign: bool = False, allow_empty: bool = False) -> None:
        super().__init__("parquet", options=options, partition_by=partition_by, replace_foreign=replace_foreign,
                         allow_empty=allow_empty)

    def session_conf(self) -> Mapping[str, str]:
        return {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
