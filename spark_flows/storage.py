"""Small-file and directory operations on any filesystem Spark can write to.

Markers, locks, ledgers, staged publishes and Delta log reads go through :class:`Storage`, so they work on
``file:``, ``hdfs:`` and ``s3a:`` alike, with the guarantees of each filesystem:

============  ==============================  ===================================================
filesystem    :meth:`Storage.rename`          :meth:`Storage.create_exclusive`
============  ==============================  ===================================================
local         atomic (``rename(2)``)          atomic (``O_CREAT | O_EXCL``)
HDFS          atomic (NameNode)               atomic (``create(overwrite=false)``)
S3A           copy + delete, not atomic       atomic only with S3 conditional writes; else racy
============  ==============================  ===================================================

Two implementations sit behind one interface: the session's Hadoop FileSystem (any scheme its Hadoop
configuration knows, reached through :mod:`spark_flows.backend`) and the local filesystem through Python's
``os`` (no Spark at all: commands that only read files, doctests). Paths are strings and are never parsed as
URLs: a ``#`` or ``?`` in a directory name is part of the name.

Example
-------
>>> import tempfile
>>> fs = local_storage()
>>> root = tempfile.mkdtemp()
>>> fs.write_json(f"{root}/x/_READY.json", {"rows": 3}); fs.read_json(f"{root}/x/_READY.json")
{'rows': 3}
>>> fs.create_exclusive(f"{root}/a#b/lock", "me"), fs.create_exclusive(f"{root}/a#b/lock", "you")
(True, False)
>>> [i.name for i in fs.list(f"{root}/a#b")]
['lock']
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from spark_flows.errors import StorageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class FileInfo:
    """One entry of a directory listing."""

    path: str
    name: str
    is_dir: bool
    size: int
    modified_ms: int


class FileSystem(Protocol):
    """The primitive operations a storage backend provides; :class:`Storage` builds the rest on them."""

    def qualify(self, path: str) -> str: ...
    def info(self, path: str) -> FileInfo | None: ...
    def list(self, path: str) -> list[FileInfo]: ...
    def size(self, path: str) -> int: ...
    def touch(self, path: str) -> None: ...
    def mkdirs(self, path: str) -> None: ...
    def delete(self, path: str, recursive: bool) -> bool: ...
    def rename(self, src: str, dst: str) -> bool: ...
    def create_exclusive(self, path: str, data: bytes) -> bool: ...
    def read_bytes(self, path: str) -> bytes: ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def replace(self, src: str, dst: str) -> bool: ...


def _local(path: str) -> str:
    """A ``file:`` URI or plain path as an OS path (string prefix handling only: ``#`` stays a character)."""
    if path.startswith("file://"):
        return "/" + path[len("file://"):].lstrip("/")
    if path.startswith("file:"):
        return "/" + path[len("file:"):].lstrip("/")
    return path


class LocalFileSystem:
    """The local filesystem through ``os``: atomic rename and exclusive create."""

    def qualify(self, path: str) -> str:
        return "file:" + os.path.abspath(_local(path))

    def info(self, path: str) -> FileInfo | None:
        local = _local(path)
        try:
            st = os.stat(local)
        except FileNotFoundError:
            return None
        is_dir = os.path.isdir(local)
        return FileInfo(path, os.path.basename(local.rstrip("/")), is_dir, 0 if is_dir else st.st_size,
                        int(st.st_mtime * 1000))

    def list(self, path: str) -> list[FileInfo]:
        local = _local(path)
        if not os.path.isdir(local):
            return []
        found = []
        for entry in os.scandir(local):
            try:
                st = entry.stat()
            except FileNotFoundError:  # removed while listing
                continue
            found.append(FileInfo(f"{path.rstrip('/')}/{entry.name}", entry.name, entry.is_dir(),
                                  0 if entry.is_dir() else st.st_size, int(st.st_mtime * 1000)))
        return found

    def size(self, path: str) -> int:
        local = _local(path)
        if os.path.isfile(local):
            return os.path.getsize(local)
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(local) for f in files)

    def touch(self, path: str) -> None:
        os.utime(_local(path))

    def mkdirs(self, path: str) -> None:
        os.makedirs(_local(path), exist_ok=True)

    def delete(self, path: str, recursive: bool) -> bool:
        local = _local(path)
        if os.path.isdir(local) and not os.path.islink(local):
            if recursive:
                shutil.rmtree(local, ignore_errors=True)
            else:
                try:
                    os.rmdir(local)
                except OSError:
                    return False
            return True
        try:
            os.remove(local)
        except FileNotFoundError:
            return False
        return True

    def rename(self, src: str, dst: str) -> bool:
        source, target = _local(src), _local(dst)
        if os.path.exists(target):
            return False
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        try:
            os.rename(source, target)
        except OSError:
            return False
        return True

    def replace(self, src: str, dst: str) -> bool:
        os.replace(_local(src), _local(dst))
        return True

    def create_exclusive(self, path: str, data: bytes) -> bool:
        local = _local(path)
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        try:
            fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def read_bytes(self, path: str) -> bytes:
        with open(_local(path), "rb") as handle:
            return handle.read()

    def write_bytes(self, path: str, data: bytes) -> None:
        local = _local(path)
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        with open(local, "wb") as handle:
            handle.write(data)


