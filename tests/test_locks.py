from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from spark_flows.errors import RunLockedError
from spark_flows.locks import RunLock


def test_second_acquire_fails_naming_the_holder(spark, tmp_path: Path) -> None:
    first = RunLock(spark, str(tmp_path / "locks"), "job", ttl_seconds=60, heartbeat_seconds=5, run_id="r1")
    first.acquire()
    try:
        second = RunLock(spark, str(tmp_path / "locks"), "job", ttl_seconds=60, heartbeat_seconds=5, run_id="r2")
        with pytest.raises(RunLockedError, match=rf"locked by run r1 on .* \(pid {os.getpid()}\) since .*TTL 60s"):
            second.acquire()
    finally:
        first.release()
    assert not (tmp_path / "locks" / "job.lock").exists()


def test_waiting_acquire_gets_the_lock_when_released(spark, tmp_path: Path) -> None:
    first = RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=5)
    first.acquire()
    threading.Timer(1.0, first.release).start()
    second = RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=5)
    holder = second.acquire(wait_timeout=30, poll_interval=0.2)
    assert holder.run_id == second.run_id
    second.release()


def test_heartbeat_keeps_a_live_lock_and_a_dead_one_is_taken_over(spark, tmp_path: Path) -> None:
    live = RunLock(spark, str(tmp_path), "job", ttl_seconds=2, heartbeat_seconds=1, run_id="live")
    live.acquire()
    time.sleep(3.0)  # beyond the TTL, but the heartbeat refreshed it
    with pytest.raises(RunLockedError, match="live"):
        RunLock(spark, str(tmp_path), "job", ttl_seconds=2, heartbeat_seconds=1).acquire()
    live._stop.set()  # the run dies: no more heartbeats, the lock file stays
    time.sleep(3.0)
    taker = RunLock(spark, str(tmp_path), "job", ttl_seconds=2, heartbeat_seconds=1, run_id="taker")
    holder = taker.acquire()
    assert holder.took_over_from and holder.took_over_from.startswith("live@")
    assert json.loads((tmp_path / "job.lock").read_text())["run_id"] == "taker"
    taker.release()
