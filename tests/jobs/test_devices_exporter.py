from __future__ import annotations

import json
from pathlib import Path

import pytest
from chispa import assert_df_equality

from jobs import devices_exporter
from spark_flows.book.samples import DEVICES_SCHEMA, write_devices
from tests.flows import assert_ran_as_declared, statuses

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


def test_date_route_backfill_keeps_every_date_and_never_nests_outputs(spark, data_root: str, capsys) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=10)
    days = {"2024-02-28": "csv", "2024-02-29": "csv", "2024-03-01": "delta", "2024-03-02": "delta"}
    for day, branch in days.items():
        args = ["--data-root", data_root, "--route-by-date", "--migration-date", "2024-03-01", "--execution-date", day]
        assert devices_exporter.main(args) == 0
        assert f"branch {branch} (execution date {day}" in capsys.readouterr().out
        assert devices_exporter.main(args) == 0  # replay: nothing written twice
        assert "already" in capsys.readouterr().out
    exports = Path(data_root, "exports")
    for day in ("20240228", "20240229"):
        out = exports / "devices_csv_by_date" / "_routes" / f"date={day}"
        assert json.loads((out / "_ROUTE.json").read_text())["branch"] == "csv"
    legacy = READERS["csv"](spark, str(exports / "devices_csv_by_date"))  # every date kept, as the book's appends
    assert {str(r.date): r["count"] for r in legacy.groupBy("date").count().collect()} == {"20240228": 10,
                                                                                          "20240229": 10}
    table = READERS["delta"](spark, str(exports / "devices_delta_by_date"))
    assert {r.date: r["count"] for r in table.groupBy("date").count().collect()} == {"20240301": 10, "20240302": 10}
    route = json.loads((exports / "devices_delta_by_date" / "_routes" / "date=20240302" / "_ROUTE.json").read_text())
    assert (route["branch"], route["rows"]) == ("delta", 10)
    argv = ["--route-by-date", "--migration-date", "2024-03-01", "--execution-date", "2024-02-29"]
    flow = assert_ran_as_declared(devices_exporter, argv, data_root, "2024-02-29")  # the replay's run
    assert statuses(flow, "route") == {"route": "ran", "route.csv": "taken", "route.delta": "not taken"}
    assert [e.rule for e in flow.edges if e.source == "route"] == ["execution_date < 2024-03-01",
                                                                   "execution_date >= 2024-03-01"]
    assert flow.node("export").facts["status"] == "skipped" and flow.node("export").facts["rows"] == 10
    assert devices_exporter.main(["--data-root", data_root, "--output-type", "delta"]) == 0
    assert not list((exports / "devices_delta_by_date").glob("**/_delta_log/*/_delta_log")), "no table in a table"


def test_without_a_date_changed_input_is_exported_again_and_a_replay_keeps_the_record_true(spark, data_root: str,
                                                                                          capsys) -> None:
    import os

    raw = Path(data_root, "raw", "devices")
    write_devices(spark, str(raw), rows=40)
    args = ["--data-root", data_root, "--output-type", "csv"]
    assert devices_exporter.main(args) == 0
    assert devices_exporter.main(args) == 0
    assert "already published" in capsys.readouterr().out
    out = Path(data_root, "exports", "devices_csv")
    assert json.loads((out / "_ROUTE.json").read_text())["rows"] == 40
    write_devices(spark, str(raw), rows=55)
    later = max(p.stat().st_mtime for p in raw.iterdir()) + 5  # changed input: a newer modification time
    for p in raw.iterdir():
        os.utime(p, (later, later))
    assert devices_exporter.main(args) == 0
    assert READERS["csv"](spark, str(out)).count() == 55
    assert json.loads((out / "_ROUTE.json").read_text())["rows"] == 55


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
