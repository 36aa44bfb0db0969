"""Where a run's events leave the process: the sinks, and the one context that sends START, then COMPLETE or FAIL.

A sink is anything with a ``name`` and ``emit(report)``. The logs are always on (:class:`LogSink`: one line
per output at INFO); the others are chosen by ``$SPARK_FLOWS_EVENTS`` (``openlineage``, ``dagster``,
comma-separated) or by passing them; a job launched by Dagster Pipes (``$DAGSTER_PIPES_CONTEXT`` set) reports
to Dagster without asking. A sink that fails (an unreachable endpoint, a closed Pipes channel) costs one
warning line naming it; the data is written and the run's outcome stays what it was, unless
``$SPARK_FLOWS_EVENTS_STRICT=1`` asked for strict delivery (:class:`~spark_flows.errors.EventDeliveryError`).

Example
-------
>>> import tempfile
>>> from spark_flows.io.writers import DeltaWriter
>>> class Printed:
...     name = "printed"
...     def emit(self, report): print(report.state, [o.describe().split(": ")[1] for o in report.outputs])
>>> with emitting("my_job", [Printed()]):
...     _ = DeltaWriter().write(spark.range(5), f"{tempfile.mkdtemp()}/t")
START []
COMPLETE ['written, 5 rows, version 0']
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Protocol

from spark_flows.errors import ConfigError, EventDeliveryError, error_summary
from spark_flows.events.model import RunReport, report
from spark_flows.flow.graph import FlowRun, recording

__all__ = ["Emitter", "LogSink", "Sink", "emitting", "sinks_from_environment"]

logger = logging.getLogger("spark_flows.events")

ENV_SINKS, ENV_STRICT, ENV_PIPES = "SPARK_FLOWS_EVENTS", "SPARK_FLOWS_EVENTS_STRICT", "DAGSTER_PIPES_CONTEXT"


class Sink(Protocol):
    """Where :class:`~spark_flows.events.model.RunReport` s go."""

    name: str

    def emit(self, report: RunReport) -> None:
        """Send one report; raise if it could not be delivered."""
        ...


class LogSink:
    """One log line per output when the run ends, and the routes taken (always on)."""

    name = "log"

    def emit(self, report: RunReport) -> None:
        if report.state == "START":
            return
        for output in report.outputs:
            logger.info("%s: output %s", report.job, output.describe())
        for route in report.routes:
            logger.info("%s: route %s of %s (%s)", report.job, route.branch, "/".join(route.candidates), route.reason)


def sinks_from_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> list[Sink]:
    """The sinks the environment asks for: always the logs, then ``$SPARK_FLOWS_EVENTS``, then Dagster Pipes
    when the process was launched by it."""
    env = os.environ if environ is None else environ
    names = [n.strip() for n in env.get(ENV_SINKS, "").split(",") if n.strip()]
    if env.get(ENV_PIPES) and "dagster" not in names:
        names.append("dagster")
    sinks: list[Sink] = [LogSink()]
    for name in names:
        if name == "log":
            continue
        if name == "openlineage":
            from spark_flows.events.openlineage import OpenLineageSink

            sinks.append(OpenLineageSink())
        elif name == "dagster":
            from spark_flows.events.dagster import PipesSink

            sinks.append(PipesSink())
        else:
            raise ConfigError(f"${ENV_SINKS} names an unknown event sink {name!r}: use log, openlineage or dagster",
                              parameters={"sink": name})
    return sinks


class Emitter:
    """One run's events: :meth:`start`, then :meth:`finish` with what was recorded. A sink that fails is
    warned about once and not asked again in this run (strict delivery raises instead)."""

    def __init__(self, job: str, sinks: Sequence[Sink] | None = None, *, run_id: str | None = None,
                 strict: bool | None = None) -> None:
        self.job = job
        self.sinks = sinks_from_environment() if sinks is None else list(sinks)
        self.strict = os.environ.get(ENV_STRICT, "") in ("1", "true") if strict is None else strict
        self.run_id = run_id or str(uuid.uuid4())

    def start(self) -> None:
        """Send START."""
        self._send(report(self.job, self.run_id, "START", None), self.strict)

    def finish(self, run: FlowRun | None, error: BaseException | None = None) -> None:
        """Send COMPLETE with ``run``'s outputs, or FAIL with ``error`` (never raising over it)."""
        if error is None:
            self._send(report(self.job, self.run_id, "COMPLETE", run), self.strict)
        else:
            self._send(report(self.job, self.run_id, "FAIL", run, error=error_summary(error)), False)

    def _send(self, event: RunReport, strict: bool) -> None:
        for sink in list(self.sinks):
            try:
                sink.emit(event)
            except Exception as exc:
                if strict:
                    raise EventDeliveryError(
                        f"event sink {sink.name} could not take the {event.state} event of {event.job}: "
                        f"{error_summary(exc)}", parameters={"sink": sink.name}) from exc
                self.sinks.remove(sink)
                logger.warning("event sink %s: could not send the %s event of %s (%s); the run goes on without it",
                               sink.name, event.state, event.job, error_summary(exc))


@contextlib.contextmanager
def emitting(job: str, sinks: Sequence[Sink] | None = None, *, run_id: str | None = None,
             strict: bool | None = None) -> Iterator[FlowRun]:
    """Record what the blocks run inside do (as :func:`~spark_flows.flow.graph.recording`) and send the run's
    START, then COMPLETE, or FAIL with the error, to ``sinks`` (default: :func:`sinks_from_environment`)."""
    emitter = Emitter(job, sinks, run_id=run_id, strict=strict)
    emitter.start()
    with recording() as run:
        try:
            yield run
        except BaseException as exc:
            emitter.finish(run, exc)
            raise
    emitter.finish(run)
