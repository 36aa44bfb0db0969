"""Fixtures of the test suite; the session (``spark``) lives in the repository's root ``conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import procs


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    """Kill, with its process group, every child process the test started (tests.procs), pass or fail."""
    yield
    procs.kill_started()


@pytest.fixture
def data_root(tmp_path: Path) -> str:
    """A fresh data root for a job run, as the jobs' --data-root."""
    return str(tmp_path / "data")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 1 MB tmpfs filled to its last page: every write of data into it fails with ENOSPC
    ("No space left on device"), as on a full disk. Unmounted when the test ends, pass or fail."""
    import subprocess

    mount = tmp_path / "full"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"a full disk is a 1 MB tmpfs, which this machine does not let the suite mount: "
                    f"{mounted.stderr.strip()}")
    try:
        with open(mount / "filler", "wb", buffering=0) as filler:
            for chunk in (65536, 4096, 512, 1):
                try:
                    while True:
                        filler.write(b"\0" * chunk)
                except OSError:
                    pass
        with pytest.raises(OSError, match="No space left"), open(mount / "probe", "wb", buffering=0) as probe:
            probe.write(b"x" * 4096)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


class _Webhook:
    def __init__(self, url: str, received: list[dict]) -> None:
        self.url, self.received = url, received


@pytest.fixture
def webhook_server():
    """A local HTTP endpoint on 127.0.0.1 that records the JSON bodies POSTed to it (answered 204)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Webhook(f"http://127.0.0.1:{server.server_address[1]}/notify", received)
    finally:
        server.shutdown()
        server.server_close()
