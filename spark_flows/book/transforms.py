"""The book's transformations of its devices and visits datasets, used by the bundled jobs.

Each is a plain ``DataFrame -> DataFrame`` function (or returns one), so it slots into a
:class:`~spark_flows.patterns.sequence.Sequence`, a split branch or ``df.transform``.

Example
-------
>>> raw = spark.createDataFrame([("iphone", "iPhone", "15"), ("lg", "G6", "1")],
...                             "type string, full_name string, version string")
>>> [r.full_name for r in raw.transform(validate_devices).transform(enrich_devices).collect()]
['iPhone 15']
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_flows.errors import invalid_argument
from spark_flows.patterns.sequence import Sequence as StepSequence
from spark_flows.patterns.sequence import step


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
#: the fields :func:`flatten_visits` projects: the dimensions a visits cube can take
VISIT_FIELDS = ("visit_id", "user_id", "page", "browser", "event_time")


def flatten_visits(df: DataFrame) -> DataFrame:
    """Project the visit fields the cube and trend jobs use (``browser`` from the technical context)."""
    return df.select(
        "visit_id", "user_id", "page", F.col("context.technical.browser").alias("browser"), "event_time"
    )


def visits_cube(df: DataFrame, *, dimensions: Sequence[str] = CUBE_DIMENSIONS) -> DataFrame:
    """``GROUP BY CUBE(dimensions)`` of visits: ``visits`` and ``unique_users`` per combination.

    As SQL's ``CUBE`` gives them, rolled-up dimensions are NULL and ``grouping_id`` says which ones are (a
    bit per dimension, the first dimension the highest bit): a NULL page, or a page named ``'ALL'``, stays
    distinct from the roll-up. Select a level with :func:`cube_level`.

    >>> visits = spark.createDataFrame([(1, "u1", None, "firefox"), (2, "u1", "ALL", "firefox")],
    ...     "visit_id int, user_id string, page string, browser string").selectExpr(
    ...     "*", "named_struct('technical', named_struct('browser', browser)) as context", "now() as event_time")
    >>> cube = visits_cube(visits)
    >>> [(r.page, r.visits) for r in cube.where(cube_level("browser")).orderBy("page").collect()]
    [(None, 1), ('ALL', 1)]
    >>> cube.where(cube_level("page", "browser")).first().visits
    2
    """
    unknown = [d for d in dimensions if d not in VISIT_FIELDS]
    if not dimensions or unknown:
        raise invalid_argument("cube dimensions", list(dimensions), f"one or more of {list(VISIT_FIELDS)}")
    flat = df.transform(flatten_visits)
    return flat.cube(*dimensions).agg(
        F.grouping_id().alias("grouping_id"),
        F.count("visit_id").alias("visits"), F.countDistinct("user_id").alias("unique_users"),
    ).select(*dimensions, "grouping_id", "visits", "unique_users")


def cube_level(*rolled_up: str, dimensions: Sequence[str] = CUBE_DIMENSIONS) -> Column:
    """The condition selecting the cube rows where exactly ``rolled_up`` dimensions are rolled up.

    ``cube_level()`` is the finest level, ``cube_level(*dimensions)`` the grand total.

    >>> levels = spark.createDataFrame([(0,), (1,), (3,)], "grouping_id long")
    >>> [r.grouping_id for r in levels.where(cube_level("page", "browser")).collect()]
    [3]
    """
    unknown = [d for d in rolled_up if d not in dimensions]
    if unknown:
        raise invalid_argument("rolled-up dimensions", unknown, f"among the cube's {list(dimensions)}")
    mask = sum(1 << (len(dimensions) - 1 - i) for i, d in enumerate(dimensions) if d in rolled_up)
    return F.col("grouping_id") == mask


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
