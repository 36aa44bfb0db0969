"""Non-local paths through ``pyarrow.fs`` (a Spark Connect client, which has no Hadoop FileSystem of its
own)."""

from __future__ import annotations

import os
from typing import Any

from spark_flows.io.filesystems.base import (
    LOCAL_DISK,
    UNKNOWN,
    FileInfo,
    Guarantees,
    local_path,
    no_compare_and_swap,
)


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
