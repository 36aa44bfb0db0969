"""Task-based Isolated Sequencer: the producer starts its consumer job once the readiness marker is written.

:func:`trigger` runs the consumer (``spark-submit``, or this Python with ``--remote`` on Spark Connect) with
an argument list, never a shell string, and records the outcome in the marker; :class:`ConsumerTrigger` is
the same as a block that draws itself.

Example
-------
>>> ConsumerTrigger("jobs/devices_aggregator.py").graph().node("trigger.devices_aggregator").rules
{'when': 'after the marker is written'}
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from pyspark.sql import SparkSession

from spark_flows.core import backend
from spark_flows.core.config import Settings
from spark_flows.core.session import remote_url
from spark_flows.core.submit import SubmitResult, job_command, run_submit
from spark_flows.errors import TriggerFailedError
from spark_flows.flow.graph import Graph, note
from spark_flows.io.storage import Storage
from spark_flows.patterns.markers import Marker, marker_path


@dataclass(frozen=True)
class ConsumerTrigger:
    """The task-based Isolated Sequencer as a value: start the consumer ``job`` (its ``.py``) once the
    marker is written (:meth:`run`, :func:`trigger`); node ``trigger.<job name>``."""

    job: str

    @property
    def node_id(self) -> str:
        """The node this trigger draws and notes."""
        return f"trigger.{self.job.rpartition('/')[2].removesuffix('.py')}"

    def graph(self) -> Graph:
        """One trigger node."""
        return Graph.single(self.node_id, "trigger", f"start {self.node_id.removeprefix('trigger.')}",
                            when="after the marker is written")

    def run(self, spark: SparkSession, marker: Marker, args: Sequence[str], settings: Settings, *,
            master: str | None = None, timeout: float | None = None) -> SubmitResult:
        """:func:`trigger` the consumer; its exit code is noted."""
        submitted = trigger(spark, marker, self.job, args, settings, master=master, timeout=timeout)
        note(self.node_id, status="ran", exit_code=submitted.returncode)
        return submitted


def trigger(
    spark: SparkSession,
    marker: Marker,
    job: str,
    args: Sequence[str],
    settings: Settings,
    *,
    master: str | None = None,
    timeout: float | None = None,
) -> SubmitResult:
    """Start the consumer ``job`` (a path to its ``.py``) and record it in the marker.

    Classic: with ``spark-submit``; Spark Connect (``settings.remote`` or ``$SPARK_REMOTE``): with this
    Python and ``--remote``.

    Raises
    ------
    TriggerFailedError: the consumer exited non-zero; the message gives its exit code and last stderr line.
    """
    remote = remote_url(settings) or backend.of(spark).connect_url()
    command = job_command(job, list(args), settings, master=master, remote=remote)
    began = time.monotonic()
    result = run_submit(command, timeout=timeout)
    day = dt.date.fromisoformat(marker.execution_date)
    updated = replace(marker, triggered={"job": job, "args": list(args), "exit_code": result.returncode,
                                         "seconds": round(time.monotonic() - began, 1),
                                         "at": dt.datetime.now(dt.timezone.utc).isoformat()})
    Storage(spark).write_json(marker_path(marker.dataset, day), asdict(updated))
    if not result.ok:
        last = (result.output_tail.splitlines() or [""])[-1]
        raise TriggerFailedError(f"triggered consumer {job} exited {result.returncode}: {last}",
                                 parameters={"job": job, "exit_code": result.returncode})
    return result
