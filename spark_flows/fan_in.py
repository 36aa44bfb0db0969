"""Aligned and Unaligned Fan-In: merge many parents by name, knowing exactly which ones made it.

* :func:`union_by_name` (vertical alignment) compares schemas *before* the union: a column whose types
  differ is widened only where that is lossless (``int -> bigint -> double``, ``date -> timestamp``) and
  otherwise raises :class:`SchemaConflictError` naming the column, both types and both inputs. (Spark's
  own ``unionByName`` under ANSI mode would coerce ``int`` + ``string`` to ``bigint`` and fail only when a
  row is read.)
* :func:`align_join` (horizontal alignment) joins on keys, prefixes colliding columns per input, and can
  refuse inputs with duplicate keys that would multiply rows.
* :func:`fan_in` takes expected parents (partition paths or callables), loads what it can, and returns the
  merged DataFrame with a :class:`Completeness`: ``aligned`` raises :class:`MissingParentsError` listing
  every missing, empty, unreadable or conflicting parent; ``unaligned`` keeps the rest and says so.
  Presence comes from the listing (metadata), never from a second pass over the rows.

Example (needs a SparkSession ``spark``; not run as a doctest)::

    from spark_flows.fan_in import fan_in, hourly_parents
    parents = hourly_parents("data/raw/visits", date(2024, 1, 1))
    merged = fan_in(spark, parents, mode="unaligned", schema=VISITS_SCHEMA)
    merged.completeness.ratio, merged.completeness.missing
    # -> (0.79, ('06', '11', '16', '17', '18'))
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Literal

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from spark_flows.alignment import align_join, reconcile_schemas, union_by_name, widen
from spark_flows.errors import MissingParentsError, SchemaConflictError, error_summary
from spark_flows.sources import CORRUPT_COLUMN, permissive_reader
from spark_flows.storage import Storage

logger = logging.getLogger(__name__)

__all__ = [
    "Completeness", "FanIn", "Parent", "align_join", "completeness_frame", "fan_in", "hourly_parents",
    "reconcile_schemas", "union_by_name", "widen", "with_completeness",
]

Mode = Literal["aligned", "unaligned"]
PARENT_COLUMN = "_parent"


@dataclass(frozen=True)
class Parent:
    """One expected parent of a fan-in: a name and either a path or a loader returning its DataFrame."""

    name: str
    path: str | None = None
    load: Callable[[], DataFrame] | None = None


def hourly_parents(root: str, day: dt.date, hours: Sequence[int] = range(24)) -> list[Parent]:
    """The book's hourly partitions of ``day`` under ``root`` (``date=YYYYMMDD/hour=HH``) as parents."""
    return [Parent(f"{h:02d}", path=f"{root.rstrip('/')}/date={day:%Y%m%d}/hour={h:02d}") for h in hours]


@dataclass(frozen=True)
class Completeness:
    """Which expected parents made it into a fan-in, and why the others did not."""

    expected: tuple[str, ...]
    failures: Mapping[str, str] = field(default_factory=dict)

    @property
    def present(self) -> tuple[str, ...]:
        """Parents merged in full."""
        return tuple(p for p in self.expected if p not in self.failures)

    @property
    def missing(self) -> tuple[str, ...]:
        """Parents missing, empty, unreadable or conflicting."""
        return tuple(p for p in self.expected if p in self.failures)

    @property
    def ratio(self) -> float:
        """Share of expected parents present, 0.0 to 1.0."""
        return round(len(self.present) / len(self.expected), 4) if self.expected else 1.0

    @property
    def is_approximate(self) -> bool:
        """True when any expected parent is missing."""
        return bool(self.failures)

    def with_failures(self, more: Mapping[str, str]) -> Completeness:
        """A copy with ``more`` failures added (e.g. corrupt records found while the data was read)."""
        return Completeness(self.expected, {**self.failures, **more})

    def describe(self) -> str:
        """``'19 of 24 present (ratio 0.7917); missing: 06 (no data), ...'``."""
        text = f"{len(self.present)} of {len(self.expected)} present (ratio {self.ratio})"
        if self.failures:
            text += "; missing: " + ", ".join(f"{p} ({self.failures[p]})" for p in self.missing)
        return text


