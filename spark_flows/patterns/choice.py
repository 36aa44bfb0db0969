"""Exclusive Choice: exactly one branch, chosen by a factory, a date or a schema, and never hidden.

* :class:`OutputFactory` maps an :class:`OutputType` to a dedicated writer class (Delta, CSV, Parquet) and
  to the session configuration that writer needs. Adding a type is one class and one :meth:`register`.
* :func:`route_by_date` (a migration cut-over), :func:`route_by_schema` (rules on the input's fields,
  decided from metadata only) and :class:`Router` (first matching user condition) all return a
  :class:`Route`: the branch taken, the condition, the value that decided it. Log it, return it, record it
  next to the output (:func:`record_route`).

Example
-------
>>> import datetime as dt
>>> from spark_flows.patterns.choice import OutputFactory, route_by_date
>>> type(OutputFactory.default().create("csv")).__name__
'CsvWriter'
>>> route = route_by_date(dt.date(2024, 3, 1), cutover=dt.date(2024, 3, 1), before="csv", on_or_after="delta")
>>> route.branch, route.reason
('delta', 'execution date 2024-03-01 >= cut-over 2024-03-01')
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from spark_flows.core.compat import StrEnum
from spark_flows.errors import RouteError, UnknownOutputTypeError, invalid_argument
from spark_flows.flow.graph import Edge, Graph, Node, note_route
from spark_flows.io import footers
from spark_flows.io.storage import Storage
from spark_flows.io.writers import CsvWriter, DeltaWriter, ParquetWriter, Writer

logger = logging.getLogger(__name__)

ROUTE_RECORD = "_ROUTE.json"


class OutputType(StrEnum):
    """Output types known to the default factory."""

    DELTA = "delta"
    CSV = "csv"
    PARQUET = "parquet"


class WriteMode(StrEnum):
    """How a factory-made writer treats what its output already holds."""

    APPEND = "append"  #: add the batch; every earlier batch stays (the book's migration example)
    OVERWRITE = "overwrite"  #: the batch becomes the whole output
    REPLACE_PARTITION = "replace_partition"  #: the batch replaces one partition (``partition=``), others stay


class OutputFactory:
    """Registry of writer classes per output type (the book's ``OutputGenerationFactory``, without if-else).

    A registered writer is a class or builder called as ``writer(mode="append"|"overwrite", replace=...)``
    (``replace``: the ``{column: value}`` partition to replace, or ``None``), as the bundled writers are.

    >>> writer = OutputFactory.default().create("csv", mode="replace_partition", partition={"date": "20240301"})
    >>> type(writer).__name__, writer.mode, writer.replace
    ('CsvWriter', 'overwrite', {'date': '20240301'})
    """

    def __init__(self, name: str = "output_type") -> None:
        """``name`` names the choice's node when the factory is drawn."""
        self._writers: dict[str, Callable[..., Writer]] = {}
        self.name = name

    @classmethod
    def default(cls, name: str = "output_type") -> OutputFactory:
        """A factory with Delta, CSV and Parquet registered."""
        factory = cls(name)
        factory.register(OutputType.DELTA, DeltaWriter)
        factory.register(OutputType.CSV, CsvWriter)
        factory.register(OutputType.PARQUET, ParquetWriter)
        return factory

    def register(self, output_type: str | Enum, writer: Callable[..., Writer]) -> None:
        """Register (or replace) the writer class or builder for ``output_type``."""
        self._writers[self._key(output_type)] = writer

    @staticmethod
    def _key(output_type: str | Enum) -> str:
        return str(output_type.value if isinstance(output_type, Enum) else output_type).strip().lower()

    def _registered(self, output_type: str | Enum) -> str:
        """``output_type``'s key; :class:`UnknownOutputTypeError` naming the known types if it has no writer."""
        key = self._key(output_type)
        if key not in self._writers:
            raise UnknownOutputTypeError(f"unknown output type {output_type!r}; known: {', '.join(self.known)}",
                                         parameters={"output_type": str(output_type), "known": self.known})
        return key

    def graph(self) -> Graph:
        """The registered writers as a :func:`choice_graph`: one branch per output type."""
        return choice_graph(self.name, [(t, f"output type = {t}") for t in self.known])

    def run(self, output_type: str | Enum) -> Route:
        """The :class:`Route` to ``output_type``'s writer, logged and noted (an unknown type raises, as
        :meth:`create` does)."""
        key = self._registered(output_type)
        return _taken(Route(key, "output type", key, f"output type {key}", tuple(self.known)))

    @property
    def known(self) -> list[str]:
        """Registered output types, sorted."""
        return sorted(self._writers)

    def create(self, output_type: str | Enum, *, mode: str = WriteMode.OVERWRITE,
               partition: Mapping[str, str] | None = None) -> Writer:
        """A new writer for ``output_type`` in write ``mode`` (a :class:`WriteMode`).

        Raises
        ------
        UnknownOutputTypeError: ``output_type`` is not registered; the message lists the known ones.
        SparkFlowsValueError: an unknown ``mode``, or ``partition`` missing for (or given without)
            ``replace_partition``.
        """
        key = self._registered(output_type)
        modes = [m.value for m in WriteMode]
        if mode not in modes:
            raise invalid_argument("write mode", mode, f"one of {modes}")
        if (mode == WriteMode.REPLACE_PARTITION) != bool(partition):
            raise invalid_argument("partition", partition, "a {column: value} mapping exactly when mode is "
                                                           "'replace_partition'")
        if mode == WriteMode.REPLACE_PARTITION:
            return self._writers[key](mode=WriteMode.OVERWRITE.value, replace=dict(partition or {}))
        return self._writers[key](mode=str(mode), replace=None)

    def prepare(self, spark: SparkSession, output_type: str | Enum, *, mode: str = WriteMode.OVERWRITE,
                partition: Mapping[str, str] | None = None) -> Writer:
        """:meth:`create` the writer and apply the session configuration it needs."""
        writer = self.create(output_type, mode=mode, partition=partition)
        for key, value in writer.session_conf().items():
            spark.conf.set(key, value)
        return writer


@dataclass(frozen=True)
class Route:
    """The branch an exclusive choice took, and why."""

    branch: str
    condition: str
    value: str
    reason: str
    candidates: tuple[str, ...] = field(default_factory=tuple)

    def as_record(self) -> dict[str, Any]:
        """The route as JSON-ready data, with the time of the decision."""
        return {**asdict(self), "candidates": list(self.candidates),
                "decided_at": dt.datetime.now(dt.timezone.utc).isoformat()}


def _taken(route: Route) -> Route:
    logger.info("route: took branch %s because %s", route.branch, route.reason)
    note_route(route.branch, route.candidates, route.reason)
    return route


def choice_graph(name: str, candidates: Sequence[tuple[str, str]]) -> Graph:
    """The structure of an exclusive choice: the decision, then one node per ``(branch, condition)``, the
    condition on the branch's edge. A run marks the branch taken and the others ``not taken``."""
    nodes = [Node(name, "choice", name, {"exclusive": "exactly one branch"})]
    nodes += [Node(f"{name}.{b}", "candidate", b) for b, _ in candidates]
    edges = tuple(Edge(name, f"{name}.{b}", condition) for b, condition in candidates)
    return Graph(name, tuple(nodes), edges, (name,), tuple(f"{name}.{b}" for b, _ in candidates))


@dataclass(frozen=True)
class DateChoice:
    """An Exclusive Choice on the execution date (a migration cut-over) as a value: dates before ``cutover``
    take ``before``, the cut-over day and later ``on_or_after``. :meth:`run` decides, :meth:`graph` draws.

    >>> choice = DateChoice(dt.date(2024, 3, 1), before="csv", on_or_after="delta", name="format")
    >>> choice.run(dt.date(2024, 2, 29)).branch
    'csv'
    >>> [e.rule for e in choice.graph().edges]
    ['execution_date < 2024-03-01', 'execution_date >= 2024-03-01']
    """

    cutover: dt.date | None
    before: str
    on_or_after: str
    name: str = "route_by_date"

    def graph(self) -> Graph:
        """The decision, then both candidates, each with its condition (``cut-over`` without a date yet)."""
        when = self.cutover.isoformat() if self.cutover is not None else "cut-over"
        return choice_graph(self.name, [(self.before, f"execution_date < {when}"),
                                        (self.on_or_after, f"execution_date >= {when}")])

    def run(self, execution_date: dt.date) -> Route:
        """The :class:`Route` for ``execution_date``, logged and noted."""
        cutover = self.cutover
        if not isinstance(execution_date, dt.date) or not isinstance(cutover, dt.date):
            raise RouteError(f"route_by_date needs dates, got {execution_date!r} and {cutover!r}",
                             condition="INVALID_ARGUMENT", parameters={"execution_date": repr(execution_date),
                                                                       "cutover": repr(cutover)})
        new = execution_date >= cutover
        op = ">=" if new else "<"
        return _taken(Route(
            branch=self.on_or_after if new else self.before, condition=f"execution_date {op} cutover",
            value=execution_date.isoformat(), reason=f"execution date {execution_date} {op} cut-over {cutover}",
            candidates=(self.before, self.on_or_after)))


def route_by_date(execution_date: dt.date, *, cutover: dt.date, before: str, on_or_after: str) -> Route:
    """Route dates before ``cutover`` to ``before`` and the cut-over day and later to ``on_or_after``
    (:class:`DateChoice` in one call)."""
    return DateChoice(cutover, before, on_or_after).run(execution_date)


@dataclass(frozen=True)
class SchemaRule:
    """Take ``branch`` when the schema has every field of ``has_fields`` and none of ``lacks_fields``."""

    branch: str
    has_fields: tuple[str, ...] = ()
    lacks_fields: tuple[str, ...] = ()

    def matches(self, schema: StructType) -> bool:
        names = set(schema.fieldNames())
        return set(self.has_fields) <= names and not (set(self.lacks_fields) & names)

    def describe(self) -> str:
        parts = [f"has {list(self.has_fields)}"] if self.has_fields else []
        parts += [f"lacks {list(self.lacks_fields)}"] if self.lacks_fields else []
        return " and ".join(parts) or "always"


def route_by_schema(schema: StructType, rules: Sequence[SchemaRule], *, default: str | None = None) -> Route:
    """The first rule matching ``schema`` (pass a schema from :func:`schema_of`: no data is read).

    Raises
    ------
    RouteError: no rule matches and there is no ``default``; the message gives the fields and the rules.
    """
    candidates = tuple(r.branch for r in rules) + ((default,) if default else ())
    for rule in rules:
        if rule.matches(schema):
            return _taken(Route(rule.branch, rule.describe(), ",".join(schema.fieldNames()),
                                f"schema {rule.describe()}", candidates))
    if default is None:
        raise RouteError(f"no schema rule matches fields {schema.fieldNames()}; rules: "
                         + "; ".join(f"{r.branch}: {r.describe()}" for r in rules) + "; add a default branch",
                         parameters={"fields": schema.fieldNames(), "rules": [r.branch for r in rules]})
    return _taken(Route(default, "default", ",".join(schema.fieldNames()), "no schema rule matched", candidates))


class Router:
    """First-match router over named user conditions on a context value, with an optional default."""

    def __init__(self, rules: Sequence[tuple[str, str, Callable[[Any], bool]]], *, default: str | None = None,
                 name: str = "route"):
        """``rules``: ``(branch, description, predicate)`` in priority order; ``name`` names the choice's node."""
        self.rules = list(rules)
        self.default = default
        self.name = name

    def describe(self) -> list[dict[str, str]]:
        """The routes as plain data (inspectable without running)."""
        rows = [{"branch": b, "condition": d} for b, d, _ in self.rules]
        return rows + ([{"branch": self.default, "condition": "default"}] if self.default else [])

    def graph(self) -> Graph:
        """The routes as a :func:`choice_graph` (first match wins; the default last)."""
        return choice_graph(self.name, [(r["branch"], r["condition"]) for r in self.describe()])

    def run(self, value: Any) -> Route:
        """The first branch whose predicate holds for ``value``, else the default, else :class:`RouteError`."""
        candidates = tuple(b for b, _, _ in self.rules) + ((self.default,) if self.default else ())
        for branch_name, description, predicate in self.rules:
            if predicate(value):
                return _taken(Route(branch_name, description, repr(value), f"{description} holds", candidates))
        if self.default is None:
            raise RouteError(f"no route for {value!r}: conditions {[d for _, d, _ in self.rules]} all false "
                             "and no default", parameters={"value": repr(value),
                                                           "conditions": [d for _, d, _ in self.rules]})
        return _taken(Route(self.default, "default", repr(value), "no condition held", candidates))


SPARK_ROW_METADATA = "org.apache.spark.sql.parquet.row.metadata"


def schema_of(spark: SparkSession, path: str, file_format: str, *, declared: StructType | None = None,
              infer: bool = False, sampling_ratio: float = 1.0, sample_files: int | None = None) -> StructType:
    """The schema of the dataset at ``path`` from metadata only, launching no Spark job (by default).

    Delta: the table's log. Parquet: the Spark schema in one file footer. JSON/CSV: ``declared`` (their
    schema cannot be known without reading rows), or with ``infer=True`` inferred as the book does, at a
    cost: one Spark job reading the input, bounded by ``sampling_ratio`` (of the rows) and ``sample_files``
    (the first files by name). A field only the unread rows hold is then missed: declare the schema when
    the route must be exact.

    Raises
    ------
    RouteError: the path does not exist, or a JSON/CSV input has no declared schema and ``infer`` is off.
    """
    storage = Storage(spark)
    if not storage.exists(path):
        raise RouteError(f"cannot route on the schema of {path}: it does not exist", condition="INPUT_NOT_FOUND",
                         parameters={"path": path})
    if file_format == "delta":
        return spark.read.format("delta").load(path).schema
    if file_format == "parquet":
        files = [i.path for i in storage.list(path) if i.name.endswith(".parquet")]
        text = footers.parquet_key_value(spark, files[0], SPARK_ROW_METADATA) if files else None
        if text:
            return StructType.fromJson(json.loads(text))
        return spark.read.parquet(path).schema  # not written by Spark: Spark reads the footers (one job)
    if declared is not None:
        return declared
    if not infer:
        raise RouteError(f"cannot route {file_format} input {path} on its schema without reading it: "
                         "declare the schema, or infer it (infer=True: one Spark job over a sample)",
                         condition="SCHEMA_NOT_DECLARED", parameters={"path": path, "format": file_format})
    if not 0.0 < sampling_ratio <= 1.0 or (sample_files is not None and sample_files < 1):
        raise invalid_argument("schema inference sample", (sampling_ratio, sample_files),
                               "sampling_ratio within (0, 1] and sample_files >= 1 or None")
    files = [path] if sample_files is None else [
        i.path for i in storage.list(path) if not i.name.startswith(("_", "."))][:sample_files]
    schema = spark.read.format(file_format).option("samplingRatio", str(sampling_ratio)).load(files).schema
    logger.info("schema of %s inferred from %s (samplingRatio %s): one Spark job", path,
                "every file" if sample_files is None else f"{len(files)} file(s)", sampling_ratio)
    return schema


def record_route(spark: SparkSession, output: str, route: Route, extra: Mapping[str, Any] | None = None) -> str:
    """Write ``route`` (and ``extra``) as ``<output>/_ROUTE.json`` next to the data; returns its path."""
    path = f"{output.rstrip('/')}/{ROUTE_RECORD}"
    Storage(spark).write_json(path, {**route.as_record(), **(extra or {})})
    note_route(route.branch, route.candidates, route.reason)
    return path
