"""Staged write attempts and whose they are: a writer keeps another live writer's attempt, drops a dead one's.

A files writer stages each attempt under ``_staging/<output>/<batch tag>-<attempt id>~<host>~<pid>``. Before
it writes, it drops the debris of crashed attempts, but never an attempt whose writer may still be running:
one of this process's attempts in progress, a live process on this host, or another host's attempt younger
than :data:`STALE_ATTEMPT_S` (its process cannot be asked).

Example
-------
>>> from spark_flows.io.filesystems import FileInfo
>>> name = attempt_name("loader-7", "0123456789ab")
>>> attempt_id(name)
'0123456789ab'
>>> staged = FileInfo(f"/out/_staging/{name}", name, True, 0, 0)
>>> with running("0123456789ab"):
...     is_live(staged)
True
>>> is_live(staged)
False
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spark_flows.io.filesystems import FileInfo

_OWNER = "~"
#: a staged attempt of another host is taken for a crashed one once it is this old
STALE_ATTEMPT_S = 86400
_RUNNING: set[str] = set()  # this process's attempts in progress (threads of one driver write at once)


def attempt_name(tag: str, attempt: str) -> str:
    """The staging directory name of attempt ``attempt`` of batch ``tag`` by this process."""
    return f"{tag}-{attempt}{_OWNER}{socket.gethostname()}{_OWNER}{os.getpid()}"


def attempt_id(name: str) -> str:
    """``<tag>-<id>~host~pid`` -> ``<id>``."""
    return name.partition(_OWNER)[0].rpartition("-")[2]


@contextmanager
def running(attempt: str) -> Iterator[None]:
    """Mark ``attempt`` as this process's, in progress, for as long as the block runs."""
    _RUNNING.add(attempt)
    try:
        yield
    finally:
        _RUNNING.discard(attempt)


def is_live(staged: FileInfo) -> bool:
    """Whether the writer of the staged attempt may still be running (see the module notes); an attempt
    without an owner in its name (an older release's) is not."""
    _, sep, owner = staged.name.partition(_OWNER)
    host, _, pid = owner.rpartition(_OWNER)
    if not sep or not pid.isdigit():
        return False
    if host != socket.gethostname():
        return staged.modified_ms > (time.time() - STALE_ATTEMPT_S) * 1000
    if int(pid) == os.getpid():
        return attempt_id(staged.name) in _RUNNING
    return _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: dead
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True
