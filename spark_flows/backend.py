"""The one module that knows whether a session is classic Spark (py4j, a JVM in reach) or Spark Connect.

Everything else asks here: storage picks its filesystem, the scheduler its job groups, the meter its
status store. Nothing outside this module touches ``sparkContext``, ``_jvm``, ``_jsc`` or
``_jsparkSession``. A function that needs the JVM raises :class:`ClassicOnlyError` on Connect, naming the
function and what to use instead, never a raw ``JVM_ATTRIBUTE_NOT_SUPPORTED``.

Example
-------
>>> from spark_flows.backend import is_remote
>>> is_remote(object())
False
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

from spark_flows.errors import ClassicOnlyError, spark_error, spark_failed
from spark_flows.filesystems import HDFS, UNKNOWN, Guarantees, no_compare_and_swap
from spark_flows.object_store import S3ObjectStore, hadoop_lookup, spark_conf_lookup
from spark_flows.storage import ArrowFileSystem, FileInfo, FileSystem, LocalFileSystem, RoutingFileSystem, now_ms

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


def _jvm(spark: SparkSession, needed_by: str) -> Any:
    jvm = context(spark, needed_by=needed_by)._jvm
    if jvm is None:
        raise ClassicOnlyError(f"{needed_by}: the session's JVM gateway is closed (was the session stopped?)",
                               condition="SESSION_STOPPED", parameters={"function": needed_by})
    return jvm


def live_session() -> SparkSession | None:
    """The session this process already has, from any thread: its Spark Connect default session, or the
    classic session instantiated with a live SparkContext.

    (``SparkSession.getActiveSession()`` is thread-local: a job's ``main()`` run in a backfill thread would
    otherwise build, and then stop, a session of its own.)
    """
    import sys

    from pyspark.util import is_remote_only

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
    jvm = _jvm(spark, "class_loadable")
    try:
        jvm.java.lang.Class.forName(name, True, jvm.java.lang.Thread.currentThread().getContextClassLoader())
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


def analysis_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is Spark refusing to analyse a DataFrame inside a Spark Declarative Pipelines query
    function (where only lazy definitions are allowed)."""
    return spark_error(exc)[0] == "ATTEMPT_ANALYSIS_IN_PIPELINE_QUERY_FUNCTION"


# --- storage ------------------------------------------------------------------------------------------

