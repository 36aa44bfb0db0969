"""One shape for the structure of every building block: nodes and edges as plain data, rules on the edges.

A :class:`Graph` is what a sequence, a split, a fan-in, a choice, a marker wait or a runner looks like
without running it: :class:`Node` s (an id, a kind, a label, the block's rules) and :class:`Edge` s (from,
to, and the rule that governs the edge: a trigger rule, a route condition, a completeness threshold, a
boundary, an idempotency key). Graphs compose with :meth:`Graph.chain`, and :mod:`spark_flows.flow.render`
renders them (Mermaid, DOT, JSON).

While a block runs inside :func:`recording`, it notes what happened to its nodes (:func:`note`: rows,
seconds, skipped, the branch taken, missing parents); :meth:`Graph.annotate` lays those facts over the
declared graph and lists any fact whose node the graph does not have, so a declared flow that drifted from
the running one is visible.

Example
-------
>>> a = Graph.single("read", "input", "raw devices")
>>> b = Graph.single("write", "output", "devices table")
>>> flow = Graph.chain("job", a, b)
>>> [(e.source, e.target) for e in flow.edges]
[('read', 'write')]
>>> with recording() as run:
...     note("write", rows=10)
>>> flow.annotate(run).node("write").facts
{'rows': 10}
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from spark_flows.core.observe import listening
from spark_flows.errors import SparkFlowsValueError, UnknownNameError, invalid_argument

if TYPE_CHECKING:
    from spark_flows.io.writers import WriteResult

__all__ = ["Edge", "FlowRun", "Graph", "Node", "Stage", "Structure", "note", "note_route", "note_write",
           "recording"]


@dataclass(frozen=True)
class Node:
    """One element of a flow. ``rules``: the block's own settings worth drawing; ``facts``: what a run did."""

    id: str
    kind: str
    label: str
    rules: Mapping[str, Any] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """The node as JSON-ready data."""
        record: dict[str, Any] = {"id": self.id, "kind": self.kind, "label": self.label}
        if self.rules:
            record["rules"] = dict(self.rules)
        if self.facts:
            record["facts"] = dict(self.facts)
        return record


@dataclass(frozen=True)
class Edge:
    """A directed edge; ``rule`` is what governs it (empty for a plain data dependency)."""

    source: str
    target: str
    rule: str = ""

    def as_record(self) -> dict[str, Any]:
        """The edge as JSON-ready data."""
        return {"source": self.source, "target": self.target, **({"rule": self.rule} if self.rule else {})}


