"""Checks that a job's run followed the flow it declares (the graph written next to its outputs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from spark_flows.apps.graphs import job_graph
from spark_flows.flow.graph import Graph


def run_flow(data_root: str, job: str, stamp: str = "*") -> Graph:
    """The annotated flow the job's run (of date ``stamp``, or its only run) wrote under ``<data_root>/_flows/``."""
    written = sorted(Path(data_root, "_flows", job).glob(f"{stamp}.json"))
    assert len(written) == 1, f"expected one run's flow for {job}, found {[p.name for p in written]}"
    assert written[0].with_suffix(".mmd").read_text().startswith("flowchart LR")
    return Graph.from_record(json.loads(written[0].read_text()))


def assert_ran_as_declared(module: ModuleType, argv: Sequence[str], data_root: str, stamp: str = "*") -> Graph:
    """What the run noted as it ran is about nodes of the flow the job draws (``--graph``) for the same
    arguments: no fact about an undeclared node, and a status on every node the run reported on.

    The run's graph is the declared one with the facts laid over it, so comparing their nodes would compare a
    thing with its copy; what can drift is the code that runs (the facts it notes) from the flow it draws.
    """
    drawn = {n.id for n in job_graph(module, argv).nodes}
    ran = run_flow(data_root, module.NAME, stamp)
    assert ran.unmatched == (), f"facts about undeclared nodes: {ran.unmatched}"
    noted = {n.id for n in ran.nodes if n.facts}
    assert noted, "the run noted nothing about its flow"
    assert noted <= drawn, f"the run noted facts about {sorted(noted - drawn)}, which --graph does not draw"
    assert all("status" in n.facts for n in ran.nodes if n.facts), "a node has facts but no status"
    return ran


def statuses(graph: Graph, prefix: str = "") -> dict[str, object]:
    """Node id -> the run's status, for annotated nodes whose id starts with ``prefix``."""
    return {n.id: n.facts.get("status") for n in graph.nodes if n.facts and n.id.startswith(prefix)}
