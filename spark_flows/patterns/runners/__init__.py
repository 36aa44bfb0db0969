"""Single Runner and Concurrent Runner: at most one run of a job at a time, or a bounded number at once.

Example
-------
>>> import datetime as dt, tempfile
>>> root = tempfile.mkdtemp()
>>> ledger = RunLedger(spark, f"{root}/ledger")
>>> with single_run(spark, "trend", dt.date(2024, 1, 2), lock_root=f"{root}/locks", ledger=ledger):
...     pass
>>> run_concurrently(spark, lambda day: None, ["2024-01-01", "2024-01-02"], concurrency=2).ok
True
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
