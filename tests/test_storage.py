"""The storage contract, on every implementation: the session's (Hadoop FS on classic, the client's own on
Connect), the local one through ``os``, and pyarrow's (what object stores use on Connect)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from spark_flows.errors import StorageError
from spark_flows.io.storage import ArrowFileSystem, LocalFileSystem, RoutingFileSystem, Storage


@pytest.fixture(params=["session", "local", "arrow", "routed"])
def fs(request: pytest.FixtureRequest) -> Storage:
    if request.param == "session":
        return Storage(request.getfixturevalue("spark"))
    return Storage(fs={"local": LocalFileSystem(), "arrow": ArrowFileSystem(pafs.LocalFileSystem()),
                       "routed": RoutingFileSystem(LocalFileSystem(), ArrowFileSystem())}[request.param])


def test_json_round_trip_and_listing(fs: Storage, tmp_path: Path) -> None:
    fs.write_json(f"{tmp_path}/d/a.json", {"rows": 3})
    fs.write_json(f"{tmp_path}/d/b.json", {"rows": 4})
    assert fs.read_json(f"{tmp_path}/d/a.json") == {"rows": 3}
    assert [i.name for i in fs.list(f"{tmp_path}/d")] == ["a.json", "b.json"]
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.endswith(".tmp")], "temp files left behind"
    assert fs.list(f"{tmp_path}/absent") == [] and fs.list(f"{tmp_path}/d/a.json") == []


def test_create_exclusive_only_once(fs: Storage, tmp_path: Path) -> None:
    assert fs.create_exclusive(f"{tmp_path}/lock", "one") is True
    assert fs.create_exclusive(f"{tmp_path}/lock", "two") is False
    assert fs.read_text(f"{tmp_path}/lock") == "one"


def test_rename_refuses_an_existing_destination(fs: Storage, tmp_path: Path) -> None:
    fs.write_text(f"{tmp_path}/src/x", "x")
    fs.mkdirs(f"{tmp_path}/dst")
    assert fs.rename(f"{tmp_path}/src", f"{tmp_path}/dst") is False
    assert fs.rename(f"{tmp_path}/src", f"{tmp_path}/new/dst") is True
    assert (tmp_path / "new" / "dst" / "x").read_text() == "x"
    assert not (tmp_path / "dst" / "src").exists()


def test_overwrite_replaces_and_delete_reports(fs: Storage, tmp_path: Path) -> None:
    fs.write_text(f"{tmp_path}/f", "old")
    fs.write_text(f"{tmp_path}/f", "new")
    assert fs.read_text(f"{tmp_path}/f") == "new"
    assert fs.size(f"{tmp_path}/f") == 3
    with pytest.raises(StorageError, match="it exists") as refused:
        fs.write_text(f"{tmp_path}/f", "other", overwrite=False)
    assert refused.value.getMessageParameters() == {"path": f"{tmp_path}/f"}
    assert fs.delete(f"{tmp_path}/f") is True
    assert fs.delete(f"{tmp_path}/f") is False
    assert not fs.exists(f"{tmp_path}/f")


def test_paths_are_never_parsed_as_urls(fs: Storage, tmp_path: Path) -> None:
    odd = f"{tmp_path}/data#1/q?x=1/lock"
    assert fs.create_exclusive(odd, "me")
    assert (tmp_path / "data#1" / "q?x=1" / "lock").read_text() == "me" and not (tmp_path / "data").exists()
    assert [i.name for i in fs.list(f"{tmp_path}/data#1")] == ["q?x=1"]


def test_touch_advances_the_modification_time_and_keeps_the_content(fs: Storage, tmp_path: Path) -> None:
    fs.write_text(f"{tmp_path}/beat", "holder")
    old = time.time() - 100
    os.utime(tmp_path / "beat", (old, old))
    before = fs.modified_ms(f"{tmp_path}/beat")
    fs.touch(f"{tmp_path}/beat")
    assert fs.modified_ms(f"{tmp_path}/beat") > before + 50_000
    assert fs.read_text(f"{tmp_path}/beat") == "holder"
    assert fs.delete_if_empty(str(tmp_path)) is False and fs.exists(f"{tmp_path}/beat")
