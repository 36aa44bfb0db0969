"""Delta Lake facts read from a table's ``_delta_log``, and commit conflicts told in spark_flows' words.

The log is small files on the table's storage: JSON commits (``00000000000000000007.json``, one action a
line) and Parquet checkpoints. Reading it directly answers what idempotent writers and markers need without
a Spark job and without the JVM:

* :func:`latest_txn`: the last ``txnVersion`` recorded for an app id (what Delta compares a write with);
* :func:`txn_commits`: every retained commit that recorded a txn (a batch written twice shows twice).
* :func:`find_txn`: the commit that recorded a given (app id, version), with its table version and rows,
  so a replay is reported as *skipped* only when the batch really committed;
* :func:`table_version` and :func:`table_rows`: the table's newest version, and its row count at a version
  (from the ``numRecords`` statistics of the live files, less the rows their deletion vectors mark).

A table whose reader protocol this reader does not know (a reader feature outside :data:`READABLE_FEATURES`,
V2 checkpoints) is refused with ``UNSUPPORTED_TABLE_FEATURE`` naming it, never answered wrongly.

:func:`retry_on_conflict` retries Delta's optimistic-concurrency conflicts, matched by Delta's own exception
classes (``delta.exceptions``) and error conditions, and raises :class:`ConcurrentWriteError` when they
persist.

Example
-------
>>> import tempfile, pathlib, json
>>> from spark_flows.io.storage import local_storage
>>> table = pathlib.Path(tempfile.mkdtemp()) / "t"
>>> (table / "_delta_log").mkdir(parents=True)
>>> actions = [{"txn": {"appId": "loader", "version": 7}},
...            {"add": {"path": "a.parquet", "stats": json.dumps({"numRecords": 5})}},
...            {"commitInfo": {"operationMetrics": {"numOutputRows": "5"}}}]
>>> _ = (table / "_delta_log" / f"{0:020d}.json").write_text("\\n".join(json.dumps(a) for a in actions))
>>> storage = local_storage()
>>> latest_txn(storage, str(table), "loader"), find_txn(storage, str(table), "loader", 7)
(7, TxnCommit(app_id='loader', txn_version=7, table_version=0, rows=5))
>>> table_version(storage, str(table)), table_rows(storage, str(table))
(0, 5)
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from spark_flows.errors import SparkFlowsError, StorageError
from spark_flows.io.storage import Storage

logger = logging.getLogger(__name__)

LOG_DIR = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.(\d+))?\.parquet$")  # single or multi-part
_V2_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(?:json|parquet)$")


@dataclass(frozen=True)
class TxnCommit:
    """The commit that recorded an idempotent write: (app id, txn version) at a table version."""

    app_id: str
    txn_version: int
    table_version: int
    rows: int | None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # its userMetadata


def _log(path: str) -> str:
    return f"{path.rstrip('/')}/{LOG_DIR}"


@dataclass(frozen=True)
class Snapshot:
    """One read of a table's log: its newest version, its newest complete checkpoint and the commits since.

    Reading it costs one small GET (``_last_checkpoint``) and one listing that starts at that checkpoint, so
    it does not grow with the table's history; :func:`snapshot` makes it, and the facts below take it so that
    one write asks the log once before and once after.
    """

    path: str
    version: int | None  # None: no table at path
    checkpoint: int | None = None
    checkpoint_files: tuple[str, ...] = ()
    commits: tuple[int, ...] = ()  # retained commits from the checkpoint's version on (all of them without one)


def _last_checkpoint(storage: Storage, log: str) -> int | None:
    try:
        return int(json.loads(storage.read_text(f"{log}/_last_checkpoint"))["version"])
    except (OSError, ValueError, KeyError, TypeError):  # absent (young table), or not what Delta writes
        return None


def _scan(storage: Storage, path: str, after: str, at_most: int | None = None) -> Snapshot:
    log = _log(path)
    commits: list[int] = []
    parts: dict[int, list[str]] = {}
    expected: dict[int, int] = {}
    for info in storage.list(log, after=after):
        if (m := _COMMIT.match(info.name)) is not None:
            commits.append(int(m.group(1)))
        elif (m := _CHECKPOINT.match(info.name)) is not None:
            version = int(m.group(1))
            parts.setdefault(version, []).append(info.path)
            expected[version] = int(m.group(2) or 1)
        elif _V2_CHECKPOINT.match(info.name):
            raise unsupported_table(path, "V2 checkpoints (checkpointPolicy=v2)")
    complete = [v for v in parts if len(parts[v]) == expected[v]  # a multi-part checkpoint being written is not
                and (at_most is None or v <= at_most)]
    checkpoint = max(complete) if complete else None
    commits.sort()
    kept = tuple(v for v in commits if (checkpoint is None or v >= checkpoint) and (at_most is None or v <= at_most))
    newest = max([*kept, *([checkpoint] if checkpoint is not None else [])], default=None)
    return Snapshot(path, newest, checkpoint, tuple(sorted(parts[checkpoint])) if checkpoint is not None else (),
                    kept)


def snapshot(storage: Storage, path: str) -> Snapshot:
    """The table's log as of now, read from its last checkpoint on (see :class:`Snapshot`)."""
    log = _log(path)
    start = _last_checkpoint(storage, log)
    if start is not None:
        found = _scan(storage, path, f"{start:020d}")
        if found.checkpoint is not None:
            return found
    return _scan(storage, path, "")  # no checkpoint yet, or _last_checkpoint names one that is gone


