"""Delta Lake writer: append, overwrite or replace one partition, idempotently per batch (``txnAppId``).

Part of :mod:`spark_flows.io.writers`; the facts it reports come from the table's log (:mod:`spark_flows.io.delta_log`).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_flows.core.waiting import Wait
from spark_flows.errors import invalid_argument
from spark_flows.io import delta_log
from spark_flows.io.delta_conflicts import retry_on_conflict
from spark_flows.io.filesystems import FileInfo
from spark_flows.io.storage import Storage
from spark_flows.io.writers.contract import Batch, Writer, WriteResult, check_nothing_inside, out_of_order, refuse

logger = logging.getLogger(__name__)

# The snapshot ``prepare`` read, kept for the ``committed`` check that follows it on the same Storage (one
# write's own object), so one write reads the log once before it.
_SNAPSHOTS: weakref.WeakKeyDictionary[Storage, dict[str, delta_log.Snapshot]] = weakref.WeakKeyDictionary()


class DeltaWriter(Writer):
    """Append (default), overwrite, or replace one partition of a Delta table, idempotently per :class:`Batch`.

    Parameters
    ----------
    mode: ``"append"`` or ``"overwrite"``.
    replace: ``{column: value}`` of the one partition to replace (``replaceWhere``): the column is added
        with that value, the table is partitioned by it, other partitions are untouched; implies overwrite.
    partition_by: partition columns (``replace``'s columns come first).
    options: extra Delta writer options.
    metadata: JSON-ready facts stored in each commit's ``userMetadata`` (e.g. a partial result's completeness,
        so consumers reading the table's history see it).
    retries: attempts on a commit conflict with another writer.
    """

    output_type = "delta"
    idempotency = "Delta txnAppId/txnVersion"
    #: seconds a directory of Delta data files without a log is watched for the first commit of the table
    #: another writer may be creating in it, before it is refused as not a Delta table
    creation_wait_s: ClassVar[float] = 60.0

    def __init__(self, *, mode: str = "append", replace: Mapping[str, str] | None = None,
                 partition_by: Sequence[str] = (), options: Mapping[str, str] | None = None, retries: int = 5,
                 allow_empty: bool = False, metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__(allow_empty=allow_empty)
        if mode not in ("append", "overwrite"):
            raise invalid_argument("DeltaWriter mode", mode, "'append' or 'overwrite'")
        self.replace = dict(replace or {})
        self.mode = "overwrite" if self.replace else mode
        self.partition_by = tuple(dict.fromkeys([*self.replace, *partition_by]))
        self.options = dict(options or {})
        self.retries = retries
        self.metadata = dict(metadata or {})

    def commit_metadata(self) -> Mapping[str, Any]:
        """The ``metadata`` given, recorded with each commit."""
        return self.metadata

    def committed(self, storage: Storage, path: str, batch: Batch) -> WriteResult | None:
        """Delta's own skip rule (``txnVersion`` <= the app's recorded one), told from one read of the log.

        Only the last checkpoint and the commits after it are read, so the cost does not grow with the table's
        history. A batch at the app's recorded version whose commit precedes the checkpoint (or was removed by
        Delta's log cleanup) is skipped with its rows unreported, the reason saying so. A batch
        below the recorded version is refused as out of order only when the log still holds every commit from
        version 0 and none recorded it; when older commits were cleaned up it cannot be proven either way, and
        it is skipped, as Delta skips it, with a warning.
        """
        snap = _SNAPSHOTS.get(storage, {}).pop(path, None) or delta_log.snapshot(storage, path)
        if snap.version is None:
            return None
        recorded = delta_log.latest_txn(storage, path, batch.app_id, snap)
        if recorded is None or batch.version > recorded:
            return None
        found = delta_log.find_txn(storage, path, batch.app_id, batch.version, snap.commits)
        retained: list[int] = []
        if found is None and batch.version < recorded:  # an older batch: only a search of the whole log tells
            retained = delta_log.retained_commits(storage, path)
            found = delta_log.find_txn(storage, path, batch.app_id, batch.version, retained)
        if found is not None:
            return self._skipped(path, batch, found.rows, found.table_version,
                                 f"batch {batch.version} already committed (app {batch.app_id}, table version "
                                 f"{found.table_version})")
        if batch.version == recorded:
            return self._skipped(path, batch, None, None,
                                 f"batch {batch.version} already committed (app {batch.app_id}, recorded in the "
                                 f"checkpoint at table version {snap.checkpoint}; its commit is older than the "
                                 "checkpoint and not read, or already cleaned from the log, so its rows are not "
                                 "reported)")
        oldest = retained[0] if retained else None
        if oldest is None or oldest == 0:
            raise out_of_order(path, batch, recorded)
        logger.warning("%s: batch %s of app %s is below batch %s and its commit, if any, was cleaned from the log "
                       "(oldest commit kept: %s); Delta skips it, so spark_flows does", path, batch.version,
                       batch.app_id, recorded, oldest)
        return self._skipped(path, batch, None, None,
                             f"batch {batch.version} is below batch {recorded} of app {batch.app_id} and commits "
                             f"before table version {oldest} were cleaned from the log: not proven committed, "
                             "skipped as Delta skips it")

    def _skipped(self, path: str, batch: Batch, rows: int | None, version: int | None, reason: str) -> WriteResult:
        return WriteResult(path, self.output_type, 0, skipped=True, batch=batch, batch_rows=rows,
                           table_version=version, partition=self.replace, reason=reason)

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
            writer = writer.option("userMetadata", json.dumps({**self.metadata, "spark_flows_write": write_id},
                                                              default=str))
        attempts = [0]

        def attempt() -> WriteResult:
            attempts[0] += 1
            if batch is not None and attempts[0] > 1:  # a conflicting writer may have committed this batch
                done = self.committed(storage, path, batch)
                if done is not None:
                    return _concurrently(done, batch)
            writer.save(path)
            return self._after_write(storage, path, batch, write_id)

        return retry_on_conflict(attempt, path=path, attempts=self.retries, what="delta write")

    def _after_write(self, storage: Storage, path: str, batch: Batch | None, write_id: str) -> WriteResult:
        snap = delta_log.snapshot(storage, path)  # one read of the log after the commit
        version = snap.version
        if batch is None:
            rows = delta_log.commit_rows(storage, path, version) if version is not None else None
            return WriteResult(path, self.output_type, rows, batch_rows=rows, table_version=version,
                               partition=self.replace)
        found = delta_log.find_txn(storage, path, batch.app_id, batch.version, snap.commits)
        if found is None:  # Delta skipped it: a newer batch of this app id committed meanwhile
            recorded = delta_log.latest_txn(storage, path, batch.app_id, snap)
            raise out_of_order(path, batch, recorded if recorded is not None else batch.version)
        ours = found.metadata.get("spark_flows_write") == write_id  # read with the commit: no second read
        result = WriteResult(path, self.output_type, found.rows, batch=batch, batch_rows=found.rows,
                             table_version=found.table_version, partition=self.replace)
        if not ours and "userMetadata" not in self.options:
            return _concurrently(result, batch)
        return result

    def prepare(self, storage: Storage, path: str) -> None:
        """Refuse a target that is not a Delta table: a plain file, a files output, a user's directory, plain
        Parquet, or a directory with another output inside it (``OUTPUT_NESTED``).

        A directory holding only what a Delta write leaves before its first commit (data files named as Delta
        names them, partition directories) may be a table another writer is creating: it is watched for that
        first commit for up to :attr:`creation_wait_s` seconds, and refused as not a Delta table if none comes.
        """
        info = storage.fs.info(path)
        if info is None:
            return
        snap = delta_log.snapshot(storage, path)
        if snap.version is None and info.is_dir:
            listing = storage.list(path)
            check_nothing_inside(storage, path, listing)
            foreign, data = _not_delta(storage, listing)
            if not foreign and data:
                def first_commit() -> delta_log.Snapshot | None:
                    seen = delta_log.snapshot(storage, path)
                    return seen if seen.version is not None else None

                created = Wait(timeout=self.creation_wait_s, poll_interval=0.5, backoff=1.5, max_interval=5).until(
                    first_commit, f"the first commit of the Delta table being created at {path}").value
                snap, foreign = (created, []) if created is not None else (snap, [p.rpartition("/")[2] for p in data])
        else:
            foreign = [] if snap.version is not None else [path]
        if foreign:
            raise refuse(f"{path} exists and is not a Delta table (it holds {foreign[:3]}, and no Delta log); "
                          "refusing to write a table over it. Choose another output path (plain Parquet becomes a "
                          f"table with CONVERT TO DELTA parquet.`{path}`)", "OUTPUT_NOT_OWNED", path=path)
        _SNAPSHOTS.setdefault(storage, {})[path] = snap  # the skip rule that follows reads this one


# How Delta names what it writes into a table's directory before its first commit.
_DATA_FILE = re.compile(r"^part-\d{5}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-c\d{3}(\.\w+)*"
                        r"\.parquet$")
_DELTA_DIRS = (delta_log.LOG_DIR, "_change_data", "_delta_index")


def _not_delta(storage: Storage, listing: list[FileInfo], depth: int = 0) -> tuple[list[str], list[str]]:
    """(entries no Delta write leaves, Delta data files) under a directory that has no Delta log yet."""
    foreign: list[str] = []
    data: list[str] = []
    for info in listing:
        if info.is_dir and "=" in info.name:  # a partition directory
            inner = _not_delta(storage, storage.list(info.path), depth + 1)
            foreign, data = foreign + inner[0], data + inner[1]
        elif _DATA_FILE.match(info.name):
            data.append(info.path)
        elif not (info.name.startswith(".") or (depth == 0 and info.name in _DELTA_DIRS)
                  or (depth == 0 and info.name.startswith("deletion_vector_"))):
            foreign.append(info.name)
    return foreign, data


def _concurrently(skipped: WriteResult, batch: Batch) -> WriteResult:
    return WriteResult(skipped.path, skipped.output_type, 0, skipped=True, batch=batch, batch_rows=skipped.batch_rows,
                       table_version=skipped.table_version, partition=skipped.partition,
                       reason=f"batch {batch.version} committed concurrently by another writer (app {batch.app_id}, "
                              f"table version {skipped.table_version})")
