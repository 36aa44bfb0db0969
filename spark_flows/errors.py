"""The exception hierarchy of spark_flows: errors are data.

Every error the library raises derives from :class:`SparkFlowsError`, and most also from the builtin that
fits (``ValueError``, ``TypeError``, ``FileNotFoundError``, ``TimeoutError`` ...), so callers can catch
either. As in ``pyspark.errors``, each error carries a stable *condition* (``getCondition()``) and its
*parameters* (``getMessageParameters()``): callers and tests match on those, never on the message text,
which is written for a person and says what to do.

Example
-------
>>> from spark_flows.errors import SchemaConflictError, SparkFlowsError
>>> err = SchemaConflictError("column 'id': int in 'a' vs string in 'b'", parameters={"column": "id"})
>>> isinstance(err, (SparkFlowsError, ValueError)), err.getCondition(), err.getMessageParameters()
(True, 'SCHEMA_CONFLICT', {'column': 'id'})
>>> invalid_argument("concurrency", 0, "an int >= 1").getMessageParameters()["argument"]
'concurrency'
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import Any, ClassVar


class SparkFlowsError(Exception):
    """Root of every error raised by spark_flows.

    Parameters
    ----------
    message: what went wrong and what to do, for a person.
    condition: a stable name for the failure (default: the class's).
    parameters: the values the message was built from, for programs.
    """

    condition: ClassVar[str] = "SPARK_FLOWS_ERROR"

    def __init__(self, message: str, *, condition: str | None = None,
                 parameters: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self._condition = condition or type(self).condition
        self.parameters: dict[str, Any] = dict(parameters or {})

    def getCondition(self) -> str:
        """The error's condition, e.g. ``'MISSING_PARENTS'``."""
        return self._condition

    def getMessageParameters(self) -> dict[str, Any]:
        """The parameters the message was built from."""
        return dict(self.parameters)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes with its data
        return _rebuild, (type(self), self.message, self._condition, self.parameters)


def _rebuild(cls: type[SparkFlowsError], message: str, condition: str, parameters: dict[str, Any]) -> SparkFlowsError:
    error = cls.__new__(cls)
    SparkFlowsError.__init__(error, message, condition=condition, parameters=parameters)
    return error


class SparkFlowsValueError(SparkFlowsError, ValueError):
    """An argument has a wrong value (pyspark's ``PySparkValueError``)."""

    condition = "INVALID_ARGUMENT"


class SparkFlowsTypeError(SparkFlowsError, TypeError):
    """An argument has a wrong type (pyspark's ``PySparkTypeError``)."""

    condition = "INVALID_ARGUMENT_TYPE"


def invalid_argument(argument: str, value: Any, expected: str) -> SparkFlowsValueError:
    """The error for ``argument`` given ``value`` where ``expected`` was needed."""
    return SparkFlowsValueError(f"{argument} must be {expected}, got {value!r}",
                                parameters={"argument": argument, "value": repr(value), "expected": expected})


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def checked_name(argument: str, value: Any) -> str:
    """``value`` if it is a valid name: the one rule for every name spark_flows puts into a path, a job
    group, a scheduler pool or an app id (steps, sequences, branches, streams, run ids, batch app ids).

    Raises
    ------
    SparkFlowsValueError: not a string of letters, digits, ``_``, ``.`` or ``-`` starting with a letter,
        digit or ``_``.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise invalid_argument(argument, value, f"a string matching {_NAME.pattern}")
    return value


def not_callable(argument: str, value: Any) -> SparkFlowsTypeError:
    """The error for ``argument`` that must be callable and is not."""
    return SparkFlowsTypeError(f"{argument} must be callable, got {type(value).__name__}",
                               condition="NOT_CALLABLE", parameters={"argument": argument,
                                                                     "type": type(value).__name__})


class ClassicOnlyError(SparkFlowsError, RuntimeError):
    """A function needs classic Spark (a JVM beside the driver) and the session is Spark Connect."""

    condition = "NEEDS_CLASSIC_SPARK"


class ConfigError(SparkFlowsError, ValueError):
    """A configuration file or a flag is unreadable or invalid."""

    condition = "INVALID_CONFIG"


class EnvironmentSetupError(SparkFlowsError, RuntimeError):
    """Spark, Java or Delta Lake is not set up as spark_flows needs."""

    condition = "ENVIRONMENT_NOT_READY"


class InputNotFoundError(SparkFlowsError, FileNotFoundError):
    """An input path does not exist."""

    condition = "INPUT_NOT_FOUND"


class BadRecordsError(SparkFlowsError, ValueError):
    """Input rows could not be parsed."""

    condition = "BAD_RECORDS"


class StorageError(SparkFlowsError, OSError):
    """A filesystem operation (rename, create) did not happen as required."""

    condition = "STORAGE_OPERATION_FAILED"


class StepFailedError(SparkFlowsError, RuntimeError):
    """A named step of a sequence failed; ``step`` names it."""

    condition = "STEP_FAILED"

    @property
    def step(self) -> str:
        """The failed step's name."""
        return str(self.parameters.get("step", ""))


class SchemaConflictError(SparkFlowsError, ValueError):
    """Inputs to be merged disagree on a column's type, or a schema is not what was expected."""

    condition = "SCHEMA_CONFLICT"


class MissingParentsError(SparkFlowsError, ValueError):
    """A fan-in's trigger rule is not met: parents missing, empty, unreadable or conflicting."""

    condition = "MISSING_PARENTS"


class DuplicateKeysError(SparkFlowsError, ValueError):
    """A join alignment input holds duplicate keys that would multiply rows."""

    condition = "DUPLICATE_KEYS"


class BranchFailedError(SparkFlowsError, RuntimeError):
    """One or more branches of a split or fan-in failed."""

    condition = "BRANCH_FAILED"


class RouteError(SparkFlowsError, ValueError):
    """An exclusive choice could not pick exactly one branch."""

    condition = "NO_ROUTE"


class UnknownOutputTypeError(RouteError):
    """An output type is not registered in the writer factory."""

    condition = "UNKNOWN_OUTPUT_TYPE"


class WriteRefusedError(SparkFlowsError, ValueError):
    """A write was refused before anything was written: empty batch, batch out of order, a target that
    spark_flows did not publish, an output nested inside another table, a less complete result."""

    condition = "WRITE_REFUSED"


class ConcurrentWriteError(SparkFlowsError, RuntimeError):
    """Another writer committed to the same table in a way that conflicts with this write."""

    condition = "CONCURRENT_WRITE"


class MarkerTimeoutError(SparkFlowsError, TimeoutError):
    """A readiness marker did not appear in time."""

    condition = "MARKER_TIMEOUT"


class MarkerMismatchError(SparkFlowsError, ValueError):
    """A readiness marker exists but does not match what the consumer expects."""

    condition = "MARKER_MISMATCH"


class RunLockedError(SparkFlowsError, RuntimeError):
    """Another live run holds the job's run lock."""

    condition = "RUN_LOCKED"


class DependsOnPastError(SparkFlowsError, RuntimeError):
    """The previous execution date of a depends-on-past job has not succeeded."""

    condition = "DEPENDS_ON_PAST"


class CannotAppendError(SparkFlowsError, RuntimeError):
    """A Delta table cannot be appended to without Spark (see :mod:`spark_flows.io.delta_append`): use Spark."""

    condition = "CANNOT_APPEND_WITHOUT_SPARK"


class TriggerFailedError(SparkFlowsError, RuntimeError):
    """A triggered downstream job exited with a failure."""

    condition = "TRIGGER_FAILED"


class EventDeliveryError(SparkFlowsError, RuntimeError):
    """A run's event could not reach a sink (OpenLineage, Dagster Pipes) and strict delivery was asked for."""

    condition = "EVENT_NOT_DELIVERED"


class NotificationFailedError(SparkFlowsError, RuntimeError):
    """A partial result was published but announcing it (a webhook, a callback) failed."""

    condition = "NOTIFICATION_FAILED"


class StreamingError(SparkFlowsError, RuntimeError):
    """A streaming query cannot be run as asked (e.g. its checkpoint holds no query id)."""

    condition = "STREAMING_ERROR"


class SparkFailedError(SparkFlowsError, RuntimeError):
    """Spark failed below a spark_flows operation; ``getCondition()`` is Spark's own condition when it had
    one, and Spark's error is the ``__cause__`` (see :func:`spark_failed`)."""

    condition = "SPARK_FAILED"


class UnknownNameError(SparkFlowsError, KeyError):
    """A lookup by name (a branch, a node) found nothing; the message lists the names there are."""

    condition = "UNKNOWN_NAME"

    def __str__(self) -> str:  # a KeyError would print its message quoted
        return self.message


class InvalidFlagError(SparkFlowsValueError, argparse.ArgumentTypeError):
    """A flag's value is malformed (argparse prints the message as the usage error)."""

    condition = "INVALID_FLAG"


class JobFailedError(SparkFlowsError, RuntimeError):
    """A job run by a runner (a backfill partition) exited with a failure; the message is its own error."""

    condition = "JOB_FAILED"


def _first_line(text: str, limit: int = 400) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def root_cause(exc: BaseException) -> str | None:
    """The first line of the deepest Java cause of a Spark error (e.g. ``ChecksumException: ...``), if any."""
    java = getattr(exc, "java_exception", None)
    cause = _root_cause(java) if java is not None else None
    return _first_line(cause.split(".")[-1] if cause and ": " not in cause else _short(cause), 300) if cause else None


def _short(text: str | None) -> str:
    """``org.apache.hadoop.fs.ChecksumException: msg`` -> ``ChecksumException: msg``."""
    if not text:
        return ""
    head, sep, rest = text.partition(": ")
    return f"{head.rsplit('.', 1)[-1]}{sep}{rest}" if " " not in head else text


def _root_cause(java: Any) -> str | None:
    """The deepest Java cause's ``toString()``, or ``None`` when the gateway is gone."""
    try:
        cause, seen = java, 0
        while cause.getCause() is not None and seen < 20:
            cause, seen = cause.getCause(), seen + 1
        return str(cause.toString()) if seen else None
    except Exception:  # the gateway may be gone (cancelled job, stopped session)
        return None


_PYTHON_PROXY = "An exception was raised by the Python Proxy"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def _python_error(message: str) -> str | None:
    r"""The last ``Type: message`` line of the Python traceback a Spark error carries (``foreachBatch``).

    >>> _python_error("Reason: An exception was raised by the Python Proxy. Return Message: Traceback (most "
    ...               "recent call last):\n  File 'j.py', line 3\nRuntimeError: disk full\n\n=== Streaming Query ===")
    'RuntimeError: disk full'
    """
    if _PYTHON_PROXY not in message:
        return None
    traceback = message.split(_PYTHON_PROXY, 1)[1].split("=== Streaming Query", 1)[0]
    lines = [line.strip() for line in traceback.splitlines()]
    return next((line for line in reversed(lines) if _EXCEPTION_LINE.match(line)), None)


def error_summary(exc: BaseException) -> str:
    """One line naming what failed and why: a library error's condition, a Spark error's condition and root cause.

    Example
    -------
    >>> error_summary(ValueError("bad\\nmore"))
    'ValueError: bad'
    >>> error_summary(InputNotFoundError("input path x does not exist"))
    '[INPUT_NOT_FOUND] input path x does not exist'
    """
    if isinstance(exc, SparkFlowsError):
        return f"[{exc.getCondition()}] {_first_line(exc.message)}"
    summary = _summary(exc)
    if _NO_SPACE in f"{summary} {exc}":
        return f"[DISK_FULL] the disk is full ({_NO_SPACE}); free space or write elsewhere, then run again: {summary}"
    return summary


_NO_SPACE = "No space left on device"


def _summary(exc: BaseException) -> str:
    text = _first_line(str(exc))
    condition = getattr(exc, "getCondition", None)
    java = getattr(exc, "java_exception", None)
    if condition is not None:  # a pyspark error: its message starts with [CONDITION] already
        raised = _python_error(str(exc))
        if raised:  # a foreachBatch function failed: its own exception, not the proxy's first traceback line
            return f"{text.split(' Return Message:')[0]} (cause: {_first_line(raised, 300)})"
        cause = _root_cause(java) if java is not None else None
        first_cause = _first_line(cause or "", 300)
        if first_cause and first_cause.split(":")[0].split(".")[-1] not in text:
            return f"{text} (cause: {first_cause})"
        return text or type(exc).__name__
    if java is not None:
        try:
            top = _first_line(str(java.toString()))
        except Exception:  # the gateway is gone
            return text or type(exc).__name__
        top = _short(top)
        cause = _first_line(_short(_root_cause(java)), 300)
        return f"{top} (cause: {cause})" if cause and cause not in top else (top or type(exc).__name__)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
