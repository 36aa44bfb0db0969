"""spark_flows: the data flow design patterns as composable PySpark functions, inside the Spark job.

``import spark_flows as sf`` gives the names a job needs: the blocks of each pattern, the writers that make a
batch land once, the session, and the root of the library's errors. Two more paths are public:
``spark_flows.errors`` (every error class) and ``spark_flows.streaming`` (the patterns on each micro-batch);
``spark_flows.testing`` is the pytest plugin. Everything else is internal and may move.

========================  =====================================================================
pattern                   names
========================  =====================================================================
Local Sequencer           ``Sequence``, ``step``, ``chain``
Parallel Split            ``split``, ``branch``, ``write_branch``, ``SplitResult``
Aligned / Unaligned Fan-In ``fan_in``, ``hourly_parents``, ``Parent``, ``Completeness``, ``union_by_name``
Exclusive Choice          ``route_by_date``, ``route_by_schema``, ``OutputFactory``, ``Route``
Isolated Sequencer        ``publish``, ``wait_for_marker``, ``read_when_ready``, ``trigger``
Single / Concurrent Runner ``single_run``, ``run_concurrently``, ``RunLedger``
writing once              ``Batch``, ``DeltaWriter``, ``CsvWriter``, ``ParquetWriter``, ``read_published``
========================  =====================================================================

Example
-------
>>> import spark_flows as sf
>>> seq = sf.Sequence("s", [sf.step("noop", lambda df: df)])
>>> seq.describe()
[{'index': 1, 'name': 'noop', 'kind': 'step'}]
"""

from __future__ import annotations

from spark_flows.core.config import Settings, load_settings
from spark_flows.core.metrics import SparkMeter
from spark_flows.core.progress import enable_progress
from spark_flows.core.session import get_session
from spark_flows.core.waiting import Wait
from spark_flows.errors import SparkFlowsError
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter, ParquetWriter, WriteResult, read_published
from spark_flows.patterns.choice import OutputFactory, Route, route_by_date, route_by_schema
from spark_flows.patterns.fan_in.alignment import union_by_name
from spark_flows.patterns.fan_in.completeness import Completeness
from spark_flows.patterns.fan_in.merge import Parent, fan_in, hourly_parents
from spark_flows.patterns.markers import publish, read_when_ready, trigger, wait_for_marker
from spark_flows.patterns.runners import RunLedger, run_concurrently, single_run
from spark_flows.patterns.sequence import Sequence, chain, step
from spark_flows.patterns.split import SplitResult, branch, split, write_branch

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Completeness",
    "CsvWriter",
    "DeltaWriter",
    "OutputFactory",
    "Parent",
    "ParquetWriter",
    "Route",
    "RunLedger",
    "Sequence",
    "Settings",
    "SparkFlowsError",
    "SparkMeter",
    "SplitResult",
    "Storage",
    "Wait",
    "WriteResult",
    "__version__",
    "branch",
    "chain",
    "enable_progress",
    "fan_in",
    "get_session",
    "hourly_parents",
    "load_settings",
    "publish",
    "read_published",
    "read_when_ready",
    "route_by_date",
    "route_by_schema",
    "run_concurrently",
    "single_run",
    "split",
    "step",
    "trigger",
    "union_by_name",
    "wait_for_marker",
    "write_branch",
]
