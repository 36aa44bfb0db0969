"""A job's flow, drawn: Mermaid, Graphviz DOT and JSON from the :class:`~spark_flows.flow.graph.Graph` its
building blocks declare, before a run (no Spark) and after one (annotated with what happened).

Every bundled job declares its flow from the objects it runs (``run_job(..., flow=...)``), so

    spark-flows graph jobs/visits_cube.py --format mermaid -- --mode unaligned

prints the flow for those arguments without starting Spark, and every run writes the same graph annotated
with rows, seconds, skipped steps, the branch taken and the missing parents to
``<data-root>/_flows/<job>/<execution date or run time>.json`` (and ``.mmd``).

Example
-------
>>> from spark_flows.patterns.fan_in.merge import fan_in_graph
>>> print(to_mermaid(fan_in_graph(["00", "01"], rule="all_done", name="hours")))
flowchart LR
  n0(["00"])
  n1(["01"])
  n2[["hours"]]
  n0 -->|"all_done"| n2
  n1 -->|"all_done"| n2
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

from pyspark.sql import SparkSession

from spark_flows.errors import SparkFlowsValueError, invalid_argument
from spark_flows.flow.graph import Graph, Node, note
from spark_flows.io.storage import Storage
from spark_flows.io.writers import WriteResult

__all__ = ["FORMATS", "job_graph", "load_job", "note_write", "render", "to_dot", "to_json", "to_mermaid",
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


def note_write(node_id: str, result: WriteResult) -> None:
    """Note a writer's outcome on ``node_id`` (rows written, or skipped and why) in the open recording."""
    note(node_id, status="skipped" if result.skipped else "ran", rows=result.batch_rows if result.skipped
         else result.rows, reason=result.reason if result.skipped else None)


def write_run_graph(spark: SparkSession | Storage | None, directory: str, stamp: str, graph: Graph) -> str:
    """Write an annotated ``graph`` as ``<directory>/<stamp>.json`` and ``.mmd``; the JSON's path.

    ``spark`` is the session whose filesystems to use, or a :class:`Storage` (``None``: local files).
    """
    storage = spark if isinstance(spark, Storage) else Storage(spark)
    base = f"{directory.rstrip('/')}/{stamp}"
    storage.write_json(f"{base}.json", graph.as_record())
    storage.write_text(f"{base}.mmd", to_mermaid(graph) + "\n")
    return f"{base}.json"


# --- a job's declared flow, without Spark -------------------------------------------------------------------

_requested: contextvars.ContextVar[list[Graph] | None] = contextvars.ContextVar("spark_flows_graph", default=None)


def requested() -> list[Graph] | None:
    """Set while :func:`job_graph` runs a job's ``main``: the job harness puts the flow there and stops."""
    return _requested.get()


@contextlib.contextmanager
def _collecting() -> Iterator[list[Graph]]:
    found: list[Graph] = []
    token = _requested.set(found)
    try:
        yield found
    finally:
        _requested.reset(token)


def load_job(job: str) -> ModuleType:
    """A job module from a ``.py`` file or a module path (``jobs.visits_cube``); it must define ``main``."""
    if job.endswith(".py"):
        path = Path(job)
        if not path.is_file():
            raise invalid_argument("job", job, "an existing .py file or a module path")
        spec = importlib.util.spec_from_file_location(f"_spark_flows_job_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise invalid_argument("job", job, "a loadable Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(job)
        except ImportError as exc:
            raise invalid_argument("job", job, f"an importable module ({exc})") from None
    if not callable(getattr(module, "main", None)):
        raise invalid_argument("job", job, "a module defining main(argv) -> int")
    return module


def job_graph(job: str | ModuleType, argv: Sequence[str] = ()) -> Graph:
    """The flow ``job`` declares for ``argv`` (parsed by the job's own parser), without starting Spark.

    Raises
    ------
    SparkFlowsValueError: the job declares no flow, or its arguments are invalid.
    """
    module = load_job(job) if isinstance(job, str) else job
    with _collecting() as found:
        code = module.main(["--graph", "json", *argv])
    if code != 0 or not found:
        name = getattr(module, "NAME", getattr(module, "__name__", str(job)))
        raise SparkFlowsValueError(f"job {name} gave no flow for arguments {list(argv)} (exit {code}): "
                                   + ("see its usage error above" if code else "it declares none (run_job(flow=))"),
                                   parameters={"job": str(name), "argv": list(argv), "exit_code": code})
    return found[0]

