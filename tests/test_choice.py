from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql.types import StringType, StructField, StructType

from spark_flows.book.samples import DEVICES_SCHEMA
from spark_flows.core.metrics import SparkMeter
from spark_flows.errors import RouteError, UnknownOutputTypeError
from spark_flows.io.writers import CsvWriter, DeltaWriter, FilesWriter, ParquetWriter, Writer
from spark_flows.patterns.choice import (
    OutputFactory,
    OutputType,
    Router,
    SchemaRule,
    WriteMode,
    record_route,
    route_by_date,
    route_by_schema,
    schema_of,
)

CUT = dt.date(2024, 3, 1)
RULES = [SchemaRule("versioned", has_fields=("version",)), SchemaRule("legacy", lacks_fields=("version",))]


def test_factory_maps_each_type_to_its_writer_class() -> None:
    factory = OutputFactory.default()
    assert isinstance(factory.create(OutputType.DELTA), DeltaWriter)
    assert isinstance(factory.create("CSV"), CsvWriter)
    assert isinstance(factory.create("parquet"), ParquetWriter)
    assert factory.known == ["csv", "delta", "parquet"]


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownOutputTypeError, match="unknown output type 'xml'; known: csv, delta, parquet"):
        OutputFactory.default().create("xml")


def test_adding_a_type_is_one_class_and_one_registration(spark, tmp_path: Path) -> None:
    class JsonWriter(FilesWriter):
        output_type = "json"

        def __init__(self, *, mode: str = "overwrite", replace: dict[str, str] | None = None) -> None:
            super().__init__("json", mode=mode, replace=replace)

    factory = OutputFactory.default()
    factory.register("json", JsonWriter)
    writer: Writer = factory.create("json")
    writer.write(spark.range(3), str(tmp_path / "j"))
    assert spark.read.json(str(tmp_path / "j")).count() == 3


def test_factory_write_modes_are_explicit_and_checked() -> None:
    factory = OutputFactory.default()
    for output_type in factory.known:
        appender = factory.create(output_type, mode=WriteMode.APPEND)
        replacer = factory.create(output_type, mode="replace_partition", partition={"date": "20240301"})
        assert (appender.mode, replacer.mode, replacer.replace) == ("append", "overwrite", {"date": "20240301"})
        assert factory.create(output_type).mode == "overwrite"  # the default, as the book's factory
    with pytest.raises(ValueError, match="write mode must be one of"):
        factory.create("csv", mode="merge")
    with pytest.raises(ValueError, match="exactly when mode is 'replace_partition'"):
        factory.create("delta", mode="replace_partition")
    with pytest.raises(ValueError, match="exactly when mode is 'replace_partition'"):
        factory.create("delta", mode="append", partition={"date": "x"})


def test_prepare_applies_the_writers_session_conf(spark) -> None:
    OutputFactory.default().prepare(spark, "parquet")
    assert spark.conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"


@pytest.mark.parametrize(("day", "branch"), [
    (dt.date(2024, 2, 29), "csv"), (CUT, "delta"), (dt.date(2024, 3, 2), "delta"),
])
def test_date_route_around_the_cutover(day: dt.date, branch: str) -> None:
    route = route_by_date(day, cutover=CUT, before="csv", on_or_after="delta")
    assert route.branch == branch and route.value == day.isoformat() and route.candidates == ("csv", "delta")


def test_date_route_rejects_non_dates() -> None:
    with pytest.raises(RouteError, match="needs dates"):
        route_by_date("2024-03-01", cutover=CUT, before="a", on_or_after="b")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["delta", "parquet", "json"])
def test_schema_of_reads_the_schema_from_metadata(spark, tmp_path: Path, fmt: str) -> None:
    path = str(tmp_path / fmt)
    spark.createDataFrame([("galaxy", "G", "v1")], DEVICES_SCHEMA).write.format(fmt).save(path)
    schema = schema_of(spark, path, fmt, declared=DEVICES_SCHEMA if fmt == "json" else None)
    assert [(f.name, f.dataType) for f in schema.fields] == [(f.name, f.dataType) for f in DEVICES_SCHEMA.fields]
    assert route_by_schema(schema, RULES).branch == "versioned"


@pytest.mark.classic
@pytest.mark.parametrize("fmt", ["delta", "parquet", "json"])
def test_schema_route_launches_no_spark_job(spark, tmp_path: Path, fmt: str) -> None:
    path = str(tmp_path / fmt)
    df = spark.createDataFrame([("galaxy", "G", "v1")], DEVICES_SCHEMA)
    df.write.format(fmt).save(path)
    spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    with SparkMeter(spark) as meter:
        schema = schema_of(spark, path, fmt, declared=DEVICES_SCHEMA if fmt == "json" else None)
        route = route_by_schema(schema, RULES)
    assert meter.jobs == 0, f"{fmt}: deciding launched {meter.jobs} job(s)"
    assert route.branch == "versioned" and "has ['version']" in route.reason


@pytest.mark.classic
def test_json_schema_is_inferred_only_when_asked_at_the_cost_of_one_job(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "json")
    spark.createDataFrame([("galaxy", "G", "v1")] * 4, DEVICES_SCHEMA).repartition(2).write.json(path)
    with SparkMeter(spark) as meter:
        schema = schema_of(spark, path, "json", infer=True, sample_files=1)
    assert meter.jobs == 1 and sorted(schema.fieldNames()) == ["full_name", "type", "version"]
    assert route_by_schema(schema, RULES).branch == "versioned"  # the book's route, decided on inference
    with pytest.raises(ValueError, match="sampling_ratio within"):
        schema_of(spark, path, "json", infer=True, sampling_ratio=0)


def test_schema_route_default_and_no_match() -> None:
    old = StructType([StructField("type", StringType())])
    assert route_by_schema(old, RULES[:1], default="legacy").branch == "legacy"
    with pytest.raises(RouteError, match=r"no schema rule matches fields \['type'\]; rules: versioned: has"):
        route_by_schema(old, RULES[:1])


def test_json_without_declared_schema_is_refused(spark, tmp_path: Path) -> None:
    spark.range(1).write.json(str(tmp_path / "j"))
    with pytest.raises(RouteError, match=r"declare the schema, or infer it \(infer=True") as refused:
        schema_of(spark, str(tmp_path / "j"), "json")
    assert refused.value.getCondition() == "SCHEMA_NOT_DECLARED"


def test_router_is_inspectable_and_first_match_wins() -> None:
    router = Router([("big", "rows > 1000", lambda n: n > 1000), ("small", "rows > 0", lambda n: n > 0)],
                    default="empty")
    assert router.describe()[-1] == {"branch": "empty", "condition": "default"}
    assert router.run(5000).branch == "big" and router.run(3).branch == "small"
    assert router.run(0).reason == "no condition held"
    with pytest.raises(RouteError, match="no route for 0"):
        Router([("x", "never", lambda n: False)]).run(0)


def test_route_is_recorded_next_to_the_output(spark, tmp_path: Path) -> None:
    route = route_by_date(CUT, cutover=CUT, before="csv", on_or_after="delta")
    path = record_route(spark, str(tmp_path / "out"), route, {"rows": 3})
    record = json.loads(Path(path.removeprefix("file:")).read_text())
    assert (record["branch"], record["condition"], record["rows"]) == ("delta", "execution_date >= cutover", 3)
    assert path.endswith("out/_ROUTE.json")