@dataclass(frozen=True)
class FanIn:
    """Outcome of :func:`fan_in`: the merged (lazy) DataFrame and its completeness."""

    frame: DataFrame
    completeness: Completeness
    corrupt_observation: Observation | None = None

    def corrupt_parents(self) -> dict[str, str]:
        """After an action on :attr:`frame`: parents in which rows did not parse, with counts."""
        if self.corrupt_observation is None:
            return {}
        counts = self.corrupt_observation.get
        return {name.removeprefix("corrupt_"): f"{int(n)} corrupt record(s)" for name, n in counts.items()
                if name.startswith("corrupt_") and n}


def _data_files(storage: Storage, path: str) -> list[str]:
    return [i.name for i in storage.list(path)
            if not i.is_dir and not i.name.startswith(("_", ".")) and i.size > 0]


def fan_in(
    spark: SparkSession,
    parents: Sequence[Parent],
    *,
    mode: Mode = "aligned",
    schema: StructType | None = None,
    file_format: str = "json",
    allow_missing_columns: bool = False,
    track_corrupt_records: bool = True,
) -> FanIn:
    """Load every parent, check them, and merge the usable ones by name.

    Path parents are checked on the listing only: absent directory -> ``"no data"``, no non-empty data file
    -> ``"empty"``. JSON/CSV parents are read with ``schema`` (required for them: inferring it would scan);
    for JSON, rows that do not parse are counted per parent with an :class:`Observation` during the one
    scan of the caller's action (:meth:`FanIn.corrupt_parents`). Loader parents fail if the loader raises.
    Schemas are then reconciled; in ``unaligned`` mode a parent that conflicts with the first one is
    dropped as a failure. Launches no Spark job itself.

    Raises
    ------
    MissingParentsError: ``aligned`` mode and any parent failed; the message lists each with its reason.
    ValueError: bad arguments (no parents, unknown mode, text format without ``schema``).
    """
    if mode not in ("aligned", "unaligned"):
        raise ValueError(f"mode must be 'aligned' or 'unaligned', got {mode!r}")
    if not parents:
        raise ValueError("fan_in needs at least one expected parent")
    if file_format in ("json", "csv") and schema is None and any(p.path for p in parents):
        raise ValueError(f"fan_in over {file_format} paths needs schema=...: inferring it would scan the data")
    storage = Storage(spark)
    failures: dict[str, str] = {}
    loaded: dict[str, DataFrame] = {}
    readable: dict[str, str] = {}  # parent name -> qualified path, for path parents that passed the listing
    corrupt_tracked = track_corrupt_records and file_format == "json" and schema is not None
    for parent in parents:
        try:
            if parent.load is not None:
                loaded[parent.name] = parent.load()
                continue
            assert parent.path is not None, f"parent {parent.name} has neither path nor load"
            if not storage.exists(parent.path):
                failures[parent.name] = "no data"
            elif not _data_files(storage, parent.path):
                failures[parent.name] = "empty"
            elif schema is not None:
                readable[parent.name] = storage.qualify(parent.path)
            else:  # schema from each parent's own metadata (Parquet footers, Delta log)
                loaded[parent.name] = spark.read.format(file_format).load(parent.path).withColumn(
                    PARENT_COLUMN, F.lit(parent.name))
        except Exception as exc:
            failures[parent.name] = error_summary(exc)
    if readable:
        assert schema is not None
        loaded = {**_read_together(spark, readable, schema, file_format, corrupt_tracked), **loaded}
    if mode == "unaligned" and loaded:
        reference = next(iter(loaded))
        for name in list(loaded)[1:]:
            try:
                reconcile_schemas({reference: loaded[reference].schema, name: loaded[name].schema},
                                  allow_missing_columns=allow_missing_columns)
            except SchemaConflictError as exc:
                failures[name] = str(exc).split(" (pass")[0]
                del loaded[name]
    completeness = Completeness(tuple(p.name for p in parents), failures)
    if mode == "aligned":
        if failures:
            raise MissingParentsError(f"aligned fan-in refused: {completeness.describe()}; "
                                      "use --mode unaligned to publish partial data")
        frame = union_by_name(loaded, allow_missing_columns=allow_missing_columns)
    elif loaded:
        frame = union_by_name(loaded, allow_missing_columns=allow_missing_columns)
    else:
        frame = spark.createDataFrame([], schema or StructType([]))
    observation = None
    if corrupt_tracked and CORRUPT_COLUMN in frame.columns:
        observation = Observation()
        # Spark refuses scans whose only referenced column is the corrupt-record one (a bare count()
        # after pruning): observing a real column too keeps every row parsed.
        first = schema.fields[0].name  # type: ignore[union-attr]
        names = [p.name for p in parents if p.name in readable]
        frame = frame.observe(observation, *_corrupt_counters(names), F.count(F.col(f"`{first}`")).alias("rows"))
        frame = frame.where(F.col(CORRUPT_COLUMN).isNull()).drop(CORRUPT_COLUMN)
    logger.info("fan-in (%s): %s", mode, completeness.describe())
    return FanIn(frame, completeness, observation)


