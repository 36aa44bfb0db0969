"""File writers (CSV, Parquet, JSON): staged, then published once per batch by one commit point.

Where the filesystem renames atomically (local disk, HDFS) the commit point is the rename of the staged
directory into place. On an object store (S3: no rename, only copies) it is the output's manifest,
``_PUBLISHED.json``, written last with a conditional write (create-if-absent, or compare-and-swap on the
previous manifest's ETag) and naming the files that make up the output. :func:`read_published` reads only
those files, on every filesystem. A plain ``spark.read.csv(path)`` on S3 lists the directory instead: during
a publish it may see the new files beside the old ones (they are copied in before the manifest is written and
the old ones removed after), and after a crash between the two, both until the next write cleans up.

Part of :mod:`spark_flows.io.writers`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StructType

from spark_flows.core.backend import spark_failed
from spark_flows.errors import ConcurrentWriteError, InputNotFoundError, StorageError, invalid_argument
from spark_flows.io.storage import Storage
from spark_flows.io.writers.attempts import attempt_id, attempt_name, is_live, running
from spark_flows.io.writers.contract import (
    PUBLISHED_MARKER,
    STAGING_DIR,
    Batch,
    Writer,
    WriteResult,
    check_nothing_inside,
    out_of_order,
    refuse,
)

logger = logging.getLogger(__name__)

_RETIRED = "retired-"


def _observed(df: DataFrame) -> tuple[DataFrame, Observation]:
    observation = Observation()
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


class FilesWriter(Writer):
    """CSV, Parquet or JSON files written to staging and published with one atomic rename.

    Parameters
    ----------
    file_format: ``"csv"``, ``"parquet"`` or ``"json"``.
    mode: ``"overwrite"`` (default) publishes the batch as the whole output, atomically. ``"append"`` adds
        the batch's files to the output (named after the batch, recorded in ``_PUBLISHED.json`` last; a
        reader may see a batch's files arrive one by one, a retry never duplicates them: files of a batch
        that was never recorded are removed first).
    replace: ``{column: value}`` of the one partition to replace: the batch is published, atomically, as
        ``<path>/column=value`` (the column dropped from the files, as Spark's partition discovery reads it
        back), other partitions untouched; implies overwrite of that partition only.
    replace_foreign: replace a target that spark_flows did not publish (no ``_PUBLISHED.json``).
    """

    output_type = "files"
    idempotency = "staged publish, _PUBLISHED.json batch"
    FORMATS: ClassVar[tuple[str, ...]] = ("csv", "parquet", "json")

    def __init__(self, file_format: str, *, mode: str = "overwrite", replace: Mapping[str, str] | None = None,
                 options: Mapping[str, str] | None = None, partition_by: Sequence[str] = (),
                 replace_foreign: bool = False, allow_empty: bool = False) -> None:
        super().__init__(allow_empty=allow_empty)
        if file_format not in self.FORMATS:
            raise invalid_argument("file_format", file_format, f"one of {list(self.FORMATS)}")
        if mode not in ("overwrite", "append"):
            raise invalid_argument(f"{type(self).__name__} mode", mode, "'overwrite' or 'append'")
        if replace and mode == "append":
            raise invalid_argument(f"{type(self).__name__} replace", dict(replace), "used with mode='overwrite'")
        self.file_format = file_format
        self.mode = mode
        self.replace = dict(replace or {})
        self.options = dict(options or {})
        self.partition_by = tuple(partition_by)
        self.replace_foreign = replace_foreign

    def _target(self, path: str) -> str:
        """What one write publishes: ``path``, or with ``replace`` its ``column=value`` partition directory."""
        return "/".join([path.rstrip("/"), *(f"{c}={v}" for c, v in self.replace.items())])

    def write(self, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
        if not self.replace:
            return super().write(df, path, batch=batch)
        result = super().write(df.drop(*self.replace), self._target(path), batch=batch)
        return dataclasses.replace(result, partition=self.replace)

    def already_committed(self, spark: SparkSession | None, path: str, batch: Batch) -> WriteResult | None:
        return super().already_committed(spark, self._target(path), batch)

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
        manifest = self.published(storage, path) if info is not None and info.is_dir else None
        if info is not None and info.is_dir and manifest is None:
            check_nothing_inside(storage, path)  # replacing a directory must not delete another output
        if info is not None and not self.replace_foreign and manifest is None:
            raise refuse(f"{path} exists and was not published by spark_flows (no {PUBLISHED_MARKER}); refusing to "
                          "replace it. Choose another output path, or pass replace_foreign=True",
                          "OUTPUT_NOT_OWNED", path=path)
        attempts = storage.list(staging)
        live = {attempt_id(a.name) for a in attempts  # other writers' attempts in progress
                if not a.name.startswith(_RETIRED) and is_live(a)}
        if self.mode == "append" and info is not None:
            recorded = set((manifest or {}).get("appends") or [])
            _reveal(storage, path, recorded)  # a recorded batch a crash left hidden: rolled forward
            for _, debris in _files(storage, path, hidden=True):
                if _append_id(debris) not in recorded | live | {None}:
                    storage.delete(debris)  # a crashed append's files: its batch was never recorded
        elif info is not None and not storage.guarantees(path).atomic_rename:
            named = (manifest or {}).get("files")
            if named is not None:  # files the manifest does not name: a crashed publish's, or the retired ones
                for folder, debris in _files(storage, path):
                    if "/".join([*folder, debris.rpartition("/")[2]]) not in set(named):
                        storage.delete(debris)
        for attempt in attempts:  # a crashed attempt's debris, or an output retired by a publish that completed
            if attempt.name.startswith(_RETIRED) or attempt_id(attempt.name) not in live:
                storage.delete(attempt.path)  # never visible, safe to drop
        storage.delete_if_empty(staging)
        storage.delete_if_empty(staging.rpartition("/")[0])

    def committed(self, storage: Storage, path: str, batch: Batch) -> WriteResult | None:
        published = self.published(storage, path) or {}
        history = {int(v): rows for v, rows in (published.get("batches") or {}).get(batch.app_id, {}).items()}
        if not history or batch.version > max(history):
            return None
        recorded = max(history)
        if batch.version not in history:
            raise out_of_order(path, batch, recorded)
        when = ("already published" if batch.version == recorded or self.mode == "append"
                else f"published before batch {recorded} replaced it")
        return WriteResult(path, self.file_format, 0, skipped=True, batch=batch, batch_rows=history[batch.version],
                           output_rows=published.get("rows"),
                           reason=f"batch {batch.version} {when} (app {batch.app_id})")

    def _write(self, storage: Storage, df: DataFrame, path: str, batch: Batch | None) -> WriteResult:
        attempt = uuid.uuid4().hex[:12]
        with running(attempt):
            return self._attempt(storage, df, path, batch, attempt)

    def _attempt(self, storage: Storage, df: DataFrame, path: str, batch: Batch | None, attempt: str) -> WriteResult:
        manifest = f"{path.rstrip('/')}/{PUBLISHED_MARKER}"
        guarantees = storage.guarantees(path)
        atomic = guarantees.atomic_rename
        # an append records its batch in the manifest others may record theirs in at the same time: where the
        # filesystem can, by compare-and-swap on the state read here (as every write on an object store)
        conditional = not atomic or (self.mode == "append" and guarantees.compare_and_swap)
        tagged = storage.read_tagged(manifest) if conditional else None  # the compare-and-swap's expected state
        previous = (json.loads(tagged[0]) if tagged else None) if conditional else self.published(storage, path)
        previous = previous or {}
        staged = f"{self.staging_root(path)}/{attempt_name(batch.tag if batch else 'run', attempt)}"
        observed, observation = _observed(df)
        writer = observed.write.format(self.file_format).mode("error").options(**self.options)
        if self.partition_by:
            writer = writer.partitionBy(*self.partition_by)
        try:
            writer.save(staged)
        except Exception as exc:
            with contextlib.suppress(Exception):  # the attempt's debris; never visible, and the next one drops it
                storage.delete(staged)
            raise spark_failed(f"{self.file_format} write to {path}", exc) from exc
        rows = int(observation.get["rows"])  # the save above was the observed action
        batches: dict[str, dict[str, int]] = dict(previous.get("batches") or {})
        if batch is not None:
            batches[batch.app_id] = {**batches.get(batch.app_id, {}), str(batch.version): rows}
        record: dict[str, Any] = {
            "app_id": batch.app_id if batch else None, "version": batch.version if batch else None,
            "rows": rows, "format": self.file_format, "schema": df.schema.json(), "batches": batches,
            "options": self.options,
            "published_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
        if self.mode == "append":
            append_id = attempt  # a writer's prepare keeps the files of an append whose attempt is alive
            # with atomic renames the files move in hidden, so plain readers of the directory never see a batch
            # that is not recorded; they are revealed once the manifest records it (a crash in between is rolled
            # forward by the next write or read_published)
            added = self._move_in(storage, staged, path, f"{_APPENDED}{append_id}-", hidden=atomic)
            record.update(rows=(previous.get("rows") or 0) + rows, appends=[*previous.get("appends", []), append_id])
            if "files" in previous or not previous:  # an output published before manifests named files: not here
                record["files"] = [*previous.get("files", []), *added]
            self._record(storage, manifest, record, tagged, not conditional)  # the batch is recorded last
            if atomic:
                _reveal(storage, path, {append_id})
        elif atomic:
            record["files"] = ["/".join([*folder, file.rpartition("/")[2]]) for folder, file in _files(storage, staged)]
            storage.write_json(f"{staged}/{PUBLISHED_MARKER}", record)
            self._publish(storage, staged, path)
        else:  # an object store: copy the files in beside the old ones, then the manifest says which are the output
            record["files"] = self._move_in(storage, staged, path, f"{attempt}-")
            self._record(storage, manifest, record, tagged, atomic)
            for folder, old in _files(storage, path):
                if "/".join([*folder, old.rpartition("/")[2]]) not in set(record["files"]):
                    storage.delete(old)  # the previous output's files: only now, after the commit point
        storage.delete(staged)  # this attempt's own staging; another writer's is its own
        storage.delete_if_empty(self.staging_root(path))
        storage.delete_if_empty(self.staging_root(path).rpartition("/")[0])
        return WriteResult(path, self.file_format, rows, batch=batch, batch_rows=rows, output_rows=record["rows"],
                           details={"staged": staged})

    @staticmethod
    def _move_in(storage: Storage, staged: str, path: str, prefix: str, *, hidden: bool = False) -> list[str]:
        """Move the staged data files into ``path`` (names prefixed, and hidden with a leading ``.``: readers skip
        them); their paths relative to ``path`` as they are once revealed."""
        moved = []
        for folder, file in _files(storage, staged):
            name = f"{prefix}{file.rpartition('/')[2]}"
            target_dir = "/".join([path.rstrip("/"), *folder])
            storage.mkdirs(target_dir)
            if not storage.rename(file, f"{target_dir}/{'.' if hidden else ''}{name}"):
                raise StorageError(f"could not move {file} into {path}; the batch is not recorded and its files "
                                   "are removed by the next write", parameters={"path": path, "file": file})
            moved.append("/".join([*folder, name]))
        return moved

    @staticmethod
    def _record(storage: Storage, manifest: str, record: dict[str, Any], tagged: tuple[str, str] | None,
                plain: bool) -> None:
        """Write the manifest: the commit point; unless ``plain``, conditionally on the state read before."""
        text = json.dumps(record, indent=2, sort_keys=True, default=str)
        if plain:
            storage.write_text(manifest, text)
            return
        done = (storage.write_if_match(manifest, text, tagged[1]) is not None if tagged
                else storage.create_exclusive(manifest, text))
        if not done:
            raise ConcurrentWriteError(
                f"{manifest} was published by another writer while this one wrote; this batch is not recorded (its "
                "files are removed by the next write). Run one writer per output at a time",
                condition="CONCURRENT_PUBLISH", parameters={"path": manifest})

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


_APPENDED = "appended-"


def _files(storage: Storage, path: str, folder: tuple[str, ...] = (), *,
           hidden: bool = False) -> list[tuple[tuple[str, ...], str]]:
    """Data files under ``path`` with the partition directories leading to them (hidden entries left out;
    with ``hidden``, also the appended files still hidden)."""
    found: list[tuple[tuple[str, ...], str]] = []
    for info in storage.list(path):
        if info.name.startswith(("_", ".")) and not (hidden and info.name.startswith(f".{_APPENDED}")):
            continue
        found.extend(_files(storage, info.path, (*folder, info.name), hidden=hidden) if info.is_dir
                     else [(folder, info.path)])
    return found


def _reveal(storage: Storage, path: str, appends: set[str]) -> None:
    """Un-hide the appended files of the recorded ``appends`` (renames: only where renames are atomic)."""
    for _, file in _files(storage, path, hidden=True):
        folder, _, name = file.rpartition("/")
        if name.startswith(".") and _append_id(name) in appends:
            storage.rename(file, f"{folder}/{name[1:]}")


def read_published(spark: SparkSession, path: str, *, schema: StructType | str | None = None) -> DataFrame:
    """Read the files output published at ``path``: exactly the files its ``_PUBLISHED.json`` names, with
    the format, options and schema it was written with; the safe reader on object stores, where a plain
    ``spark.read`` of the directory may see a publish in progress (see the module docstring).

    Example
    -------
    >>> import tempfile
    >>> out = tempfile.mkdtemp() + "/report"
    >>> _ = CsvWriter().write(spark.createDataFrame([(1, "a")], "id INT, name STRING"), out)
    >>> read_published(spark, out).collect()
    [Row(id=1, name='a')]

    Raises
    ------
    InputNotFoundError: nothing is published at ``path`` (``NOT_PUBLISHED``).
    """
    record = FilesWriter.published(Storage(spark), path)
    if record is None:
        raise InputNotFoundError(f"nothing is published at {path} (no {PUBLISHED_MARKER}): is its producer done?",
                                 condition="NOT_PUBLISHED", parameters={"path": path})
    schema = schema or StructType.fromJson(json.loads(record["schema"]))
    reader = spark.read.format(record["format"]).options(**record.get("options", {})).schema(schema)
    base = path.rstrip("/")
    if "files" not in record:  # published before manifests named their files: the directory is the output
        return reader.load(base)
    if not record["files"]:
        return spark.createDataFrame([], schema)
    storage = Storage(spark)
    last = (record.get("appends") or [None])[-1]
    newest = next((n for n in reversed(record["files"]) if _append_id(n) == last), None) if last else None
    if newest is not None and storage.guarantees(path).atomic_rename and not storage.exists(f"{base}/{newest}"):
        _reveal(storage, path, {last})  # recorded, left hidden by a crash: rolled forward, as the next write does
    return reader.option("basePath", base).load([f"{base}/{name}" for name in record["files"]])


def _append_id(file: str) -> str | None:
    """The append id in an appended file's name, hidden (``.appended-<id>-...``) or not."""
    name = file.rpartition("/")[2].removeprefix(".")
    return name[len(_APPENDED):].partition("-")[0] if name.startswith(_APPENDED) else None


