"""The parents of a fan-in: what each is (:class:`Parent`), where the book's hourly ones are, and how
they are read together in one scan with each row tagged by its parent, corrupt records counted per parent
(:class:`ReadPlan`)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    StructType,
)

from spark_flows.core.backend import analysis_refused, spark_error, spark_failed
from spark_flows.core.waiting import Wait
from spark_flows.errors import (
    MissingParentsError,
    error_summary,
    root_cause,
)
from spark_flows.flow.graph import note
from spark_flows.io.partitions import hour_path
from spark_flows.io.sources import CORRUPT_COLUMN, permissive_reader
from spark_flows.io.storage import Storage
from spark_flows.patterns.fan_in.alignment import union_by_name
from spark_flows.patterns.fan_in.completeness import (
    Completeness,
)
from spark_flows.patterns.fan_in.triggers import TriggerRule

logger = logging.getLogger(__name__)

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
    """Outcome of :meth:`~spark_flows.patterns.fan_in.merge.Merged.evaluate`: the persisted result and the
    completeness found by its one scan."""

    frame: DataFrame
    completeness: Completeness
    scans: int = 1
    fallback: bool = False

    def unpersist(self) -> None:
        """Release the persisted result."""
        self.frame.unpersist()


def note_parents(name: str, completeness: Completeness, rule: TriggerRule, refusal: str | None) -> None:
    for parent in completeness.expected:
        reason = completeness.failures.get(parent)
        note(f"{name}.{parent}", status="failed" if reason else "ran", reason=reason)
    note(name, status="failed" if refusal else "ran", rule=str(rule), completeness=completeness.describe(),
         ratio=completeness.ratio, refused=refusal)


def rule_parameters(completeness: Completeness, rule: TriggerRule) -> dict[str, object]:
    return {"expected": len(completeness.expected), "present": len(completeness.present),
            "failures": dict(completeness.failures), "parents": list(completeness.expected), "rule": str(rule)}


def apply_rule(completeness: Completeness, rule: TriggerRule, name: str) -> Completeness:
    """``completeness`` if ``rule`` lets the merge go on; notes the parents' outcome either way."""
    refusal = rule.refusal(completeness)
    note_parents(name, completeness, rule, refusal)
    if not completeness.present:
        raise MissingParentsError(f"fan-in refused: {completeness.describe()}; nothing to merge",
                                  condition="NO_PARENTS", parameters=rule_parameters(completeness, rule))
    if refusal is not None:
        hint = "; use --mode unaligned to publish partial data" if rule.strict else ""
        label = "aligned fan-in" if rule.strict else f"fan-in ({rule})"
        raise MissingParentsError(f"{label} refused: {completeness.describe()}{hint}",
                                  parameters=rule_parameters(completeness, rule))
    return completeness


def _normalised(path: str, *, encoded: bool = False) -> str:
    """``path`` without its ``file:`` scheme; ``encoded``: a URI to decode (Spark's errors name files so)."""
    path = urllib.parse.unquote(path) if encoded else path
    return "/" + path.removeprefix("file:").lstrip("/")


# A character a path's URI (what ``_metadata.file_path`` gives) percent-encodes: ASCII outside what a URI path
# allows unquoted, or any non-ASCII letter (which Hadoop's ``Path.toUri`` may leave as it is or not).
_URI_QUOTED = re.compile(r"[\x00-\x20\"#%<>?\[\\\]^`{|}\x7f-\U0010ffff]")


@dataclass
class ReadPlan:
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
                final = apply_rule(Completeness(completeness.expected, failures), self.rule, self.name)
            except MissingParentsError:
                result.unpersist()
                raise
            seconds = time.monotonic() - began
            logger.info("fan-in (%s): %s; %d parent(s) read in %d scan(s), %.1fs", self.rule, final.describe(),
                        len(final.expected) - len(final.missing), scans, seconds)
            note(self.name, scans=scans, seconds=round(seconds, 1))
            return Evaluated(result, final, scans)
        apply_rule(Completeness(completeness.expected, failures), self.rule, self.name)
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


def await_parents(storage: Storage, parents: Sequence[Parent], wait: Wait) -> float:
    """Poll the listing until every path parent has data or ``wait`` runs out; the seconds waited."""
    paths = [p for p in parents if p.path is not None]
    waited = wait.until(lambda: True if all(data_files(storage, str(p.path)) for p in paths) else None,
                        f"{len(paths)} fan-in parents")
    return waited.seconds


def data_files(storage: Storage, path: str) -> list[str]:
    return [i.name for i in storage.list(path)
            if not i.is_dir and not i.name.startswith(("_", ".")) and i.size > 0]


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
