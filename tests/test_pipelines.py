"""spark_flows inside Spark Declarative Pipelines: ``fan_in`` and ``union_by_name`` in query functions, run by
the real ``spark-pipelines run`` (tests/pipelines/visits_fan_in)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from spark_flows.book.samples import write_visits
from tests import procs

pytestmark = pytest.mark.subprocess
PIPELINE = Path(__file__).resolve().parent / "pipelines" / "visits_fan_in"
SPEC = """name: visits_fan_in
storage: file://{root}/storage
libraries:
  - glob:
      include: transformations/**
configuration:
  spark.sql.shuffle.partitions: "2"
  spark_flows.visits_root: {root}/visits
  spark_flows.day: "2024-01-01"
"""


def test_fan_in_and_union_by_name_work_inside_pipeline_query_functions(spark, tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "spark-pipelines"
    assert cli.exists(), f"{cli} is missing: install pyspark[pipelines] (make test's bootstrap does)"
    write_visits(spark, str(tmp_path / "visits"), "2024-01-01", rows_per_hour=2, missing_hours=[6, 11])
    shutil.copytree(PIPELINE / "transformations", tmp_path / "transformations")
    (tmp_path / "pipeline.yml").write_text(SPEC.format(root=tmp_path))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = procs.run([str(cli), "--conf", "spark.ui.enabled=false", "--driver-memory", "1g",
                      "run", "--spec", "pipeline.yml"], cwd=tmp_path, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    warehouse = tmp_path / "spark-warehouse"
    day = spark.read.parquet(str(warehouse / "visits_day"))
    assert day.count() == 22 * 2
    assert {(r.is_approximate, r.completeness_ratio) for r in day.select("is_approximate", "completeness_ratio")
            .distinct().collect()} == {(True, round(22 / 24, 4))}
    assert sorted(r._parent for r in day.select("_parent").distinct().collect()) == [
        f"{h:02d}" for h in range(24) if h not in (6, 11)]
    declared = spark.read.parquet(str(warehouse / "pages_declared"))
    assert declared.columns == ["visit_id", "page"] and declared.count() == 44
    undeclared = spark.read.parquet(str(warehouse / "pages_undeclared"))
    assert undeclared.columns == ["visit_id", "page", "n"] and undeclared.count() == 44
