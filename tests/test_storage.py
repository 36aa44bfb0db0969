from __future__ import annotations

from pathlib import Path

from spark_flows.storage import Storage


def test_json_round_trip_and_listing(spark, tmp_path: Path) -> None:
    fs = Storage(spark)
    fs.write_json(f"{tmp_path}/d/a.json", {"rows": 3})
    fs.write_json(f"{tmp_path}/d/b.json", {"rows": 4})
    assert fs.read_json(f"{tmp_path}/d/a.json") == {"rows": 3}
    assert [i.name for i in fs.list(f"{tmp_path}/d")] == ["a.json", "b.json"]
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.endswith(".tmp")], "temp files left behind"
    assert fs.list(f"{tmp_path}/absent") == []


def test_create_exclusive_only_once(spark, tmp_path: Path) -> None:
    fs = Storage(spark)
    assert fs.create_exclusive(f"{tmp_path}/lock", "one") is True
    assert fs.create_exclusive(f"{tmp_path}/lock", "two") is False
    assert fs.read_text(f"{tmp_path}/lock") == "one"


def test_rename_refuses_an_existing_destination(spark, tmp_path: Path) -> None:
    fs = Storage(spark)
    fs.write_text(f"{tmp_path}/src/x", "x")
    fs.mkdirs(f"{tmp_path}/dst")
    assert fs.rename(f"{tmp_path}/src", f"{tmp_path}/dst") is False
    assert fs.rename(f"{tmp_path}/src", f"{tmp_path}/new/dst") is True
    assert (tmp_path / "new" / "dst" / "x").read_text() == "x"
    assert not (tmp_path / "dst" / "src").exists()


def test_overwrite_replaces_and_delete_reports(spark, tmp_path: Path) -> None:
    fs = Storage(spark)
    fs.write_text(f"{tmp_path}/f", "old")
    fs.write_text(f"{tmp_path}/f", "new")
    assert fs.read_text(f"{tmp_path}/f") == "new"
    assert fs.size(f"{tmp_path}/f") == 3
    assert fs.delete(f"{tmp_path}/f") is True
    assert fs.delete(f"{tmp_path}/f") is False
    assert not fs.exists(f"{tmp_path}/f")
