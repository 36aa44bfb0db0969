"""Classic Spark: the session's SparkContext and JVM through py4j. The one place (with the other backend
modules) that touches ``sparkContext``, ``_jvm``, ``_jsc`` or ``_jsparkSession``; a function here raises
:class:`~spark_flows.errors.ClassicOnlyError` on a Connect session, naming the function, never a raw
``JVM_ATTRIBUTE_NOT_SUPPORTED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spark_flows.core.backend.base import is_remote
from spark_flows.errors import ClassicOnlyError

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Classic:
    """The :class:`~spark_flows.core.backend.base.Backend` of a classic session."""

    spark: SparkSession

    def master(self) -> str | None:
        return str(self.spark.sparkContext.master)

    def connect_url(self) -> str | None:
        return None

    def class_loadable(self, name: str) -> bool:
        java = jvm(self.spark, "class_loadable")
        try:
            java.java.lang.Class.forName(name, True, java.java.lang.Thread.currentThread().getContextClassLoader())
        except Exception:
            return False
        return True

    def local_property(self, key: str) -> str | None:
        return self.spark.sparkContext.getLocalProperty(key)

    def set_local_property(self, key: str, value: str | None) -> None:
        self.spark.sparkContext.setLocalProperty(key, value)  # type: ignore[arg-type]

    def enter_group(self, group: str, description: str, pool: str) -> None:
        sc = self.spark.sparkContext
        sc.setJobGroup(group, description, interruptOnCancel=True)
        sc.setLocalProperty("spark.scheduler.pool", pool)

    def leave_group(self, group: str) -> None:
        self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]

    def cancel_group(self, group: str) -> None:
        self.spark.sparkContext.cancelJobGroup(group)

    def running_jobs(self) -> list[str] | None:
        tracker = self.spark.sparkContext.statusTracker()
        lines = []
        for job_id in tracker.getActiveJobsIds():
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            stages = [s for s in (tracker.getStageInfo(i) for i in job.stageIds) if s is not None]
            done = sum(s.numCompletedTasks for s in stages)
            total = sum(s.numTasks for s in stages)
            called = f" ({stages[-1].name})" if stages else ""
            lines.append(f"job {job_id}{called}: {done}/{total} tasks")
        return lines

    def quiet(self, *, debug: bool = False) -> None:
        """As the shipped log4j2 file sets it, however the application was launched: a failed job says what
        failed in its one error line, and the task failures and stack traces Spark logs on the way tell the
        same failure hundreds of lines longer."""
        self.spark.sparkContext.setLogLevel("INFO" if debug else "FATAL")


def context(spark: SparkSession, *, needed_by: str) -> SparkContext:
    """The session's ``SparkContext``; :class:`ClassicOnlyError` naming ``needed_by`` on Connect."""
    if is_remote(spark):
        raise ClassicOnlyError(f"{needed_by} needs classic Spark (a SparkContext); this is a Spark Connect session",
                               parameters={"function": needed_by})
    return spark.sparkContext


def jvm(spark: SparkSession, needed_by: str) -> Any:
    """The driver JVM's packages through py4j (classic); :class:`ClassicOnlyError` naming ``needed_by`` on
    Connect or once the session stopped."""
    jvm = context(spark, needed_by=needed_by)._jvm
    if jvm is None:
        raise ClassicOnlyError(f"{needed_by}: the session's JVM gateway is closed (was the session stopped?)",
                               condition="SESSION_STOPPED", parameters={"function": needed_by})
    return jvm


def hadoop_configuration(spark: SparkSession, *, needed_by: str) -> Any:
    """The session's Hadoop ``Configuration`` (a py4j object; classic only)."""
    return context(spark, needed_by=needed_by)._jsc.hadoopConfiguration()


def group_job_ids(spark: SparkSession, group: str) -> list[int]:
    """The Spark job ids launched in ``group`` (classic only)."""
    return sorted(context(spark, needed_by="group_job_ids").statusTracker().getJobIdsForGroup(group))


# --- metrics ------------------------------------------------------------------------------------------

def _scala_seq(seq: Any) -> list[Any]:
    return [seq.apply(i) for i in range(seq.size())]


def max_job_id(spark: SparkSession) -> int:
    """The highest Spark job id so far (-1 if none)."""
    jstore = context(spark, needed_by="SparkMeter")._jsc.sc().statusStore()
    return max((int(j.jobId()) for j in _scala_seq(jstore.jobsList(None))), default=-1)


def job_ids_since(spark: SparkSession, first: int) -> list[int]:
    """Spark job ids ``>= first`` in the application's status store."""
    jstore = context(spark, needed_by="SparkMeter")._jsc.sc().statusStore()
    return sorted(int(j.jobId()) for j in _scala_seq(jstore.jobsList(None)) if int(j.jobId()) >= first)


def sql_execution_ids(spark: SparkSession) -> list[int]:
    """Ids of the SQL executions in the session's status store (what the UI's SQL tab lists)."""
    context(spark, needed_by="SparkMeter")
    store = spark._jsparkSession.sharedState().statusStore()
    return [int(e.executionId()) for e in _scala_seq(store.executionsList())]


def scan_nodes(spark: SparkSession, execution_id: int) -> list[tuple[str, str, str | None]]:
    """``(node name, description, "number of output rows" metric text)`` of every plan node of an execution."""
    context(spark, needed_by="SparkMeter")
    store = spark._jsparkSession.sharedState().statusStore()
    values = store.executionMetrics(execution_id)
    nodes = []
    for node in _scala_seq(store.planGraph(execution_id).allNodes()):
        rows: str | None = None
        for metric in _scala_seq(node.metrics()):
            if str(metric.name()) == "number of output rows":
                option = values.get(metric.accumulatorId())
                rows = str(option.get()) if option.isDefined() else None
        nodes.append((str(node.name()), str(node.desc()), rows))
    return nodes