def unsupported_table(path: str, feature: str) -> SparkFlowsError:
    """The table uses a log feature spark_flows' reader does not read: an error, never a wrong answer."""
    return SparkFlowsError(f"the Delta table at {path} uses {feature}, which spark_flows' log reader does not read, so "
                           "spark_flows cannot tell what it holds; keep its batches in a table without it",
                           condition="UNSUPPORTED_TABLE_FEATURE", parameters={"path": path, "feature": feature})


def is_delta_table(storage: Storage, path: str) -> bool:
    """True when ``path`` holds a Delta table (its log has at least one commit)."""
    return snapshot(storage, path).version is not None


# Reader features whose tables this reader answers rightly: txn facts, versions and row counts do not depend
# on them (deletion vectors are subtracted from counts; read_rows refuses them). Any other one is refused.
READABLE_FEATURES = frozenset({"columnMapping", "deletionVectors", "timestampNtz", "typeWidening",
                               "typeWidening-preview", "vacuumProtocolCheck", "variantType", "variantType-preview"})


def _check_protocol(path: str, protocol: Mapping[str, Any]) -> None:
    """Refuse a table whose reader protocol this reader does not know (never a wrong answer)."""
    version = int(protocol.get("minReaderVersion") or 1)
    unknown = sorted(set(protocol.get("readerFeatures") or ()) - READABLE_FEATURES)
    if version > 3:
        raise unsupported_table(path, f"reader version {version}")
    if unknown:
        raise unsupported_table(path, f"the reader feature(s) {', '.join(unknown)}")


def _actions(storage: Storage, path: str, version: int) -> list[dict[str, Any]]:
    file = f"{_log(path)}/{version:020d}.json"
    text = storage.read_text(file)
    try:
        actions = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise StorageError(f"the Delta table at {path} has a damaged commit {file}: it is not JSON lines ({exc}); "
                           "restore the file from a backup, or restore the table to the version before it",
                           condition="DELTA_LOG_CORRUPT", parameters={"path": path, "file": file}) from exc
    if not actions:
        raise StorageError(f"the Delta table at {path} has an empty commit {file}: Delta never writes one; restore "
                           "the file from a backup, or restore the table to the version before it",
                           condition="DELTA_LOG_CORRUPT", parameters={"path": path, "file": file})
    for action in actions:
        if "protocol" in action:
            _check_protocol(path, action["protocol"])
    return actions


def _checkpoint_rows(storage: Storage, files: Sequence[str], column: str) -> Iterator[dict[str, Any]]:
    """The non-null ``column`` structs of a checkpoint's parts; the parts' protocol is checked in the same read."""
    import pyarrow.parquet as pq

    for file in files:
        table = pq.read_table(io.BytesIO(storage.read_bytes(file)), columns=sorted({column, "protocol"}))
        for protocol in table.column("protocol").to_pylist():
            if protocol is not None:
                _check_protocol(file.rsplit(f"/{LOG_DIR}/", 1)[0], protocol)
        for row in table.column(column).to_pylist():
            if row is not None:
                yield row


