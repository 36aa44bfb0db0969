"""A blind append to a small Delta table on local disk, without Spark: one Parquet file, one commit.

For the metadata-sized tables spark_flows keeps itself (the run ledger), so that a refusal decided from files
(a held lock, depends-on-past) is recorded before any Spark session starts. The commit is the one Delta Spark
writes for an append of new rows (``commitInfo`` with ``isBlindAppend``, one ``add`` with ``numRecords`` and
``nullCount`` statistics), at the version after the newest one, made visible by a hard link that fails if
that version exists (what Delta's own log stores do with a rename that never overwrites): of two writers of
one version exactly one wins, the other retries on the next one.

Anything this writer cannot append the way Delta would is refused with :class:`CannotAppendError` and
nothing is committed, so the caller appends with Spark instead: a table not on local disk (Delta Spark's S3
log store checks and writes inside one JVM, so a commit from outside it could be overwritten), a writer
feature or constraint it does not enforce, partition columns, or rows that do not fit the table's schema.

Example
-------
>>> import tempfile, pyarrow as pa
>>> from spark_flows.io.storage import local_storage
>>> path = f"{tempfile.mkdtemp()}/ledger"
>>> spark.range(1).selectExpr("'a' AS job").write.format("delta").save(path)
>>> append(local_storage(), path, [{"job": "b"}])
1
>>> sorted(r.job for r in spark.read.format("delta").load(path).collect())
['a', 'b']
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from spark_flows.errors import CannotAppendError
from spark_flows.io import delta_log
from spark_flows.io.filesystems import is_local, local_path
from spark_flows.io.storage import Storage

#: Writer features whose rules a blind append of rows that fit the schema keeps without doing anything.
WRITABLE_FEATURES = frozenset({"appendOnly", "invariants"})
ATTEMPTS = 20


def _refuse(path: str, why: str) -> CannotAppendError:
    return CannotAppendError(f"cannot append to the Delta table at {path} without Spark: {why}",
                             parameters={"path": path, "reason": why})


def _arrow_type(path: str, name: str, kind: Any) -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "integer": pa.int32(), "long": pa.int64(), "short": pa.int16(),
             "byte": pa.int8(), "boolean": pa.bool_(), "double": pa.float64(), "float": pa.float32(),
             "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"), "timestamp_ntz": pa.timestamp("us")}
    if not isinstance(kind, str) or kind not in types:
        raise _refuse(path, f"column {name} has type {json.dumps(kind)}, which this writer does not write")
    return types[kind]


def _latest(storage: Storage, snap: delta_log.Snapshot, name: str) -> Mapping[str, Any]:
    """The newest ``protocol`` or ``metaData`` action of the snapshot (a commit's, else the checkpoint's)."""
    for version in sorted(snap.commits, reverse=True):
        if version == snap.checkpoint:
            break
        for action in delta_log._actions(storage, snap.path, version):
            if name in action:
                return dict(action[name])
    for row in delta_log._checkpoint_rows(storage, snap.checkpoint_files, name):
        return row
    raise _refuse(snap.path, f"its log has no {name} action")


def _check_writable(path: str, protocol: Mapping[str, Any], metadata: Mapping[str, Any]) -> Any:
    """The table's schema as a pyarrow schema, once its protocol and metadata allow a blind append here."""
    import pyarrow as pa

    reader, writer = int(protocol.get("minReaderVersion") or 1), int(protocol.get("minWriterVersion") or 1)
    features = set(protocol.get("writerFeatures") or ()) | set(protocol.get("readerFeatures") or ())
    if reader not in (1, 3) or writer not in (1, 2, 7) or features - WRITABLE_FEATURES:
        kept = sorted(features - WRITABLE_FEATURES) or [f"reader {reader}", f"writer {writer}"]
        raise _refuse(path, f"its protocol needs {', '.join(kept)}")
    if metadata.get("partitionColumns"):
        raise _refuse(path, f"it is partitioned by {list(metadata['partitionColumns'])}")
    schema = json.loads(metadata.get("schemaString") or "{}")
    fields = []
    for column in schema.get("fields", []):
        if "delta.invariants" in (column.get("metadata") or {}):
            raise _refuse(path, f"column {column['name']} has an invariant")
        fields.append(pa.field(column["name"], _arrow_type(path, column["name"], column["type"]),
                               nullable=bool(column.get("nullable", True))))
    return pa.schema(fields)


def _parquet(path: str, schema: Any, rows: Sequence[Mapping[str, Any]]) -> tuple[bytes, dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = sorted({k for row in rows for k in row} - set(schema.names))
    if extra:
        raise _refuse(path, f"the rows have column(s) {extra} the table does not have")
    try:
        table = pa.Table.from_pylist([dict(row) for row in rows], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _refuse(path, f"the rows do not fit its schema ({exc})") from exc
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    stats = {"numRecords": table.num_rows, "nullCount": {n: table.column(n).null_count for n in schema.names}}
    return sink.getvalue().to_pybytes(), stats


def _link(log: str, version: int, text: str) -> bool:
    """Create ``log/<version>.json`` with ``text``, complete or not at all; False if that version exists."""
    final = f"{log}/{version:020d}.json"
    temporary = f"{log}/.{version:020d}.json.{uuid.uuid4()}.tmp"  # Delta's own temporary-file naming
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, final)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)


def append(storage: Storage, path: str, rows: Sequence[Mapping[str, Any]], *, engine: str = "spark_flows") -> int:
    """Append ``rows`` (dicts by column name; absent columns are null) to the Delta table at ``path``; the
    version committed.

    Raises
    ------
    CannotAppendError: the table is not on local disk, does not exist, or cannot be appended to as Delta
        would (see the module); nothing was committed.
    """
    if not is_local(path):
        raise _refuse(path, "it is not on local disk")
    table = local_path(path).rstrip("/")
    name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    written = False
    try:
        for _ in range(ATTEMPTS):
            snap = delta_log.snapshot(storage, table)
            if snap.version is None:
                raise _refuse(path, "there is no table there yet")
            schema = _check_writable(path, _latest(storage, snap, "protocol"), _latest(storage, snap, "metaData"))
            data, stats = _parquet(path, schema, rows)
            if not written:
                with open(f"{table}/{name}", "wb") as handle:  # invisible until a commit names it
                    handle.write(data)
                written = True
            now = int(time.time() * 1000)
            actions = [
                {"commitInfo": {"timestamp": now, "operation": "WRITE",
                                "operationParameters": {"mode": "Append", "partitionBy": "[]"},
                                "readVersion": snap.version, "isolationLevel": "Serializable", "isBlindAppend": True,
                                "operationMetrics": {"numFiles": "1", "numOutputRows": str(len(rows)),
                                                     "numOutputBytes": str(len(data))},
                                "engineInfo": engine, "txnId": str(uuid.uuid4())}},
                {"add": {"path": name, "partitionValues": {}, "size": len(data), "modificationTime": now,
                         "dataChange": True, "stats": json.dumps(stats)}},
            ]
            commit = "\n".join(json.dumps(a) for a in actions) + "\n"
            if _link(f"{table}/{delta_log.LOG_DIR}", snap.version + 1, commit):
                written = False  # committed: the file is the table's now
                return snap.version + 1
        raise _refuse(path, f"{ATTEMPTS} other commits won the next version one after another")
    finally:
        if written:
            os.unlink(f"{table}/{name}")
