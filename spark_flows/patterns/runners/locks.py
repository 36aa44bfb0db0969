"""Single Runner's run lock: a lease, exclusive, renewed while its run lives, taken over from dead runs.

The lease is a small file on the job's storage (so it holds across processes and machines sharing that
storage), holding its holder (host, pid, run id, since) and the holder's last heartbeat. How it is kept
depends on what the filesystem guarantees (:meth:`~spark_flows.io.storage.Storage.guarantees`), never on hope:

* **with compare-and-swap** (S3 and stores speaking its API, local disk): acquire by create-if-absent;
  each heartbeat rewrites the body with the holder's own clock (``heartbeat_ms``), by compare-and-swap on
  the tag the holder last wrote, so a holder that was taken over learns it (its next swap fails) instead of
  overwriting its successor; take-over of an expired lease is a compare-and-swap on the tag read, so of two
  contenders exactly one wins. An object's modification time is never used.
* **with atomic rename only** (HDFS): acquire by exclusive create; the heartbeat advances the file's
  modification time (the NameNode keeps it); take-over renames the stale lease to a tombstone (one renamer
  wins), checks it moved the stale holder, then creates its own.

A store with neither is refused (``S3_NO_CONDITIONAL_WRITES``) unless the user opted in to best effort.
Clocks: the heartbeat is the holder's clock and the age the contender's; keep the TTL well above the skew.

Example
-------
>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> lock = RunLock(spark, root, "trend", ttl_seconds=120, heartbeat_seconds=20, run_id="r1")
>>> lock.acquire().run_id
'r1'
>>> try:
...     RunLock(spark, root, "trend").acquire()
... except RunLockedError as exc:
...     exc.getMessageParameters()["holder_run_id"]
'r1'
>>> lock.release()
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from spark_flows.core.waiting import NO_WAIT, Wait
from spark_flows.errors import RunLockedError, invalid_argument
from spark_flows.io.filesystems import now_ms
from spark_flows.io.storage import Storage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

#: The run id given to the holder of a lock file whose content cannot be read.
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run lock, and when its holder last renewed it (its own clock, epoch ms)."""

    job: str
    run_id: str
    host: str
    pid: int
    since: str
    ttl_seconds: int
    took_over_from: str | None = None
    heartbeat_ms: int | None = None


