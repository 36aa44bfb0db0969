"""Small-file and directory operations on any filesystem Spark can write to.

Markers, locks, ledgers, staged publishes and Delta log reads go through :class:`Storage`, so they work on
``file:``, ``hdfs:`` and ``s3a:`` alike, with the guarantees of each filesystem (:meth:`Storage.guarantees`,
:class:`~spark_flows.io.filesystems.Guarantees`); the contracts use only what a filesystem has:

============  ======================  ==========================  ===============================
filesystem    rename                  create-if-absent            compare-and-swap
============  ======================  ==========================  ===============================
local         atomic (``rename(2)``)  atomic (``O_CREAT|O_EXCL``)  ``flock``-guarded replace
HDFS          atomic (NameNode)       atomic (``overwrite=false``) none (leases renew by mtime)
S3            copy + delete           ``If-None-Match: *``         ``If-Match: <etag>``
============  ======================  ==========================  ===============================

Four implementations sit behind one interface, routed by the path's scheme: the local filesystem through
Python's ``os`` (atomic ``rename(2)`` and ``O_EXCL``, no JVM round trip), ``s3a:``/``s3:`` through
:mod:`spark_flows.io.filesystems.s3` (``boto3``, conditional writes, on both backends), the session's Hadoop
FileSystem on classic Spark (``hdfs:`` ... as its Hadoop configuration knows them, reached through
:mod:`spark_flows.core.backend`), and ``pyarrow.fs`` where there is no JVM (a Spark Connect client, commands that
only read files): GCS, Azure, HDFS through libhdfs. Paths are strings and are never parsed as URLs: a
``#`` or ``?`` in a directory name is part of the name.

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
import uuid
from typing import TYPE_CHECKING, Any

from spark_flows.errors import StorageError
from spark_flows.io.filesystems import (
    ArrowFileSystem,
    FileInfo,
    FileSystem,
    Guarantees,
    LocalFileSystem,
    RoutingFileSystem,
    file_system,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Storage:
    """Small files and directories on ``spark``'s filesystems (Hadoop FS), or locally with no session.

    All calls run on the driver. ``Storage(spark)`` uses the session's Hadoop configuration on classic
    Spark; ``Storage(None)`` (:func:`local_storage`) needs no Spark.
    """

    def __init__(self, spark: SparkSession | None = None, *, fs: FileSystem | None = None) -> None:
        if fs is None:
            if spark is None:
                fs = RoutingFileSystem(LocalFileSystem(), ArrowFileSystem())
            else:
                fs = file_system(spark)
        self.fs: FileSystem = fs

    def guarantees(self, path: str) -> Guarantees:
        """What the filesystem of ``path`` guarantees (atomic rename, create-if-absent, compare-and-swap ...)."""
        return self.fs.guarantees(path)

    def read_tagged(self, path: str) -> tuple[str, str] | None:
        """The UTF-8 text of ``path`` and its tag for :meth:`write_if_match`, or None if it is absent."""
        found = self.fs.read_tagged(path)
        return None if found is None else (found[0].decode("utf-8"), found[1])

    def write_if_match(self, path: str, text: str, tag: str) -> str | None:
        """Replace ``path`` with ``text`` only if it is unchanged since the read that gave ``tag``: the new
        tag, or None if another writer changed it first.

        Raises
        ------
        StorageError: the filesystem has no compare-and-swap (``NO_COMPARE_AND_SWAP``; see :meth:`guarantees`).
        """
        return self.fs.write_if_match(path, text.encode("utf-8"), tag)

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

    def list(self, path: str, *, after: str = "") -> list[FileInfo]:
        """List the direct children of ``path`` sorted by name; an absent path lists as empty.

        With ``after``, only the children whose names sort after it (an object store lists from there: the
        request does not grow with what sorts before it, such as a Delta log's older commits).
        """
        return sorted(self.fs.list(path, after), key=lambda i: i.name)

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
        filesystems a reader may briefly see no file, never a partial one). On an object store (no rename)
        the file is one ``PUT``, which replaces it atomically; without ``overwrite`` a create-if-absent.

        Raises
        ------
        StorageError: ``overwrite`` is False and ``path`` exists, or the rename failed.
        """
        data = text.encode("utf-8")
        if not self.fs.guarantees(path).atomic_rename:  # an object store: one PUT is atomic, a rename is not
            if overwrite:
                self.fs.write_bytes(path, data)
            elif not self.fs.create_exclusive(path, data):
                raise StorageError(f"could not write {path}: it exists", parameters={"path": path})
            return
        parent, _, name = path.rstrip("/").rpartition("/")
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp" if parent else f".{name}.{uuid.uuid4().hex}.tmp"
        self.fs.write_bytes(tmp, data)
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
