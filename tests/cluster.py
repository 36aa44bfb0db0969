"""A Spark standalone master and worker on 127.0.0.1, started from the pyspark wheel's spark-class."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spark_flows.core.submit import spark_home, submit_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen([str(Path(spark_home()) / "bin" / "spark-class"), *args], stdout=handle,
                            stderr=subprocess.STDOUT, env=submit_env({"SPARK_HOME": spark_home()}),
                            start_new_session=True)


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, log.read_text(errors="replace")):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{log.name} exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"no {pattern!r} in {log} after {timeout}s:\n{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextmanager
def standalone_cluster(work: Path, *, cores: int = 2, memory: str = "3g", timeout: float = 90) -> Iterator[str]:
    """Yield the master URL of a one-worker standalone cluster; always stops both, with bounded waits."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        master = _start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                         "--webui-port", str(free_port())], work / "master.log")
        procs.append(master)
        _wait_for(work / "master.log", r"I have been elected leader", master, timeout)
        worker = _start(["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", str(cores),
                         "--memory", memory, "--webui-port", str(free_port()), "--work-dir", str(work / "worker")],
                        work / "worker.log")
        procs.append(worker)
        _wait_for(work / "worker.log", r"Successfully registered with master", worker, timeout)
        yield url
    finally:
        for proc in reversed(procs):
            _stop(proc)
