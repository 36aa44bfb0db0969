"""What both backends share: telling them apart, the session a process already has, and Spark's errors read.

:func:`is_remote` is the one test of classic Spark against Spark Connect; :class:`Backend` is what differs
between them (implemented by :mod:`~spark_flows.core.backend.classic` and
:mod:`~spark_flows.core.backend.connect`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from spark_flows.errors import SparkFailedError, SparkFlowsError, StorageError, error_summary

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Backend(Protocol):
    """What differs between classic Spark (py4j, a JVM in reach) and Spark Connect, for one session."""

    def master(self) -> str | None:
        """The master URL (classic), or ``None`` on Connect."""
        ...

    def connect_url(self) -> str | None:
        """The ``sc://host:port`` a Connect session talks to (for child jobs run with ``--remote``)."""
        ...

    def class_loadable(self, name: str) -> bool:
        """True when the JVM class ``name`` can be loaded (True on Connect: that is the server's business)."""
        ...

    def local_property(self, key: str) -> str | None:
        """A thread-local Spark property (classic); ``None`` on Connect."""
        ...

    def set_local_property(self, key: str, value: str | None) -> None:
        """Set (or clear with ``None``) a thread-local Spark property; nothing on Connect."""
        ...

    def enter_group(self, group: str, description: str, pool: str) -> None:
        """Put this thread's Spark work in a cancellable group: a job group and FAIR pool, or an operation tag."""
        ...

    def leave_group(self, group: str) -> None:
        """Undo :meth:`enter_group` for this thread."""
        ...

    def cancel_group(self, group: str) -> None:
        """Cancel the running Spark work of ``group``."""
        ...

    def running_jobs(self) -> list[str] | None:
        """One line per running Spark job; ``None`` when the backend cannot tell (Connect)."""
        ...

    def quiet(self, *, debug: bool = False) -> None:
        """Spark's own log fatal only (INFO with ``debug``) for the rest of the application, where that is ours."""
        ...


def is_remote(spark: Any) -> bool:
    """True for a Spark Connect session (no JVM on this side)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


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


def submitted_conf_keys() -> set[str]:
    """The Spark conf keys ``spark-submit`` set on its command line (this process was launched by it)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return {key for key, _ in SparkConf().getAll()}


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
