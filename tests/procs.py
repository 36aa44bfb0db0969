"""Child processes of the tests: bundled jobs under spark-submit (watched line by line), plain commands, and a
registry that kills every process group a test started when the test ends, pass or fail.

``tests/conftest.py`` calls :func:`kill_started` after every test; a test therefore never leaves a JVM
running that would slow the tests after it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from spark_flows.core.config import Settings
from spark_flows.core.submit import submit_command, submit_env

ROOT = Path(__file__).resolve().parents[1]
SUBMIT_CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
               "spark.databricks.delta.snapshotPartitions": "1"}
#: the launcher that runs a bundled job with a pause point patched in (see tests/paused_job.py)
PAUSED_JOB = ROOT / "tests" / "paused_job.py"

_started: list[subprocess.Popen] = []
_guard = threading.Lock()


def _track(proc: subprocess.Popen) -> subprocess.Popen:
    with _guard:
        _started.append(proc)
    return proc


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children in sessions of their own too, as a process backfill starts)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s whole process group (spark-submit, the JVM, the Python driver) and every process
    below it, and reap it."""
    # descendants only of a leader still running: a reaped one's pid may belong to another process by now
    below = _descendants(proc.pid) if proc.poll() is None and Path("/proc").is_dir() else []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass


def kill_started() -> None:
    """Kill every process group started through this module (a finished leader may leave children in its
    group, such as the JVM's Python driver)."""
    with _guard:
        procs, _started[:] = list(_started), []
    for proc in procs:
        kill_group(proc)


def popen(command: Sequence[str], **kwargs: object) -> subprocess.Popen:
    """``subprocess.Popen`` in a process group of its own, killed when the test ends."""
    return _track(subprocess.Popen(list(command), start_new_session=True, **kwargs))  # type: ignore[call-overload]


def run(command: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end (stdout and stderr captured as text) in a process group of its own; on a
    timeout the whole group is killed and the test fails naming the command."""
    proc = popen(command, env=dict(env) if env is not None else None, cwd=cwd, text=True,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"{command[:3]} still running after {timeout}s:\n{(err or out)[-2000:]}") from None
    kill_group(proc)  # children left in the group (none expected)
    return subprocess.CompletedProcess(list(command), proc.returncode, out, err)


class JobProcess:
    """A bundled job under spark-submit in its own process group, its output (stdout and stderr merged, as
    spark-submit merges the Python driver's) collected line by line.

    ``pause`` (``before|after:MODULE:ATTR[:N]``) runs the job through ``tests/paused_job.py``, which stops it
    dead at the N-th call of that function and prints ``PAUSED AT <pause>``: the test waits for that line and
    SIGKILLs the job at a point it chose, not at one a sleep happened to pick.
    """

    def __init__(self, job: str, args: Sequence[str], *, master: str = "local[2]",
                 extra_env: dict[str, str] | None = None, py_files: tuple[str, ...] = (),
                 pause: str | None = None, spark_conf: Mapping[str, str] | None = None) -> None:
        script, job_args = str(ROOT / "jobs" / f"{job}.py"), list(args)
        if pause is not None:
            script, job_args = str(PAUSED_JOB), [job, pause, "--", *job_args]
        command = submit_command(script, job_args, Settings(spark_conf={**SUBMIT_CONF, **(spark_conf or {})}),
                                 master=master,
                                 py_files=py_files)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = popen(command, cwd=ROOT, env=submit_env(extra_env), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 180) -> str:
        """Block until a line matches ``pattern``; fail with the output's tail if the job ends first or no such
        line comes within ``timeout`` seconds (a bound, never the event the test is about)."""
        regex, deadline = re.compile(pattern), time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"job ended (exit {self.proc.returncode}) before a line matched "
                                         f"{pattern!r}:\n{self.tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no line matched {pattern!r} within {timeout}s:\n{self.tail()}")
                self._changed.wait(1.0)

    def kill(self) -> None:
        """SIGKILL the whole process group (spark-submit, the JVM and the Python driver)."""
        kill_group(self.proc)

    def wait(self, timeout: float = 300) -> int:
        """The job's exit code; fail (and kill it) if it is still running after ``timeout`` seconds."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"job still running after {timeout}s:\n{self.tail()}") from None
        self._reader.join(10)
        return code

    def tail(self, n: int = 25) -> str:
        return "\n".join(self.lines[-n:])

    def output(self) -> str:
        return "\n".join(self.lines)


__all__ = ["PAUSED_JOB", "ROOT", "SUBMIT_CONF", "JobProcess", "kill_group", "kill_started", "popen", "run"]
