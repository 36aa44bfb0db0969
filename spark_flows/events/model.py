"""One event model for what a run did, built from what its blocks noted: per output, per run.

Each :meth:`~spark_flows.io.writers.Writer.write` publishes the output it wrote, skipped as a replay or refused
(:mod:`spark_flows.core.observe`); an open :func:`~spark_flows.flow.graph.recording` keeps it. The fan-in's
completeness travels with the output it was published to (the writer's commit metadata); the routes an
Exclusive Choice took and a Single Runner's attempt or refusal are the run's own facts. :func:`report` folds
a :class:`~spark_flows.flow.graph.FlowRun` into a :class:`RunReport`, the one value every sink (logs,
OpenLineage, Dagster Pipes) reads.

Example
-------
>>> from spark_flows.core.observe import publish
>>> from spark_flows.flow.graph import recording
>>> from spark_flows.io.writers import Batch, WriteResult
>>> with recording() as run:  # a split asks the skip rule first, then writes: the last word counts
...     publish(WRITTEN, (WriteResult("/data/t", "delta", 5, batch=Batch("loader", 1), table_version=3), {}))
...     publish(WRITTEN, (WriteResult("/data/t", "delta", 0, skipped=True, reason="committed",
...                                   batch=Batch("loader", 1), batch_rows=5, table_version=3), {}))
>>> [(o.outcome, o.rows, o.table_version, o.batch.label) for o in report("job", "r-1", "COMPLETE", run).outputs]
[('skipped', 5, 3, 'loader@1')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spark_flows.flow.graph import FlowRun
from spark_flows.io.writers.contract import REFUSED, WRITTEN

if TYPE_CHECKING:
    from spark_flows.io.writers import Batch, WriteResult

#: an output's outcomes: written, skipped as a replay of a committed batch, refused (nothing written)
OUTCOMES = ("written", "skipped", "refused")
#: a run's states, as OpenLineage names them
STATES = ("START", "COMPLETE", "FAIL")


@dataclass(frozen=True)
class OutputEvent:
    """What one write did to one output.

    ``rows`` are the batch's rows (written now, or by the earlier run a replay skipped); ``completeness`` the
    fan-in's record (``ratio``, ``expected``, ``present``, ``missing`` parent -> reason) when the output is a
    merge; ``partition`` the one partition the write replaced.
    """

    path: str
    format: str
    outcome: str
    rows: int | None = None
    table_version: int | None = None
    batch: Batch | None = None
    reason: str = ""
    partition: Mapping[str, str] = field(default_factory=dict)
    completeness: Mapping[str, Any] | None = None
    rule: str | None = None

    @property
    def partial(self) -> bool:
        """True when the output holds a merge that misses some of its expected parents."""
        return bool(self.completeness and self.completeness.get("is_approximate"))

    def describe(self) -> str:
        """``'delta /data/t: written, 5 rows, version 3, batch loader@1'``."""
        parts = [self.outcome]
        if self.rows is not None:
            parts.append(f"{self.rows} rows")
        if self.table_version is not None:
            parts.append(f"version {self.table_version}")
        if self.batch is not None:
            parts.append(f"batch {self.batch.label}")
        if self.completeness is not None:
            parts.append(f"completeness {self.completeness.get('ratio')}")
        if self.reason:
            parts.append(self.reason)
        return f"{self.format} {self.path}: " + ", ".join(parts)


@dataclass(frozen=True)
class Route:
    """The branch an Exclusive Choice took among its candidates, and why."""

    branch: str
    candidates: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class RunReport:
    """A run at one of its :data:`STATES`: its outputs so far, its routes, its error, and its own facts
    (``attempt``, ``run_id`` and ``first_run`` of a Single Runner, its refusal)."""

    job: str
    run_id: str
    state: str
    outputs: tuple[OutputEvent, ...] = ()
    routes: tuple[Route, ...] = ()
    error: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


def output_event(result: WriteResult, metadata: Mapping[str, Any] | None = None) -> OutputEvent:
    """The :class:`OutputEvent` of a writer's result (``metadata``: what it recorded with the commit)."""
    completeness = (metadata or {}).get("completeness")
    rule = (metadata or {}).get("rule")
    rows = result.batch_rows if result.skipped or result.rows is None else result.rows
    return OutputEvent(result.path, result.output_type, "skipped" if result.skipped else "written", rows,
                       result.table_version, result.batch, result.reason if result.skipped else "",
                       dict(result.partition), completeness if isinstance(completeness, Mapping) else None,
                       None if rule is None else str(rule))


def outputs(run: FlowRun) -> tuple[OutputEvent, ...]:
    """What the writers published during ``run``, one event per output and batch (the last word: a split asks
    the skip rule before it writes)."""
    events: dict[tuple[str, Batch | None], OutputEvent] = {}
    for kind, payload in list(run.writes):
        if kind == WRITTEN:
            event = output_event(*payload)
        elif kind == REFUSED:
            path, output_type, batch, reason = payload
            event = OutputEvent(path, output_type, "refused", batch=batch, reason=reason)
        else:
            continue
        events.pop((event.path, event.batch), None)
        events[(event.path, event.batch)] = event
    return tuple(events.values())


def report(job: str, run_id: str, state: str, run: FlowRun | None, *, error: str | None = None) -> RunReport:
    """The :class:`RunReport` of ``run`` (``None``: nothing noted yet, as at START)."""
    if run is None:
        return RunReport(job, run_id, state, error=error)
    facts = dict(run.facts.get("single_run", {}))
    return RunReport(job, run_id, state, outputs(run),
                     tuple(Route(b, tuple(c), r) for b, c, r in run.routes), error, facts)
