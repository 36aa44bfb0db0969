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
>>> from spark_flows.samples import BOOK_MISSING_HOURS, VISITS_SCHEMA, write_visits
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

import datetime as dt
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Literal

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    StructType,
)

from spark_flows.alignment import align_join, reconcile_schemas, union_by_name, widen
from spark_flows.backend import analysis_refused, spark_error
from spark_flows.completeness import (
    Completeness,
    completeness_frame,
    with_completeness,
)
from spark_flows.datasets import hour_path
from spark_flows.errors import (
    MissingParentsError,
    SchemaConflictError,
    error_summary,
    invalid_argument,
    root_cause,
    spark_failed,
)
from spark_flows.sources import CORRUPT_COLUMN, permissive_reader
from spark_flows.storage import Storage
from spark_flows.structure import Edge, Graph, Node, note
from spark_flows.triggers import ALL_SUCCESS, TriggerRule, trigger_rule
from spark_flows.waiting import Wait

logger = logging.getLogger(__name__)

__all__ = [
    "Completeness", "Evaluated", "FanIn", "Parent", "align_join", "completeness_frame", "fan_in", "fan_in_graph",
    "hourly_parents", "reconcile_schemas", "union_by_name", "widen", "with_completeness",
]

Mode = Literal["aligned", "unaligned"]
Fallback = Callable[[Completeness], DataFrame]
PARENT_COLUMN = "_parent"
SEEN = "_parents_seen"


@dataclass(frozen=True)
class Parent:
    """One expected parent of a fan-in: a name and either a path or a loader returning its DataFrame."""

    name: str
    path: str | None = None
    load: Callable[[], DataFrame] | None = None


def hourly_parents(root: str, day: dt.date, hours: Sequence[int] = range(24)) -> list[Parent]:
    """The book's hourly partitions of ``day`` under ``root`` (``date=YYYYMMDD/hour=HH``) as parents."""
    return [Parent(f"{h:02d}", path=hour_path(root, day, h)) for h in hours]


@dataclass(frozen=True)
class Evaluated:
    """Outcome of :meth:`FanIn.evaluate`: the persisted result and the completeness found by its one scan."""

    frame: DataFrame
    completeness: Completeness
    scans: int = 1
    fallback: bool = False

    def unpersist(self) -> None:
        """Release the persisted result."""
        self.frame.unpersist()


@dataclass(frozen=True)
class FanIn:
    """Outcome of :func:`fan_in`: the merged (lazy) DataFrame and the completeness known from the listing.

    :meth:`evaluate` runs the caller's transformation over the merge in one scan and completes the picture
    with what only reading finds: unreadable files, parents with no rows, corrupt or drifted records.
    """

    frame: DataFrame
    completeness: Completeness
    corrupt_observation: Observation | None = None
    plan: _Plan | None = None
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
                _apply_rule(self.completeness, self.rule, self.name)
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
                                      condition="NO_PARENTS", parameters=_parameters(completeness, self.rule))
        result = self.fallback(completeness).persist(storage_level)
        rows = result.count()
        note(f"{self.name}.fallback", status="ran", rows=rows)
        return Evaluated(result, completeness, 0, fallback=True)


def _identity(df: DataFrame) -> DataFrame:
    return df


def _apply_rule(completeness: Completeness, rule: TriggerRule, name: str) -> Completeness:
    """``completeness`` if ``rule`` lets the merge go on; notes the parents' outcome either way."""
    refusal = rule.refusal(completeness)
    _note_parents(name, completeness, rule, refusal)
    if not completeness.present:
        raise MissingParentsError(f"fan-in refused: {completeness.describe()}; nothing to merge",
                                  condition="NO_PARENTS", parameters=_parameters(completeness, rule))
    if refusal is not None:
        hint = "; use --mode unaligned to publish partial data" if rule.strict else ""
        label = "aligned fan-in" if rule.strict else f"fan-in ({rule})"
        raise MissingParentsError(f"{label} refused: {completeness.describe()}{hint}",
                                  parameters=_parameters(completeness, rule))
    return completeness


