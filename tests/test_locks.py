from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from spark_flows.core.waiting import Wait
from spark_flows.errors import RunLockedError
from spark_flows.io.storage import local_storage
from spark_flows.patterns.runners.locks import RunLock
from tests.leases import backdate_lease
from tests.waits import wait_until


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


def test_waiting_acquire_gets_the_lock_when_released(spark, tmp_path: Path, monkeypatch) -> None:
    import types

    from spark_flows.patterns.runners import locks

    first = RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=5, run_id="first")
    first.acquire()
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the waiting acquirer found the lock held: now its holder finishes
        waits.append(seconds)
        if len(waits) == 1:
            first.release()

    monkeypatch.setattr(locks, "time", types.SimpleNamespace(sleep=sleep, monotonic=time.monotonic,
                                                             time=time.time))
    second = RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=5)
    holder = second.acquire(wait=Wait(30, 0.2))
    assert holder.run_id == second.run_id
    assert waits == [0.2], "the second run waited once, while the first held the lock"
    second.release()


def test_heartbeat_renews_a_live_lease_by_its_own_clock_and_a_dead_one_is_taken_over(spark, tmp_path: Path) -> None:
    lock_file = tmp_path / "job.lock"
    live = RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=1, run_id="live")
    first = live.acquire().heartbeat_ms
    assert first is not None
    wait_until(lambda: json.loads(lock_file.read_text())["heartbeat_ms"] > first,
               "the live run's heartbeat to renew its lease")
    stale = time.time() - 120
    os.utime(lock_file, (stale, stale))  # an old mtime means nothing: the lease's age is its holder's heartbeat
    with pytest.raises(RunLockedError, match="live"):
        RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=1).acquire()
    live._stop.set()  # the run dies: no more heartbeats, the lock file stays
    assert live._beat is not None
    live._beat.join(30)
    backdate_lease(local_storage(), str(lock_file), 120)  # two minutes without a heartbeat
    taker = RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=1, run_id="taker")
    holder = taker.acquire()
    assert holder.took_over_from and holder.took_over_from.startswith("live@")
    assert json.loads(lock_file.read_text())["run_id"] == "taker"
    assert live.renew() is False and live.lost, "a holder taken over must learn it at its next heartbeat"
    assert json.loads(lock_file.read_text())["run_id"] == "taker", "and never overwrite its successor"
    live.release()  # a lost holder's release leaves the successor's lease alone
    assert json.loads(lock_file.read_text())["run_id"] == "taker"
    taker.release()
    assert not lock_file.exists()


def test_an_unreadable_lock_file_is_a_holder_aged_by_its_mtime_never_spun_on(spark, tmp_path: Path) -> None:
    lock_file = tmp_path / "job.lock"
    lock_file.write_text("")  # a crash between the exclusive create and the write
    with pytest.raises(RunLockedError, match="locked by run unreadable") as refused:
        RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=5).acquire()
    assert refused.value.getMessageParameters()["holder_run_id"] == "unreadable"
    lock_file.write_text('{"run_id": 42, "format": "from a newer version"')
    old = time.time() - 120
    os.utime(lock_file, (old, old))
    taker = RunLock(spark, str(tmp_path), "job", ttl_seconds=60, heartbeat_seconds=5, run_id="taker")
    holder = taker.acquire()
    assert holder.took_over_from and holder.took_over_from.startswith("unreadable@")
    assert json.loads(lock_file.read_text())["run_id"] == "taker"
    taker.release()


def test_a_lock_root_with_a_hash_is_a_path_not_a_url(spark, tmp_path: Path) -> None:
    root = tmp_path / "data#1" / "_locks"
    first = RunLock(spark, str(root), "job", ttl_seconds=60, heartbeat_seconds=5, run_id="r1")
    first.acquire()
    try:
        assert (root / "job.lock").exists() and not (tmp_path / "data").exists()
        with pytest.raises(RunLockedError, match="r1"):
            RunLock(spark, str(root), "job", ttl_seconds=60, heartbeat_seconds=5).acquire()
    finally:
        first.release()