class CsvWriter(FilesWriter):
    """CSV in the book's legacy format (``;``-separated, header row), staged and published atomically.

    CSV holds no nested values: with ``nested="json"`` (default) struct, array and map columns are written
    as their JSON text (``to_json``, as the book does), with ``nested="error"`` they are refused by name.
    ``mode`` and ``replace`` are :class:`FilesWriter`'s.
    """

    output_type = "csv"
    DEFAULT_OPTIONS: ClassVar[dict[str, str]] = {"sep": ";", "header": "true"}

    def __init__(self, *, mode: str = "overwrite", replace: Mapping[str, str] | None = None,
                 options: Mapping[str, str] | None = None, partition_by: Sequence[str] = (), nested: str = "json",
                 replace_foreign: bool = False, allow_empty: bool = False) -> None:
        super().__init__("csv", mode=mode, replace=replace, options={**self.DEFAULT_OPTIONS, **(options or {})},
                         partition_by=partition_by, replace_foreign=replace_foreign, allow_empty=allow_empty)
        if nested not in ("json", "error"):
            raise invalid_argument("CsvWriter nested", nested, "'json' or 'error'")
        self.nested = nested

    def write(self, df: DataFrame, path: str, *, batch: Batch | None = None) -> WriteResult:
        return super().write(flatten_nested(df, how=self.nested, target=path), path, batch=batch)