def _note_parents(name: str, completeness: Completeness, rule: TriggerRule, refusal: str | None) -> None:
    for parent in completeness.expected:
        reason = completeness.failures.get(parent)
        note(f"{name}.{parent}", status="failed" if reason else "ran", reason=reason)
    note(name, status="failed" if refusal else "ran", rule=str(rule), completeness=completeness.describe(),
         ratio=completeness.ratio, refused=refusal)


def _parameters(completeness: Completeness, rule: TriggerRule) -> dict[str, object]:
    return {"expected": len(completeness.expected), "present": len(completeness.present),
            "failures": dict(completeness.failures), "parents": list(completeness.expected), "rule": str(rule)}


def _normalised(path: str, *, encoded: bool = False) -> str:
    """``path`` without its ``file:`` scheme; ``encoded``: a URI to decode (Spark's errors name files so)."""
    path = urllib.parse.unquote(path) if encoded else path
    return "/" + path.removeprefix("file:").lstrip("/")


# A character a path's URI (what ``_metadata.file_path`` gives) percent-encodes: ASCII outside what a URI path
# allows unquoted, or any non-ASCII letter (which Hadoop's ``Path.toUri`` may leave as it is or not).
_URI_QUOTED = re.compile(r"[\x00-\x20\"#%<>?\[\\\]^`{|}\x7f-\U0010ffff]")


