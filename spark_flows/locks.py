"""Single Runner's run lock: exclusive, heartbeated, taken over from dead runs.

A lock file on the job's storage, created exclusively (so it holds across processes and machines sharing
the filesystem). Its content (holder: host, pid, run id, since) never changes; a heartbeat thread advances
its modification time while the run lives. A lock whose heartbeat is older than its TTL belongs to a dead
run and may be taken over: the taker renames it atomically to a tombstone (only one taker can), checks it
moved the stale holder, creates its own, and records the take-over. Guarantees: local filesystem and HDFS
give exclusive create and atomic rename, so at most one holder; on S3 (S3A) neither is atomic without
conditional writes, so the lock is best effort there.

Example
-------
>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> lock = RunLock(spark, root, "trend", ttl_seconds=120, heartbeat_seconds=20, run_id="r1")
>>> lock.acquire(wait_timeout=0).run_id
'r1'
>>> try:
...     RunLock(spark, root, "trend").acquire(wait_timeout=0)
... except RunLockedError as exc:
...     exc.getMessageParameters()["holder_run_id"]
'r1'
>>> lock.release()
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields

from pyspark.sql import SparkSession

from spark_flows.errors import RunLockedError, invalid_argument
from spark_flows.storage import Storage

logger = logging.getLogger(__name__)

#: The run id given to the holder of a lock file whose content cannot be read.
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run lock."""

    job: str
    run_id: str
    host: str
    pid: int
    since: str
    ttl_seconds: int
    took_over_from: str | None = None


class RunLock:
    """An exclusive, heartbeated run lock for ``job`` under ``lock_root`` (any Hadoop filesystem)."""

    def __init__(self, spark: SparkSession, lock_root: str, job: str, *, ttl_seconds: int = 120,
                 heartbeat_seconds: int = 20, run_id: str | None = None) -> None:
        if heartbeat_seconds <= 0 or ttl_seconds <= heartbeat_seconds:
            raise invalid_argument("heartbeat_seconds and ttl_seconds", (heartbeat_seconds, ttl_seconds),
                                   "0 < heartbeat_seconds < ttl_seconds")
        self.storage = Storage(spark)
        self.path = f"{lock_root.rstrip('/')}/{job}.lock"
        self.job, self.ttl, self.heartbeat = job, ttl_seconds, heartbeat_seconds
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.holder: LockHolder | None = None
        self.taken_over: LockHolder | None = None  # the dead holder this run took the lock from
        #: set by :func:`~spark_flows.runners.single_run`: no date before this run's ever ran (no history)
        self.first_run = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def current(self) -> tuple[LockHolder, float] | None:
        """The holder and the age of its heartbeat in seconds, or ``None`` when unlocked.

        A lock file that is empty or unreadable (a crash between its exclusive create and its write, or a
        format this version does not know) is a holder of unknown identity, aged by the file's modification
        time: it is taken over after the TTL like any dead holder, never spun on.
        """
        info = self.storage.fs.info(self.path)
        if info is None:
            return None
        try:
            text = self.storage.read_text(self.path)
        except Exception:  # released between the calls
            return None
        return self._parse(text, info.modified_ms), time.time() - info.modified_ms / 1000

    def _parse(self, text: str, modified_ms: int) -> LockHolder:
        known = {f.name for f in fields(LockHolder)}
        try:
            raw = json.loads(text)
            return LockHolder(**{k: v for k, v in raw.items() if k in known})
        except (ValueError, TypeError, AttributeError):
            since = dt.datetime.fromtimestamp(modified_ms / 1000, dt.timezone.utc).isoformat()
            return LockHolder(self.job, UNREADABLE, "unknown host", -1, since, self.ttl)

    def _describe(self, holder: LockHolder, age: float) -> str:
        return (f"job {self.job} is locked by run {holder.run_id} on {holder.host} (pid {holder.pid}) since "
                f"{holder.since}, last heartbeat {age:.0f}s ago (TTL {holder.ttl_seconds}s): {self.path}")

    def acquire(self, *, wait_timeout: float = 0.0, poll_interval: float = 1.0) -> LockHolder:
        """Take the lock, waiting up to ``wait_timeout`` seconds for a live holder to finish.

        Raises
        ------
        RunLockedError: a live run holds the lock; the message names it (host, pid, run id, since).
        """
        deadline = time.monotonic() + wait_timeout
        took_over: str | None = None
        while True:
            mine = LockHolder(self.job, self.run_id, socket.gethostname(), os.getpid(),
                              dt.datetime.now(dt.timezone.utc).isoformat(), self.ttl, took_over)
            if self.storage.create_exclusive(self.path, json.dumps(asdict(mine))):
                self.holder = mine
                self._start_heartbeat()
                logger.info("run lock %s acquired by run %s%s", self.path, self.run_id,
                            f" (took over from {took_over})" if took_over else "")
                return mine
            seen = self.current()
            if seen is None:
                continue
            holder, age = seen
            if age > holder.ttl_seconds:
                took_over = self._take_over(holder) or took_over
                continue
            if time.monotonic() >= deadline:
                raise RunLockedError(self._describe(holder, age), parameters={
                    "job": self.job, "path": self.path, "holder_run_id": holder.run_id, "host": holder.host,
                    "pid": holder.pid, "since": holder.since, "heartbeat_age_seconds": round(age, 1)})
            time.sleep(poll_interval)

    def _take_over(self, stale: LockHolder) -> str | None:
        tombstone = f"{self.path}.stale-{uuid.uuid4().hex[:8]}"
        if not self.storage.rename(self.path, tombstone):
            return None  # another taker moved it first
        moved = self._parse(self.storage.read_text(tombstone), self.storage.modified_ms(tombstone))
        if moved.run_id != stale.run_id and not self.storage.rename(tombstone, self.path):
            logger.warning("displaced a fresh lock of run %s while taking over; it will be retaken", moved.run_id)
        self.storage.delete(tombstone)
        logger.warning("run lock %s: taking over from dead run %s on %s (pid %d)", self.path, stale.run_id,
                       stale.host, stale.pid)
        self.taken_over = stale
        return f"{stale.run_id}@{stale.host}:{stale.pid}"

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat):
                try:
                    self.storage.touch(self.path)
                except Exception as exc:  # the session may be stopping; the TTL covers a missed beat
                    logger.debug("heartbeat of %s failed: %s", self.path, exc)

        self._beat = threading.Thread(target=beat, name=f"heartbeat-{self.job}", daemon=True)
        self._beat.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if this run still holds it."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        seen = self.current()
        if seen is not None and seen[0].run_id == self.run_id:
            self.storage.delete(self.path)
        self.holder = None
