"""The one module that knows whether a session is classic Spark (py4j, a JVM in reach) or Spark Connect.

Everything else asks here: storage picks its filesystem, the scheduler its job groups, the meter its
status store. Nothing outside this module touches ``sparkContext``, ``_jvm``, ``_jsc`` or
``_jsparkSession``. A function that needs the JVM raises :class:`ClassicOnlyError` on Connect, naming the
function and what to use instead, never a raw ``JVM_ATTRIBUTE_NOT_SUPPORTED``.

Example
-------
>>> from spark_flows.core.backend import is_remote
>>> is_remote(object())
False
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from spark_flows.errors import (
    ClassicOnlyError,
    SparkFailedError,
    SparkFlowsError,
    StorageError,
    error_summary,
)

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession


def is_remote(spark: Any) -> bool:
    """True for a Spark Connect session (no JVM on this side)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


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


def live_session() -> SparkSession | None:
    """The session this process already has, from any thread: this thread's active session, else its Spark
    Connect default session, else the classic session instantiated with a live SparkContext.

    (``SparkSession.getActiveSession()`` alone is thread-local: a job's ``main()`` run in a backfill thread
    would otherwise build, and then stop, a session of its own.)
    """
    import sys

    from pyspark.sql import SparkSession as Session
    from pyspark.util import is_remote_only

    active = Session.getActiveSession()
    if active is not None:
        return active

    connect = sys.modules.get("pyspark.sql.connect.session")
    if connect is not None:
        default = connect.SparkSession._get_default_session()
        if default is not None:
            return default
    if is_remote_only():  # pyspark-client: no classic session can exist
        return None
    from pyspark.sql import SparkSession

    instantiated = SparkSession._instantiatedSession
    if instantiated is not None and instantiated.sparkContext._jsc is not None:
        return instantiated
    return None


def connect_url(spark: SparkSession) -> str | None:
    """The ``sc://host:port`` a Spark Connect session talks to (for child jobs run with ``--remote``);
    ``None`` for classic sessions. Connection parameters (tokens) are not carried over."""
    if not is_remote(spark):
        return None
    try:
        return f"sc://{spark.client._builder.endpoint}"  # type: ignore[attr-defined]
    except AttributeError:  # a client whose internals moved: children then need --remote or $SPARK_REMOTE
        return None


def submitted_conf_keys() -> set[str]:
    """The Spark conf keys ``spark-submit`` set on its command line (this process was launched by it)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return {key for key, _ in SparkConf().getAll()}


def master(spark: SparkSession) -> str | None:
    """The session's master URL (classic), or ``None`` on Connect."""
    return None if is_remote(spark) else spark.sparkContext.master


def class_loadable(spark: SparkSession, name: str) -> bool:
    """True when the JVM class ``name`` can be loaded by the driver (classic); True on Connect (server-side)."""
    if is_remote(spark):
        return True
    java = jvm(spark, "class_loadable")
    try:
        java.java.lang.Class.forName(name, True, java.java.lang.Thread.currentThread().getContextClassLoader())
    except Exception:
        return False
    return True


def driver_stderr(line: str) -> bool:
    """Print ``line`` on the JVM's own stderr when this Python driver runs under ``spark-submit``.

    ``spark-submit`` merges the Python driver's stderr into its stdout; the JVM's ``System.err`` is the
    stderr the user sees. Returns False when there is no such JVM.
    """
    from pyspark.util import is_remote_only

    if is_remote_only():
        return False
    from pyspark import SparkContext

    if SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        SparkContext._ensure_initialized()  # connect to spark-submit's JVM (it is already running)
    gateway = SparkContext._gateway
    if gateway is None:
        return False
    try:
        gateway.jvm.java.lang.System.err.println(line)
    except Exception:
        return False
    return True


def hadoop_configuration(spark: SparkSession, *, needed_by: str) -> Any:
    """The session's Hadoop ``Configuration`` (a py4j object; classic only)."""
    return context(spark, needed_by=needed_by)._jsc.hadoopConfiguration()