def table_version(storage: Storage, path: str) -> int | None:
    """The newest committed version of the Delta table at ``path``; ``None`` if there is no table."""
    return snapshot(storage, path).version


def latest_txn(storage: Storage, path: str, app_id: str, snap: Snapshot | None = None) -> int | None:
    """The last ``txnVersion`` the table at ``path`` recorded for ``app_id``; ``None`` if never.

    Read from the commits since the last checkpoint, then the checkpoint (which keeps every app's last txn
    after the commits that recorded them are cleaned up), as Delta itself does.
    """
    snap = snap or snapshot(storage, path)
    for version in reversed(snap.commits):
        for action in _actions(storage, path, version):
            txn = action.get("txn")
            if txn and txn.get("appId") == app_id:
                return int(txn["version"])
    for txn in _checkpoint_rows(storage, snap.checkpoint_files, "txn"):
        if txn.get("appId") == app_id:
            return int(txn["version"])
    return None


def app_ids(storage: Storage, path: str) -> dict[str, int]:
    """Every app id the table at ``path`` recorded a ``txn`` for, with its last ``txnVersion`` (from the
    checkpoint and the commits after it: one bounded read, as :func:`latest_txn`)."""
    snap = snapshot(storage, path)
    found = {str(t["appId"]): int(t["version"]) for t in _checkpoint_rows(storage, snap.checkpoint_files, "txn")}
    for version in snap.commits:
        for action in _actions(storage, path, version):
            if action.get("txn"):
                found[str(action["txn"]["appId"])] = int(action["txn"]["version"])
    return found


def _output_rows(actions: list[dict[str, Any]]) -> int | None:
    for action in actions:
        metrics = (action.get("commitInfo") or {}).get("operationMetrics") or {}
        if "numOutputRows" in metrics:
            return int(metrics["numOutputRows"])
    return None


def commit_rows(storage: Storage, path: str, version: int) -> int | None:
    """Rows written by the commit ``version`` (its ``numOutputRows`` metric), ``None`` if not reported."""
    return _output_rows(_actions(storage, path, version))


def commit_metadata(storage: Storage, path: str, version: int) -> dict[str, Any]:
    """The commit's ``userMetadata`` parsed as a JSON object (``{}`` when absent or not JSON)."""
    return _user_metadata(_actions(storage, path, version))


def _user_metadata(actions: list[dict[str, Any]]) -> dict[str, Any]:
    for action in actions:
        text = (action.get("commitInfo") or {}).get("userMetadata")
        if text:
            try:
                value = json.loads(text)
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def retained_commits(storage: Storage, path: str) -> list[int]:
    """Every retained commit's version, oldest first (a full listing of the log: for history, not for the
    write path)."""
    return sorted(int(m.group(1)) for i in storage.list(_log(path)) if (m := _COMMIT.match(i.name)))


def oldest_commit(storage: Storage, path: str) -> int | None:
    """The oldest commit still in the log: 0 until Delta's log cleanup removed older ones."""
    return next(iter(retained_commits(storage, path)), None)


def txn_commits(storage: Storage, path: str, app_id: str | None = None) -> list[TxnCommit]:
    """Every retained commit that recorded a ``txn`` (of ``app_id``, or of any app), oldest first: a batch
    written twice shows up twice.

    Only commits still in the log (``delta.logRetentionDuration``, 30 days by default) are listed.
    """
    found = []
    for version in retained_commits(storage, path):
        actions = _actions(storage, path, version)
        for action in actions:
            txn = action.get("txn")
            if txn and (app_id is None or txn.get("appId") == app_id):
                found.append(TxnCommit(str(txn["appId"]), int(txn["version"]), version, _output_rows(actions),
                                       _user_metadata(actions)))
    return found


