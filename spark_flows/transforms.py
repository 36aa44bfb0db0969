"""The book's transformations of its devices and visits datasets, used by the bundled jobs.

Each is a plain ``DataFrame -> DataFrame`` function (or returns one), so it slots into a
:class:`~spark_flows.sequence.Sequence`, a split branch or ``df.transform``.

Example
-------
>>> raw = spark.createDataFrame([("iphone", "iPhone", "15"), ("lg", "G6", "1")],
...                             "type string, full_name string, version string")
>>> [r.full_name for r in raw.transform(validate_devices).transform(enrich_devices).collect()]
['iPhone 15']
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_flows.sequence import Sequence as StepSequence
from spark_flows.sequence import step


def validate_devices(df: DataFrame) -> DataFrame:
    """Keep devices whose ``type`` is longer than 3 characters and whose ``full_name`` is set (the book)."""
    return df.where((F.length("type") > 3) & F.col("full_name").isNotNull())


def enrich_devices(df: DataFrame) -> DataFrame:
    """Set ``full_name`` to ``full_name || ' ' || version`` (the book's enrichment)."""
    return df.withColumn("full_name", F.concat_ws(" ", "full_name", "version"))


def with_loading_time(df: DataFrame) -> DataFrame:
    """Add ``loading_time``, the timestamp of the load."""
    return df.withColumn("loading_time", F.current_timestamp())


def devices_sequence() -> StepSequence:
    """The book's Local Sequencer for devices: ``validate`` (a restart boundary), then ``enrich``."""
    return StepSequence(
        "devices",
        [step("validate", validate_devices, boundary=True), step("enrich", enrich_devices)],
    )


CUBE_DIMENSIONS = ("page", "browser")


def flatten_visits(df: DataFrame) -> DataFrame:
    """Project the visit fields the cube and trend jobs use (``browser`` from the technical context)."""
    return df.select(
        "visit_id", "user_id", "page", F.col("context.technical.browser").alias("browser"), "event_time"
    )


def visits_cube(df: DataFrame, *, dimensions: Sequence[str] = CUBE_DIMENSIONS) -> DataFrame:
    """``GROUP BY CUBE(dimensions)`` of visits: ``visits`` and ``unique_users`` per combination.

    Rolled-up dimensions are ``'ALL'`` rather than null, so the cube can be filtered and merged.
    """
    flat = df.transform(flatten_visits)
    cube = flat.cube(*dimensions).agg(
        F.count("visit_id").alias("visits"), F.countDistinct("user_id").alias("unique_users")
    )
    return cube.select(
        *[F.coalesce(F.col(d), F.lit("ALL")).alias(d) for d in dimensions], "visits", "unique_users"
    )


def visits_per_page(df: DataFrame) -> DataFrame:
    """Visits per page for one day (the trend job's daily figure)."""
    return df.groupBy("page").agg(F.count("visit_id").alias("visits"))


def visits_trend(today: DataFrame, yesterday: DataFrame) -> DataFrame:
    """Compare two days of :func:`visits_per_page`: ``visits``, ``previous_visits``, ``change`` (the book's 6-21)."""
    previous = yesterday.withColumnRenamed("visits", "previous_visits")
    joined = today.join(previous, "page", "full_outer")
    return joined.select(
        "page",
        F.coalesce("visits", F.lit(0)).alias("visits"),
        F.coalesce("previous_visits", F.lit(0)).alias("previous_visits"),
        (F.coalesce("visits", F.lit(0)) - F.coalesce("previous_visits", F.lit(0))).alias("change"),
    )
