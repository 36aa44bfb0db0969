"""Vertical and horizontal alignment: union by column name with schema checks, and join alignment.

* :func:`union_by_name` compares schemas *before* the union: a column whose types differ is widened only
  where that is lossless (``int -> bigint -> double``, ``date -> timestamp``) and otherwise raises
  :class:`SchemaConflictError` naming the column, both types and both inputs. (Spark's own
  ``unionByName`` under ANSI mode would coerce ``int`` + ``string`` to ``bigint`` and fail only when a row
  is read.)
* :func:`align_join` joins on keys, prefixes colliding columns per input, and can refuse inputs with
  duplicate keys that would multiply rows.

Used by :mod:`spark_flows.patterns.fan_in.merge`; both names are re-exported there.

Example
-------
>>> a = spark.createDataFrame([(1, "x")], "id int, v string")
>>> b = spark.createDataFrame([("2", "y")], "id string, v string")
>>> try:
...     union_by_name({"a": a, "b": b})
... except SchemaConflictError as exc:
...     exc.getMessageParameters()["problems"]
["column 'id': int in 'a' vs string in 'b'"]
>>> visits = spark.createDataFrame([("home", 3)], "page string, n long")
>>> users = spark.createDataFrame([("home", 2)], "page string, n long")
>>> align_join({"visits": visits, "users": users}, on=["page"]).columns
['page', 'visits_n', 'users_n']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StructField,
    StructType,
    TimestampType,
)

from spark_flows.core.backend import analysis_refused, spark_failed
from spark_flows.errors import DuplicateKeysError, SchemaConflictError, invalid_argument

logger = logging.getLogger(__name__)

_WIDENING: dict[tuple[type, type], DataType] = {}
for _narrow, _wide in [(ShortType, IntegerType), (ShortType, LongType), (IntegerType, LongType),
                       (IntegerType, DoubleType), (FloatType, DoubleType), (ShortType, DoubleType),
                       (DateType, TimestampType)]:
    _WIDENING[(_narrow, _wide)] = _wide()
    _WIDENING[(_wide, _narrow)] = _wide()


def widen(left: DataType, right: DataType) -> DataType | None:
    """The type both ``left`` and ``right`` convert to without loss, or ``None`` (a real conflict)."""
    if left == right:
        return left
    return _WIDENING.get((type(left), type(right)))


def _labelled(frames: Mapping[str, DataFrame] | Sequence[DataFrame]) -> dict[str, DataFrame]:
    if isinstance(frames, Mapping):
        return dict(frames)
    return {f"input {i}": df for i, df in enumerate(frames, start=1)}


def reconcile_schemas(
    schemas: Mapping[str, StructType],
    *,
    allow_missing_columns: bool = False,
    casts: Mapping[str, DataType] | None = None,
) -> StructType:
    """The merged schema of named ``schemas``, or :class:`SchemaConflictError` listing every problem.

    Columns keep first-seen order. ``casts`` forces a column's type (the caller's explicit choice);
    otherwise types must match or widen losslessly. Missing columns are conflicts unless
    ``allow_missing_columns`` (then they are filled with nulls).
    """
    casts = dict(casts or {})
    merged: dict[str, tuple[DataType, str]] = {}
    problems: list[str] = []
    for name, schema in schemas.items():
        for f in schema.fields:
            if f.name in casts:
                merged.setdefault(f.name, (casts[f.name], name))
                continue
            if f.name not in merged:
                merged[f.name] = (f.dataType, name)
                continue
            current, owner = merged[f.name]
            wider = widen(current, f.dataType)
            if wider is None:
                problems.append(f"column '{f.name}': {current.simpleString()} in '{owner}' vs "
                                f"{f.dataType.simpleString()} in '{name}'")
            else:
                merged[f.name] = (wider, owner)
    if not allow_missing_columns:
        for name, schema in schemas.items():
            absent = [c for c in merged if c not in schema.fieldNames()]
            if absent:
                problems.append(f"'{name}' lacks column(s) {absent}")
    if problems:
        raise SchemaConflictError(
            "cannot align inputs by name: " + "; ".join(problems)
            + " (pass casts={...} to force a type, or allow_missing_columns=True to fill gaps with nulls)",
            parameters={"problems": problems, "inputs": list(schemas)},
        )
    return StructType([StructField(c, t, True) for c, (t, _) in merged.items()])


def union_by_name(
    frames: Mapping[str, DataFrame] | Sequence[DataFrame],
    *,
    allow_missing_columns: bool = False,
    casts: Mapping[str, DataType] | None = None,
    schema: StructType | None = None,
) -> DataFrame:
    """Union DataFrames by column name after checking their schemas; lazy, launches no Spark job.

    ``schema`` declares the result instead: every input is conformed to it by name without analysing any
    input (a missing column then fails at Spark's analysis, naming it). Inside a Spark Declarative
    Pipelines query function, where analysing a DataFrame is refused
    (``ATTEMPT_ANALYSIS_IN_PIPELINE_QUERY_FUNCTION``), pass ``schema``; without it the union falls back to
    Spark's ``unionByName`` and the schema checks happen in the pipeline's own analysis (a warning says so).

    Raises
    ------
    SchemaConflictError: a column's types conflict, or a column is missing (see :func:`reconcile_schemas`).
    """
    named = _labelled(frames)
    if not named:
        raise invalid_argument("frames", frames, "at least one DataFrame")
    if schema is not None:
        return reduce(DataFrame.unionByName, [
            df.select(*[F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in schema.fields])
            for df in named.values()])
    if len(named) == 1:
        return next(iter(named.values()))
    try:
        schemas = {n: df.schema for n, df in named.items()}
    except Exception as exc:
        if not analysis_refused(exc):
            raise spark_failed(f"union_by_name of {list(named)}: analysing the inputs", exc) from exc
        logger.warning("union_by_name inside a pipeline query function: inputs %s cannot be analysed here, so "
                       "Spark's unionByName checks them when the pipeline is analysed (pass schema= to declare "
                       "the result)", list(named))
        return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=allow_missing_columns), named.values())
    target = reconcile_schemas(schemas, allow_missing_columns=allow_missing_columns, casts=casts)

    def conform(df: DataFrame) -> DataFrame:
        present = set(df.columns)
        return df.select(*[
            (F.col(f"`{f.name}`").cast(f.dataType) if f.name in present else F.lit(None).cast(f.dataType))
            .alias(f.name) for f in target.fields
        ])

    return reduce(DataFrame.unionByName, [conform(df) for df in named.values()])


def align_join(
    frames: Mapping[str, DataFrame],
    *,
    on: Sequence[str],
    how: str = "inner",
    rename: Mapping[str, Mapping[str, str]] | None = None,
    check_duplicates: bool = True,
) -> DataFrame:
    """Join named DataFrames on ``on``; colliding non-key columns become ``<input>_<column>``.

    ``rename`` gives explicit names per input instead (``{"a": {"x": "a_x"}}``). With
    ``check_duplicates`` each input is checked for repeated keys first (one Spark job per input).

    Raises
    ------
    DuplicateKeysError: an input repeats a key (the message names it and shows one).
    ValueError: an input lacks a key column.
    """
    if len(frames) < 2:
        raise invalid_argument("frames", list(frames), "at least two named DataFrames")
    keys = list(on)
    for name, df in frames.items():
        absent = [k for k in keys if k not in df.columns]
        if absent:
            raise SchemaConflictError(f"input '{name}' lacks join key(s) {absent}; its columns: {df.columns}",
                                      condition="MISSING_JOIN_KEYS", parameters={"input": name, "missing": absent})
        if check_duplicates:
            dup = df.groupBy(*keys).count().where("count > 1").limit(1).collect()
            if dup:
                sample = {k: dup[0][k] for k in keys}
                raise DuplicateKeysError(f"input '{name}' has duplicate keys, e.g. {sample} x{dup[0]['count']}: "
                                         "joining it would multiply rows; deduplicate it first",
                                         parameters={"input": name, "key": sample, "count": dup[0]["count"]})
    counts: dict[str, int] = {}
    for df in frames.values():
        for c in df.columns:
            if c not in keys:
                counts[c] = counts.get(c, 0) + 1
    renamed = []
    for name, df in frames.items():
        explicit = (rename or {}).get(name, {})
        renamed.append(df.select(*[
            F.col(f"`{c}`").alias(explicit.get(c, f"{name}_{c}" if counts.get(c, 0) > 1 else c))
            if c not in keys else F.col(f"`{c}`") for c in df.columns
        ]))
    return reduce(lambda left, right: left.join(right, keys, how), renamed)
