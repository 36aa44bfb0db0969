"""Plain PySpark doing devices_loader's reads and writes: raw devices read once (persisted), two Delta appends
with txnAppId/txnVersion, one CSV export. No checks, no markers, no flow record: the floor a job is compared with.

    spark-submit benchmarks/plain/devices_loader.py <raw devices> <data root> <batch id>
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

source, root, batch = sys.argv[1:4]
spark = (SparkSession.builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
         .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog").getOrCreate())
devices = spark.read.schema("type string, full_name string, version string").json(source).persist()
devices.count()
txn = {"txnAppId": "devices_loader", "txnVersion": batch}
devices.write.format("delta").options(**txn).mode("append").save(f"{root}/tables/devices")
devices.withColumn("full_name", F.concat_ws(" ", "full_name", "version")) \
    .withColumn("loading_time", F.current_timestamp()) \
    .write.format("delta").options(**txn).mode("append").save(f"{root}/tables/devices_enriched")
devices.write.mode("overwrite").option("sep", ";").option("header", "true") \
    .csv(f"{root}/exports/devices/batch={batch}")
devices.unpersist()
spark.stop()
