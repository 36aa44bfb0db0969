"""Isolated Sequencer: readiness markers between separately owned producer and consumer jobs.

Data-based: :func:`publish` writes the data with any writer, then a JSON marker *last* and atomically (a
temporary name renamed into place): producer, run id, execution date, rows, Spark JSON schema, written at,
and for Delta the table version, so a consumer reads exactly what was published (time travel) and never a
later write in progress. Re-publishing a date first removes its marker, so readers never see the new
data half-written under the old marker. :func:`wait_for_marker` is the book's FileSensor (timeout,
interval, optional exponential back-off, schema and row checks on arrival).

Task-based: :func:`~spark_flows.apps.consumers.trigger` starts the consumer job with ``spark-submit`` (an
argument list, never a shell string) and records the outcome in the marker. When a producer re-publishes an
old date (a backfill), consumers that already read the previous run are reported stale (the book's
ExternalTaskMarker) and can be re-triggered.

Markers live beside the dataset, on any Hadoop filesystem: ``<parent>/_ready/<name>/<YYYYMMDD>.json``.

Example
-------
>>> import datetime as dt, tempfile
>>> from spark_flows.io.writers import DeltaWriter
>>> day, dataset = dt.date(2024, 1, 1), tempfile.mkdtemp() + "/devices"
>>> _ = publish(spark.range(3), dataset, DeltaWriter(), producer="devices_loader", execution_date=day)
>>> df, marker = read_when_ready(spark, dataset, day, wait=Wait(timeout=0))
>>> marker.rows, marker.table_version, df.count()
(3, 0, 3)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_flows.core.waiting import SENSOR, Wait
from spark_flows.errors import MarkerMismatchError, MarkerTimeoutError
from spark_flows.flow.graph import Graph, note
from spark_flows.io import delta_log
from spark_flows.io.partitions import date_key, day_of_key
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, FilesWriter, Writer, WriteResult, read_published

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Marker:
    """A readiness marker's metadata: what a consumer reads under it, and who published it.

    ``rows`` counts exactly what a consumer reads under the marker (:func:`read_when_ready`): the Delta
    table at ``table_version`` (restricted to ``partition`` when the producer replaced one partition), or
    the published files. ``batch_rows`` counts the producer's batch alone (an append adds it to earlier ones).
    """

    dataset: str
    execution_date: str
    producer: str
    run_id: str
    rows: int | None
    schema: str
    written_at: str
    table_version: int | None = None
    stale_consumers: tuple[str, ...] = ()
    triggered: dict[str, Any] = field(default_factory=dict)
    batch_rows: int | None = None
    partition: dict[str, str] = field(default_factory=dict)

    @property
    def struct(self) -> StructType:
        """The published schema as a ``StructType``."""
        return StructType.fromJson(json.loads(self.schema))

    @property
    def age_seconds(self) -> float:
        """Seconds since the marker was written."""
        return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(self.written_at)).total_seconds()


def _marker_node(dataset: str, name: str) -> str:
    """``marker.<name>``: the node of a dataset's readiness marker (``name``: its last path segment if empty)."""
    return f"marker.{name or dataset.rstrip('/').rpartition('/')[2]}"


