"""What every filesystem behind :class:`~spark_flows.io.storage.Storage` offers: its primitive operations
(:class:`FileSystem`), its listing entries (:class:`FileInfo`) and what it guarantees (:class:`Guarantees`).

Example
-------
>>> LOCAL_DISK.compare_and_swap, HDFS.compare_and_swap
(True, False)
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class FileInfo:
    """One entry of a directory listing."""

    path: str
    name: str
    is_dir: bool
    size: int
    modified_ms: int


@dataclass(frozen=True)
class Guarantees:
    """What a filesystem guarantees, which decides how spark_flows commits and locks on it.

    atomic_rename: a rename is one atomic step (local, HDFS); publishes stage and rename.
    create_exclusive: of two creates of one absent file exactly one succeeds; locks are taken by it.
    compare_and_swap: a file can be replaced only if unchanged since read; leases are renewed and taken over
        by it, and manifests committed by it where there is no atomic rename.
    list_after_write: a listing shows every file whose write returned.
    """

    atomic_rename: bool
    create_exclusive: bool
    compare_and_swap: bool
    list_after_write: bool


LOCAL_DISK = Guarantees(atomic_rename=True, create_exclusive=True, compare_and_swap=True, list_after_write=True)
HDFS = Guarantees(atomic_rename=True, create_exclusive=True, compare_and_swap=False, list_after_write=True)
UNKNOWN = Guarantees(atomic_rename=False, create_exclusive=False, compare_and_swap=False, list_after_write=False)


def no_compare_and_swap(path: str) -> Exception:
    from spark_flows.errors import StorageError

    return StorageError(f"the filesystem of {path} offers no compare-and-swap", condition="NO_COMPARE_AND_SWAP",
                        parameters={"path": path})


class FileSystem(Protocol):
    """The primitive operations a storage backend provides; :class:`Storage` builds the rest on them.

    ``read_tagged`` returns a file's bytes with a tag that changes whenever the file does;
    ``write_if_match`` replaces it only while its tag is still the one given (compare-and-swap) and returns
    the new tag, or None when the file changed (or vanished) since. Filesystems
    without that primitive raise ``NO_COMPARE_AND_SWAP`` (:meth:`guarantees` says which have it).
    """

    def guarantees(self, path: str) -> Guarantees: ...
    def read_tagged(self, path: str) -> tuple[bytes, str] | None: ...
    def write_if_match(self, path: str, data: bytes, tag: str) -> str | None: ...
    def qualify(self, path: str) -> str: ...
    def info(self, path: str) -> FileInfo | None: ...
    def list(self, path: str, after: str = "") -> list[FileInfo]: ...
    def size(self, path: str) -> int: ...
    def touch(self, path: str) -> None: ...
    def mkdirs(self, path: str) -> None: ...
    def delete(self, path: str, recursive: bool) -> bool: ...
    def rename(self, src: str, dst: str) -> bool: ...
    def create_exclusive(self, path: str, data: bytes) -> bool: ...
    def read_bytes(self, path: str) -> bytes: ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def replace(self, src: str, dst: str) -> bool: ...


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/")


def is_local(path: str) -> bool:
    """True when ``path`` is on the local filesystem: no scheme, or ``file:``.

    >>> is_local("data/x"), is_local("file:/tmp/x"), is_local("s3a://bucket/x")
    (True, True, False)
    """
    scheme = _SCHEME.match(path)
    return scheme is None or scheme.group(1).lower() == "file"


def local_path(path: str) -> str:
    """A ``file:`` URI or plain path as an OS path (string prefix handling only: ``#`` stays a character)."""
    if path.startswith("file://"):
        return "/" + path[len("file://"):].lstrip("/")
    if path.startswith("file:"):
        return "/" + path[len("file:"):].lstrip("/")
    return path


def now_ms() -> int:
    """The current time in epoch milliseconds (the clock heartbeats and lock ages compare with)."""
    return int(time.time() * 1000)
