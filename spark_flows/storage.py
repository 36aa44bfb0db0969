"""Small-file and directory operations on any Hadoop FileSystem Spark can write to.

Markers, locks, ledgers and staged publishes go through here, so they work on ``file:``, ``hdfs:`` and
``s3a:`` alike, with the guarantees of each filesystem:

============  ==============================  ===================================================
filesystem    :meth:`Storage.rename`          :meth:`Storage.create_exclusive`
============  ==============================  ===================================================
local         atomic (``rename(2)``)          atomic (``O_CREAT | O_EXCL`` on the driver)
HDFS          atomic (NameNode)               atomic (``create(overwrite=false)``)
S3A           copy + delete, not atomic       atomic only with S3 conditional writes; else racy
============  ==============================  ===================================================

Example (needs a SparkSession ``spark``; not run as a doctest)::

    from spark_flows.storage import Storage
    fs = Storage(spark)
    fs.write_json("/tmp/x/_READY.json", {"rows": 3}); fs.read_json("/tmp/x/_READY.json")
    # -> {'rows': 3}
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class FileInfo:
    """One entry of a directory listing."""

    path: str
    name: str
    is_dir: bool
    size: int
    modified_ms: int


class Storage:
    """Hadoop FileSystem helpers bound to a session's Hadoop configuration. All calls run on the driver."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]

    def _fs(self, jpath: Any) -> Any:
        return jpath.getFileSystem(self._conf)

    def qualify(self, path: str) -> str:
        """Return ``path`` fully qualified (``data/x`` -> ``file:/work/data/x``)."""
        jpath = self._path(path)
        return str(self._fs(jpath).makeQualified(jpath).toString())

    def exists(self, path: str) -> bool:
        """True if a file or directory exists at ``path``."""
        jpath = self._path(path)
        return bool(self._fs(jpath).exists(jpath))

    def is_dir(self, path: str) -> bool:
        """True if ``path`` is an existing directory."""
        jpath = self._path(path)
        fs = self._fs(jpath)
        return bool(fs.exists(jpath) and fs.getFileStatus(jpath).isDirectory())

    def list(self, path: str) -> list[FileInfo]:
        """List the direct children of ``path`` sorted by name; an absent path lists as empty."""
        jpath = self._path(path)
        fs = self._fs(jpath)
        if not fs.exists(jpath):
            return []
        infos = [
            FileInfo(
                path=str(st.getPath().toString()),
                name=str(st.getPath().getName()),
                is_dir=bool(st.isDirectory()),
                size=int(st.getLen()),
                modified_ms=int(st.getModificationTime()),
            )
            for st in fs.listStatus(jpath)
        ]
        return sorted(infos, key=lambda i: i.name)

    def modified_ms(self, path: str) -> int:
        """Modification time of ``path`` in epoch milliseconds."""
        jpath = self._path(path)
        return int(self._fs(jpath).getFileStatus(jpath).getModificationTime())

    def size(self, path: str) -> int:
        """Total bytes of the files under ``path`` (a file or a directory tree)."""
        jpath = self._path(path)
        return int(self._fs(jpath).getContentSummary(jpath).getLength())

    def touch(self, path: str) -> None:
        """Set ``path``'s modification time to now (a heartbeat; the content is left unchanged)."""
        jpath = self._path(path)
        now_ms = int(self._jvm.java.lang.System.currentTimeMillis())  # type: ignore[union-attr]
        self._fs(jpath).setTimes(jpath, now_ms, -1)

    def mkdirs(self, path: str) -> None:
        """Create ``path`` and its parents."""
        jpath = self._path(path)
        self._fs(jpath).mkdirs(jpath)

    def delete(self, path: str, *, recursive: bool = True) -> bool:
        """Delete ``path``; returns False if nothing was there."""
        jpath = self._path(path)
        return bool(self._fs(jpath).delete(jpath, recursive))

    def delete_if_empty(self, path: str) -> bool:
        """Delete the directory ``path`` only if it has no children (never a sibling's work in progress)."""
        jpath = self._path(path)
        fs = self._fs(jpath)
        try:
            return bool(fs.exists(jpath) and len(fs.listStatus(jpath)) == 0 and fs.delete(jpath, False))
        except Exception:  # a child appeared between the listing and the delete: keep the directory
            return False

    def rename(self, src: str, dst: str) -> bool:
        """Rename ``src`` to ``dst``, which must not exist; False if the filesystem refused.

        Atomic on local filesystems and HDFS. A directory ``dst`` that already exists is refused here
        rather than receiving ``src`` inside it, Hadoop's surprising default.
        """
        jsrc, jdst = self._path(src), self._path(dst)
        fs = self._fs(jsrc)
        if fs.exists(jdst):
            return False
        parent = jdst.getParent()
        if parent is not None:
            fs.mkdirs(parent)
        return bool(fs.rename(jsrc, jdst))

    def create_exclusive(self, path: str, text: str) -> bool:
        """Create the file ``path`` holding ``text`` only if nothing exists there; True if this call made it."""
        qualified = urlparse(self.qualify(path))
        if qualified.scheme == "file":
            local = qualified.path
            os.makedirs(os.path.dirname(local), exist_ok=True)
            try:
                fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return True
        jpath = self._path(path)
        fs = self._fs(jpath)
        try:
            stream = fs.create(jpath, False)
        except Exception as exc:  # FileAlreadyExistsException arrives as a Py4JJavaError
            if "FileAlreadyExists" in str(exc) or fs.exists(jpath):
                return False
            raise
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        return True

    def read_text(self, path: str) -> str:
        """Read a small UTF-8 file."""
        jpath = self._path(path)
        fs = self._fs(jpath)
        stream = fs.open(jpath)
        try:
            jvm = self._jvm
            data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)  # type: ignore[union-attr]
        finally:
            stream.close()
        return bytes(data).decode("utf-8")

    def write_text(self, path: str, text: str, *, overwrite: bool = True) -> None:
        """Write a small UTF-8 file atomically: to a hidden temporary name, then rename into place.

        With ``overwrite`` an existing file is deleted just before the rename (a reader may briefly see
        no file, never a partial one).
        """
        jpath = self._path(path)
        parent = jpath.getParent()
        tmp = f"{parent.toString()}/.{jpath.getName()}.{uuid.uuid4().hex}.tmp"
        jtmp = self._path(tmp)
        fs = self._fs(jpath)
        stream = fs.create(jtmp, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        if overwrite and fs.exists(jpath):
            fs.delete(jpath, False)
        if not fs.rename(jtmp, jpath):
            fs.delete(jtmp, False)
            raise FileExistsError(f"could not rename {tmp} to {path}")

    def read_json(self, path: str) -> Any:
        """Read a small JSON file."""
        return json.loads(self.read_text(path))

    def write_json(self, path: str, value: Any, *, overwrite: bool = True) -> None:
        """Write ``value`` as JSON atomically (see :meth:`write_text`)."""
        self.write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str), overwrite=overwrite)
