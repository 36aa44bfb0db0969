"""Run on a cluster by test_cluster: where do executors import spark_flows from?"""

import sys

from pyspark.sql import SparkSession


def origin(_: object) -> str:
    import spark_flows

    return spark_flows.__file__


if __name__ == "__main__":
    spark = SparkSession.builder.getOrCreate()
    paths = sorted(set(spark.sparkContext.parallelize(range(4), 2).map(origin).collect()))
    print("EXECUTOR_SPARK_FLOWS=" + ";".join(paths))
    spark.stop()
    sys.exit(0)