@dataclass(frozen=True)
class ReadinessWait:
    """The consumer's side of an Isolated Sequencer as a value: wait for ``dataset``'s marker of a date,
    check it, and read exactly what it publishes (:meth:`run`); :meth:`graph` draws the wait, node
    ``marker.<name>`` (``name``: the dataset's last path segment unless given).

    >>> import datetime as dt, tempfile
    >>> from spark_flows.io.writers import DeltaWriter
    >>> day, dataset = dt.date(2024, 1, 1), tempfile.mkdtemp() + "/devices"
    >>> _ = publish(spark.range(2), dataset, DeltaWriter(), producer="loader", execution_date=day)
    >>> ready = ReadinessWait(dataset, wait=Wait(timeout=0))
    >>> df, marker = ready.run(spark, day)
    >>> df.count(), ready.graph().node("marker.devices").rules
    (2, {'role': 'wait', 'timeout_seconds': 0})
    """

    dataset: str
    wait: Wait = SENSOR
    name: str = ""
    file_format: str = "delta"
    consumer: str | None = None
    expected_schema: StructType | None = None
    require_rows: bool = False

    @property
    def node_id(self) -> str:
        """The node this wait draws and notes: ``marker.<name>``."""
        return _marker_node(self.dataset, self.name)

    def graph(self) -> Graph:
        """One marker node, its timeout as a rule."""
        label = f"{self.node_id.removeprefix('marker.')} ready marker"
        return Graph.single(self.node_id, "marker", label, role="wait", timeout_seconds=self.wait.timeout)

    def run(self, spark: SparkSession, execution_date: dt.date) -> tuple[DataFrame, Marker]:
        """:func:`read_when_ready` with this wait's rules; the marker's rows and version are noted."""
        frame, marker = read_when_ready(spark, self.dataset, execution_date, file_format=self.file_format,
                                        consumer=self.consumer, wait=self.wait, expected_schema=self.expected_schema,
                                        require_rows=self.require_rows)
        note(self.node_id, status="ran", rows=marker.rows, table_version=marker.table_version)
        return frame, marker


@dataclass(frozen=True)
class ReadinessMarker:
    """The producer's side of an Isolated Sequencer as a value: the marker of ``dataset`` written last
    (:meth:`write`), retracted before the data is rewritten (:meth:`retract`); node ``marker.<name>``."""

    dataset: str
    producer: str
    name: str = ""

    @property
    def node_id(self) -> str:
        """The node this marker draws and notes: ``marker.<name>``."""
        return _marker_node(self.dataset, self.name)

    def graph(self) -> Graph:
        """One marker node, written last."""
        return Graph.single(self.node_id, "marker", f"{self.node_id.removeprefix('marker.')} ready marker "
                            "(written last)", role="publish")

    def retract(self, spark: SparkSession, execution_date: dt.date) -> bool:
        """:func:`retract_marker` of the date (before its data is written again)."""
        return retract_marker(spark, self.dataset, execution_date)

    def write(self, spark: SparkSession, execution_date: dt.date, result: WriteResult, *, schema: StructType,
              run_id: str | None = None) -> Marker:
        """:func:`write_marker` after the data's write ``result``; its rows are noted."""
        marker = write_marker(spark, self.dataset, execution_date, result, producer=self.producer, schema=schema,
                              run_id=run_id)
        note(self.node_id, status="ran", rows=marker.rows)
        return marker


def markers_dir(dataset: str) -> str:
    """Where the markers of ``dataset`` live: ``<parent>/_ready/<name>``."""
    parent, _, name = dataset.rstrip("/").rpartition("/")
    return f"{parent or '.'}/_ready/{name}"


def marker_path(dataset: str, execution_date: dt.date) -> str:
    """The marker file of ``dataset`` for ``execution_date``."""
    return f"{markers_dir(dataset)}/{date_key(execution_date)}.json"


def _consumers_dir(dataset: str, execution_date: dt.date) -> str:
    return f"{markers_dir(dataset)}/{date_key(execution_date)}.consumers"


def read_marker(spark: SparkSession | None, dataset: str, execution_date: dt.date) -> Marker | None:
    """The marker of ``dataset`` for ``execution_date``, or ``None`` if the data is not ready (``spark``:
    ``None`` reads local files and pyarrow's filesystems without Spark)."""
    storage, path = Storage(spark), marker_path(dataset, execution_date)
    if not storage.exists(path):
        return None
    raw = storage.read_json(path)
    raw["stale_consumers"] = tuple(raw.get("stale_consumers", ()))
    known = {f.name for f in fields(Marker)}
    return Marker(**{k: v for k, v in raw.items() if k in known})  # fields of a newer version are ignored


_MARKER_NAME = re.compile(r"^\d{8}\.json$")


def list_markers(spark: SparkSession | None, dataset: str) -> list[Marker]:
    """Every marker of ``dataset``, oldest execution date first (``spark=None``: without Spark)."""
    storage = Storage(spark)
    found = []
    for info in storage.list(markers_dir(dataset)):
        if _MARKER_NAME.match(info.name) and not info.is_dir:  # not the consumers or a stream's _watermark.json
            day = day_of_key(info.name.removesuffix(".json"))
            marker = read_marker(spark, dataset, day)
            if marker:
                found.append(marker)
    return found