@dataclass
class _Plan:
    """How to read the path parents again, with some of them left out."""

    spark: SparkSession
    paths: dict[str, str]
    loaded: dict[str, DataFrame]
    schema: StructType
    file_format: str
    rule: TriggerRule
    name: str
    allow_missing_columns: bool
    corrupt: bool
    required: tuple[str, ...]

    def merge(self, names: Sequence[str]) -> tuple[DataFrame, Observation]:
        frame, counters, corrupt = self._unfiltered(names)
        observation = Observation()
        try:
            frame = frame.observe(observation, *counters)
        except Exception as exc:  # observing analyses the plan (Spark Connect): refused in a pipeline query
            if not analysis_refused(exc):
                raise spark_failed(f"fan-in {self.name}: merging {len(names)} parent(s)", exc) from exc
            logger.info("fan-in %s in a pipeline query function: rows are not counted per parent", self.name)
        if corrupt:
            frame = frame.where(F.col(CORRUPT_COLUMN).isNull()).drop(CORRUPT_COLUMN)
        return frame, observation

    def counts(self, observation: Observation, names: Sequence[str]) -> Mapping[str, object]:
        """The per-parent counts the scan observed; counted by one more scan where Spark lost them (its
        adaptive plan drops a stage's observed metrics when what follows it is empty: no row was good)."""
        try:
            observed = observation.get
        except Exception as exc:  # Spark raises an assertion error here, not a documented one
            logger.debug("fan-in %s: the scan's observed counts are lost: %s", self.name, exc)
            observed = {}
        if observed:
            return observed
        frame, counters, _ = self._unfiltered(names)
        row = frame.agg(*counters).first()
        return row.asDict() if row is not None else {}

    def _unfiltered(self, names: Sequence[str]) -> tuple[DataFrame, list[Column], bool]:
        """The merge of ``names`` with its corrupt rows, the per-parent counters, and whether rows may be corrupt."""
        paths = {n: self.paths[n] for n in names if n in self.paths}
        frames: dict[str, DataFrame] = {}
        if paths:
            frames.update(_read_together(self.spark, paths, self.schema, self.file_format, self.corrupt))
        for name in names:
            if name in self.loaded:
                extra = self.loaded[name].withColumn(PARENT_COLUMN, F.lit(name))
                if self.corrupt and paths:
                    extra = extra.withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
                frames[name] = extra
        frame = union_by_name(frames, allow_missing_columns=self.allow_missing_columns)
        # cheap per row: one set of the parents seen, and per-parent counts whose rare condition comes first
        # (a short-circuited AND compares the parent name only on a corrupt or lacking row)
        counters = [F.collect_set(PARENT_COLUMN).alias(SEEN)]
        if self.corrupt and paths:
            counters += _corrupt_counters([n for n in names if n in paths])
            # A pruned scan parses only the columns read after it, so a record whose bad field the transform
            # never reads would pass as good (and Spark refuses a scan that reads the corrupt-record column
            # alone): the observation reads every column of the schema, so every field of every row is parsed.
            # (a count of rows with every column null: an aggregate Spark cannot simplify away)
            blank = reduce(lambda a, b: a & b, [F.col(f"`{f.name}`").isNull() for f in self.schema.fields])
            counters.append(F.count_if(blank).alias("_blank"))
        if self.required:
            lacking = reduce(lambda a, b: a | b, [F.col(c).isNull() for c in self.required])
            if self.corrupt and paths:
                lacking = lacking & F.col(CORRUPT_COLUMN).isNull()
            counters += [F.count_if(lacking & (F.col(PARENT_COLUMN) == n)).alias(f"lacking_{n}") for n in names]
        return frame, counters, bool(self.corrupt and paths)

    def evaluate(self, completeness: Completeness, transform: Callable[[DataFrame], DataFrame],
                 storage_level: StorageLevel) -> Evaluated:
        failures = dict(completeness.failures)
        scans, began = 0, time.monotonic()
        while True:
            present = [p for p in completeness.expected if p not in failures]
            if not present:
                break
            frame, observation = self.merge(present)
            refused = self.rule.refused_by(failures)
            # a fan-in its rule already refused only needs the scan to name every failed parent
            result = (frame if refused else transform(frame)).persist(storage_level)
            scans += 1
            try:
                result.count()
            except Exception as exc:
                result.unpersist()
                parent = self._unreadable_parent(exc, present)
                if parent is None:
                    raise spark_failed(f"fan-in {self.name}: the scan of {len(present)} parent(s)", exc) from exc
                condition, parameters = spark_error(exc)
                file = str(parameters.get("path", "")).rsplit("/", 1)[-1]
                failures[parent] = f"unreadable: [{condition}] {file}: {root_cause(exc) or error_summary(exc)}"
                logger.warning("fan-in: parent %s cannot be read: %s", parent, failures[parent])
                continue
            found = self._found(self.counts(observation, present), present)
            failures.update(found)
            contributed = [p for p in found if not found[p].startswith("empty")]
            if refused or (contributed and self.rule.refused_by(failures)):
                result.unpersist()
                break
            if contributed:  # a failed parent must contribute nothing: read again without it
                result.unpersist()
                continue
            try:
                final = _apply_rule(Completeness(completeness.expected, failures), self.rule, self.name)
            except MissingParentsError:
                result.unpersist()
                raise
            seconds = time.monotonic() - began
            logger.info("fan-in (%s): %s; %d parent(s) read in %d scan(s), %.1fs", self.rule, final.describe(),
                        len(final.expected) - len(final.missing), scans, seconds)
            note(self.name, scans=scans, seconds=round(seconds, 1))
            return Evaluated(result, final, scans)
        _apply_rule(Completeness(completeness.expected, failures), self.rule, self.name)
        raise MissingParentsError("unreachable: the rule above refused", parameters={})  # pragma: no cover

    def _found(self, counts: Mapping[str, object], names: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in names:
            corrupt = int(counts.get(f"corrupt_{name}", 0) or 0)  # type: ignore[call-overload]
            lacking = int(counts.get(f"lacking_{name}", 0) or 0)  # type: ignore[call-overload]
            seen = name in set(counts.get(SEEN) or ())  # type: ignore[call-overload]
            if corrupt:
                found[name] = f"{corrupt} corrupt record(s)"
            elif lacking:
                found[name] = f"{lacking} row(s) lack a required column {list(self.required)} (schema drift?)"
            elif not seen:
                found[name] = "empty (0 rows)"
        return found

    def _unreadable_parent(self, exc: BaseException, present: Sequence[str]) -> str | None:
        _, parameters = spark_error(exc)
        failed = parameters.get("path")
        if not failed:
            return None
        failed = _normalised(str(failed), encoded=True)
        for name in present:
            if name in self.paths and failed.startswith(_normalised(self.paths[name]).rstrip("/") + "/"):
                return name
        return None


def _await_parents(storage: Storage, parents: Sequence[Parent], wait: Wait) -> float:
    """Poll the listing until every path parent has data or ``wait`` runs out; the seconds waited."""
    paths = [p for p in parents if p.path is not None]
    waited = wait.until(lambda: True if all(_data_files(storage, str(p.path)) for p in paths) else None,
                        f"{len(paths)} fan-in parents")
    return waited.seconds


def _data_files(storage: Storage, path: str) -> list[str]:
    return [i.name for i in storage.list(path)
            if not i.is_dir and not i.name.startswith(("_", ".")) and i.size > 0]


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
) -> FanIn:
    """Load every parent, check them on the listing, and merge the usable ones by name (lazily).

    With ``wait`` (a :class:`~spark_flows.waiting.Wait`: timeout, poll interval), path parents that are
    absent or empty are first waited for, as the book's DAG waits on a sensor per parent: the listing is
    polled until every one has data or the timeout passes, then the trigger rule decides as usual (a parent
    still absent is ``"no data after waiting N.Ns"``).

    Path parents are checked on the listing only: absent directory -> ``"no data"``, no non-empty data file
    -> ``"empty"``. JSON/CSV parents are read with ``schema`` (required for them: inferring it would scan);
    rows that do not parse, and rows lacking a ``required`` column, are counted per parent during the one
    scan of :meth:`FanIn.evaluate`, which also applies the trigger rule. Loader parents fail if the loader
    raises. Schemas are then reconciled; unless the rule is ``all_success``, a parent that conflicts with the
    first one is dropped as a failure. Launches no Spark job itself.

    ``rule`` is a :class:`~spark_flows.triggers.TriggerRule` or its name (``all_success``, ``all_done``,
    ``none_failed_min_one_success``, ``min_success=N``); without it ``mode`` picks one (``aligned`` is
    ``all_success``, ``unaligned`` is ``all_done``). ``fallback(completeness)`` gives the result when no
    parent succeeded. ``name`` names the fan-in's node in :func:`fan_in_graph` and in a run's facts.
    The returned :attr:`FanIn.frame` is lazy and analyses nothing when every parent is a path read with
    ``schema``, so it can be returned from a Spark Declarative Pipelines query function.

    Raises
    ------
    SparkFlowsValueError: bad arguments (no parents, unknown mode, text format without ``schema``).
    """
    if mode not in ("aligned", "unaligned"):
        raise invalid_argument("mode", mode, "'aligned' or 'unaligned'")
    chosen = trigger_rule(rule if rule is not None else mode)
    if fallback is not None and not callable(fallback):
        raise invalid_argument("fallback", fallback, "a function of the Completeness returning a DataFrame")
    if not parents:
        raise invalid_argument("parents", list(parents), "at least one expected parent")
    if file_format in ("json", "csv") and schema is None and any(p.path for p in parents):
        raise invalid_argument("schema", None, f"a StructType for {file_format} paths (inferring it would scan "
                                               "the data)")
    for parent in parents:
        if (parent.path is None) == (parent.load is None):
            raise invalid_argument(f"parent {parent.name!r}", parent, "a path or a loader (exactly one)")
    storage = Storage(spark)
    waited = _await_parents(storage, parents, wait) if wait is not None else None
    failures: dict[str, str] = {}
    loaded: dict[str, DataFrame] = {}
    readable: dict[str, str] = {}  # parent name -> qualified path, for path parents that passed the listing
    corrupt_tracked = track_corrupt_records and file_format == "json" and schema is not None
    for parent in parents:
        try:
            if parent.load is not None:
                loaded[parent.name] = parent.load()
            elif not storage.exists(str(parent.path)):
                failures[parent.name] = "no data" + (f" after waiting {waited:.1f}s" if waited else "")
            elif not _data_files(storage, str(parent.path)):
                failures[parent.name] = "empty"
            elif schema is not None:
                readable[parent.name] = storage.qualify(str(parent.path))
            else:  # schema from each parent's own metadata (Parquet footers, Delta log)
                loaded[parent.name] = spark.read.format(file_format).load(str(parent.path))
        except Exception as exc:
            failures[parent.name] = error_summary(exc)
    if not chosen.strict and len(loaded) > 1:
        reference = next(iter(loaded))
        for name in list(loaded)[1:]:
            try:
                reconcile_schemas({reference: loaded[reference].schema, name: loaded[name].schema},
                                  allow_missing_columns=allow_missing_columns)
            except SchemaConflictError as exc:
                failures[name] = "; ".join(exc.getMessageParameters()["problems"])
                del loaded[name]
    completeness = Completeness(tuple(p.name for p in parents), failures)
    names = [p.name for p in parents if p.name in readable or p.name in loaded]
    plan = _Plan(spark, readable, loaded, schema or StructType([]), file_format, chosen, name, allow_missing_columns,
                 corrupt_tracked, tuple(required)) if readable else None
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
    return FanIn(frame, completeness, observation if corrupt_tracked else None, plan, chosen, name, fallback)


