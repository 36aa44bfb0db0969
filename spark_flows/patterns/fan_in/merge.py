"""Aligned and Unaligned Fan-In: merge many parents by name, knowing exactly which ones made it.

* :func:`union_by_name` (vertical alignment) compares schemas *before* the union: a column whose types
  differ is widened only where that is lossless (``int -> bigint -> double``, ``date -> timestamp``) and
  otherwise raises :class:`SchemaConflictError` naming the column, both types and both inputs. (Spark's
  own ``unionByName`` under ANSI mode would coerce ``int`` + ``string`` to ``bigint`` and fail only when a
  row is read.)
* :func:`align_join` (horizontal alignment) joins on keys, prefixes colliding columns per input, and can
  refuse inputs with duplicate keys that would multiply rows.
* :func:`fan_in` takes expected parents (partition paths or callables), loads what it can, and returns the
  merged DataFrame with a :class:`Completeness`: ``aligned`` raises :class:`MissingParentsError` listing
  every missing, empty, unreadable or conflicting parent; ``unaligned`` keeps the rest and says so.
  Presence comes from the listing (metadata), never from a second pass over the rows.

Example
-------
>>> import datetime as dt, tempfile
>>> from spark_flows.book.samples import BOOK_MISSING_HOURS, VISITS_SCHEMA, write_visits
>>> root = tempfile.mkdtemp()
>>> _ = write_visits(spark, root, "2024-01-01", rows_per_hour=1, missing_hours=BOOK_MISSING_HOURS)
>>> merged = fan_in(spark, hourly_parents(root, dt.date(2024, 1, 1)), mode="unaligned", schema=VISITS_SCHEMA)
>>> merged.completeness.ratio, merged.completeness.missing
(0.7917, ('06', '11', '16', '17', '18'))
>>> evaluated = merged.evaluate()
>>> evaluated.frame.count(), evaluated.completeness.describe()[:16]
(19, '19 of 24 present')
>>> evaluated.unpersist()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    StructType,
)

from spark_flows.core.waiting import Wait
from spark_flows.errors import (
    MissingParentsError,
    SchemaConflictError,
    error_summary,
    invalid_argument,
)
from spark_flows.flow.graph import Edge, Graph, Node, note
from spark_flows.io.storage import Storage
from spark_flows.patterns.fan_in.alignment import align_join, reconcile_schemas, union_by_name, widen
from spark_flows.patterns.fan_in.completeness import (
    Completeness,
    completeness_frame,
    with_completeness,
)
from spark_flows.patterns.fan_in.parents import (
    PARENT_COLUMN,
    Evaluated,
    Parent,
    ReadPlan,
    apply_rule,
    await_parents,
    data_files,
    hourly_parents,
    rule_parameters,
)
from spark_flows.patterns.fan_in.triggers import ALL_SUCCESS, TriggerRule, trigger_rule

logger = logging.getLogger(__name__)

__all__ = [
    "Completeness", "Evaluated", "FanIn", "Merged", "Parent", "align_join", "completeness_frame", "fan_in",
    "hourly_parents", "reconcile_schemas", "union_by_name", "widen", "with_completeness",
]

Mode = Literal["aligned", "unaligned"]
Fallback = Callable[[Completeness], DataFrame]
@dataclass(frozen=True)
class Merged:
    """Outcome of :meth:`FanIn.run`: the merged (lazy) DataFrame and the completeness known from the listing.

    :meth:`evaluate` runs the caller's transformation over the merge in one scan and completes the picture
    with what only reading finds: unreadable files, parents with no rows, corrupt or drifted records.
    """

    frame: DataFrame
    completeness: Completeness
    corrupt_observation: Observation | None = None
    plan: ReadPlan | None = None
    rule: TriggerRule = ALL_SUCCESS
    name: str = "fan_in"
    fallback: Fallback | None = None

    def corrupt_parents(self) -> dict[str, str]:
        """After an action on :attr:`frame`: parents in which rows did not parse, with counts."""
        if self.corrupt_observation is None:
            return {}
        counts = self.corrupt_observation.get
        return {name.removeprefix("corrupt_"): f"{int(n)} corrupt record(s)" for name, n in counts.items()
                if name.startswith("corrupt_") and n}

    def evaluate(self, transform: Callable[[DataFrame], DataFrame] | None = None, *,
                 storage_level: StorageLevel = StorageLevel.MEMORY_AND_DISK) -> Evaluated:
        """Apply ``transform`` to the merge, persist it and fill it with one scan; apply the trigger rule.

        A parent fails when it is missing or empty in the listing, when its files cannot be read (a
        ``FAILED_READ_FILE`` names the file), when it yields no rows, or when some of its rows are corrupt
        or lack a required column. Unless the rule is ``all_success``, a failed parent contributes nothing:
        the scan is repeated without it (only when reading found such a parent). Triggers one Spark job per
        scan. When no parent succeeded and the fan-in has a ``fallback``, its frame is the result instead
        (:attr:`Evaluated.fallback`).

        Raises
        ------
        MissingParentsError: the trigger rule refused (every failed parent is listed with its reason), or
            no parent at all is usable (``0 of N present``, condition ``NO_PARENTS``) and there is no fallback.
        """
        try:
            if self.plan is None:  # built from loaders only: nothing more to learn by reading
                apply_rule(self.completeness, self.rule, self.name)
                result = (transform or _identity)(self.frame).persist(storage_level)
                result.count()
                return Evaluated(result, self.completeness)
            return self.plan.evaluate(self.completeness, transform or _identity, storage_level)
        except MissingParentsError as exc:
            parameters = exc.getMessageParameters()
            if self.fallback is None or parameters.get("present") != 0:
                raise
            return self._fall_back(Completeness(tuple(parameters["parents"]), dict(parameters["failures"])),
                                   storage_level)

    def _fall_back(self, completeness: Completeness, storage_level: StorageLevel) -> Evaluated:
        logger.warning("fan-in %s: no parent succeeded (%s): running the fallback branch", self.name,
                       completeness.describe())
        if self.fallback is None:
            raise MissingParentsError(f"fan-in {self.name}: no parent succeeded and there is no fallback",
                                      condition="NO_PARENTS", parameters=rule_parameters(completeness, self.rule))
        result = self.fallback(completeness).persist(storage_level)
        rows = result.count()
        note(f"{self.name}.fallback", status="ran", rows=rows)
        return Evaluated(result, completeness, 0, fallback=True)


def _identity(df: DataFrame) -> DataFrame:
    return df


@dataclass(frozen=True)
class FanIn:
    """A fan-in as a value: its expected parents and the rule that decides when their merge may go on.
    :meth:`run` loads and merges them (a :class:`Merged`), :meth:`graph` draws the same parents and rule.

    ``rule`` is a :class:`~spark_flows.patterns.fan_in.triggers.TriggerRule` or its name (``all_success``,
    ``all_done``, ``none_failed_min_one_success``, ``min_success=N``); :func:`fan_in` picks it from a
    ``mode`` (``aligned`` is ``all_success``, ``unaligned`` is ``all_done``). ``name`` names the fan-in's
    node and prefixes its parents' (``<name>.<parent>``).
    """

    name: str
    parents: tuple[Parent, ...]
    rule: TriggerRule = ALL_SUCCESS
    schema: StructType | None = None
    file_format: str = "json"
    allow_missing_columns: bool = False
    track_corrupt_records: bool = True
    required: tuple[str, ...] = ()
    wait: Wait | None = None
    fallback: Fallback | None = None
    fallback_label: str = "fallback"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", trigger_rule(self.rule))
        object.__setattr__(self, "parents", tuple(self.parents))
        object.__setattr__(self, "required", tuple(self.required))
        if not self.parents:
            raise invalid_argument("parents", list(self.parents), "at least one expected parent")
        if self.fallback is not None and not callable(self.fallback):
            raise invalid_argument("fallback", self.fallback, "a function of the Completeness returning a DataFrame")

    def graph(self) -> Graph:
        """One node per parent, the merge, the trigger rule on every parent's edge, and the fallback branch
        when there is one. Needs no Spark.

        >>> g = FanIn("hours", (Parent("00", path="/in/00"), Parent("01", path="/in/01")), rule="min_success=1").graph()
        >>> [(e.source, e.target, e.rule) for e in g.edges]
        [('hours.00', 'hours', 'min_success=1'), ('hours.01', 'hours', 'min_success=1')]
        """
        name, rule = self.name, str(self.rule)
        nodes = [Node(f"{name}.{p.name}", "parent", p.name) for p in self.parents]
        nodes.append(Node(name, "fan_in", name, {"trigger_rule": rule}))
        edges = [Edge(f"{name}.{p.name}", name, rule) for p in self.parents]
        if self.fallback is not None:
            nodes.append(Node(f"{name}.fallback", "fallback", self.fallback_label))
            edges.append(Edge(name, f"{name}.fallback", "no parent succeeded"))
        return Graph(name, tuple(nodes), tuple(edges), tuple(f"{name}.{p.name}" for p in self.parents), (name,))

    def run(self, spark: SparkSession) -> Merged:
        """Load every parent, check them on the listing, and merge the usable ones by name (lazily).

        With ``wait`` (a :class:`~spark_flows.core.waiting.Wait`: timeout, poll interval), path parents that are
        absent or empty are first waited for, as the book's DAG waits on a sensor per parent: the listing is
        polled until every one has data or the timeout passes, then the trigger rule decides as usual (a parent
        still absent is ``"no data after waiting N.Ns"``).

        Path parents are checked on the listing only: absent directory -> ``"no data"``, no non-empty data file
        -> ``"empty"``. JSON/CSV parents are read with ``schema`` (required for them: inferring it would scan);
        rows that do not parse, and rows lacking a ``required`` column, are counted per parent during the one
        scan of :meth:`Merged.evaluate`, which also applies the trigger rule. Loader parents fail if the loader
        raises. Schemas are then reconciled; unless the rule is ``all_success``, a parent that conflicts with the
        first one is dropped as a failure. Launches no Spark job itself.

        ``fallback(completeness)`` gives the result when no parent succeeded.
        The returned :attr:`Merged.frame` is lazy and analyses nothing when every parent is a path read with
        ``schema``, so it can be returned from a Spark Declarative Pipelines query function.

        Raises
        ------
        SparkFlowsValueError: bad arguments (no parents, unknown mode, text format without ``schema``).
        """
        parents, chosen, schema, file_format, name = self.parents, self.rule, self.schema, self.file_format, self.name
        allow_missing_columns, wait = self.allow_missing_columns, self.wait
        if file_format in ("json", "csv") and schema is None and any(p.path for p in parents):
            raise invalid_argument("schema", None, f"a StructType for {file_format} paths (inferring it would scan "
                                                   "the data)")
        for parent in parents:
            if (parent.path is None) == (parent.load is None):
                raise invalid_argument(f"parent {parent.name!r}", parent, "a path or a loader (exactly one)")
        storage = Storage(spark)
        waited = await_parents(storage, parents, wait) if wait is not None else None
        failures: dict[str, str] = {}
        loaded: dict[str, DataFrame] = {}
        readable: dict[str, str] = {}  # parent name -> qualified path, for path parents that passed the listing
        corrupt_tracked = self.track_corrupt_records and file_format == "json" and schema is not None
        for parent in parents:
            try:
                if parent.load is not None:
                    loaded[parent.name] = parent.load()
                elif not storage.exists(str(parent.path)):
                    failures[parent.name] = "no data" + (f" after waiting {waited:.1f}s" if waited else "")
                elif not data_files(storage, str(parent.path)):
                    failures[parent.name] = "empty"
                elif schema is not None:
                    readable[parent.name] = storage.qualify(str(parent.path))
                else:  # schema from each parent's own metadata (Parquet footers, Delta log)
                    loaded[parent.name] = spark.read.format(file_format).load(str(parent.path))
            except Exception as exc:
                failures[parent.name] = error_summary(exc)
        if not chosen.strict and len(loaded) > 1:
            reference = next(iter(loaded))
            for other in list(loaded)[1:]:
                try:
                    reconcile_schemas({reference: loaded[reference].schema, other: loaded[other].schema},
                                      allow_missing_columns=allow_missing_columns)
                except SchemaConflictError as exc:
                    failures[other] = "; ".join(exc.getMessageParameters()["problems"])
                    del loaded[other]
        completeness = Completeness(tuple(p.name for p in parents), failures)
        names = [p.name for p in parents if p.name in readable or p.name in loaded]
        plan = ReadPlan(spark, readable, loaded, schema or StructType([]), file_format, chosen, name,
                        allow_missing_columns, corrupt_tracked, self.required) if readable else None
        if plan is not None:
            frame, observation = plan.merge(names)
        elif loaded:
            frame = union_by_name({n: loaded[n].withColumn(PARENT_COLUMN, F.lit(n)) for n in names},
                                  allow_missing_columns=allow_missing_columns)
            observation = None
        else:
            frame, observation = spark.createDataFrame([], schema or StructType([])), None
        logger.info("fan-in %s (%s): listing: %s", name, chosen, completeness.describe())
        note(name, listing=completeness.describe())
        return Merged(frame, completeness, observation if corrupt_tracked else None, plan, chosen, name,
                      self.fallback)


def fan_in(
    spark: SparkSession,
    parents: Sequence[Parent],
    *,
    mode: Mode = "aligned",
    schema: StructType | None = None,
    file_format: str = "json",
    allow_missing_columns: bool = False,
    track_corrupt_records: bool = True,
    required: Sequence[str] = (),
    wait: Wait | None = None,
    rule: TriggerRule | str | None = None,
    name: str = "fan_in",
    fallback: Fallback | None = None,
) -> Merged:
    """:class:`FanIn` in one call: ``rule`` when given, else the one ``mode`` names (``aligned``:
    ``all_success``; ``unaligned``: ``all_done``); see :meth:`FanIn.run`."""
    if mode not in ("aligned", "unaligned"):
        raise invalid_argument("mode", mode, "'aligned' or 'unaligned'")
    return FanIn(name, tuple(parents), trigger_rule(rule if rule is not None else mode), schema, file_format,
                 allow_missing_columns, track_corrupt_records, tuple(required), wait, fallback).run(spark)
