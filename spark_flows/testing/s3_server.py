"""A local S3-compatible server (SeaweedFS's ``weed mini``) for tests and local trials of object storage.

:class:`S3Server` starts ``weed mini`` on 127.0.0.1, every port its own free one (so two test runs never
collide), with one bucket and one pair of credentials, waits a bounded time for its S3 endpoint to answer,
and always stops its whole process group. SeaweedFS serialises S3 conditional writes (``If-None-Match: *``
and ``If-Match: <etag>``), the primitives spark_flows' commit points and leases rely on on object stores.

The ``weed`` binary is built once from the Go module proxy into the machine's cache, outside any clone
(:func:`weed_binary`, ``scripts/build_weed.sh``): ``$SPARK_FLOWS_WEED`` names another one.

Example
-------
>>> server = S3Server("/tmp/s3-data", bucket="lake")
>>> server.endpoint is None                        # not started
True
>>> server.hadoop_conf()["fs.s3a.path.style.access"]
'true'
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from spark_flows.errors import EnvironmentSetupError
from spark_flows.testing.connect_server import free_port, stop_process_group

logger = logging.getLogger(__name__)

#: the SeaweedFS module version built (Go module proxy pseudo-version; `weed version` says 4.53)
WEED_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
WEED_MODULE = "github.com/seaweedfs/seaweedfs"


def cache_dir() -> Path:
    """The machine's spark_flows cache: ``$SPARK_FLOWS_CACHE``, else ``$XDG_CACHE_HOME/spark_flows``."""
    explicit = os.environ.get("SPARK_FLOWS_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spark_flows"


def weed_path() -> Path:
    """Where the ``weed`` binary is (or will be built): ``$SPARK_FLOWS_WEED``, else the cache's."""
    explicit = os.environ.get("SPARK_FLOWS_WEED")
    return Path(explicit) if explicit else cache_dir() / f"weed-{WEED_VERSION}" / "bin" / "weed"


def weed_binary() -> Path:
    """The ``weed`` binary, built beforehand by ``scripts/build_weed.sh`` (which ``make test`` runs).

    Raises
    ------
    EnvironmentSetupError: it is not there; the message says how to build it.
    """
    path = weed_path()
    if not os.access(path, os.X_OK):
        raise EnvironmentSetupError(
            f"no SeaweedFS weed binary at {path}: build it once with `bash scripts/build_weed.sh` (Go 1.26 and "
            f"the Go module proxy; about 10 CPU-minutes), or set SPARK_FLOWS_WEED to one",
            condition="S3_SERVER_MISSING", parameters={"path": str(path)})
    return path


class S3Server:
    """``weed mini`` serving S3 on 127.0.0.1 with one bucket, as a context manager.

    Parameters
    ----------
    directory: where the server keeps its data (created if missing).
    bucket: the bucket created on start.
    start_timeout: seconds to wait for the S3 endpoint to answer.
    """

    region = "us-east-1"

    def __init__(self, directory: str | Path, *, bucket: str = "spark-flows", start_timeout: float = 60.0) -> None:
        self.directory = Path(directory)
        self.bucket = bucket
        self.start_timeout = start_timeout
        self.access_key = "spark-flows-test"
        self.secret_key = secrets.token_hex(16)
        self.port = free_port()
        self.metrics_port = free_port()
        self.endpoint: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        """The ``weed mini`` command: every listener on its own free port of 127.0.0.1, no admin UI."""
        ports = {"s3.port": self.port, "metricsPort": self.metrics_port}
        for name in ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                     "filer.port.grpc", "s3.port.grpc", "admin.port", "admin.port.grpc", "debug.port"):
            ports[name] = free_port()
        flags = [f"-{name}={port}" for name, port in ports.items()]
        # -logdir: its glog files beside its data, not in the machine's temporary directory (alsologtostderr: weed.log)
        return [str(weed_binary()), f"-logdir={self.directory}", "mini", f"-dir={self.directory}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-metricsIp=127.0.0.1", "-admin.ui=false", "-admin.port.legacy=0", "-webdav=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={self.bucket}", *flags]

    def start(self) -> str:
        """Start the server and wait until its S3 endpoint answers; returns the endpoint URL.

        Raises
        ------
        EnvironmentSetupError: the server exited or did not answer within ``start_timeout`` (the message
            gives the end of its log); it is stopped before raising.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        command = self.command()
        self._log = open(self.directory / "weed.log", "wb")  # closed by stop()
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        self._process = subprocess.Popen(command, cwd=self.directory, env=env, stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{self.port}"
        probe = self._probe_client(url)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and self._process.poll() is None:
            if self._bucket_answers(probe):
                self.endpoint = url
                logger.info("S3 server (SeaweedFS) at %s, bucket %s (pid %d)", url, self.bucket, self._process.pid)
                return url
            time.sleep(0.3)
        tail = self.log_tail()
        self.stop()
        raise EnvironmentSetupError(f"the S3 server did not answer at {url} within {self.start_timeout:.0f}s: {tail}",
                                    condition="S3_SERVER_NOT_STARTED", parameters={"port": self.port})

    def _probe_client(self, url: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=url, region_name=self.region, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=2,
                                          retries={"max_attempts": 1}))

    def _bucket_answers(self, client: Any) -> bool:
        """True once the bucket answers a signed ``HeadBucket`` (an unsigned request is refused with 403 before
        the server has created the bucket, so it proves nothing)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client.head_bucket(Bucket=self.bucket)
            return True
        except (ClientError, BotoCoreError):
            return False

    def hadoop_conf(self) -> dict[str, str]:
        """Hadoop S3A settings that reach this server (``spark.hadoop.`` prefix for Spark confs)."""
        return {
            "fs.s3a.endpoint": f"http://127.0.0.1:{self.port}",
            "fs.s3a.endpoint.region": self.region,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": "false",
            "fs.s3a.access.key": self.access_key,
            "fs.s3a.secret.key": self.secret_key,
        }

    def bucket_conf(self, bucket: str | None = None, *, credentials: bool = True) -> dict[str, str]:
        """:meth:`hadoop_conf` as S3A's per-bucket settings (``fs.s3a.bucket.<bucket>.*``, default this server's
        bucket), so they reach this server for that bucket only; ``credentials=False`` leaves the keys out
        (for a process that takes them from its environment)."""
        return {key.replace("fs.s3a.", f"fs.s3a.bucket.{bucket or self.bucket}.", 1): value
                for key, value in self.hadoop_conf().items()
                if credentials or not key.endswith(("access.key", "secret.key"))}

    def environment(self) -> dict[str, str]:
        """AWS environment variables that reach this server from a process with no Spark (boto3's own)."""
        return {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{self.port}", "AWS_DEFAULT_REGION": self.region,
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def request_counts(self) -> dict[str, float]:
        """The server's S3 request counters by action (``PUT``, ``GET``, ``LIST`` ...), from its metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        counts: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("SeaweedFS_s3_request_total{"):
                labels, _, value = line.partition("} ")
                action = next((part.split("=", 1)[1].strip('"') for part in labels.split(",")
                               if part.split("=", 1)[0].endswith("type")), "?")
                counts[action] = counts.get(action, 0.0) + float(value)
        return counts

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log."""
        if self._log is None:
            return ""
        self._log.flush()
        text = (self.directory / "weed.log").read_text(encoding="utf-8", errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process, self.endpoint = self._process, None, None
        stop_process_group(process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