def fan_in_graph(parents: Sequence[Parent] | Sequence[str], *, rule: TriggerRule | str = "all_success",
                 name: str = "fan_in", fallback: str | None = None) -> Graph:
    """The structure of a fan-in: one node per parent, the merge, the trigger rule on every parent's edge,
    and the fallback branch (``fallback``: its label) when there is one. Needs no Spark.

    >>> g = fan_in_graph(["00", "01"], rule="min_success=1", name="hours", fallback="empty day")
    >>> [(e.source, e.target, e.rule) for e in g.edges]
    [('hours.00', 'hours', 'min_success=1'), ('hours.01', 'hours', 'min_success=1'), ('hours', 'hours.fallback', \
'no parent succeeded')]
    """
    chosen = trigger_rule(rule)
    names = [p.name if isinstance(p, Parent) else str(p) for p in parents]
    nodes = [Node(f"{name}.{p}", "parent", p) for p in names]
    nodes.append(Node(name, "fan_in", name, {"trigger_rule": str(chosen)}))
    edges = [Edge(f"{name}.{p}", name, str(chosen)) for p in names]
    if fallback is not None:
        nodes.append(Node(f"{name}.fallback", "fallback", fallback))
        edges.append(Edge(name, f"{name}.fallback", "no parent succeeded"))
    return Graph(name, tuple(nodes), tuple(edges), tuple(f"{name}.{p}" for p in names), (name,))


