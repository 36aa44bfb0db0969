"""What a run did, for the orchestrator: one event model, sent to pluggable sinks.

:mod:`~spark_flows.events.model` holds the model (:class:`OutputEvent` per output, :class:`RunReport` per run
state), published by the writers themselves; :mod:`~spark_flows.events.emit` the sinks and :func:`emitting`;
:mod:`~spark_flows.events.openlineage` and :mod:`~spark_flows.events.dagster` the two orchestrator sinks
(extras ``spark_flows[openlineage]`` and ``spark_flows[dagster]``; the core needs neither).
"""

from spark_flows.events.emit import Emitter, LogSink, Sink, emitting, sinks_from_environment
from spark_flows.events.model import OutputEvent, Route, RunReport, output_event, outputs, report

__all__ = ["Emitter", "LogSink", "OutputEvent", "Route", "RunReport", "Sink", "emitting", "output_event", "outputs",
           "report", "sinks_from_environment"]
