"""examples/own_job.py, the README's job of one's own, runs as written: a replay writes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.procs import ROOT


def _own_job():
    spec = importlib.util.spec_from_file_location("own_job", ROOT / "examples" / "own_job.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_job_writes_each_output_once_per_batch(spark, tmp_path: Path, capsys) -> None:
    own_job, root = _own_job(), str(tmp_path / "run")
    assert own_job.main(["--root", root, "--batch", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["table: 2 rows", "export: 2 rows"]
    assert own_job.main(["--root", root, "--batch", "1"]) == 0
    replay = capsys.readouterr().out
    assert "table: batch 1 already committed" in replay and "export: batch 1 already published" in replay
    assert own_job.main(["--root", root, "--batch", "2"]) == 0
    table = spark.read.format("delta").load(f"{root}/devices")
    assert sorted(r.full_name for r in table.collect()) == ["Pixel 9", "Pixel 9", "iPhone 15", "iPhone 15"]
    export = spark.read.options(sep=";", header="true").csv(f"{root}/export")
    assert {(r.batch, r.full_name) for r in export.collect()} == {(1, "Pixel 9"), (1, "iPhone 15"), (2, "Pixel 9"),
                                                                  (2, "iPhone 15")}