def _read_together(
    spark: SparkSession, paths: Mapping[str, str], schema: StructType, file_format: str, corrupt: bool
) -> dict[str, DataFrame]:
    """Read same-schema parents in ONE scan (one file index, packed splits), tagging each row's parent."""
    reader = permissive_reader(spark, schema, file_format) if corrupt else spark.read.format(file_format).schema(schema)
    file_path = F.col("_metadata.file_path")
    if any(_URI_QUOTED.search(p) for p in paths.values()):  # Spark gives the path URL-encoded: decode it back
        file_path = F.url_decode(F.replace(file_path, F.lit("+"), F.lit("%2B")))  # a '+' is a '+', not a space
    items = list(paths.items())
    parent = F.when(file_path.startswith(items[0][1].rstrip("/") + "/"), F.lit(items[0][0]))
    for name, path in items[1:]:
        parent = parent.when(file_path.startswith(path.rstrip("/") + "/"), F.lit(name))
    together = reader.load(list(paths.values())).withColumn(PARENT_COLUMN, parent)
    return {"+".join(paths): together}


def _corrupt_counters(names: Sequence[str]) -> list[Column]:
    return [F.count_if(F.col(CORRUPT_COLUMN).isNotNull() & (F.col(PARENT_COLUMN) == n)).alias(f"corrupt_{n}")
            for n in names]
