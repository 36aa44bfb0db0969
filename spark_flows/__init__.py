"""spark_flows: the data flow design patterns as composable PySpark functions, inside the Spark job.

``import spark_flows as sf`` gives the names a job needs: the blocks of each pattern, the writers that make a
batch land once, the session, and the root of the library's errors. Two more paths are public:
``spark_flows.errors`` (every error class) and ``spark_flows.streaming`` (the patterns on each micro-batch);
``spark_flows.testing`` is the pytest plugin. Everything else is internal and may move.

========================  =====================================================================
pattern                   names
========================  =====================================================================
Local Sequencer           ``Sequence``, ``step``, ``chain``
Parallel Split            ``Split``, ``split``, ``branch``, ``write_branch``
Aligned / Unaligned Fan-In ``FanIn``, ``fan_in``, ``hourly_parents``, ``Parent``, ``Completeness``, ``union_by_name``
Exclusive Choice          ``DateChoice``, ``route_by_date``, ``route_by_schema``, ``SchemaRule``, ``OutputFactory``,
                          ``Route``
Isolated Sequencer        ``ReadinessWait``, ``publish``, ``wait_for_marker``, ``read_when_ready``, ``trigger``
Single / Concurrent Runner ``SingleRunner``, ``ConcurrentRunner``, ``single_run``, ``run_concurrently``, ``RunLedger``
what a run did            ``Outcome`` (a branch, a partition), ``Outcomes`` (all of a split's or a runner's)
writing once              ``Batch``, ``DeltaWriter``, ``CsvWriter``, ``ParquetWriter``, ``read_published``
========================  =====================================================================

Example
-------
>>> import spark_flows as sf
>>> seq = sf.Sequence("s", [sf.step("noop", lambda df: df)])
>>> seq.describe()
[{'index': 1, 'name': 'noop', 'kind': 'step'}]

Every block is one value that runs and draws: ``block.run(...)`` and ``block.graph()`` (``Sequence``,
``Split``, ``FanIn``, ``DateChoice``, ``ReadinessWait``, ``SingleRunner``, ``ConcurrentRunner``).
"""

from __future__ import annotations

from spark_flows.apps.consumers import trigger
from spark_flows.core.config import Settings, load_settings
from spark_flows.core.metrics import SparkMeter
from spark_flows.core.progress import enable_progress
from spark_flows.core.scheduling import Outcome, Outcomes
from spark_flows.core.session import get_session
from spark_flows.core.waiting import Wait
from spark_flows.errors import SparkFlowsError
from spark_flows.io.storage import Storage
from spark_flows.io.writers import Batch, CsvWriter, DeltaWriter, ParquetWriter, WriteResult, read_published
from spark_flows.patterns.choice import DateChoice, OutputFactory, Route, SchemaRule, route_by_date, route_by_schema
from spark_flows.patterns.fan_in.alignment import union_by_name
from spark_flows.patterns.fan_in.completeness import Completeness
from spark_flows.patterns.fan_in.merge import FanIn, Parent, fan_in, hourly_parents
from spark_flows.patterns.markers import ReadinessWait, publish, read_when_ready, wait_for_marker
from spark_flows.patterns.runners import ConcurrentRunner, RunLedger, SingleRunner, run_concurrently, single_run
from spark_flows.patterns.sequence import Sequence, chain, step
from spark_flows.patterns.split import Split, branch, split, write_branch

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Completeness",
    "ConcurrentRunner",
    "CsvWriter",
    "DateChoice",
    "DeltaWriter",
    "FanIn",
    "Outcome",
    "Outcomes",
    "OutputFactory",
    "Parent",
    "ParquetWriter",
    "ReadinessWait",
    "Route",
    "RunLedger",
    "SchemaRule",
    "Sequence",
    "Settings",
    "SingleRunner",
    "SparkFlowsError",
    "SparkMeter",
    "Split",
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
