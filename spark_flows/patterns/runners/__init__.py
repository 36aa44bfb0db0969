"""Single Runner and Concurrent Runner: at most one run of a job at a time, or a bounded number at once.

The runs themselves are shown in :mod:`~spark_flows.patterns.runners.single` and
:mod:`~spark_flows.patterns.runners.concurrent`; here, what each draws:

Example
-------
>>> [n.id for n in single_run_graph("trend").nodes], [n.id for n in concurrent_graph("backfill", concurrency=2).nodes]
(['single_run'], ['backfill'])
"""

from __future__ import annotations

from spark_flows.patterns.runners.concurrent import (
    PartitionResult,
    RunSummary,
    concurrent_graph,
    job_error_line,
    require_many_driver_commits,
    run_concurrently,
    run_processes,
)
from spark_flows.patterns.runners.ledger import LEDGER_SCHEMA, RunLedger, check_depends_on_past
from spark_flows.patterns.runners.locks import LockHolder, RunLock
from spark_flows.patterns.runners.single import refusal_from_files, single_run, single_run_graph

__all__ = [
    "LEDGER_SCHEMA", "LockHolder", "PartitionResult", "RunLedger", "RunLock", "RunSummary", "check_depends_on_past",
    "concurrent_graph", "job_error_line", "refusal_from_files", "require_many_driver_commits", "run_concurrently",
    "run_processes", "single_run", "single_run_graph",
]
