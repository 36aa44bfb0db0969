"""Run by scripts/test_versions.sh from a directory outside the checkout, in a venv holding the built wheel and
another supported Python and pyspark: what a user of the wheel gets (the pytest plugin's session, one's own
job, the version-sensitive parts). Not collected by the main suite."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pyspark

import spark_flows
from spark_flows.core.config import load_settings
from spark_flows.patterns.choice import OutputFactory, WriteMode
from spark_flows.testing import assert_replay_writes_nothing

CHECKOUT = Path(os.environ["SPARK_FLOWS_CHECKOUT"])


def test_the_wheel_is_what_runs_on_the_expected_versions() -> None:
    assert "site-packages" in spark_flows.__file__, spark_flows.__file__
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" == os.environ["EXPECTED_PYTHON"]
    assert pyspark.__version__ == os.environ["EXPECTED_PYSPARK"]
    line = ".".join(pyspark.__version__.split(".")[:2])
    assert load_settings().delta_package == f"io.delta:delta-spark_{line}_2.13:4.4.0"  # tomllib / tomli
    writer = OutputFactory.default().create("csv", mode=WriteMode.APPEND)
    assert (str(WriteMode.APPEND), writer.mode) == ("append", "append")  # StrEnum / its 3.10 stand-in


def test_one_s_own_job_runs_and_its_replay_writes_nothing(spark_flows_session, tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("own_job", CHECKOUT / "examples" / "own_job.py")
    assert spec is not None and spec.loader is not None
    own_job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(own_job)
    root = str(tmp_path / "run")
    assert own_job.main(["--root", root, "--batch", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["table: 2 rows", "export: 2 rows"]
    assert_replay_writes_nothing(lambda: own_job.main(["--root", root, "--batch", "1"]), f"{root}/devices",
                                 f"{root}/export/batch=1")
    assert spark_flows_session.read.format("delta").load(f"{root}/devices").count() == 2
