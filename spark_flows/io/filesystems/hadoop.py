"""The session's Hadoop FileSystem (``file:``, ``hdfs:``, ``viewfs:`` ...) on classic Spark, called on the driver.

It reaches Hadoop's Java API through the JVM handle :mod:`spark_flows.core.backend` gives, so on Spark Connect
its construction raises :class:`~spark_flows.errors.ClassicOnlyError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spark_flows.core import backend
from spark_flows.io.filesystems.base import HDFS, UNKNOWN, FileInfo, Guarantees, no_compare_and_swap, now_ms

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class HadoopFileSystem:
    """The session's Hadoop FileSystem (``file:``, ``hdfs:``, ``s3a:`` ...), called on the driver."""

    def __init__(self, spark: SparkSession) -> None:
        self.java = backend.jvm(spark, "Storage")
        self._conf = backend.hadoop_configuration(spark, needed_by="Storage")

    def _path(self, path: str) -> Any:
        return self.java.org.apache.hadoop.fs.Path(path)

    def guarantees(self, path: str) -> Guarantees:
        """HDFS: atomic rename and exclusive create (NameNode); any other scheme here: none assumed."""
        return HDFS if path.startswith(("hdfs:", "viewfs:")) or (":/" not in path[:12]) else UNKNOWN

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        raise no_compare_and_swap(path)

    def write_if_match(self, path: str, data: bytes, tag: str) -> str | None:
        raise no_compare_and_swap(path)

    def _fs(self, jpath: Any) -> Any:
        return jpath.getFileSystem(self._conf)

    def qualify(self, path: str) -> str:
        jpath = self._path(path)
        return str(self._fs(jpath).makeQualified(jpath).toString())

    def info(self, path: str) -> FileInfo | None:
        jpath = self._path(path)
        fs = self._fs(jpath)
        if not fs.exists(jpath):
            return None
        st = fs.getFileStatus(jpath)
        return FileInfo(path, str(jpath.getName()), bool(st.isDirectory()), int(st.getLen()),
                        int(st.getModificationTime()))

    def list(self, path: str, after: str = "") -> list[FileInfo]:
        jpath = self._path(path)
        fs = self._fs(jpath)
        if not fs.exists(jpath) or not fs.getFileStatus(jpath).isDirectory():
            return []
        return [FileInfo(f"{path.rstrip('/')}/{st.getPath().getName()}", str(st.getPath().getName()),
                         bool(st.isDirectory()), int(st.getLen()), int(st.getModificationTime()))
                for st in fs.listStatus(jpath) if str(st.getPath().getName()) > after]

    def size(self, path: str) -> int:
        jpath = self._path(path)
        return int(self._fs(jpath).getContentSummary(jpath).getLength())

    def touch(self, path: str) -> None:
        jpath = self._path(path)
        self._fs(jpath).setTimes(jpath, now_ms(), -1)

    def mkdirs(self, path: str) -> None:
        jpath = self._path(path)
        self._fs(jpath).mkdirs(jpath)

    def delete(self, path: str, recursive: bool) -> bool:
        jpath = self._path(path)
        return bool(self._fs(jpath).delete(jpath, recursive))

    def rename(self, src: str, dst: str) -> bool:
        jsrc, jdst = self._path(src), self._path(dst)
        fs = self._fs(jsrc)
        if fs.exists(jdst):
            return False
        parent = jdst.getParent()
        if parent is not None:
            fs.mkdirs(parent)
        return bool(fs.rename(jsrc, jdst))

    def replace(self, src: str, dst: str) -> bool:
        jsrc, jdst = self._path(src), self._path(dst)
        fs = self._fs(jsrc)
        if fs.exists(jdst):
            fs.delete(jdst, False)
        return bool(fs.rename(jsrc, jdst))

    def create_exclusive(self, path: str, data: bytes) -> bool:
        jpath = self._path(path)
        fs = self._fs(jpath)
        try:
            stream = fs.create(jpath, False)
        except Exception as exc:  # FileAlreadyExistsException arrives as a Py4JJavaError
            java = getattr(exc, "java_exception", None)
            if fs.exists(jpath) or (java is not None and "FileAlreadyExists" in str(java.getClass().getName())):
                return False  # (the holder may have released it since: the caller looks again)
            raise backend.spark_failed(f"creating {path}", exc) from exc
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
        return True

    def read_bytes(self, path: str) -> bytes:
        jpath = self._path(path)
        stream = self._fs(jpath).open(jpath)
        try:
            return bytes(self.java.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write_bytes(self, path: str, data: bytes) -> None:
        jpath = self._path(path)
        stream = self._fs(jpath).create(jpath, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