def find_txn(storage: Storage, path: str, app_id: str, txn_version: int,
             among: Sequence[int] | None = None) -> TxnCommit | None:
    """The commit that recorded ``(app_id, txn_version)``, newest first; ``None`` if none did.

    Searches the commits ``among`` names (a :class:`Snapshot`'s commits since its checkpoint: what a write's
    skip rule reads, at a cost that does not grow with the table's history), by default every commit still
    in the log (``delta.logRetentionDuration``, 30 days by default: older ones are gone, with their details).
    """
    for version in reversed(among if among is not None else retained_commits(storage, path)):
        actions = _actions(storage, path, version)
        for action in actions:
            txn = action.get("txn")
            if txn and txn.get("appId") == app_id and int(txn["version"]) == txn_version:
                return TxnCommit(app_id, txn_version, version, _output_rows(actions), _user_metadata(actions))
    return None


def table_rows(storage: Storage, path: str, version: int | None = None, *,
               partition: Mapping[str, str] | None = None) -> int | None:
    """Rows of the table at ``version`` (default: newest), from its live files' ``numRecords`` statistics.

    With ``partition`` (``{"date": "20240101"}``) only the files of that partition count.

    ``None`` when a live file has no statistics (``delta.dataSkippingNumIndexedCols`` < 0, or old writers).
    """
    wanted = {k: str(v) for k, v in (partition or {}).items()}
    live = _live_adds(storage, path, version, lambda add: all(
        dict(add.get("partitionValues") or {}).get(k) == v for k, v in wanted.items()))
    if live is None:
        return None
    counts = [_records(add.get("stats")) for add in live.values()]
    if any(c is None for c in counts):
        return None
    deleted = sum(int((add.get("deletionVector") or {}).get("cardinality") or 0) for add in live.values())
    return sum(c for c in counts if c is not None) - deleted  # rows a deletion vector marks are not in the table


def _live_adds(storage: Storage, path: str, version: int | None,
               selected: Callable[[Mapping[str, Any]], bool]) -> dict[str, Mapping[str, Any]] | None:
    """The ``add`` actions of the files live at ``version`` (default: newest) that ``selected`` keeps."""
    snap = snapshot(storage, path)
    if snap.version is None:
        return None
    if version is not None and (snap.checkpoint is None or version < snap.checkpoint):
        snap = _scan(storage, path, "", at_most=version)  # an older version: its own checkpoint, from a full listing
    live: dict[tuple[str, str], Mapping[str, Any]] = {}
    for add in _checkpoint_rows(storage, snap.checkpoint_files, "add"):
        if selected(add):
            live[_file_id(add)] = add
    for commit in snap.commits:
        if commit == snap.checkpoint or (version is not None and commit > version):  # in the checkpoint; too new
            continue
        for action in _actions(storage, path, commit):
            if "add" in action:
                if selected(action["add"]):
                    live[_file_id(action["add"])] = action["add"]
            elif "remove" in action:
                live.pop(_file_id(action["remove"]), None)
    return {add["path"]: add for add in live.values()}


def _file_id(action: Mapping[str, Any]) -> tuple[str, str]:
    """A logical file as Delta names it: its path and its deletion vector's id (a DELETE that marks rows adds
    the same path with a new vector and removes it without one)."""
    dv = action.get("deletionVector") or {}
    offset = dv.get("offset")
    return action["path"], f"{dv.get('storageType', '')}{dv.get('pathOrInlineDv', '')}" + (
        f"@{offset}" if offset is not None else "")


def read_rows(storage: Storage, path: str) -> list[dict[str, Any]]:
    """Every row of the small, unpartitioned Delta table at ``path``, read without Spark (its live Parquet
    files through pyarrow); ``[]`` when there is no table. For metadata-sized tables (a run ledger), not data.
    """
    import pyarrow.parquet as pq

    live = _live_adds(storage, path, None, lambda add: True) or {}
    if any(add.get("deletionVector") for add in live.values()):
        raise unsupported_table(path, "deletion vectors (its rows are read from Parquet directly)")
    rows: list[dict[str, Any]] = []
    for file in live:
        location = f"{path.rstrip('/')}/{unquote(file)}" if "://" not in file else file
        rows.extend(pq.read_table(io.BytesIO(storage.read_bytes(location))).to_pylist())
    return rows


def _records(stats: str | None) -> int | None:
    if not stats:
        return None
    value = json.loads(stats).get("numRecords")
    return None if value is None else int(value)
