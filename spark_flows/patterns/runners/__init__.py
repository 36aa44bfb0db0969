"""Single Runner and Concurrent Runner: at most one run of a job at a time, or a bounded number at once.

The runs themselves are shown in :mod:`~spark_flows.patterns.runners.single` and
:mod:`~spark_flows.patterns.runners.concurrent`; here, what each draws:

Example
-------
>>> single = SingleRunner("trend", lock_root="/tmp/locks", ledger_path="/tmp/ledger")
>>> [n.id for n in single.graph().nodes], [n.id for n in ConcurrentRunner("backfill", ("a",)).graph().nodes]
(['single_run'], ['backfill', 'backfill.a'])
"""

from __future__ import annotations

from spark_flows.patterns.runners.concurrent import (
    ConcurrentRunner,
    job_error_line,
    require_many_driver_commits,
    run_concurrently,
    run_processes,
)
from spark_flows.patterns.runners.ledger import LEDGER_SCHEMA, RunLedger, check_depends_on_past
from spark_flows.patterns.runners.locks import LockHolder, RunLock
from spark_flows.patterns.runners.single import SingleRunner, refusal_from_files, single_run

__all__ = [
    "LEDGER_SCHEMA", "ConcurrentRunner", "LockHolder", "RunLedger", "RunLock", "SingleRunner", "check_depends_on_past",
    "job_error_line", "refusal_from_files", "require_many_driver_commits", "run_concurrently", "run_processes",
    "single_run",
]
