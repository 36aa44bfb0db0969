"""The exception hierarchy of spark_flows.

Every error the library raises on purpose derives from :class:`SparkFlowsError`; most also derive from
the builtin that fits (``ValueError``, ``FileNotFoundError``, ``TimeoutError`` ...), so callers can catch
either. Each class carries a stable ``condition`` name, in the spirit of ``pyspark.errors``, that tests and
log scrapers can match without parsing the message.

Example
-------
>>> from spark_flows.errors import SchemaConflictError, SparkFlowsError
>>> err = SchemaConflictError("column 'id': int in 'a' vs string in 'b'")
>>> isinstance(err, (SparkFlowsError, ValueError)), err.condition
(True, 'SCHEMA_CONFLICT')
"""

from __future__ import annotations


class SparkFlowsError(Exception):
    """Root of every error raised by spark_flows on purpose."""

    condition = "SPARK_FLOWS_ERROR"


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


class StepFailedError(SparkFlowsError, RuntimeError):
    """A named step of a sequence failed; the message names the step."""

    condition = "STEP_FAILED"

    def __init__(self, message: str, *, step: str) -> None:
        super().__init__(message)
        self.step = step


class SchemaConflictError(SparkFlowsError, ValueError):
    """Inputs to be merged disagree on a column's type, or a schema is not what was expected."""

    condition = "SCHEMA_CONFLICT"


class MissingParentsError(SparkFlowsError, ValueError):
    """An aligned fan-in lacks some of its expected parents."""

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


class TriggerFailedError(SparkFlowsError, RuntimeError):
    """A triggered downstream job exited with a failure."""

    condition = "TRIGGER_FAILED"


def error_summary(exc: BaseException) -> str:
    """One line naming ``exc``'s type and first message line; a JVM error is described by its Java cause.

    Example
    -------
    >>> error_summary(ValueError("bad\\nmore"))
    'ValueError: bad'
    """
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            text = str(java.toString())
        except Exception:  # the gateway may be gone (cancelled job, stopped session)
            text = str(exc)
        return (text.strip().splitlines() or [type(exc).__name__])[0]
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
