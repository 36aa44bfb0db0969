"""Plain PySpark doing visits_cube's reads and writes for one day: the hours read, the cube with its
completeness columns written to the day's partition (replaceWhere), one completeness row. No per-hour checks,
no markers, no flow record: the floor a job is compared with.

    spark-submit benchmarks/plain/visits_cube.py <visits root> <data root> <YYYYMMDD>
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flows.book.datasets import VISITS_SCHEMA
from spark_flows.book.transforms import visits_cube

source, root, day = sys.argv[1:4]
spark = (SparkSession.builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
         .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog").getOrCreate())
visits = spark.read.schema(VISITS_SCHEMA).json(f"{source}/date={day}")  # discovers the hour partition column
hours = visits.select("hour").distinct().count()  # the book's completeness: the hours that have rows
ratio = round(min(hours, 24) / 24, 4)
visits.transform(visits_cube).withColumn("completeness_ratio", F.lit(ratio)) \
    .withColumn("is_approximate", F.lit(ratio < 1)).withColumn("date", F.lit(day)) \
    .write.format("delta").mode("overwrite").option("replaceWhere", f"date = '{day}'").partitionBy("date") \
    .save(f"{root}/tables/visits_cube")
spark.createDataFrame([(day, 24, hours, ratio)], "date string, expected int, present int, ratio double") \
    .write.format("delta").mode("overwrite").option("replaceWhere", f"date = '{day}'").partitionBy("date") \
    .save(f"{root}/tables/visits_cube_completeness")
spark.stop()