class HadoopFileSystem:
    """The session's Hadoop FileSystem (``file:``, ``hdfs:``, ``s3a:`` ...), called on the driver."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = _jvm(spark, "Storage")
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def guarantees(self, path: str) -> Guarantees:
        """HDFS: atomic rename and exclusive create (NameNode); any other scheme here: none assumed."""
        return HDFS if path.startswith(("hdfs:", "viewfs:")) or (":/" not in path[:12]) else UNKNOWN

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        raise no_compare_and_swap(path)

    def write_if_match(self, path: str, data: bytes, tag: str) -> str | None:
        raise no_compare_and_swap(path)

    def _fs(self, jpath: Any) -> Any:
        return jpath.getFileSystem(self._conf)

    def qualify(self, path: str) -> str:
        jpath = self._path(path)
        return str(self._fs(jpath).makeQualified(jpath).toString())

    def info(self, path: str) -> FileInfo | None:
        jpath = self._path(path)
        fs = self._fs(jpath)
        if not fs.exists(jpath):
            return None
        st = fs.getFileStatus(jpath)
        return FileInfo(path, str(jpath.getName()), bool(st.isDirectory()), int(st.getLen()),
                        int(st.getModificationTime()))

    def list(self, path: str, after: str = "") -> list[FileInfo]:
        jpath = self._path(path)
        fs = self._fs(jpath)
        if not fs.exists(jpath) or not fs.getFileStatus(jpath).isDirectory():
            return []
        return [FileInfo(f"{path.rstrip('/')}/{st.getPath().getName()}", str(st.getPath().getName()),
                         bool(st.isDirectory()), int(st.getLen()), int(st.getModificationTime()))
                for st in fs.listStatus(jpath) if str(st.getPath().getName()) > after]

    def size(self, path: str) -> int:
        jpath = self._path(path)
        return int(self._fs(jpath).getContentSummary(jpath).getLength())

    def touch(self, path: str) -> None:
        jpath = self._path(path)
        self._fs(jpath).setTimes(jpath, now_ms(), -1)

    def mkdirs(self, path: str) -> None:
        jpath = self._path(path)
        self._fs(jpath).mkdirs(jpath)

    def delete(self, path: str, recursive: bool) -> bool:
        jpath = self._path(path)
        return bool(self._fs(jpath).delete(jpath, recursive))

    def rename(self, src: str, dst: str) -> bool:
        jsrc, jdst = self._path(src), self._path(dst)
        fs = self._fs(jsrc)
        if fs.exists(jdst):
            return False
        parent = jdst.getParent()
        if parent is not None:
            fs.mkdirs(parent)
        return bool(fs.rename(jsrc, jdst))

    def replace(self, src: str, dst: str) -> bool:
        jsrc, jdst = self._path(src), self._path(dst)
        fs = self._fs(jsrc)
        if fs.exists(jdst):
            fs.delete(jdst, False)
        return bool(fs.rename(jsrc, jdst))

    def create_exclusive(self, path: str, data: bytes) -> bool:
        jpath = self._path(path)
        fs = self._fs(jpath)
        try:
            stream = fs.create(jpath, False)
        except Exception as exc:  # FileAlreadyExistsException arrives as a Py4JJavaError
            java = getattr(exc, "java_exception", None)
            if fs.exists(jpath) or (java is not None and "FileAlreadyExists" in str(java.getClass().getName())):
                return False  # (the holder may have released it since: the caller looks again)
            raise spark_failed(f"creating {path}", exc) from exc
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
        return True

    def read_bytes(self, path: str) -> bytes:
        jpath = self._path(path)
        stream = self._fs(jpath).open(jpath)
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write_bytes(self, path: str, data: bytes) -> None:
        jpath = self._path(path)
        stream = self._fs(jpath).create(jpath, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()


def file_system(spark: SparkSession) -> FileSystem:
    """The filesystem spark_flows uses beside ``spark``: local paths through ``os``; other schemes through the
    session's Hadoop FS on classic, through ``pyarrow.fs`` on Connect.

    On Connect the client reaches only what it can mount or address itself, so the data root must be a
    path that client and server share (local mode, a mounted volume, an object store both can reach).
    """
    objects = _OBJECT_STORES.get(spark)
    if is_remote(spark):
        if objects is None:
            objects = _OBJECT_STORES[spark] = S3ObjectStore(spark_conf_lookup(lambda key: spark.conf.get(key, None)))
        return RoutingFileSystem(LocalFileSystem(), ArrowFileSystem(), objects=objects)
    hadoop = HadoopFileSystem(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    if objects is None:
        objects = _OBJECT_STORES[spark] = S3ObjectStore(hadoop_lookup(conf))
    default = str(conf.get("fs.defaultFS", "file:///"))
    return RoutingFileSystem(LocalFileSystem(), hadoop, local_default=default.startswith("file:"), objects=objects)


#: one object store per session: its clients (one per bucket) are reused by every Storage of the session
_OBJECT_STORES: weakref.WeakKeyDictionary[Any, S3ObjectStore] = weakref.WeakKeyDictionary()


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


# --- Parquet footers ----------------------------------------------------------------------------------

def parquet_key_value(spark: SparkSession, file: str, key: str) -> str | None:
    """A key-value metadata entry of a Parquet file's footer, read on the driver (no Spark job)."""
    if is_remote(spark):
        import pyarrow.parquet as pq

        from spark_flows.filesystems import local_path

        metadata = pq.read_metadata(local_path(file)).metadata or {}
        value = metadata.get(key.encode("utf-8"))
        return value.decode("utf-8") if value is not None else None
    jvm = _jvm(spark, "schema_of")
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
        jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(file), conf))
    try:
        text = reader.getFooter().getFileMetaData().getKeyValueMetaData().get(key)
    finally:
        reader.close()
    return str(text) if text is not None else None
