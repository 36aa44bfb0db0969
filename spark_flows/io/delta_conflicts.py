"""Delta's optimistic-concurrency conflicts: told apart from other failures, named in spark_flows' words, and
retried where a retry sees the committed table and succeeds.

Example
-------
>>> is_conflict(ValueError("ConcurrentAppendException mentioned in a message only"))
False
>>> retry_on_conflict(lambda: 7, path="/t")
7
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from spark_flows.core.backend import spark_failed
from spark_flows.errors import ConcurrentWriteError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _conflict_classes() -> tuple[type[BaseException], ...]:
    try:
        from delta.exceptions import (
            ConcurrentAppendException,
            ConcurrentDeleteDeleteException,
            ConcurrentDeleteReadException,
            ConcurrentTransactionException,
            ConcurrentWriteException,
            DeltaConcurrentModificationException,
            MetadataChangedException,
            ProtocolChangedException,
        )
    except ImportError:  # a client without delta-spark: only the error conditions below can tell
        return ()
    return (DeltaConcurrentModificationException, ConcurrentWriteException, MetadataChangedException,
            ProtocolChangedException, ConcurrentAppendException, ConcurrentDeleteReadException,
            ConcurrentDeleteDeleteException, ConcurrentTransactionException)


_CONFLICT_CLASSES = _conflict_classes()
_CONFLICT_CONDITIONS = ("DELTA_CONCURRENT_", "DELTA_PROTOCOL_CHANGED", "DELTA_METADATA_CHANGED")


def is_conflict(exc: BaseException) -> bool:
    """True for a Delta optimistic-concurrency conflict (by Delta's exception class or error condition)."""
    if isinstance(exc, _CONFLICT_CLASSES):
        return True
    get_condition = getattr(exc, "getCondition", None)
    condition = get_condition() if callable(get_condition) else None
    return bool(condition) and str(condition).startswith(_CONFLICT_CONDITIONS)


def conflict_kind(exc: BaseException) -> str:
    """A short phrase for what the other writer did, in spark_flows' words."""
    name = type(exc).__name__
    get_condition = getattr(exc, "getCondition", None)
    condition = str(get_condition() if callable(get_condition) else "")
    if "Transaction" in name or "TRANSACTION" in condition:
        return "another writer committed a batch of the same app id at the same time"
    if "Protocol" in name or "PROTOCOL" in condition or "Metadata" in name or "METADATA" in condition:
        return "another writer created or changed the table at the same time"
    return "another writer changed the same files at the same time"


def retry_on_conflict(action: Callable[[], T], *, path: str, attempts: int = 5, what: str = "delta write") -> T:
    """Call ``action()``, retrying Delta's optimistic-concurrency conflicts up to ``attempts`` times.

    Writers whose commits do not logically overlap (disjoint ``replaceWhere`` partitions, blind appends)
    can still collide, above all on a table's first commit; a retry sees the committed table and succeeds.

    Raises
    ------
    ConcurrentWriteError: the conflict persisted; names the table and what the other writer did.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_conflict(exc):
                raise spark_failed(f"{what} to {path}", exc) from exc
            if attempt == attempts:
                raise ConcurrentWriteError(
                    f"{what} to {path} failed {attempts} times because {conflict_kind(exc)}; "
                    "retry later, or give concurrent writers disjoint partitions",
                    parameters={"path": path, "attempts": attempts, "kind": conflict_kind(exc)}) from exc
            logger.info("%s to %s: %s (attempt %d/%d), retrying", what, path, conflict_kind(exc), attempt, attempts)
            time.sleep(0.2 * attempt)
    raise ConcurrentWriteError(f"{what} to {path}: no attempt made", parameters={"path": path})
