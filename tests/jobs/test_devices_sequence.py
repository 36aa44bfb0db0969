from __future__ import annotations

from pathlib import Path

from chispa import assert_df_equality

from jobs import devices_sequence
from spark_flows.book.samples import write_devices
from tests.flows import assert_ran_as_declared, statuses


def test_job_writes_the_clean_devices_table(spark, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=200)
    assert devices_sequence.main(["--data-root", data_root, "--run-id", "r1"]) == 0
    out = spark.read.format("delta").load(f"{data_root}/tables/devices_clean")
    raw = spark.read.json(f"{data_root}/raw/devices")
    expected = raw.where("length(type) > 3 and full_name is not null").selectExpr(
        "type", "concat_ws(' ', full_name, version) as full_name", "version"
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=True)
    assert not Path(data_root, "_boundaries", "devices", "r1").exists(), "boundaries kept after success"
    flow = assert_ran_as_declared(devices_sequence, ["--run-id", "r1"], data_root)
    assert statuses(flow) == {"raw_devices": "ran", "devices.validate": "ran", "devices.enrich": "ran",
                              "devices_clean": "ran"}
    assert "persisted_seconds" in flow.node("devices.validate").facts


def test_rerun_leaves_the_same_table(spark, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=100)
    assert devices_sequence.main(["--data-root", data_root]) == 0
    first = spark.read.format("delta").load(f"{data_root}/tables/devices_clean").collect()
    assert devices_sequence.main(["--data-root", data_root]) == 0
    again = spark.read.format("delta").load(f"{data_root}/tables/devices_clean")
    assert sorted(first) == sorted(again.collect())


def test_missing_input_fails_with_path_and_writes_nothing(spark, data_root: str, capsys) -> None:
    assert devices_sequence.main(["--data-root", data_root]) == 1
    err = capsys.readouterr().err
    assert "INPUT_NOT_FOUND" in err and f"{data_root}/raw/devices" in err
    assert len(err.strip().splitlines()) == 1
    assert not Path(data_root, "tables").exists()


def test_malformed_rows_fail_fast_naming_the_file(spark, data_root: str, capsys) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=20, malformed=2)
    assert devices_sequence.main(["--data-root", data_root]) == 1
    err = capsys.readouterr().err
    assert "2 malformed JSON row(s)" in err and "part-malformed.json (2)" in err
    assert not Path(data_root, "tables", "devices_clean").exists()


def test_malformed_rows_can_be_quarantined(spark, data_root: str) -> None:
    write_devices(spark, f"{data_root}/raw/devices", rows=20, malformed=2)
    assert devices_sequence.main(["--data-root", data_root, "--on-bad-records", "quarantine"]) == 0
    bad = spark.read.json(f"{data_root}/tables/devices_clean_bad_records")
    assert bad.count() == 2
    assert {r.source_file.rsplit("/", 1)[-1] for r in bad.collect()} == {"part-malformed.json"}


def test_unknown_flag_is_a_usage_error(capsys) -> None:
    assert devices_sequence.main(["--no-such-flag"]) == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_unreadable_conf_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert devices_sequence.main(["--conf-file", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "cannot read conf file" in err and "missing.toml" in err
