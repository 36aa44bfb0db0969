"""The local disk through ``os``: atomic rename, create-if-absent by ``O_EXCL``, compare-and-swap under
``flock``."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading

from spark_flows.io.filesystems.base import (
    LOCAL_DISK,
    FileInfo,
    Guarantees,
    local_path,
)


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
