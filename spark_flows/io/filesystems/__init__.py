"""The filesystems behind :class:`~spark_flows.io.storage.Storage`, each with its stated guarantees, routed by
scheme: local disk (``os``), object stores (``s3a:``, ``s3:``: conditional writes through boto3), and every
other scheme through the session's Hadoop FileSystem on classic Spark or ``pyarrow.fs`` on Spark Connect.

Example
-------
>>> import tempfile
>>> fs = RoutingFileSystem(LocalFileSystem(), ArrowFileSystem())
>>> root = tempfile.mkdtemp()
>>> fs.create_exclusive(f"{root}/lock", b"me"), fs.create_exclusive(f"file:{root}/lock", b"you")
(True, False)
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from spark_flows.core import backend
from spark_flows.io.filesystems.arrow import ArrowFileSystem
from spark_flows.io.filesystems.base import (
    _SCHEME,
    HDFS,
    LOCAL_DISK,
    UNKNOWN,
    FileInfo,
    FileSystem,
    Guarantees,
    is_local,
    local_path,
    no_compare_and_swap,
    now_ms,
)
from spark_flows.io.filesystems.hadoop import HadoopFileSystem
from spark_flows.io.filesystems.local import LocalFileSystem
from spark_flows.io.filesystems.s3 import OBJECT_STORE, S3ObjectStore, hadoop_lookup, spark_conf_lookup

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "HDFS", "LOCAL_DISK", "OBJECT_STORE", "UNKNOWN", "ArrowFileSystem", "FileInfo", "FileSystem", "Guarantees",
    "HadoopFileSystem", "LocalFileSystem", "RoutingFileSystem", "S3ObjectStore", "file_system", "is_local",
    "local_path", "no_compare_and_swap", "now_ms",
]


class RoutingFileSystem:
    """Local paths through ``local``, object-store paths (``s3a:``, ``s3:``) through ``objects``, every other
    scheme through ``other``.

    A path with no scheme is local when ``local_default`` (a classic session whose ``fs.defaultFS`` is the
    local filesystem, or a Spark Connect client); otherwise it belongs to ``other`` (e.g. HDFS).
    """

    OBJECT_SCHEMES = ("s3a", "s3", "s3n")

    def __init__(self, local: FileSystem, other: FileSystem, *, local_default: bool = True,
                 objects: FileSystem | None = None) -> None:
        self._local, self._other, self._local_default = local, other, local_default
        self._objects = objects

    def _pick(self, path: str) -> FileSystem:
        scheme = _SCHEME.match(path)
        if scheme is None:
            return self._local if self._local_default else self._other
        name = scheme.group(1).lower()
        if name == "file":
            return self._local
        if name in self.OBJECT_SCHEMES:
            if self._objects is None:
                self._objects = S3ObjectStore()
            return self._objects
        return self._other

    def guarantees(self, path: str) -> Guarantees:
        return self._pick(path).guarantees(path)

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        return self._pick(path).read_tagged(path)

    def write_if_match(self, path: str, data: bytes, tag: str) -> str | None:
        return self._pick(path).write_if_match(path, data, tag)

    def qualify(self, path: str) -> str:
        return self._pick(path).qualify(path)

    def info(self, path: str) -> FileInfo | None:
        return self._pick(path).info(path)

    def list(self, path: str, after: str = "") -> list[FileInfo]:
        return self._pick(path).list(path, after)

    def size(self, path: str) -> int:
        return self._pick(path).size(path)

    def touch(self, path: str) -> None:
        self._pick(path).touch(path)

    def mkdirs(self, path: str) -> None:
        self._pick(path).mkdirs(path)

    def delete(self, path: str, recursive: bool) -> bool:
        return self._pick(path).delete(path, recursive)

    def rename(self, src: str, dst: str) -> bool:
        return self._pick(src).rename(src, dst)

    def replace(self, src: str, dst: str) -> bool:
        return self._pick(src).replace(src, dst)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        return self._pick(path).create_exclusive(path, data)

    def read_bytes(self, path: str) -> bytes:
        return self._pick(path).read_bytes(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        self._pick(path).write_bytes(path, data)


def file_system(spark: SparkSession) -> FileSystem:
    """The filesystem spark_flows uses beside ``spark``: local paths through ``os``; other schemes through the
    session's Hadoop FS on classic, through ``pyarrow.fs`` on Connect.

    On Connect the client reaches only what it can mount or address itself, so the data root must be a
    path that client and server share (local mode, a mounted volume, an object store both can reach).
    """
    objects = _OBJECT_STORES.get(spark)
    if backend.is_remote(spark):
        if objects is None:
            objects = _OBJECT_STORES[spark] = S3ObjectStore(spark_conf_lookup(lambda key: spark.conf.get(key, None)))
        return RoutingFileSystem(LocalFileSystem(), ArrowFileSystem(), objects=objects)
    hadoop = HadoopFileSystem(spark)
    conf = backend.hadoop_configuration(spark, needed_by="Storage")
    if objects is None:
        objects = _OBJECT_STORES[spark] = S3ObjectStore(hadoop_lookup(conf))
    default = str(conf.get("fs.defaultFS", "file:///"))
    return RoutingFileSystem(LocalFileSystem(), hadoop, local_default=default.startswith("file:"), objects=objects)


#: one object store per session: its clients (one per bucket) are reused by every Storage of the session
_OBJECT_STORES: weakref.WeakKeyDictionary[Any, S3ObjectStore] = weakref.WeakKeyDictionary()


