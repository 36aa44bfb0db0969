"""The backend seam: one module knows classic from Connect; functions that need the JVM say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_flows.core import backend
from spark_flows.core.metrics import SparkMeter
from spark_flows.errors import ClassicOnlyError

ROOT = Path(__file__).resolve().parents[1]


def test_only_the_backend_package_touches_py4j_internals() -> None:
    touching = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "spark_flows").rglob("*.py")
                      if any(s in p.read_text() for s in ("._jvm", ".sparkContext", "._jsc", "_jsparkSession")))
    assert "spark_flows/core/backend/classic.py" in touching
    assert all(p.startswith("spark_flows/core/backend/") for p in touching), touching
    assert "spark_flows/core/backend/connect.py" not in touching


@pytest.mark.connect
def test_spark_meter_on_connect_is_a_library_error_naming_itself(spark) -> None:
    assert backend.is_remote(spark)
    with pytest.raises(ClassicOnlyError, match="SparkMeter needs classic Spark") as refused:
        SparkMeter(spark)
    assert refused.value.getCondition() == "NEEDS_CLASSIC_SPARK"
    assert refused.value.getMessageParameters() == {"function": "SparkMeter"}
    url = backend.of(spark).connect_url()
    assert url is not None and url.startswith("sc://127.0.0.1:")


@pytest.mark.classic
def test_classic_session_is_not_remote_and_has_a_master(spark) -> None:
    assert not backend.is_remote(spark)
    assert backend.of(spark).master() == "local[2]" and backend.of(spark).connect_url() is None
