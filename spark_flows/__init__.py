"""spark_flows: the data flow design patterns as composable PySpark functions.

Local Sequencer (:mod:`spark_flows.sequence`), Isolated Sequencer (:mod:`spark_flows.markers`),
Aligned and Unaligned Fan-In (:mod:`spark_flows.fan_in`), Parallel Split (:mod:`spark_flows.split`),
Exclusive Choice (:mod:`spark_flows.choice`), Single and Concurrent Runner (:mod:`spark_flows.runners`).
Fan-in trigger rules (:mod:`spark_flows.triggers`), partial results announced (:mod:`spark_flows.announce`),
and every block's structure as one nodes/edges shape (:mod:`spark_flows.structure`), drawn by
:mod:`spark_flows.graph`.

Example
-------
>>> import spark_flows as sf
>>> seq = sf.Sequence("s", [sf.step("noop", lambda df: df)])
>>> seq.describe()
[{'index': 1, 'name': 'noop', 'kind': 'step'}]
"""

from __future__ import annotations

from spark_flows.config import Settings, load_settings
from spark_flows.errors import SparkFlowsError
from spark_flows.metrics import SparkMeter
from spark_flows.sequence import Sequence, SequenceRun, Step, chain, step
from spark_flows.session import get_session
from spark_flows.storage import Storage

__version__ = "0.1.0"

__all__ = [
    "Sequence",
    "SequenceRun",
    "Settings",
    "SparkFlowsError",
    "SparkMeter",
    "Step",
    "Storage",
    "__version__",
    "chain",
    "get_session",
    "load_settings",
    "step",
]
