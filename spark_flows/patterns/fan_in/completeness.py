"""Completeness of a fan-in: which expected parents made it, published where consumers look.

:class:`Completeness` (expected, present, missing with reasons, ratio, ``is_approximate``), the columns
:func:`with_completeness` adds to a result, and the companion table's row (:func:`completeness_frame`).

Example
-------
>>> c = Completeness(("00", "01", "02", "03"), {"02": "no data"})
>>> c.present, c.ratio, c.is_approximate
(('00', '01', '03'), 0.75, True)
>>> c.describe()
'3 of 4 present (ratio 0.75); missing: 02 (no data)'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
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

    def as_record(self) -> dict[str, object]:
        """JSON-ready: ``expected``, ``present``, ``missing`` (parent -> reason), ``ratio``, ``is_approximate``."""
        return {"expected": len(self.expected), "present": len(self.present), "ratio": self.ratio,
                "is_approximate": self.is_approximate, "missing": {p: self.failures[p] for p in self.missing}}

    def describe(self) -> str:
        """``'19 of 24 present (ratio 0.7917); missing: 06 (no data), ...'``."""
        text = f"{len(self.present)} of {len(self.expected)} present (ratio {self.ratio})"
        if self.failures:
            text += "; missing: " + ", ".join(f"{p} ({self.failures[p]})" for p in self.missing)
        return text


def with_completeness(df: DataFrame, completeness: Completeness) -> DataFrame:
    """Add ``is_approximate`` and ``completeness_ratio`` columns so consumers cannot miss partial data."""
    return df.withColumn("is_approximate", F.lit(completeness.is_approximate)).withColumn(
        "completeness_ratio", F.lit(completeness.ratio))


COMPLETENESS_SCHEMA = StructType([
    StructField("expected", IntegerType()),
    StructField("present", IntegerType()),
    StructField("ratio", DoubleType()),
    StructField("is_approximate", BooleanType()),
    StructField("missing", ArrayType(StringType())),
    StructField("failures", MapType(StringType(), StringType())),
    StructField("computed_at", TimestampType()),
])


def completeness_frame(spark: SparkSession, completeness: Completeness) -> DataFrame:
    """One row describing ``completeness`` (the companion completeness table); the writer that replaces the
    output's partition adds its column (``DeltaWriter(replace={"date": key})``)."""
    row = (len(completeness.expected), len(completeness.present), completeness.ratio,
           completeness.is_approximate, list(completeness.missing), dict(completeness.failures),
           dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    return spark.createDataFrame([row], COMPLETENESS_SCHEMA)