def flatten_nested(df: DataFrame, *, how: str = "json", target: str = "a flat format") -> DataFrame:
    """``df`` with its struct, array and map columns as JSON text (``how="json"``), or an error naming them.

    >>> flat = flatten_nested(spark.createDataFrame([(1, (2, "x"))], "id int, ctx struct<n:int,s:string>"))
    >>> flat.first().ctx
    '{"n":2,"s":"x"}'
    """
    nested = [f.name for f in df.schema.fields if isinstance(f.dataType, StructType | ArrayType | MapType)]
    if not nested:
        return df
    if how != "json":
        raise refuse(f"{target}: columns {nested} are nested and CSV cannot hold them; convert them (to_json, "
                     "or select their fields) or use nested='json'", "NESTED_COLUMNS", path=target, columns=nested)
    logger.info("%s: nested columns %s written as JSON text", target, nested)
    return df.withColumns({name: F.to_json(name) for name in nested})


class ParquetWriter(FilesWriter):
    """Parquet files, staged and published atomically, with timestamps other engines read (micros).

    ``mode`` and ``replace`` are :class:`FilesWriter`'s.
    """

    output_type = "parquet"

    def __init__(self, *, mode: str = "overwrite", replace: Mapping[str, str] | None = None,
                 options: Mapping[str, str] | None = None, partition_by: Sequence[str] = (),
                 replace_foreign: bool = False, allow_empty: bool = False) -> None:
        super().__init__("parquet", mode=mode, replace=replace, options=options, partition_by=partition_by,
                         replace_foreign=replace_foreign, allow_empty=allow_empty)

    def session_conf(self) -> Mapping[str, str]:
        return {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
