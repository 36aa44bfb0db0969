from __future__ import annotations

import json
from pathlib import Path

import pytest
from chispa import assert_df_equality

from jobs import devices_exporter
from spark_flows.samples import DEVICES_SCHEMA, write_devices

READERS = {
    "delta": lambda spark, p: spark.read.format("delta").load(p),
    "csv": lambda spark, p: spark.read.schema(DEVICES_SCHEMA).options(sep=";", header="true").csv(p),
    "parquet": lambda spark, p: spark.read.parquet(p),
}


@pytest.mark.parametrize("output_type", ["delta", "csv", "parquet"])
def test_each_output_type_end_to_end(spark, data_root: str, output_type: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=40)
    assert devices_exporter.main(["--data-root", data_root, "--output-type", output_type]) == 0
    out = f"{data_root}/exports/devices_{output_type}"
    expected = spark.read.schema(DEVICES_SCHEMA).json(f"{data_root}/raw/devices")
    assert_df_equality(READERS[output_type](spark, out), expected, ignore_row_order=True, ignore_nullable=True)
    route = json.loads(Path(out, "_ROUTE.json").read_text())
    assert route["branch"] == output_type and route["rows"] == 40
    assert sorted(p.name for p in Path(data_root, "exports").iterdir()) == [f"devices_{output_type}"]


def test_books_spelling_is_accepted(spark, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=5)
    assert devices_exporter.main(["--data-root", data_root, "--output_type", "csv"]) == 0


@pytest.mark.parametrize(("day", "branch"), [("2024-02-29", "csv"), ("2024-03-01", "delta"), ("2024-03-02", "delta")])
def test_date_route_backfill_takes_legacy_before_cutover(spark, data_root: str, day: str, branch: str, capsys) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=10)
    args = ["--data-root", data_root, "--route-by-date", "--migration-date", "2024-03-01", "--execution-date", day]
    assert devices_exporter.main(args) == 0
    out = Path(data_root, "exports", f"devices_{branch}", f"date={day.replace('-', '')}")
    assert json.loads((out / "_ROUTE.json").read_text())["branch"] == branch
    assert READERS[branch](spark, str(out)).count() == 10
    assert f"branch {branch} (execution date {day}" in capsys.readouterr().out
    assert devices_exporter.main(args) == 0  # replay: same output, nothing written twice
    assert READERS[branch](spark, str(out)).count() == 10


@pytest.mark.parametrize(("args", "message"), [
    (["--output-type", "xml"], "invalid choice: 'xml' (choose from 'csv', 'delta', 'parquet')"),
    (["--route-by-date", "--migration-date", "2024-03-01", "--execution-date", "yesterday"], "invalid date"),
    (["--route-by-date", "--execution-date", "2024-03-01"], "needs --migration-date and --execution-date"),
])
def test_bad_input_is_refused_and_nothing_is_written(spark, data_root: str, capsys, args, message) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=5)
    assert devices_exporter.main(["--data-root", data_root, *args]) == 2
    assert message in capsys.readouterr().err
    assert not Path(data_root, "exports").exists()
