"""Build and run ``spark-submit`` command lines for bundled and user jobs, never through a shell.

The command carries what a job needs wherever it runs: Delta's ``--packages``, the quiet log4j2
configuration, the Python interpreter of this environment (``PYSPARK_PYTHON``) and, for a cluster whose
executors lack spark_flows, the package zipped for ``--py-files``.

Example
-------
>>> from spark_flows.core.config import Settings
>>> from spark_flows.core.submit import submit_command
>>> cmd = submit_command("jobs/devices_loader.py", ["--batch-id", "1"], Settings(), master="local[2]")
>>> cmd[cmd.index("--master") + 1], cmd[-3:]
('local[2]', ['jobs/devices_loader.py', '--batch-id', '1'])
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_flows.core.config import Settings, java_options
from spark_flows.core.session import jar_conf

logger = logging.getLogger(__name__)


def spark_home() -> str:
    """``SPARK_HOME``, or the pyspark wheel's own Spark distribution."""
    if os.environ.get("SPARK_HOME"):
        return os.environ["SPARK_HOME"]
    import pyspark

    return str(Path(pyspark.__file__).parent)


def spark_submit_path() -> str:
    """Path of the ``spark-submit`` script that goes with this pyspark."""
    return str(Path(spark_home()) / "bin" / "spark-submit")


def package_zip(destination: str | Path) -> Path:
    """Zip the ``spark_flows`` package (sources and data files) for ``--py-files``; returns the zip's path."""
    package_dir = Path(__file__).resolve().parents[1]  # spark_flows/, this module being spark_flows/core/submit.py
    target = Path(destination)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(package_dir.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                archive.write(file, Path("spark_flows") / file.relative_to(package_dir))
    tmp.replace(target)
    return target


def submit_command(
    job: str,
    args: Sequence[str],
    settings: Settings,
    *,
    master: str | None = None,
    py_files: Sequence[str] = (),
    spark_conf: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``spark-submit`` argument list that runs ``job`` with ``args`` under ``settings``.

    ``master`` defaults to ``settings.master``; ``settings.spark_conf`` and ``spark_conf`` become
    ``--conf`` pairs; ``py_files`` are shipped to executors.
    """
    command = [spark_submit_path(), "--master", master or settings.master, "--name", Path(job).stem]
    conf = {**settings.storage_conf(), **settings.spark_conf, **(spark_conf or {})}
    conf.update(jar_conf(settings, conf))
    conf["spark.driver.extraJavaOptions"] = java_options(conf, "driver")
    conf["spark.executor.extraJavaOptions"] = java_options(conf, "executor")
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    if py_files:
        command += ["--py-files", ",".join(py_files)]
    return [*command, job, *args]


def job_command(job: str, args: Sequence[str], settings: Settings, *, master: str | None = None,
                remote: str | None = None) -> list[str]:
    """The command that runs ``job``: ``spark-submit`` (classic), or this Python with ``--remote`` (Connect).

    Example
    -------
    >>> job_command("jobs/x.py", ["--batch-id", "1"], Settings(), remote="sc://127.0.0.1:15002")[1:]
    ['jobs/x.py', '--batch-id', '1', '--remote', 'sc://127.0.0.1:15002']
    """
    if remote:
        return [sys.executable, job, *args, "--remote", remote]
    return submit_command(job, args, settings, master=master)


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of :func:`run_submit`."""

    command: tuple[str, ...]
    returncode: int
    output_tail: str  # last lines of the job's merged stdout and stderr

    @property
    def ok(self) -> bool:
        """True when the job exited 0."""
        return self.returncode == 0


def submit_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ``spark-submit``: this interpreter for driver and executors, loopback by default."""
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("PYSPARK_GATEWAY_SECRET", None)
    env.update(extra or {})
    return env


def run_submit(command: Sequence[str], *, timeout: float | None = None, capture: bool = True) -> SubmitResult:
    """Run a ``spark-submit`` command (argument list, no shell) and return its exit status.

    With ``capture`` the job's output (stdout and stderr merged) is collected and its last lines kept in
    the result; otherwise the job writes to this process's stdout and stderr.
    """
    logger.info("spark-submit %s", shlex.join(command[1:]))
    # spark-submit's PythonRunner forwards the Python driver's stderr to its own stdout: keep both, merged
    completed = subprocess.run(
        list(command), env=submit_env(), timeout=timeout, text=True,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None, check=False,
    )
    tail = "\n".join((completed.stdout or "").strip().splitlines()[-5:]) if capture else ""
    return SubmitResult(tuple(command), completed.returncode, tail)
