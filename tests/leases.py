"""Helpers for lease tests: a lease as a dead holder leaves it, and contenders racing for one lease (threads or
processes, released together by a barrier) with the outcome of every contender in every round."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from spark_flows.io.storage import Storage

TTL, BEAT = 600, 300  # no heartbeat fires during a round: the race alone decides


def backdate_lease(storage: Storage, path: str, seconds: float) -> None:
    """Rewrite the lease at ``path`` as if its holder's last heartbeat was ``seconds`` ago (its own clock)."""
    body = json.loads(storage.read_text(path))
    body["heartbeat_ms"] = int((time.time() - seconds) * 1000)
    storage.write_text(path, json.dumps(body))


def seed_dead_lease(storage: Storage, path: str) -> None:
    """A lease whose holder died an hour ago (heartbeat an hour old, TTL one minute)."""
    storage.write_text(path, json.dumps({"job": "race", "run_id": "dead", "host": "gone", "pid": 1,
                                         "since": "2026-01-01T00:00:00+00:00", "ttl_seconds": 60,
                                         "heartbeat_ms": int((time.time() - 3600) * 1000)}))


def round_job(round_: int) -> str:
    """Rounds alternate: even rounds race to create a fresh lease, odd ones to take over a dead holder's."""
    return f"{'fresh' if round_ % 2 == 0 else 'takeover'}-{round_}"


def contend(root: str, round_: int, index: int) -> str:
    """One contender's attempt: ``won``, ``refused`` or ``error: ...``."""
    from spark_flows.errors import RunLockedError
    from spark_flows.patterns.runners.locks import RunLock

    lock = RunLock(None, root, round_job(round_), ttl_seconds=TTL, heartbeat_seconds=BEAT, run_id=f"c{index}")
    try:
        lock.acquire()
    except RunLockedError:
        return "refused"
    except Exception as error:  # counted as a failure by the caller
        return f"error: {type(error).__name__}: {error}"
    lock._stop.set()  # the winner holds the lease to the end of the round; no heartbeat thread outlives it
    return "won"


def race_threads(root: str, round_: int, contenders: int) -> dict[int, str]:
    barrier, outcomes = threading.Barrier(contenders), {}

    def run(index: int) -> None:
        barrier.wait(timeout=60)
        outcomes[index] = contend(root, round_, index)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), f"round {round_}: a contender hung"
    return outcomes


def _process(index: int, root: str, rounds: int, env: Mapping[str, str], barrier: Any, results: Any) -> None:
    os.environ.update(env)
    for round_ in range(rounds):
        barrier.wait(timeout=120)  # the coordinator has prepared the round
        results.put((round_, index, contend(root, round_, index)))


class ProcessContenders:
    """``contenders`` processes (spawned, no Spark) that race once per round when the coordinator says go."""

    def __init__(self, root: str, rounds: int, contenders: int, env: Mapping[str, str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.barrier = context.Barrier(contenders + 1)
        self.results = context.Queue()
        self.contenders = contenders
        self.processes = [context.Process(target=_process, args=(i, root, rounds, dict(env), self.barrier,
                                                                 self.results), daemon=True)
                          for i in range(contenders)]
        for process in self.processes:
            process.start()

    def race(self, round_: int) -> dict[int, str]:
        self.barrier.wait(timeout=180)  # every contender is up and waiting: go
        outcomes: dict[int, str] = {}
        for _ in range(self.contenders):
            seen_round, index, outcome = self.results.get(timeout=120)
            assert seen_round == round_, (seen_round, round_)
            outcomes[index] = outcome
        return outcomes

    def stop(self) -> None:
        self.barrier.abort()
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(10)
