"""The core layer: configuration, the Delta-enabled session, the one module that knows the backend (classic or
Spark Connect), scheduling, waiting, spark-submit, metrics and progress. Imports only ``spark_flows.errors``."""
