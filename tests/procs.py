"""Run bundled jobs as real spark-submit processes from tests: start, watch their log, kill, wait."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from spark_flows.config import Settings
from spark_flows.submit import submit_command, submit_env

ROOT = Path(__file__).resolve().parents[1]
SUBMIT_CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
               "spark.databricks.delta.snapshotPartitions": "1"}


class JobProcess:
    """A bundled job under spark-submit in its own process group, its stderr collected line by line."""

    def __init__(self, job: str, args: list[str], *, master: str = "local[2]", extra_env: dict[str, str] | None = None,
                 py_files: tuple[str, ...] = ()) -> None:
        command = submit_command(str(ROOT / "jobs" / f"{job}.py"), args, Settings(spark_conf=SUBMIT_CONF),
                                 master=master, py_files=py_files)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(command, cwd=ROOT, env=submit_env(extra_env), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        """Block until a line matches ``pattern``; raise with the output tail if the job ends or time runs out."""
        regex, deadline = re.compile(pattern), time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"job ended (exit {self.proc.returncode}) before {pattern!r}:\n{self.tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no line matched {pattern!r} in {timeout}s:\n{self.tail()}")
                self._changed.wait(0.5)

    def kill(self) -> None:
        """SIGKILL the whole process group (spark-submit, the JVM and the Python driver)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def wait(self, timeout: float = 300) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"job still running after {timeout}s:\n{self.tail()}") from None
        self._reader.join(10)
        return code

    def tail(self, n: int = 25) -> str:
        return "\n".join(self.lines[-n:])
