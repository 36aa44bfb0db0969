"""Checks that a job's run followed the flow it declares (the graph written next to its outputs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from spark_flows.graph import job_graph
from spark_flows.structure import Graph


def run_flow(data_root: str, job: str, stamp: str = "*") -> Graph:
    """The annotated flow the job's run (of date ``stamp``, or its only run) wrote under ``<data_root>/_flows/``."""
    written = sorted(Path(data_root, "_flows", job).glob(f"{stamp}.json"))
    assert len(written) == 1, f"expected one run's flow for {job}, found {[p.name for p in written]}"
    assert written[0].with_suffix(".mmd").read_text().startswith("flowchart LR")
    return Graph.from_record(json.loads(written[0].read_text()))


def assert_ran_as_declared(module: ModuleType, argv: Sequence[str], data_root: str, stamp: str = "*") -> Graph:
    """The run's graph has exactly the declared nodes and edges, and no fact about an undeclared node."""
    declared = job_graph(module, argv)
    ran = run_flow(data_root, module.NAME, stamp)
    assert [n.id for n in ran.nodes] == [n.id for n in declared.nodes]
    assert ran.edges == declared.edges
    assert ran.unmatched == (), f"facts about undeclared nodes: {ran.unmatched}"
    return ran


def statuses(graph: Graph, prefix: str = "") -> dict[str, object]:
    """Node id -> the run's status, for annotated nodes whose id starts with ``prefix``."""
    return {n.id: n.facts.get("status") for n in graph.nodes if n.facts and n.id.startswith(prefix)}