def publish(
    df: DataFrame,
    dataset: str,
    writer: Writer,
    *,
    producer: str,
    execution_date: dt.date,
    run_id: str | None = None,
    batch: Batch | None = None,
) -> Marker:
    """Write ``df`` to ``dataset`` with ``writer``, then the readiness marker, last and atomically.

    An existing marker for the date is removed before the write and written again after it, also when the
    write skipped a replayed batch: the marker always describes what is published. Consumers that consumed
    an earlier run of the date are listed in ``stale_consumers``. Triggers the writer's Spark job(s).
    """
    spark = df.sparkSession
    retract_marker(spark, dataset, execution_date)
    result = writer.write(df, dataset, batch=batch)
    return write_marker(spark, dataset, execution_date, result, producer=producer, run_id=run_id, schema=df.schema)


def retract_marker(spark: SparkSession, dataset: str, execution_date: dt.date) -> bool:
    """Remove the marker of ``execution_date`` before (re)writing its data; True if one was there."""
    return Storage(spark).delete(marker_path(dataset, execution_date))


def write_marker(
    spark: SparkSession,
    dataset: str,
    execution_date: dt.date,
    result: WriteResult,
    *,
    producer: str,
    schema: StructType,
    run_id: str | None = None,
) -> Marker:
    """Write the readiness marker of ``dataset`` atomically, after its data (see :func:`publish`).

    ``result`` is the writer's :class:`~spark_flows.io.writers.WriteResult` (written or skipped): for Delta the
    marker pins the table version that holds the batch, and its ``rows`` count the table (or the replaced
    partition) at that version, read from the Delta log, so they are what a consumer reads.
    """
    run = run_id or uuid.uuid4().hex[:12]
    storage = Storage(spark)
    partition = dict(result.partition)
    if result.table_version is not None:
        rows = delta_log.table_rows(storage, dataset, result.table_version, partition=partition or None)
        # the table's columns: the replaced partition's column is added by the write, not in the input
        schema = StructType([*schema.fields, *[StructField(c, StringType()) for c in partition
                                               if c not in schema.fieldNames()]])
    else:  # what read_when_ready reads: the whole published output (an append's earlier batches too)
        rows = result.output_rows if result.output_rows is not None else result.batch_rows
    marker = Marker(
        dataset=dataset, execution_date=execution_date.isoformat(), producer=producer, run_id=run, rows=rows,
        schema=schema.json(), written_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        table_version=result.table_version,
        stale_consumers=tuple(stale_consumers(spark, dataset, execution_date, run)), batch_rows=result.batch_rows,
        partition=partition,
    )
    path = marker_path(dataset, execution_date)
    storage.write_json(path, asdict(marker), overwrite=True)
    for consumer in marker.stale_consumers:
        logger.warning("%s %s: consumer %s read an earlier run and is now stale", dataset,
                       marker.execution_date, consumer)
    logger.info("published %s for %s: %s rows (batch: %s), marker %s", dataset, marker.execution_date, marker.rows,
                marker.batch_rows, path)
    return marker


def _check(marker: Marker, path: str, expected_schema: StructType | None, require_rows: bool) -> None:
    if require_rows and not marker.rows:
        raise MarkerMismatchError(f"marker {path} reports {marker.rows} rows; the consumer requires data",
                                  condition="MARKER_MISMATCH.NO_ROWS", parameters={"path": path, "rows": marker.rows})
    if expected_schema is None:
        return
    published = {f.name: f.dataType for f in marker.struct.fields}
    problems = [f"{f.name}: expected {f.dataType.simpleString()}, published "
                f"{published[f.name].simpleString() if f.name in published else 'nothing'}"
                for f in expected_schema.fields if published.get(f.name) != f.dataType]
    if problems:
        raise MarkerMismatchError(
            f"schema published at {path} does not match the consumer's ({'; '.join(problems)}): expected "
            f"{expected_schema.simpleString()}, published {marker.struct.simpleString()}",
            condition="MARKER_MISMATCH.SCHEMA", parameters={"path": path, "problems": problems})