class RunLock:
    """An exclusive lease for ``job`` under ``lock_root`` (any filesystem :class:`Storage` reaches).

    ``spark`` may be ``None`` (a process with no session: the local filesystem and object stores only).
    ``lost`` turns true when a heartbeat finds the lease taken over (the run was presumed dead).
    """

    def __init__(self, spark: SparkSession | None, lock_root: str, job: str, *, ttl_seconds: int = 120,
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
        self.lost = False
        #: set by :func:`~spark_flows.patterns.runners.single_run`: no date before this run's ever ran (no history)
        self.first_run = False
        self._swap = self.storage.guarantees(self.path).compare_and_swap
        self._tag: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def current(self) -> tuple[LockHolder, float] | None:
        """The holder and the age of its heartbeat in seconds, or ``None`` when unlocked.

        A lock file that is empty or unreadable (a crash between its exclusive create and its write, or a
        format this version does not know) is a holder of unknown identity, aged by the file's modification
        time: it is taken over after the TTL like any dead holder, never spun on.
        """
        seen = self._read()
        return None if seen is None else (seen[0], seen[1])

    def _read(self) -> tuple[LockHolder, float, str | None] | None:
        """The holder, the age of its heartbeat and the file's tag (compare-and-swap stores), or None."""
        if self._swap:
            found = self.storage.read_tagged(self.path)
            if found is None:
                return None
            holder = self._parse(found[0])
            if holder.heartbeat_ms is not None:
                return holder, now_ms() / 1000 - holder.heartbeat_ms / 1000, found[1]
        info = self.storage.fs.info(self.path)  # unreadable body, or a filesystem that keeps mtime (HDFS)
        if info is None:
            return None
        try:
            text = self.storage.read_text(self.path)
        except Exception:  # released between the calls
            return None
        holder = self._parse(text, info.modified_ms)
        tag = self.storage.read_tagged(self.path)[1] if self._swap else None  # type: ignore[index]
        return holder, time.time() - info.modified_ms / 1000, tag

    def _parse(self, text: str, modified_ms: int | None = None) -> LockHolder:
        known = {f.name for f in fields(LockHolder)}
        try:
            raw = json.loads(text)
            return LockHolder(**{k: v for k, v in raw.items() if k in known})
        except (ValueError, TypeError, AttributeError):
            since = dt.datetime.fromtimestamp((modified_ms or now_ms()) / 1000, dt.timezone.utc).isoformat()
            return LockHolder(self.job, UNREADABLE, "unknown host", -1, since, self.ttl)

    def _describe(self, holder: LockHolder, age: float) -> str:
        return (f"job {self.job} is locked by run {holder.run_id} on {holder.host} (pid {holder.pid}) since "
                f"{holder.since}, last heartbeat {age:.0f}s ago (TTL {holder.ttl_seconds}s): {self.path}")

    def _mine(self, took_over: str | None) -> LockHolder:
        return LockHolder(self.job, self.run_id, socket.gethostname(), os.getpid(),
                          dt.datetime.now(dt.timezone.utc).isoformat(), self.ttl, took_over,
                          now_ms() if self._swap else None)

    def acquire(self, *, wait: Wait = NO_WAIT) -> LockHolder:
        """Take the lock; with ``wait`` (a :class:`~spark_flows.core.waiting.Wait`), poll for a live holder
        to finish for up to its timeout (default: refuse at once).

        Raises
        ------
        RunLockedError: a live run holds the lock; the message names it (host, pid, run id, since).
        """
        deadline = time.monotonic() + wait.timeout
        took_over: str | None = None
        while True:
            mine = self._mine(took_over)
            if self.storage.create_exclusive(self.path, json.dumps(asdict(mine))):
                return self._won(mine, self.storage.read_tagged(self.path) if self._swap else None)
            seen = self._read()
            if seen is None:
                continue
            holder, age, tag = seen
            if age > holder.ttl_seconds:
                if self._swap and tag is not None:
                    mine = self._mine(f"{holder.run_id}@{holder.host}:{holder.pid}")
                    new_tag = self.storage.fs.write_if_match(self.path, json.dumps(asdict(mine)).encode(), tag)
                    if new_tag:
                        self._record_take_over(holder)
                        return self._won(mine, ("", new_tag))
                    continue  # another contender swapped first: look again
                took_over = self._take_over(holder) or took_over
                continue
            if time.monotonic() >= deadline:
                raise self.held_by(holder, age)
            time.sleep(wait.poll_interval)

    def held_by(self, holder: LockHolder, age: float) -> RunLockedError:
        """The refusal for a live ``holder`` whose heartbeat is ``age`` seconds old (names host, pid, run id)."""
        return RunLockedError(self._describe(holder, age), parameters={
            "job": self.job, "path": self.path, "holder_run_id": holder.run_id, "host": holder.host,
            "pid": holder.pid, "since": holder.since, "heartbeat_age_seconds": round(age, 1)})

    def _won(self, mine: LockHolder, tagged: tuple[str, str] | None) -> LockHolder:
        self.holder, self._tag, self.lost = mine, tagged[1] if tagged else None, False
        self._start_heartbeat()
        logger.info("run lock %s acquired by run %s%s", self.path, self.run_id,
                    f" (took over from {mine.took_over_from})" if mine.took_over_from else "")
        return mine

    def _record_take_over(self, stale: LockHolder) -> None:
        logger.warning("run lock %s: taking over from dead run %s on %s (pid %d)", self.path, stale.run_id,
                       stale.host, stale.pid)
        self.taken_over = stale

    def _take_over(self, stale: LockHolder) -> str | None:
        tombstone = f"{self.path}.stale-{uuid.uuid4().hex[:8]}"
        if not self.storage.rename(self.path, tombstone):
            return None  # another taker moved it first
        moved = self._parse(self.storage.read_text(tombstone), self.storage.modified_ms(tombstone))
        if moved.run_id != stale.run_id and not self.storage.rename(tombstone, self.path):
            logger.warning("displaced a fresh lock of run %s while taking over; it will be retaken", moved.run_id)
        self.storage.delete(tombstone)
        self._record_take_over(stale)
        return f"{stale.run_id}@{stale.host}:{stale.pid}"

    def renew(self) -> bool:
        """One heartbeat: renew the lease; False (and :attr:`lost`) if another run took it over."""
        if self.holder is None or self.lost:
            return False
        if not self._swap:
            self.storage.touch(self.path)
            return True
        renewed = dataclasses.replace(self.holder, heartbeat_ms=now_ms())
        new_tag = self.storage.fs.write_if_match(self.path, json.dumps(asdict(renewed)).encode(), self._tag or "")
        if not new_tag:
            self.lost = True
            logger.error("run lock %s: run %s lost its lease (taken over as dead; a heartbeat was more than %ds "
                         "late)", self.path, self.run_id, self.ttl)
            return False
        self.holder, self._tag = renewed, new_tag
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat):
                try:
                    if not self.renew():
                        return
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
        if seen is not None and seen[0].run_id == self.run_id and not self.lost:
            self.storage.delete(self.path)
        self.holder = None