@dataclass(frozen=True)
class Graph:
    """Nodes and edges of a block or a whole job, with the nodes a predecessor connects to (``entries``)
    and the ones a successor continues from (``exits``)."""

    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...] = ()
    entries: tuple[str, ...] = ()
    exits: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = [n.id for n in self.nodes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise SparkFlowsValueError(f"graph {self.name!r} declares node ids twice: {duplicates}",
                                       parameters={"argument": "nodes", "duplicates": duplicates})
        known = set(ids)
        dangling = sorted({end for e in self.edges for end in (e.source, e.target) if end not in known}
                          | {n for n in (*self.entries, *self.exits) if n not in known})
        if dangling:
            raise SparkFlowsValueError(f"graph {self.name!r} refers to undeclared node(s) {dangling}",
                                       parameters={"argument": "edges", "undeclared": dangling})

    @classmethod
    def single(cls, node_id: str, kind: str, label: str, **rules: Any) -> Graph:
        """A one-node graph (an input, an output, a marker wait, ...)."""
        return cls(node_id, (Node(node_id, kind, label, rules),), (), (node_id,), (node_id,))

    @classmethod
    def chain(cls, name: str, *parts: Graph, rules: Mapping[int, str] | None = None) -> Graph:
        """``parts`` one after another: every exit of a part connects to every entry of the next one.

        ``rules`` optionally labels the links: ``{i: rule}`` for the link from part ``i`` to part ``i + 1``.
        """
        if not parts:
            raise invalid_argument("parts", parts, "at least one graph")
        nodes = [n for p in parts for n in p.nodes]
        edges = list(parts[0].edges)
        for index, (before, after) in enumerate(itertools.pairwise(parts)):
            rule = (rules or {}).get(index, "")
            edges += [Edge(a, b, rule) for a in before.exits for b in after.entries]
            edges += after.edges
        return cls(name, tuple(nodes), tuple(edges), parts[0].entries, parts[-1].exits)

    @classmethod
    def of(cls, name: str, *blocks: Structure | None, rules: Mapping[int, str] | None = None) -> Graph:
        """The blocks' own graphs one after another (:meth:`chain`, ``rules`` as there); ``None`` stands for
        a block a job does not use with these options, and is left out."""
        return cls.chain(name, *(b.graph() for b in blocks if b is not None), rules=rules)

    @classmethod
    def group(cls, name: str, *parts: Graph) -> Graph:
        """``parts`` side by side (alternatives or parallel inputs): their entries and exits together."""
        if not parts:
            raise invalid_argument("parts", parts, "at least one graph")
        return cls(name, tuple(n for p in parts for n in p.nodes), tuple(e for p in parts for e in p.edges),
                   tuple(i for p in parts for i in p.entries), tuple(x for p in parts for x in p.exits))

    def node(self, node_id: str) -> Node:
        """The node called ``node_id`` (``KeyError`` naming the known ids otherwise)."""
        for current in self.nodes:
            if current.id == node_id:
                return current
        raise UnknownNameError(f"no node {node_id!r} in graph {self.name!r}; nodes: {[n.id for n in self.nodes]}",
                               parameters={"name": node_id, "names": [n.id for n in self.nodes]})

    def children(self, node_id: str) -> list[str]:
        """The targets of ``node_id``'s edges, in declaration order."""
        return [e.target for e in self.edges if e.source == node_id]

    def as_record(self) -> dict[str, Any]:
        """The graph as JSON-ready data (the shape :func:`spark_flows.flow.render.to_json` writes)."""
        record: dict[str, Any] = {"name": self.name, "nodes": [n.as_record() for n in self.nodes],
                                  "edges": [e.as_record() for e in self.edges], "entries": list(self.entries),
                                  "exits": list(self.exits)}
        if self.unmatched:
            record["unmatched"] = list(self.unmatched)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Graph:
        """The graph :meth:`as_record` gave."""
        nodes = tuple(Node(n["id"], n["kind"], n["label"], n.get("rules", {}), n.get("facts", {}))
                      for n in record["nodes"])
        edges = tuple(Edge(e["source"], e["target"], e.get("rule", "")) for e in record["edges"])
        return cls(record["name"], nodes, edges, tuple(record.get("entries", ())), tuple(record.get("exits", ())),
                   tuple(record.get("unmatched", ())))

    def annotate(self, run: FlowRun) -> Graph:
        """This graph with the facts ``run`` noted laid over its nodes.

        A route is matched to the choice node whose candidates are the route's candidates: the taken
        candidate is marked ``taken``, the others ``not taken``. Facts about node ids this graph does not
        declare are listed in :attr:`unmatched` (the declared flow and the running one differ).
        """
        facts: dict[str, dict[str, Any]] = {k: dict(v) for k, v in run.facts.items()}
        unmatched = [k for k in facts if k not in {n.id for n in self.nodes}]
        for branch, candidates, reason in run.routes:
            choice = next((n.id for n in self.nodes if n.kind == "choice"
                           and {self.node(c).label for c in self.children(n.id)} == set(candidates)), None)
            if choice is None:
                unmatched.append(f"route {branch} among {list(candidates)}")
                continue
            facts.setdefault(choice, {}).update(status="ran", taken=branch, reason=reason)
            for child in self.children(choice):
                taken = self.node(child).label == branch
                facts.setdefault(child, {})["status"] = "taken" if taken else "not taken"
        nodes = tuple(replace(n, facts={**n.facts, **facts[n.id]}) if n.id in facts else n for n in self.nodes)
        return replace(self, nodes=nodes, unmatched=tuple(unmatched))


@runtime_checkable
class Structure(Protocol):
    """What every building block offers: its structure as a :class:`Graph`, without running it."""

    def graph(self) -> Graph:
        """The block's nodes and edges."""
        ...


@dataclass(frozen=True)
class Stage:
    """A plain element of a job's flow (an input, a step, an output) that draws itself and notes its own
    facts: the job holds the object, so what it notes and what it draws share one node id.

    >>> raw = Stage("raw", "input", "raw devices")
    >>> with recording() as run:
    ...     raw.note(status="ran", rows=3)
    >>> Graph.of("job", raw).annotate(run).node("raw").facts
    {'status': 'ran', 'rows': 3}
    """

    id: str
    kind: str
    label: str
    rules: Mapping[str, Any] = field(default_factory=dict)

    def graph(self) -> Graph:
        """One node."""
        return Graph(self.id, (Node(self.id, self.kind, self.label, self.rules),), (), (self.id,), (self.id,))

    def note(self, **facts: Any) -> None:
        """Record ``facts`` about this stage in the open :func:`recording`."""
        note(self.id, **facts)

    def wrote(self, result: WriteResult) -> WriteResult:
        """Note a writer's outcome on this stage (:func:`note_write`) and return it."""
        note_write(self.id, result)
        return result


KEPT_WRITES = 1000


@dataclass
class FlowRun:
    """What blocks noted while :func:`recording` was open: facts per node id, the routes taken, the writes."""

    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)
    #: what the writers published (:mod:`spark_flows.core.observe`): ``(kind, payload)`` in order, from any thread;
    #: the last :data:`KEPT_WRITES` only, so a stream that runs for weeks holds its recent micro-batches' writes
    writes: collections.deque[tuple[str, Any]] = field(default_factory=lambda: collections.deque(maxlen=KEPT_WRITES))

    def take(self, kind: str, payload: Any) -> None:
        """Keep what a writer published (``deque.append`` is atomic: branches may publish at once)."""
        self.writes.append((kind, payload))


