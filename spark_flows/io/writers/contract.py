"""The write contract every spark_flows writer keeps (see :mod:`spark_flows.io.writers`).

:class:`Batch` (app id + int version), :class:`WriteResult`, the :class:`Writer` base that applies the one
skip rule, refuses empty batches and nested outputs, and the helpers the writers share.

Example
-------
>>> Batch("devices_loader", 7).tag
'devices_loader-7'
>>> refuse("no", "EMPTY_BATCH", path="/t").getMessageParameters()
{'path': '/t'}
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pyspark.sql import DataFrame, SparkSession

from spark_flows.core.observe import publish
from spark_flows.errors import SparkFlowsTypeError, WriteRefusedError, checked_name, error_summary, invalid_argument
from spark_flows.io import delta_log
from spark_flows.io.filesystems import FileInfo, local_path
from spark_flows.io.storage import Storage

logger = logging.getLogger(__name__)

PUBLISHED_MARKER = "_PUBLISHED.json"
STAGING_DIR = "_staging"



@dataclass(frozen=True)
class Batch:
    """Identity of one write for idempotency: an application id and a monotonically growing version."""

    app_id: str
    version: int

    def __post_init__(self) -> None:
        checked_name("batch app_id", self.app_id)
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise invalid_argument("batch version", self.version, "a non-negative int")

    @property
    def tag(self) -> str:
        """``<app_id>-<version>``, used in staging names."""
        return f"{self.app_id}-{self.version}"

    @property
    def label(self) -> str:
        """``<app_id>@<version>``, as a flow draws it."""
        return f"{self.app_id}@{self.version}"


@dataclass(frozen=True)
class PendingBatch:
    """A batch known only by what will name it, for drawing a flow before its version is known (``--graph``
    without ``--batch-id``, a stream's micro-batches): nothing can be written with it."""

    app_id: str
    version: str

    @property
    def label(self) -> str:
        """``<app_id>@<version>``, as a flow draws it."""
        return f"{self.app_id}@{self.version}"


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
    output_rows: rows of the whole files output as published after this call (an append's earlier batches
        too), from its manifest; ``None`` for Delta (its table version says it).
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
    output_rows: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``'1000 rows'`` or the skip reason."""
        return self.reason if self.skipped else f"{self.rows if self.rows is not None else '?'} rows"


def refuse(message: str, condition: str, **parameters: Any) -> WriteRefusedError:
    return WriteRefusedError(message, condition=condition, parameters=parameters)


def out_of_order(path: str, batch: Batch, recorded: int) -> WriteRefusedError:
    return refuse(
        f"batch {batch.version} of app {batch.app_id} is older than batch {recorded} already committed to {path} "
        f"and no commit in the table's log recorded it; a write with a version <= {recorded} is skipped for ever. "
        f"Write it as a version above {recorded}, or under another app id",
        "BATCH_OUT_OF_ORDER", path=path, app_id=batch.app_id, version=batch.version, recorded=recorded)


def _ancestors(qualified: str) -> list[str]:
    scheme, sep, rest = qualified.partition(":")
    if not sep:
        scheme, rest = "", qualified
    parts = rest.rstrip("/").split("/")
    prefix = f"{scheme}:" if sep else ""
    return [prefix + "/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if "/".join(parts[:i]).strip("/")]


def check_not_a_link(storage: Storage, path: str) -> None:
    """Raise ``OUTPUT_IS_LINK`` if ``path`` (on a local disk) is a symbolic link: a publish would replace the
    link with a directory and leave the output it points to as it was (a dangling link: an output that is
    not there)."""
    qualified = storage.qualify(path)
    if not qualified.startswith("file:") or not os.path.islink(local := local_path(qualified)):
        return
    target = os.path.realpath(local)
    state = "" if os.path.exists(target) else ", which does not exist"
    raise refuse(f"cannot write {path}: it is a symbolic link to {target}{state}; write to the link's target "
                  "itself, or remove the link", "OUTPUT_IS_LINK", path=path, target=target)


def check_not_nested(storage: Storage, path: str) -> None:
    """Raise ``OUTPUT_NESTED`` if an ancestor of ``path`` is a Delta table or a published files output (the
    writers' ``prepare`` looks under a target that is not an output yet: :func:`check_nothing_inside`).

    ``VACUUM`` of the outer table would delete the inner output's files, and readers of the outer one would
    list them.
    """
    for ancestor in _ancestors(storage.qualify(path)):
        for inner, what in ((delta_log.LOG_DIR, "a Delta table"), (PUBLISHED_MARKER, "a published output")):
            if storage.exists(f"{ancestor}/{inner}"):
                raise refuse(f"cannot write {path}: it is inside {ancestor}, which is {what}; choose an output "
                              "path outside any other table", "OUTPUT_NESTED", path=path, outer=ancestor)


def check_nothing_inside(storage: Storage, path: str, listing: list[FileInfo] | None = None) -> None:
    """Raise ``OUTPUT_NESTED`` if a Delta table or a published files output lies anywhere under ``path``.

    Called when ``path`` is not itself an output (one that is refused every output under it when they were
    written), so its cost is one listing per directory of a target about to be refused or taken over.
    """
    kinds = {delta_log.LOG_DIR: "a Delta table", PUBLISHED_MARKER: "a published output"}
    for info in storage.list(path) if listing is None else listing:
        if not info.is_dir:
            continue
        children = storage.list(info.path)
        what = next((kinds[c.name] for c in children if c.name in kinds), None)
        if what is not None:
            raise refuse(f"cannot write {path}: {info.path} inside it is {what}, whose files the new output "
                          "would list and its clean-up delete; choose an output path that holds no other table",
                          "OUTPUT_NESTED", path=path, inner=info.path)
        check_nothing_inside(storage, info.path, children)


#: what :meth:`Writer.write` publishes (:mod:`spark_flows.core.observe`): ``(WriteResult, commit metadata)`` for an
#: output written or skipped, ``(path, output type, batch, reason)`` for a write refused before writing
WRITTEN, REFUSED = "output", "refused"


class Writer(ABC):
    """Base of every output writer: ``write(df, path, batch=...) -> WriteResult`` under one contract.

    Parameters
    ----------
    allow_empty: write a batch with no rows (by default refused with ``EMPTY_BATCH``).
    """

    output_type: ClassVar[str] = ""
    #: what makes a replayed batch write nothing, as drawn on a flow's edges
    idempotency: ClassVar[str] = "batch"

    def __init__(self, *, allow_empty: bool = False) -> None:
        self.allow_empty = allow_empty

    def write(self, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
        """Write ``df`` to ``path``; with ``batch``, a replay of an already committed batch writes nothing.

        Triggers the write's Spark job(s), plus one small job to check that a batch is not empty; none
        when the batch is skipped.

        Raises
        ------
        WriteRefusedError: ``EMPTY_BATCH``, ``BATCH_OUT_OF_ORDER``, ``OUTPUT_NESTED``, ``OUTPUT_NOT_OWNED`` or
            ``OUTPUT_IS_LINK``; nothing was written.
        ConcurrentWriteError: other writers kept conflicting with this one (Delta).
        """
        if batch is not None and not isinstance(batch, Batch):
            raise SparkFlowsTypeError(f"batch must be a Batch, got {type(batch).__name__}",
                                      parameters={"argument": "batch", "type": type(batch).__name__})
        try:
            result = self._checked_write(df, path, batch)
        except WriteRefusedError as refused:
            publish(REFUSED, (path, self.output_type, batch, error_summary(refused)))
            raise
        publish(WRITTEN, (result, self.commit_metadata()))
        return result

    def _checked_write(self, df: DataFrame, path: str, batch: Batch | None) -> WriteResult:
        storage = Storage(df.sparkSession)
        check_not_a_link(storage, path)
        check_not_nested(storage, path)
        self.prepare(storage, path)
        if batch is not None:
            committed = self.committed(storage, path, batch)
            if committed is not None:
                logger.info("%s %s: skipped: %s", self.output_type, path, committed.reason)
                return committed
            if not self.allow_empty and df.isEmpty():
                raise refuse(f"batch {batch.version} of app {batch.app_id} for {path} has no rows; writing it would "
                              "use up the version and skip the real data later. Check the input, or allow empty "
                              "batches (allow_empty=True)", "EMPTY_BATCH", path=path, app_id=batch.app_id,
                              version=batch.version)
        return self._write(storage, df, path, batch)

    def commit_metadata(self) -> Mapping[str, Any]:
        """What the writer records with each commit (a fan-in's completeness, say); none by default."""
        return {}

    def already_committed(self, spark: SparkSession | None, path: str, batch: Batch) -> WriteResult | None:
        """The skipped :class:`WriteResult` if ``path`` already holds ``batch``, else ``None``; reads metadata only
        (no Spark job), so a replay can be recognised before its input is read; ``spark`` ``None``: local files
        and object stores, no session."""
        storage = Storage(spark)
        self.prepare(storage, path)
        committed = self.committed(storage, path, batch)
        if committed is not None:
            publish(WRITTEN, (committed, self.commit_metadata()))
        return committed

    def prepare(self, storage: Storage, path: str) -> None:  # noqa: B027 (optional hook)
        """Checks and recovery before anything else (e.g. roll back a crashed publish); none by default."""

    @abstractmethod
    def committed(self, storage: Storage, path: str, batch: Batch) -> WriteResult | None:
        """The skip rule: a skipped :class:`WriteResult` if ``batch`` is committed, ``None`` if it is to be
        written; raises ``BATCH_OUT_OF_ORDER`` for an older batch no retained commit recorded while the whole log
        is there. Reads metadata only."""

    @abstractmethod
    def _write(self, storage: Storage, df: DataFrame, path: str, batch: Batch | None) -> WriteResult:
        """Write ``df`` (the checks are done)."""

    def session_conf(self) -> Mapping[str, str]:
        """Session configuration this writer needs (the factory applies it); none by default."""
        return {}


class BatchHandler(Protocol):
    """What runs on each micro-batch: ``handler(df, batch)``; its return value is logged, not used."""

    def __call__(self, df: DataFrame, batch: Batch) -> object: ...
