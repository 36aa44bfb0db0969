"""A job's flow, drawn: Mermaid, Graphviz DOT and JSON from the :class:`~spark_flows.flow.graph.Graph` its
building blocks declare, before a run (no Spark) and after one (annotated with what happened).

Every bundled job draws its flow from the blocks it runs (its plan's ``graph()``), so

    spark-flows graph jobs/visits_cube.py --format mermaid -- --mode unaligned

prints the flow for those arguments without starting Spark, and every run writes the same graph annotated
with rows, seconds, skipped steps, the branch taken and the missing parents to
``<data-root>/_flows/<job>/<execution date or run time>.json`` (and ``.mmd``).

Example
-------
>>> from spark_flows.flow.graph import Stage
>>> flow = Graph.chain("job", Stage("raw", "input", "raw devices").graph(), Stage("t", "output", "table").graph(),
...                    rules={0: "batch 7"})
>>> print(to_mermaid(flow))
flowchart LR
  n0[("raw devices")]
  n1[("table")]
  n0 -->|"batch 7"| n1
"""

from __future__ import annotations

import json

from pyspark.sql import SparkSession

from spark_flows.errors import invalid_argument
from spark_flows.flow.graph import Graph, Node
from spark_flows.io.storage import Storage

__all__ = ["FORMATS", "render", "to_dot", "to_json", "to_mermaid",
           "write_run_graph"]

FORMATS = ("mermaid", "dot", "json")
_SHAPES = {"choice": ('{"', '"}'), "parent": ('(["', '"])'), "fan_in": ('[["', '"]]'), "marker": ('[/"', '"/]'),
           "split": ('[["', '"]]'), "fallback": ('[/"', '"\\]'), "runner": ('(["', '"])'), "input": ('[("', '")]'),
           "output": ('[("', '")]')}
_STYLES = {"failed": "fill:#fdd,stroke:#c00", "skipped": "fill:#eee,stroke:#999,stroke-dasharray:4",
           "not taken": "fill:#eee,stroke:#999,stroke-dasharray:4", "taken": "fill:#dfd,stroke:#070",
           "ran": "fill:#dfd,stroke:#070"}
_DOT_STYLES = {"failed": 'color="#cc0000" fillcolor="#ffdddd" style=filled',
               "skipped": 'color="#999999" style=dashed', "not taken": 'color="#999999" style=dashed',
               "taken": 'color="#007700" fillcolor="#ddffdd" style=filled',
               "ran": 'color="#007700" fillcolor="#ddffdd" style=filled'}
_DOT_SHAPES = {"choice": "diamond", "parent": "ellipse", "marker": "parallelogram", "runner": "ellipse",
               "input": "cylinder", "output": "cylinder", "fan_in": "box3d", "split": "box3d", "fallback": "trapezium"}
_FACTS = ("status", "rows", "seconds", "taken", "completeness", "reason")


def _facts_text(node: Node, width: int = 70) -> str:
    parts = []
    for key in _FACTS:
        if key in node.facts and not (key == "status" and node.facts[key] in ("ran", "taken")):
            value = node.facts[key]
            plain = key in ("status", "reason")
            text = f"{value}s" if key == "seconds" else (str(value) if plain else f"{key} {value}")
            parts.append(text if len(text) <= width else text[: width - 3] + "...")
    return ", ".join(parts)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart (left to right); a run's facts under each label, coloured by status."""
    ids = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for node in graph.nodes:
        opening, closing = _SHAPES.get(node.kind, ('["', '"]'))
        facts = _facts_text(node)
        label = _mermaid_text(node.label + (f"<br/><small>{facts}</small>" if facts else ""))
        lines.append(f"  {ids[node.id]}{opening}{label}{closing}")
    for edge in graph.edges:
        rule = f'|"{_mermaid_text(edge.rule)}"|' if edge.rule else ""
        lines.append(f"  {ids[edge.source]} -->{rule} {ids[edge.target]}")
    statuses = sorted({str(n.facts["status"]) for n in graph.nodes if n.facts.get("status") in _STYLES})
    for status in statuses:
        css = status.replace(" ", "_")
        members = ",".join(ids[n.id] for n in graph.nodes if n.facts.get("status") == status)
        lines += [f"  classDef {css} {_STYLES[status]}", f"  class {members} {css}"]
    return "\n".join(lines)


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(graph: Graph) -> str:
    """The graph as Graphviz DOT (``dot -Tsvg``); a run's facts under each label, coloured by status."""
    lines = [f'digraph "{_dot_text(graph.name)}" {{', "  rankdir=LR;", '  node [shape=box fontname="Helvetica"];',
             '  edge [fontname="Helvetica" fontsize=10];']
    for node in graph.nodes:
        facts = _facts_text(node)
        label = _dot_text(node.label + (f"\n{facts}" if facts else ""))
        style = _DOT_STYLES.get(str(node.facts.get("status", "")), "")
        shape = _DOT_SHAPES.get(node.kind, "box")
        attributes = " ".join(filter(None, [f'label="{label}"', f"shape={shape}", style]))
        lines.append(f'  "{_dot_text(node.id)}" [{attributes}];')
    for edge in graph.edges:
        rule = f' [label="{_dot_text(edge.rule)}"]' if edge.rule else ""
        lines.append(f'  "{_dot_text(edge.source)}" -> "{_dot_text(edge.target)}"{rule};')
    lines.append("}")
    return "\n".join(lines)


def to_json(graph: Graph) -> str:
    """The graph as JSON: ``{"name", "nodes": [{id, kind, label, rules?, facts?}], "edges": [...]}``."""
    return json.dumps(graph.as_record(), indent=2, sort_keys=False, default=str)


def render(graph: Graph, fmt: str) -> str:
    """``graph`` in one of :data:`FORMATS`."""
    renderers = {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}
    if fmt not in renderers:
        raise invalid_argument("format", fmt, f"one of {list(FORMATS)}")
    return renderers[fmt](graph)


def write_run_graph(spark: SparkSession | Storage | None, directory: str, stamp: str, graph: Graph) -> str:
    """Write an annotated ``graph`` as ``<directory>/<stamp>.json`` and ``.mmd``; the JSON's path.

    ``spark`` is the session whose filesystems to use, or a :class:`Storage` (``None``: local files).
    """
    storage = spark if isinstance(spark, Storage) else Storage(spark)
    base = f"{directory.rstrip('/')}/{stamp}"
    storage.write_json(f"{base}.json", graph.as_record())
    storage.write_text(f"{base}.mmd", to_mermaid(graph) + "\n")
    return f"{base}.json"