def _read_together(
    spark: SparkSession, paths: Mapping[str, str], schema: StructType, file_format: str, corrupt: bool
) -> dict[str, DataFrame]:
    """Read same-schema parents in ONE scan (one file index, packed splits), tagging each row's parent."""
    reader = permissive_reader(spark, schema, file_format) if corrupt else spark.read.format(file_format).schema(schema)
    file_path = F.col("_metadata.file_path")
    parent = reduce(lambda acc, item: acc.when(file_path.startswith(item[1].rstrip("/") + "/"), F.lit(item[0])),
                    list(paths.items())[1:], F.when(file_path.startswith(next(iter(paths.values())).rstrip("/") + "/"),
                                                    F.lit(next(iter(paths)))))
    together = reader.load(list(paths.values())).withColumn(PARENT_COLUMN, parent)
    return {"+".join(paths): together}


def _corrupt_counters(names: Sequence[str]) -> list[Column]:
    return [F.count_if((F.col(PARENT_COLUMN) == n) & F.col(CORRUPT_COLUMN).isNotNull()).alias(f"corrupt_{n}")
            for n in names]


def with_completeness(df: DataFrame, completeness: Completeness) -> DataFrame:
    """Add ``is_approximate`` and ``completeness_ratio`` columns so consumers cannot miss partial data."""
    return df.withColumn("is_approximate", F.lit(completeness.is_approximate)).withColumn(
        "completeness_ratio", F.lit(completeness.ratio))


COMPLETENESS_SCHEMA = StructType([
    StructField("partition", StringType()),
    StructField("expected", IntegerType()),
    StructField("present", IntegerType()),
    StructField("ratio", DoubleType()),
    StructField("is_approximate", BooleanType()),
    StructField("missing", ArrayType(StringType())),
    StructField("failures", MapType(StringType(), StringType())),
    StructField("computed_at", TimestampType()),
])


def completeness_frame(spark: SparkSession, partition: str, completeness: Completeness) -> DataFrame:
    """One row describing ``completeness`` for an output ``partition`` (the companion completeness table)."""
    row = (partition, len(completeness.expected), len(completeness.present), completeness.ratio,
           completeness.is_approximate, list(completeness.missing), dict(completeness.failures),
           dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return spark.createDataFrame([row], COMPLETENESS_SCHEMA)
