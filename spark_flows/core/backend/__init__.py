"""The one place that knows whether a session is classic Spark (py4j, a JVM in reach) or Spark Connect.

Everything else asks here: ``backend.of(spark)`` is the session's :class:`Backend` (job groups, local
properties, cancelling, progress, logging, master and Connect URL), implemented once per backend in
:mod:`~spark_flows.core.backend.classic` and :mod:`~spark_flows.core.backend.connect`; what only classic
Spark has (its JVM, its Hadoop configuration, its status store) raises
:class:`~spark_flows.errors.ClassicOnlyError` on Connect, naming the function and what to use instead.
Nothing outside this package touches ``sparkContext``, ``_jvm``, ``_jsc`` or ``_jsparkSession``.

Example
-------
>>> from spark_flows.core import backend
>>> backend.is_remote(object()), type(backend.of(spark)).__name__ in ("Classic", "Connect")
(False, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spark_flows.core.backend.base import (
    Backend,
    analysis_refused,
    driver_stderr,
    is_remote,
    live_session,
    spark_error,
    spark_failed,
    submitted_conf_keys,
)
from spark_flows.core.backend.classic import (
    Classic,
    context,
    group_job_ids,
    hadoop_configuration,
    job_ids_since,
    jvm,
    max_job_id,
    scan_nodes,
    sql_execution_ids,
)
from spark_flows.core.backend.connect import Connect

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "Backend", "Classic", "Connect", "analysis_refused", "context", "driver_stderr", "group_job_ids",
    "hadoop_configuration", "is_remote", "job_ids_since", "jvm", "live_session", "max_job_id", "of", "scan_nodes",
    "spark_error", "spark_failed", "sql_execution_ids", "submitted_conf_keys",
]


def of(spark: SparkSession) -> Backend:
    """The session's backend: :class:`Connect` for a Spark Connect session, else :class:`Classic`."""
    return Connect(spark) if is_remote(spark) else Classic(spark)