_current: contextvars.ContextVar[FlowRun | None] = contextvars.ContextVar("spark_flows_run", default=None)


@contextlib.contextmanager
def recording() -> Iterator[FlowRun]:
    """Collect what the blocks run in this context (this thread) note about their nodes."""
    with recording_into(FlowRun()) as run:
        assert run is not None
        yield run


def current() -> FlowRun | None:
    """The :func:`recording` open in this context, if any (to carry it into a callback thread)."""
    return _current.get()


@contextlib.contextmanager
def recording_into(run: FlowRun | None) -> Iterator[FlowRun | None]:
    """Note into ``run`` (from :func:`current` elsewhere) in this context; ``None`` records nothing."""
    token = _current.set(run)
    try:
        with listening(run.take) if run is not None else contextlib.nullcontext():
            yield run
    finally:
        _current.reset(token)


def note(node_id: str, **facts: Any) -> None:
    """Record ``facts`` about ``node_id`` in the open :func:`recording`, if any (otherwise nothing)."""
    run = _current.get()
    if run is not None:
        run.facts.setdefault(node_id, {}).update({k: v for k, v in facts.items() if v is not None})


def note_write(node_id: str, result: WriteResult) -> None:
    """Note a writer's outcome on ``node_id`` (rows written, or skipped and why) in the open recording."""
    note(node_id, status="skipped" if result.skipped else "ran", rows=result.batch_rows if result.skipped
         else result.rows, reason=result.reason if result.skipped else None)


def note_route(branch: str, candidates: tuple[str, ...], reason: str) -> None:
    """Record the branch an exclusive choice took among ``candidates`` in the open :func:`recording`."""
    run = _current.get()
    if run is not None and (branch, candidates, reason) not in run.routes:
        run.routes.append((branch, tuple(candidates), reason))
