"""A Spark Declarative Pipeline merging the day's hourly visits with spark_flows' fan-in and union_by_name.

Run by tests/test_pipelines.py with ``spark-pipelines run``; the root and the day come from the pipeline's
configuration (``spark_flows.visits_root``, ``spark_flows.day``).
"""

import datetime as dt

from pyspark import pipelines as dp
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_flows.book.samples import VISITS_SCHEMA
from spark_flows.patterns.fan_in.alignment import union_by_name
from spark_flows.patterns.fan_in.completeness import with_completeness
from spark_flows.patterns.fan_in.merge import fan_in, hourly_parents

spark = SparkSession.active()
ROOT = spark.conf.get("spark_flows.visits_root")
DAY = dt.date.fromisoformat(spark.conf.get("spark_flows.day"))
PAGE_SCHEMA = StructType([VISITS_SCHEMA["visit_id"], VISITS_SCHEMA["page"]])


@dp.materialized_view
def visits_day():
    """Every hour's visits, merged by the fan-in (listing-time completeness on each row)."""
    merged = fan_in(spark, hourly_parents(ROOT, DAY), rule="all_done", schema=VISITS_SCHEMA, name="hours")
    return merged.frame.transform(with_completeness, merged.completeness)


@dp.materialized_view
def pages_declared():
    """A union of two inputs with a declared schema: nothing is analysed in the query function."""
    morning = spark.read.table("visits_day").where("_parent < '12'").select("visit_id", "page")
    evening = spark.read.table("visits_day").where("_parent >= '12'").select("page", "visit_id")
    return union_by_name({"morning": morning, "evening": evening}, schema=PAGE_SCHEMA)


@dp.materialized_view
def pages_undeclared():
    """The same union without a schema: Spark's unionByName checks it in the pipeline's analysis."""
    morning = spark.read.table("visits_day").where("_parent < '12'").select("visit_id", "page")
    evening = spark.read.table("visits_day").where("_parent >= '12'").select("page", "visit_id")
    return union_by_name({"morning": morning, "evening": evening}).withColumn("n", F.lit(1))
