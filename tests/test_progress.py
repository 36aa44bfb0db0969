from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from spark_flows.core.progress import configure_logging, enable_progress


def test_library_lines_reach_the_application_s_own_handlers(caplog) -> None:
    caplog.set_level(logging.INFO)  # the application's (pytest's) handler on the root logger
    configure_logging("INFO")
    library = logging.getLogger("spark_flows")
    assert library.propagate and not [h for h in library.handlers if getattr(h, "_spark_flows", False)]
    logging.getLogger("spark_flows.patterns.split").info("branch devices: 50 rows in 1.2s")
    assert "branch devices: 50 rows in 1.2s" in caplog.text


@pytest.mark.classic
def test_a_long_spark_action_gets_a_heartbeat_line_naming_its_tasks(spark, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="spark_flows")
    release = tmp_path / "release"

    @F.udf(LongType())
    def held(value):  # each task waits until the test has seen the heartbeat
        while not release.exists():
            time.sleep(0.05)
        return value

    stop = enable_progress("INFO", spark=spark, every=0.2)
    action = threading.Thread(target=lambda: spark.range(4, numPartitions=2).select(held("id")).collect())
    action.start()
    try:
        deadline = time.monotonic() + 120
        while "still running: job" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        release.touch()
        action.join()
        stop()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("still running")]
    assert lines, "no 'still running' heartbeat line within 120 s while the action's tasks were held"
    line = lines[0]
    assert "collect at" in line and "/2 tasks" in line