def wait_for_marker(
    spark: SparkSession,
    dataset: str,
    execution_date: dt.date,
    *,
    wait: Wait = SENSOR,
    expected_schema: StructType | None = None,
    require_rows: bool = False,
    run_id: str | None = None,
) -> Marker:
    """Poll for the marker of ``dataset`` for ``execution_date`` (the book's FileSensor).

    Parameters
    ----------
    wait: how long and how often to look (:class:`~spark_flows.core.waiting.Wait`; ``Wait(0)`` checks once).
    expected_schema: fields the consumer needs; each must be published with the same type.
    require_rows: refuse a marker reporting zero rows.
    run_id: refuse a marker of another run.

    Raises
    ------
    MarkerTimeoutError: no marker within ``timeout``; names the path and how long it waited.
    MarkerMismatchError: the marker's schema, rows or run id are not what the consumer expects.
    """
    path = marker_path(dataset, execution_date)
    waited = wait.until(
        lambda: read_marker(spark, dataset, execution_date), f"marker {path}")
    marker = waited.value
    if marker is None:
        raise MarkerTimeoutError(parameters={"path": path, "waited_seconds": round(waited.seconds, 1),
                                             "polls": waited.polls},
                                 message=f"no readiness marker at {path} after waiting {waited.seconds:.1f}s "
                                 f"(timeout {wait.timeout:g}s, {waited.polls} polls); is the producer of {dataset} "
                                 "done?")
    if run_id is not None and marker.run_id != run_id:
        raise MarkerMismatchError(f"marker {path} is from run {marker.run_id}, expected run {run_id}",
                                  condition="MARKER_MISMATCH.OTHER_RUN",
                                  parameters={"path": path, "run_id": marker.run_id, "expected": run_id})
    _check(marker, path, expected_schema, require_rows)
    return marker


def read_when_ready(spark: SparkSession, dataset: str, execution_date: dt.date, *, file_format: str = "delta",
                    consumer: str | None = None, wait: Wait = SENSOR, expected_schema: StructType | None = None,
                    require_rows: bool = False) -> tuple[DataFrame, Marker]:
    """Read ``dataset`` only under its marker (:func:`wait_for_marker`): Delta as of the published version;
    record ``consumer``."""
    marker = wait_for_marker(spark, dataset, execution_date, wait=wait, expected_schema=expected_schema,
                             require_rows=require_rows)
    if consumer:
        record_consumption(spark, marker, consumer)
    if marker.table_version is None and file_format != "delta":  # files: exactly what the manifest names
        target = "/".join([dataset.rstrip("/"), *[f"{c}={v}" for c, v in marker.partition.items()]])
        if FilesWriter.published(Storage(spark), target) is not None:
            return read_published(spark, target), marker
    reader = spark.read.format(file_format)
    if marker.table_version is not None:
        reader = reader.option("versionAsOf", marker.table_version)
    frame = reader.load(dataset)
    for column, value in marker.partition.items():
        frame = frame.where(F.col(column) == value)
    return frame, marker


def record_consumption(spark: SparkSession, marker: Marker, consumer: str) -> None:
    """Remember that ``consumer`` read ``marker``'s run (used to flag it stale on a re-publish)."""
    day = dt.date.fromisoformat(marker.execution_date)
    Storage(spark).write_json(f"{_consumers_dir(marker.dataset, day)}/{consumer}.json",
                              {"consumer": consumer, "run_id": marker.run_id,
                               "consumed_at": dt.datetime.now(dt.timezone.utc).isoformat()})


def stale_consumers(spark: SparkSession, dataset: str, execution_date: dt.date, run_id: str) -> list[str]:
    """Consumers of ``execution_date`` that read a run other than ``run_id``."""
    storage = Storage(spark)
    stale = []
    for info in storage.list(_consumers_dir(dataset, execution_date)):
        if info.name.endswith(".json"):
            record = storage.read_json(info.path)
            if record.get("run_id") != run_id:
                stale.append(str(record.get("consumer")))
    return stale
