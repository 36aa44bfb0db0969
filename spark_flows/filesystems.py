"""The filesystems behind :class:`spark_flows.storage.Storage`: local (``os``), ``pyarrow.fs``, and routing by scheme.

The session's Hadoop FileSystem (classic Spark) lives in :mod:`spark_flows.backend`, the one module that
touches the JVM.

Example
-------
>>> import tempfile
>>> fs = RoutingFileSystem(LocalFileSystem(), ArrowFileSystem())
>>> root = tempfile.mkdtemp()
>>> fs.create_exclusive(f"{root}/lock", b"me"), fs.create_exclusive(f"file:{root}/lock", b"you")
(True, False)
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
from dataclasses import dataclass
from typing import Any, Protocol


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


class LocalFileSystem:
    """The local filesystem through ``os``: atomic rename and exclusive create; compare-and-swap under an
    advisory ``flock`` of a sidecar file (processes of one machine, which is what a local disk serves)."""

    def guarantees(self, path: str) -> Guarantees:
        return LOCAL_DISK

    @staticmethod
    def _tag(st: os.stat_result) -> str:
        return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"  # every write_text/write_if_match is a new inode

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        local = local_path(path)
        try:
            with open(local, "rb") as handle:
                return handle.read(), self._tag(os.fstat(handle.fileno()))
        except FileNotFoundError:
            return None

    def write_if_match(self, path: str, data: bytes, tag: str) -> str | None:
        local = local_path(path)
        parent, name = os.path.split(local)
        tmp = os.path.join(parent, f".{name}.{os.getpid()}.{threading.get_ident()}.cas")
        with open(tmp, "wb") as handle:
            handle.write(data)
        with open(os.path.join(parent, f".{name}.cas-lock"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                try:
                    current = self._tag(os.stat(local))
                except FileNotFoundError:
                    current = None
                if current != tag:
                    os.remove(tmp)
                    return None
                os.replace(tmp, local)
                return self._tag(os.stat(local))
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)

    def qualify(self, path: str) -> str:
        return "file:" + os.path.abspath(local_path(path))

    def info(self, path: str) -> FileInfo | None:
        local = local_path(path)
        try:
            st = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):  # absent, or "under" a plain file
            return None
        is_dir = os.path.isdir(local)
        return FileInfo(path, os.path.basename(local.rstrip("/")), is_dir, 0 if is_dir else st.st_size,
                        int(st.st_mtime * 1000))

    def list(self, path: str, after: str = "") -> list[FileInfo]:
        local = local_path(path)
        if not os.path.isdir(local):
            return []
        found = []
        for entry in os.scandir(local):
            if entry.name <= after:
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:  # removed while listing
                continue
            found.append(FileInfo(f"{path.rstrip('/')}/{entry.name}", entry.name, entry.is_dir(),
                                  0 if entry.is_dir() else st.st_size, int(st.st_mtime * 1000)))
        return found

    def size(self, path: str) -> int:
        local = local_path(path)
        if os.path.isfile(local):
            return os.path.getsize(local)
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(local) for f in files)

    def touch(self, path: str) -> None:
        os.utime(local_path(path))

    def mkdirs(self, path: str) -> None:
        os.makedirs(local_path(path), exist_ok=True)

    def delete(self, path: str, recursive: bool) -> bool:
        local = local_path(path)
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
        source, target = local_path(src), local_path(dst)
        if os.path.exists(target):
            return False
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        try:
            os.rename(source, target)
        except OSError:
            return False
        return True

    def replace(self, src: str, dst: str) -> bool:
        os.replace(local_path(src), local_path(dst))
        return True

    def create_exclusive(self, path: str, data: bytes) -> bool:
        local = local_path(path)
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        try:
            fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def read_bytes(self, path: str) -> bytes:
        with open(local_path(path), "rb") as handle:
            return handle.read()

    def write_bytes(self, path: str, data: bytes) -> None:
        local = local_path(path)
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        with open(local, "wb") as handle:
            handle.write(data)


class ArrowFileSystem:
    """Any filesystem ``pyarrow.fs`` reaches (S3, GCS, Azure, HDFS with libhdfs, local), with no JVM.

    Guarantees: ``rename`` and ``create_exclusive`` are atomic only where the store is (local: yes; object
    stores: no, a rename is copy + delete and an exclusive create is check-then-write).
    """

    def __init__(self, fs: Any | None = None) -> None:
        self._fs = fs
        self._by_root: dict[str, Any] = {}

    def guarantees(self, path: str) -> Guarantees:
        return LOCAL_DISK if self._fs is not None or path.startswith("file:") else UNKNOWN

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        raise no_compare_and_swap(path)

    def write_if_match(self, path: str, data: bytes, tag: str) -> str | None:
        raise no_compare_and_swap(path)

    def _resolve(self, path: str) -> tuple[Any, str]:
        if self._fs is not None:
            return self._fs, local_path(path)
        import pyarrow.fs as pafs

        uri = "s3://" + path[len("s3a://"):] if path.startswith("s3a://") else path
        scheme, _, rest = uri.partition("://")
        authority, _, inner = rest.partition("/")
        root = f"{scheme}://{authority}"
        if root not in self._by_root:
            self._by_root[root] = pafs.FileSystem.from_uri(uri)[0]
        # object stores address "bucket/key"; HDFS and the like an absolute path under the authority
        return self._by_root[root], rest if scheme in ("s3", "gs", "gcs", "abfs", "az") else f"/{inner}"

    def qualify(self, path: str) -> str:
        return path if self._fs is None else "file:" + os.path.abspath(local_path(path))

    def _info(self, path: str) -> Any:
        fs, inner = self._resolve(path)
        return fs, inner, fs.get_file_info(inner)

    def info(self, path: str) -> FileInfo | None:
        import pyarrow.fs as pafs

        _, _, found = self._info(path)
        if found.type == pafs.FileType.NotFound:
            return None
        is_dir = found.type == pafs.FileType.Directory
        return FileInfo(path, found.base_name, is_dir, 0 if is_dir else int(found.size or 0),
                        int((found.mtime_ns or 0) // 1_000_000))

    def list(self, path: str, after: str = "") -> list[FileInfo]:
        import pyarrow.fs as pafs

        fs, inner, found = self._info(path)
        if found.type != pafs.FileType.Directory:
            return []
        return [FileInfo(f"{path.rstrip('/')}/{i.base_name}", i.base_name, i.type == pafs.FileType.Directory,
                         int(i.size or 0) if i.type == pafs.FileType.File else 0, int((i.mtime_ns or 0) // 1_000_000))
                for i in fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True)) if i.base_name > after]

    def size(self, path: str) -> int:
        import pyarrow.fs as pafs

        fs, inner, found = self._info(path)
        if found.type == pafs.FileType.File:
            return int(found.size or 0)
        return sum(int(i.size or 0) for i in fs.get_file_info(pafs.FileSelector(inner, recursive=True,
                                                                                allow_not_found=True))
                   if i.type == pafs.FileType.File)

    def touch(self, path: str) -> None:
        self.write_bytes(path, self.read_bytes(path))  # no set-times in pyarrow: rewrite the same bytes

    def mkdirs(self, path: str) -> None:
        fs, inner = self._resolve(path)
        fs.create_dir(inner, recursive=True)

    def delete(self, path: str, recursive: bool) -> bool:
        import pyarrow.fs as pafs

        fs, inner, found = self._info(path)
        if found.type == pafs.FileType.NotFound:
            return False
        if found.type == pafs.FileType.Directory:
            if not recursive and fs.get_file_info(pafs.FileSelector(inner)):
                return False
            fs.delete_dir(inner)
        else:
            fs.delete_file(inner)
        return True

    def rename(self, src: str, dst: str) -> bool:
        if self.info(dst) is not None:
            return False
        fs, inner_src = self._resolve(src)
        _, inner_dst = self._resolve(dst)
        parent = inner_dst.rstrip("/").rpartition("/")[0]
        if parent:
            fs.create_dir(parent, recursive=True)
        fs.move(inner_src, inner_dst)
        return True

    def replace(self, src: str, dst: str) -> bool:
        fs, inner_src = self._resolve(src)
        _, inner_dst = self._resolve(dst)
        fs.move(inner_src, inner_dst)
        return True

    def create_exclusive(self, path: str, data: bytes) -> bool:
        if self.info(path) is not None:
            return False
        self.write_bytes(path, data)
        return True

    def read_bytes(self, path: str) -> bytes:
        fs, inner = self._resolve(path)
        with fs.open_input_stream(inner) as stream:
            return bytes(stream.read())

    def write_bytes(self, path: str, data: bytes) -> None:
        fs, inner = self._resolve(path)
        parent = inner.rstrip("/").rpartition("/")[0]
        if parent:
            fs.create_dir(parent, recursive=True)
        with fs.open_output_stream(inner) as stream:
            stream.write(data)


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
                from spark_flows.object_store import S3ObjectStore

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