class Storage:
    """Small files and directories on ``spark``'s filesystems (Hadoop FS), or locally with no session.

    All calls run on the driver. ``Storage(spark)`` uses the session's Hadoop configuration on classic
    Spark; ``Storage(None)`` (:func:`local_storage`) needs no Spark.
    """

    def __init__(self, spark: SparkSession | None = None, *, fs: FileSystem | None = None) -> None:
        if fs is None:
            if spark is None:
                fs = LocalFileSystem()
            else:
                from spark_flows.backend import file_system

                fs = file_system(spark)
        self.fs: FileSystem = fs

    def qualify(self, path: str) -> str:
        """Return ``path`` fully qualified (``data/x`` -> ``file:/work/data/x``)."""
        return self.fs.qualify(path)

    def exists(self, path: str) -> bool:
        """True if a file or directory exists at ``path``."""
        return self.fs.info(path) is not None

    def is_dir(self, path: str) -> bool:
        """True if ``path`` is an existing directory."""
        info = self.fs.info(path)
        return bool(info and info.is_dir)

    def list(self, path: str) -> list[FileInfo]:
        """List the direct children of ``path`` sorted by name; an absent path lists as empty."""
        return sorted(self.fs.list(path), key=lambda i: i.name)

    def modified_ms(self, path: str) -> int:
        """Modification time of ``path`` in epoch milliseconds."""
        info = self.fs.info(path)
        if info is None:
            raise StorageError(f"{path} does not exist", condition="PATH_NOT_FOUND", parameters={"path": path})
        return info.modified_ms

    def size(self, path: str) -> int:
        """Total bytes of the files under ``path`` (a file or a directory tree)."""
        return self.fs.size(path)

    def touch(self, path: str) -> None:
        """Set ``path``'s modification time to now (a heartbeat; the content is left unchanged)."""
        self.fs.touch(path)

    def mkdirs(self, path: str) -> None:
        """Create ``path`` and its parents."""
        self.fs.mkdirs(path)

    def delete(self, path: str, *, recursive: bool = True) -> bool:
        """Delete ``path``; returns False if nothing was there."""
        return self.fs.delete(path, recursive)

    def delete_if_empty(self, path: str) -> bool:
        """Delete the directory ``path`` only if it has no children (never a sibling's work in progress)."""
        try:
            return self.is_dir(path) and not self.fs.list(path) and self.fs.delete(path, False)
        except Exception:  # a child appeared between the listing and the delete: keep the directory
            return False

    def rename(self, src: str, dst: str) -> bool:
        """Rename ``src`` to ``dst``, which must not exist; False if the filesystem refused.

        Atomic on local filesystems and HDFS. A directory ``dst`` that already exists is refused here
        rather than receiving ``src`` inside it, Hadoop's surprising default.
        """
        return self.fs.rename(src, dst)

    def create_exclusive(self, path: str, text: str) -> bool:
        """Create the file ``path`` holding ``text`` only if nothing exists there; True if this call made it."""
        return self.fs.create_exclusive(path, text.encode("utf-8"))

    def read_bytes(self, path: str) -> bytes:
        """Read a small file."""
        return self.fs.read_bytes(path)

    def read_text(self, path: str) -> str:
        """Read a small UTF-8 file."""
        return self.fs.read_bytes(path).decode("utf-8")

    def write_text(self, path: str, text: str, *, overwrite: bool = True) -> None:
        """Write a small UTF-8 file atomically: to a hidden temporary name, then rename into place.

        With ``overwrite`` an existing file is replaced (atomically where the filesystem can; on Hadoop
        filesystems a reader may briefly see no file, never a partial one).

        Raises
        ------
        StorageError: ``overwrite`` is False and ``path`` exists, or the rename failed.
        """
        parent, _, name = path.rstrip("/").rpartition("/")
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp" if parent else f".{name}.{uuid.uuid4().hex}.tmp"
        self.fs.write_bytes(tmp, text.encode("utf-8"))
        done = self.fs.replace(tmp, path) if overwrite else self.fs.rename(tmp, path)
        if not done:
            self.fs.delete(tmp, False)
            raise StorageError(f"could not write {path}: " + ("it exists" if self.exists(path) else "rename refused"),
                               parameters={"path": path})

    def read_json(self, path: str) -> Any:
        """Read a small JSON file."""
        return json.loads(self.read_text(path))

    def write_json(self, path: str, value: Any, *, overwrite: bool = True) -> None:
        """Write ``value`` as JSON atomically (see :meth:`write_text`)."""
        self.write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str), overwrite=overwrite)


def local_storage() -> Storage:
    """A :class:`Storage` on the local filesystem that needs no Spark session."""
    return Storage(None)


def now_ms() -> int:
    """The current time in epoch milliseconds (the clock heartbeats and lock ages compare with)."""
    return int(time.time() * 1000)