def analysis_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is Spark refusing to analyse a DataFrame inside a Spark Declarative Pipelines query
    function (where only lazy definitions are allowed)."""
    return spark_error(exc)[0] == "ATTEMPT_ANALYSIS_IN_PIPELINE_QUERY_FUNCTION"


# --- scheduling ---------------------------------------------------------------------------------------

def get_local_property(spark: SparkSession, key: str) -> str | None:
    """A thread-local Spark property (classic); ``None`` on Connect."""
    if is_remote(spark):
        return None
    return spark.sparkContext.getLocalProperty(key)


def set_local_property(spark: SparkSession, key: str, value: str | None) -> None:
    """Set (or clear with ``None``) a thread-local Spark property; no-op on Connect."""
    if not is_remote(spark):
        spark.sparkContext.setLocalProperty(key, value)  # type: ignore[arg-type]


def enter_group(spark: SparkSession, group: str, description: str, pool: str) -> None:
    """Put this thread's Spark work in a cancellable group: a job group and FAIR pool (classic), an
    operation tag (Connect)."""
    if is_remote(spark):
        spark.addTag(group)
        return
    sc = spark.sparkContext
    sc.setJobGroup(group, description, interruptOnCancel=True)
    sc.setLocalProperty("spark.scheduler.pool", pool)


def leave_group(spark: SparkSession, group: str) -> None:
    """Undo :func:`enter_group` for this thread (the pool; the tag on Connect)."""
    if is_remote(spark):
        spark.removeTag(group)
        return
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]


def cancel_group(spark: SparkSession, group: str) -> None:
    """Cancel the running Spark work of ``group`` (job group on classic, operation tag on Connect)."""
    if is_remote(spark):
        spark.interruptTag(group)
    else:
        spark.sparkContext.cancelJobGroup(group)


def group_job_ids(spark: SparkSession, group: str) -> list[int]:
    """The Spark job ids launched in ``group`` (classic only)."""
    return sorted(context(spark, needed_by="group_job_ids").statusTracker().getJobIdsForGroup(group))


def quiet_spark(spark: SparkSession, *, debug: bool = False) -> None:
    """Spark's own log lines fatal only (INFO with ``debug``) for the rest of a classic application, however
    it was launched, as the shipped log4j2 file sets them: a failed job says what failed in its one error
    line, and the task failures and stack traces Spark logs on the way tell the same failure hundreds of
    lines longer. On Connect the server's logging is the server's."""
    if not is_remote(spark):
        spark.sparkContext.setLogLevel("INFO" if debug else "FATAL")


def running_jobs(spark: SparkSession) -> list[str] | None:
    """One line per running Spark job (the call that started it, tasks done of total); ``None`` on Connect,
    whose client has no status tracker."""
    if is_remote(spark):
        return None
    tracker = spark.sparkContext.statusTracker()
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


# --- Spark's errors, read ------------------------------------------------------------------------------

def spark_error(exc: BaseException) -> tuple[str | None, dict[str, str]]:
    """The error condition and message parameters of a Spark error, however it arrived.

    A pyspark error carries them itself; a raw ``Py4JJavaError`` (a job aborted by a failed task) carries a
    Java ``SparkThrowable`` somewhere in its cause chain.
    """
    get_condition = getattr(exc, "getCondition", None)
    get_parameters = getattr(exc, "getMessageParameters", None)
    if callable(get_condition) and callable(get_parameters) and get_condition():
        return str(get_condition()), {str(k): str(v) for k, v in (get_parameters() or {}).items()}
    cause, depth = getattr(exc, "java_exception", None), 0
    while cause is not None and depth < 20:
        try:
            condition = cause.getCondition() if hasattr(cause, "getCondition") else None
            if condition:
                parameters = cause.getMessageParameters()
                return str(condition), {str(k): str(parameters.get(k)) for k in parameters.keySet()}
            cause, depth = cause.getCause(), depth + 1
        except Exception:  # not a SparkThrowable, or the gateway is gone
            return None, {}
    return None, {}


def spark_failed(what: str, exc: BaseException) -> SparkFlowsError:
    """The library error for a Spark failure below ``what`` (e.g. ``"delta write to /t"``): a full disk is
    :class:`StorageError` ``DISK_FULL``; any other keeps Spark's condition (``SPARK_FAILED`` when it has
    none). A library error passes through unchanged. Raise it ``from exc`` so Spark's error stays the cause.

    >>> spark_failed("delta write to /t", OSError("[Errno 28] No space left on device")).getCondition()
    'DISK_FULL'
    >>> from spark_flows.errors import InputNotFoundError
    >>> spark_failed("x", InputNotFoundError("gone")).getCondition()
    'INPUT_NOT_FOUND'
    """
    if isinstance(exc, SparkFlowsError):
        return exc
    summary = error_summary(exc)
    condition, parameters = spark_error(exc)
    if summary.startswith("[DISK_FULL]"):
        return StorageError(f"{what} failed: the disk is full (No space left on device); free space or write "
                            "elsewhere, then run again", condition="DISK_FULL", parameters={"what": what})
    if condition and summary.startswith(f"[{condition}"):  # the condition goes first once, not twice
        summary = summary.split("]", 1)[1].strip()
    return SparkFailedError(f"{what} failed: {summary}", condition=condition or SparkFailedError.condition,
                            parameters={"what": what, **parameters})
