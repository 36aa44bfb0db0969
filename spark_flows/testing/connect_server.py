"""A local Spark Connect server with Delta Lake, for tests and local use (:mod:`spark_flows.testing` uses it).

:class:`ConnectServer` starts ``SparkConnectServer`` from the pyspark wheel's own jars (``spark-submit
--class org.apache.spark.sql.connect.service.SparkConnectServer``) with Delta's jars and extensions, bound to
127.0.0.1 on a free port, and always stops it (its whole process group) with bounded waits. The pytest
plugin's ``spark_flows_session`` fixture uses it on the Connect backend.

Example
-------
>>> server = ConnectServer(master="local[1]")
>>> server.command()[server.command().index("--class") + 1]
'org.apache.spark.sql.connect.service.SparkConnectServer'
>>> server.url is None                      # not started
True
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from types import TracebackType
from typing import IO

from spark_flows.core.config import Settings, java_options
from spark_flows.core.session import DELTA_CATALOG, DELTA_EXTENSION, jar_conf
from spark_flows.core.submit import spark_submit_path, submit_env
from spark_flows.errors import EnvironmentSetupError

logger = logging.getLogger(__name__)

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process_group(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Stop a server started in a session of its own: SIGTERM to its group, SIGKILL after ``timeout`` s."""
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class ConnectServer:
    """A local Spark Connect server with Delta Lake, as a context manager.

    Parameters
    ----------
    master: the server's Spark master.
    conf: extra Spark configuration for the server.
    settings: where the Delta package comes from (default: the embedded configuration).
    start_timeout: seconds to wait for the server to listen.
    """

    def __init__(self, *, master: str = "local[2]", conf: Mapping[str, str] | None = None,
                 settings: Settings | None = None, start_timeout: float = 180.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.master = master
        self.env = dict(env or {})  # e.g. the object store's credentials, kept off the command line
        self.conf = dict(conf or {})
        self.settings = settings or Settings()
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        """The ``spark-submit`` command that runs the server."""
        conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.sql.extensions": DELTA_EXTENSION,
            "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
            "spark.ui.enabled": "false",
            **self.settings.storage_conf(),
            **self.settings.spark_conf,
            **self.conf,
        }
        conf.update(jar_conf(self.settings, conf))
        conf["spark.driver.extraJavaOptions"] = java_options(conf)
        command = [spark_submit_path(), "--class", SERVER_CLASS, "--master", self.master,
                   "--name", "spark-flows-connect-server"]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return [*command, "spark-internal"]

    def start(self) -> str:
        """Start the server and wait until it listens; returns its ``sc://127.0.0.1:<port>`` URL.

        Raises
        ------
        EnvironmentSetupError: the server exited or did not listen within ``start_timeout`` (the message
            gives the end of its log); it is stopped before raising.
        """
        self._log = tempfile.NamedTemporaryFile(prefix="spark-connect-", suffix=".log", delete=False)
        self._process = subprocess.Popen(self.command(), env=submit_env(self.env), stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.5)
                continue
            self.url = f"sc://127.0.0.1:{self.port}"
            logger.info("Spark Connect server listening at %s (pid %d)", self.url, self._process.pid)
            return self.url
        tail = self.log_tail()
        self.stop()
        raise EnvironmentSetupError(f"the Spark Connect server did not start on 127.0.0.1:{self.port}: {tail}",
                                    condition="CONNECT_SERVER_NOT_STARTED", parameters={"port": self.port})

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, encoding="utf-8", errors="replace") as handle:
            return " | ".join(handle.read().strip().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process, self.url = self._process, None, None
        stop_process_group(process, timeout)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> ConnectServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        if self._log is not None:
            os.unlink(self._log.name)
