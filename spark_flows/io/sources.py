"""Reading raw inputs with a declared schema and an explicit policy for rows that do not parse.

Two policies, chosen by the caller: ``"fail"`` (the default) raises :class:`BadRecordsError` naming the
files and the count before anything is written; ``"quarantine"`` writes the unparseable lines, with their
file, to a bad-records path and goes on with the good rows.

Example
-------
>>> import tempfile
>>> from spark_flows.book.datasets import DEVICES_SCHEMA
>>> from spark_flows.book.samples import write_devices
>>> path = tempfile.mkdtemp() + "/devices"
>>> write_devices(spark, path, rows=10)
10
>>> parsed = read_json(spark, path, DEVICES_SCHEMA)
>>> parsed.rows, parsed.bad_records
(10, 0)
>>> parsed.release()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pyspark.sql import DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_flows.errors import BadRecordsError, InputNotFoundError, invalid_argument
from spark_flows.io.storage import Storage

if TYPE_CHECKING:
    from spark_flows.io.writers.contract import Batch, BatchHandler

logger = logging.getLogger(__name__)

BadRecordsPolicy = Literal["fail", "quarantine"]
CORRUPT_COLUMN = "_corrupt_record"
SOURCE_FILE_COLUMN = "_source_file"


@dataclass(frozen=True)
class ParsedInput:
    """Result of :func:`read_json`: the good rows (read from a persisted scan) and what happened to the bad ones.

    Call :meth:`release` when done: ``frame`` is derived from the persisted scan, and unpersisting a
    derived frame would release nothing.
    """

    frame: DataFrame
    rows: int
    bad_records: int
    quarantine_path: str | None = None
    persisted: DataFrame | None = None

    def release(self) -> None:
        """Unpersist exactly what :func:`read_json` persisted."""
        if self.persisted is not None:
            self.persisted.unpersist()


def require_input(spark: SparkSession, path: str, *, hint: str = "") -> None:
    """Raise :class:`InputNotFoundError` naming ``path`` (and ``hint``) if it does not exist."""
    if not Storage(spark).exists(path):
        raise InputNotFoundError(f"input path {path} does not exist" + (f"; {hint}" if hint else ""),
                                 parameters={"path": path})


def input_version(spark: SparkSession, path: str) -> int:
    """A batch version for the input at ``path``: its newest data file's modification time, in epoch
    milliseconds (the finest the filesystems keep).

    Unchanged input gives the same version (a rerun is a replay and writes nothing); rewritten or added
    files give a higher one. Input rewritten with its old modification times kept (``cp -p``, ``rsync -t``)
    looks unchanged: give such a run its own batch id. Reads the listing only.

    Raises
    ------
    InputNotFoundError: ``path`` does not exist or holds no data file.
    """
    storage = Storage(spark)
    require_input(spark, path)
    newest, pending = 0, [path]
    while pending:
        for info in storage.list(pending.pop()):
            if info.name.startswith(("_", ".")):
                continue
            if info.is_dir:
                pending.append(info.path)
            else:
                newest = max(newest, info.modified_ms)
    if not newest:
        raise InputNotFoundError(f"input path {path} holds no data file", condition="INPUT_EMPTY",
                                 parameters={"path": path})
    return newest


def permissive_reader(spark: SparkSession, schema: StructType, file_format: str = "json") -> DataFrameReader:
    """A reader with ``schema`` that keeps unparseable lines in :data:`CORRUPT_COLUMN` instead of failing."""
    with_corrupt = StructType([*schema.fields, StructField(CORRUPT_COLUMN, StringType())])
    return (spark.read.format(file_format).schema(with_corrupt).option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN))


def read_json(
    spark: SparkSession,
    path: str,
    schema: StructType,
    *,
    on_bad_records: BadRecordsPolicy = "fail",
    quarantine_path: str | None = None,
) -> ParsedInput:
    """Read JSON lines under ``path`` with ``schema``, applying the bad-records policy.

    The parsed rows are persisted (the check and the caller's work read the files once); the caller
    releases them with :meth:`ParsedInput.release` when done. Triggers one Spark job (the bad-record check), two when
    records are quarantined.

    Raises
    ------
    InputNotFoundError: ``path`` does not exist.
    BadRecordsError: with ``on_bad_records="fail"``, some lines did not parse.
    ValueError: ``on_bad_records`` is unknown, or ``quarantine`` without ``quarantine_path``.
    """
    if on_bad_records not in ("fail", "quarantine"):
        raise invalid_argument("on_bad_records", on_bad_records, "'fail' or 'quarantine'")
    if on_bad_records == "quarantine" and not quarantine_path:
        raise invalid_argument("quarantine_path", quarantine_path, "a path when on_bad_records='quarantine'")
    require_input(spark, path)
    parsed = permissive_reader(spark, schema).load(path).withColumn(SOURCE_FILE_COLUMN, F.input_file_name()).persist()
    bad = parsed.where(F.col(CORRUPT_COLUMN).isNotNull())
    # one job over the cached rows gives both the bad rows per file and the good rows in total
    stats = parsed.groupBy(SOURCE_FILE_COLUMN).agg(
        F.count_if(F.col(CORRUPT_COLUMN).isNotNull()).alias("bad"),
        F.count_if(F.col(CORRUPT_COLUMN).isNull()).alias("good"),
    ).collect()
    per_file = {r[SOURCE_FILE_COLUMN]: r["bad"] for r in stats if r["bad"]}
    count = sum(per_file.values())
    good = parsed.where(F.col(CORRUPT_COLUMN).isNull()).drop(CORRUPT_COLUMN, SOURCE_FILE_COLUMN)
    if count and on_bad_records == "fail":
        parsed.unpersist()
        raise _bad_records(path, per_file)
    if count and quarantine_path:
        _quarantined(bad).write.mode("overwrite").json(quarantine_path)
        logger.warning("quarantined %d malformed row(s) from %s to %s", count, path, quarantine_path)
    return ParsedInput(frame=good, rows=sum(r["good"] for r in stats), bad_records=count,
                       quarantine_path=quarantine_path if count else None, persisted=parsed)


def _quarantined(bad: DataFrame) -> DataFrame:
    """A quarantined line as ``source_file`` and ``record`` (the line as read): a plain ``spark.read.json``
    would take a column named ``_corrupt_record`` for its own corrupt-record column and read it as null."""
    return bad.select(F.col(SOURCE_FILE_COLUMN).alias("source_file"), F.col(CORRUPT_COLUMN).alias("record"))


def _bad_records(where: str, per_file: dict[str, int]) -> BadRecordsError:
    count = sum(per_file.values())
    files = ", ".join(f"{name} ({n})" for name, n in sorted(per_file.items()))
    return BadRecordsError(f"{count} malformed JSON row(s) under {where}: {files}; fix the input or pass "
                           "--on-bad-records quarantine to set them aside",
                           parameters={"path": where, "count": count, "files": dict(per_file)})


def read_json_stream(spark: SparkSession, path: str, schema: StructType, **options: str) -> DataFrame:
    """A streaming read of the JSON lines files under ``path`` with ``schema`` that keeps each line that does
    not parse (not JSON, or a value of the wrong type) in :data:`CORRUPT_COLUMN`, with its file in
    :data:`SOURCE_FILE_COLUMN`, for :func:`checked_each_batch` to fail on or quarantine: never a row
    dropped or a field nulled without a word. ``options`` are the file source's (``maxFilesPerTrigger``).
    """
    with_corrupt = StructType([*schema.fields, StructField(CORRUPT_COLUMN, StringType())])
    return (spark.readStream.schema(with_corrupt).option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN).options(**options).json(path)
            .withColumn(SOURCE_FILE_COLUMN, F.col("_metadata.file_path")))


def checked_each_batch(then: BatchHandler, *, where: str, on_bad_records: BadRecordsPolicy = "fail",
                       quarantine_path: str | None = None) -> BatchHandler:
    """The bad-records policy on each micro-batch of :func:`read_json_stream`, then ``then`` on its good rows.

    ``"fail"`` (the default, as the batch jobs'): a micro-batch with rows that did not parse fails, naming
    the files and counts; nothing of it is written, and the query restarted from its checkpoint runs the
    same micro-batch again (fix the files, or restart with ``"quarantine"``). ``"quarantine"``: the bad
    lines, with their file, are appended to the JSON output at ``quarantine_path`` under the micro-batch's
    :class:`Batch` (a retried micro-batch sets them aside once), a warning gives the count, and the good
    rows go on. Runs one small Spark job per micro-batch (the count, over the persisted micro-batch).
    """
    if on_bad_records not in ("fail", "quarantine"):
        raise invalid_argument("on_bad_records", on_bad_records, "'fail' or 'quarantine'")
    if on_bad_records == "quarantine" and not quarantine_path:
        raise invalid_argument("quarantine_path", quarantine_path, "a path when on_bad_records='quarantine'")

    def handle(df: DataFrame, batch: Batch) -> object:
        bad = df.where(F.col(CORRUPT_COLUMN).isNotNull())
        per_file = {r[SOURCE_FILE_COLUMN]: r["bad"] for r in bad.groupBy(SOURCE_FILE_COLUMN)
                    .agg(F.count(F.lit(1)).alias("bad")).collect()}
        if per_file and on_bad_records == "fail":
            raise _bad_records(f"{where} (micro-batch {batch.version})", per_file)
        if per_file and quarantine_path:
            from spark_flows.io.writers.files import FilesWriter

            FilesWriter("json", mode="append").write(_quarantined(bad), quarantine_path, batch=batch)
            logger.warning("micro-batch %d: quarantined %d malformed row(s) from %s to %s", batch.version,
                           sum(per_file.values()), sorted(per_file), quarantine_path)
        return then(df.where(F.col(CORRUPT_COLUMN).isNull()).drop(CORRUPT_COLUMN, SOURCE_FILE_COLUMN), batch)

    return handle
