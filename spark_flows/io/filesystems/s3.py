"""S3 and the stores that speak its API, with the conditional writes spark_flows' contracts rely on.

:class:`S3ObjectStore` is the :class:`~spark_flows.io.filesystems.FileSystem` behind every ``s3a://`` and
``s3://`` path of :class:`~spark_flows.io.storage.Storage`, on classic Spark and on Spark Connect alike (it needs
no JVM: ``boto3``, the ``spark_flows[s3]`` extra). It offers what an object store guarantees and no more:

* create-if-absent: ``PutObject`` with ``If-None-Match: *`` (:meth:`S3ObjectStore.create_exclusive`);
* compare-and-swap: ``PutObject`` with ``If-Match: <etag>`` (:meth:`S3ObjectStore.write_if_match`);
* a whole-object ``PUT`` replaces atomically (a reader sees the old or the new object, never a mix);
* listing after write is strongly consistent (S3 since 2020; SeaweedFS);
* no atomic rename: :meth:`S3ObjectStore.rename` copies then deletes, so no contract relies on it here.

A store that ignores conditional headers would turn every lock and manifest into a race: before its first
conditional write to a bucket the store probes it (two creates of one probe key; the second must be refused)
and refuses a store that lets both through, unless the user opts in (``allow_unconditional`` or
``SPARK_FLOWS_S3_ALLOW_UNCONDITIONAL=1``), with a warning.

Where the store is and who calls it come from S3A's own settings, so Spark and spark_flows reach the same
bucket the same way: ``fs.s3a.bucket.<bucket>.<key>`` then ``fs.s3a.<key>`` (``endpoint``,
``endpoint.region``, ``path.style.access``, ``access.key``, ``secret.key``), from the session's Hadoop
configuration (classic) or its ``spark.hadoop.*`` confs (Connect); then the AWS environment
(``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID`` ...) and the provider chain. Credentials are never logged.

Example
-------
>>> store = S3ObjectStore(lambda bucket, key: {"endpoint": "http://127.0.0.1:8333"}.get(key))
>>> store.split("s3a://lake/tables/devices/_PUBLISHED.json")
('lake', 'tables/devices/_PUBLISHED.json')
>>> store.guarantees("s3a://lake").atomic_rename, store.guarantees("s3a://lake").compare_and_swap
(False, True)
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from spark_flows.errors import EnvironmentSetupError, StorageError
from spark_flows.io.filesystems.base import FileInfo, Guarantees

logger = logging.getLogger(__name__)

#: ``(bucket, key) -> value`` of an S3A setting (``key`` without ``fs.s3a.``), or None
SettingLookup = Callable[[str, str], "str | None"]

OBJECT_STORE = Guarantees(atomic_rename=False, create_exclusive=True, compare_and_swap=True, list_after_write=True)
ALLOW_UNCONDITIONAL_ENV = "SPARK_FLOWS_S3_ALLOW_UNCONDITIONAL"
_PROBED: dict[tuple[str, str], bool] = {}  # (endpoint, bucket) -> honours conditional writes
_PROBE_LOCK = threading.Lock()
_CLIENTS: dict[tuple[Any, ...], Any] = {}  # (endpoint, region, path style, keys) -> boto3 client
_CLIENTS_LOCK = threading.Lock()  # not _PROBE_LOCK: a probe makes its client while holding that one


def _env_lookup(bucket: str, key: str) -> str | None:
    return None  # boto3 reads the AWS environment itself


class S3ObjectStore:
    """``s3a://`` and ``s3://`` paths through ``boto3``, with conditional writes (see the module docstring).

    Parameters
    ----------
    setting: where S3A settings are looked up (:data:`SettingLookup`); none: the AWS environment only.
    allow_unconditional: accept a store that ignores conditional writes (locks and manifests then race).
    """

    def __init__(self, setting: SettingLookup | None = None, *, allow_unconditional: bool | None = None) -> None:
        self._setting = setting or _env_lookup
        self._allow = (os.environ.get(ALLOW_UNCONDITIONAL_ENV, "") in ("1", "true", "yes")
                       if allow_unconditional is None else allow_unconditional)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def guarantees(self, path: str) -> Guarantees:
        return OBJECT_STORE

    # --- addressing ---------------------------------------------------------------------------------
    @staticmethod
    def split(path: str) -> tuple[str, str]:
        """``s3a://bucket/a/b`` -> ``("bucket", "a/b")`` (string handling only: ``#`` and ``%`` stay characters)."""
        rest = path.partition("://")[2]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise StorageError(f"{path!r} names no bucket: expected s3a://<bucket>/<key>",
                               condition="S3_BAD_PATH", parameters={"path": path})
        return bucket, key.rstrip("/")

    def endpoint(self, bucket: str) -> str:
        """The endpoint requests for ``bucket`` go to (AWS's own when nothing names another)."""
        return (self._setting(bucket, "endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL") or "https://s3.amazonaws.com")

    def client(self, bucket: str) -> Any:
        """The ``boto3`` S3 client for ``bucket`` (one per bucket and store, thread-safe)."""
        with self._lock:
            if bucket not in self._clients:
                self._clients[bucket] = self._make_client(bucket)
            return self._clients[bucket]

    def _make_client(self, bucket: str) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as missing:
            raise EnvironmentSetupError(
                "s3a:// paths need boto3 for spark_flows' markers, locks and manifests: pip install "
                "'spark-flows[s3]'", condition="S3_CLIENT_MISSING", parameters={"module": "boto3"}) from missing
        endpoint = self._setting(bucket, "endpoint")
        if endpoint and "://" not in endpoint:  # S3A accepts a bare host
            ssl = (self._setting(bucket, "connection.ssl.enabled") or "true").lower() == "true"
            endpoint = f"{'https' if ssl else 'http'}://{endpoint}"
        path_style = (self._setting(bucket, "path.style.access") or "false").lower() == "true"
        access, secret = self._setting(bucket, "access.key"), self._setting(bucket, "secret.key")
        keys = {"aws_access_key_id": access, "aws_secret_access_key": secret} if access and secret else {}
        region = self._setting(bucket, "endpoint.region") or None
        place = (endpoint, region, path_style, access, secret)
        with _CLIENTS_LOCK:  # one client per place and process: making one costs ~0.2 s of CPU
            if place not in _CLIENTS:
                _CLIENTS[place] = boto3.session.Session().client(
                    "s3", endpoint_url=endpoint or None, region_name=region,
                    config=Config(s3={"addressing_style": "path" if path_style else "auto"}, connect_timeout=5,
                                  read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                                  max_pool_connections=16), **keys)
            return _CLIENTS[place]

    def _call(self, bucket: str, key: str, operation: str, **kwargs: Any) -> Any:
        """One request, its failures turned into one-line :class:`StorageError` s naming what is wrong."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        try:
            return getattr(self.client(bucket), operation)(Bucket=bucket, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in ("NoSuchKey", "404", "NotFound", "PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
            raise self._explain(bucket, key, code, status) from None
        except NoCredentialsError:
            raise StorageError(
                f"no S3 credentials for bucket {bucket} at {self.endpoint(bucket)}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or fs.s3a.access.key / secret.key, or an AWS profile)",
                condition="S3_NO_CREDENTIALS", parameters={"bucket": bucket}) from None
        except EndpointConnectionError:
            raise StorageError(
                f"cannot reach the S3 endpoint {self.endpoint(bucket)} (bucket {bucket}): is the server up, and is "
                "[storage] s3_endpoint (fs.s3a.endpoint) right?", condition="S3_UNREACHABLE",
                parameters={"endpoint": self.endpoint(bucket), "bucket": bucket}) from None
        except BotoCoreError as error:
            raise StorageError(f"S3 request {operation} on s3://{bucket}/{key} at {self.endpoint(bucket)} failed: "
                               f"{error}", condition="S3_REQUEST_FAILED",
                               parameters={"endpoint": self.endpoint(bucket), "bucket": bucket}) from None

    def _explain(self, bucket: str, key: str, code: str, status: int) -> StorageError:
        where = {"endpoint": self.endpoint(bucket), "bucket": bucket}
        if code == "NoSuchBucket":
            return StorageError(f"bucket {bucket} does not exist at {where['endpoint']}: create it, or fix the path",
                                condition="S3_BUCKET_MISSING", parameters=where)
        if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageError(f"{where['endpoint']} refused the credentials for bucket {bucket} ({code or status}): "
                                "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or fs.s3a.access.key / secret.key)",
                                condition="S3_ACCESS_DENIED", parameters={**where, "code": code})
        return StorageError(f"S3 refused a request on s3://{bucket}/{key} at {where['endpoint']}: {code or status}",
                            condition="S3_REQUEST_FAILED", parameters={**where, "code": code})

    @staticmethod
    def _refused(error: Exception, *codes: str) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(error, ClientError) and str(error.response.get("Error", {}).get("Code")) in codes

    # --- the FileSystem protocol ------------------------------------------------------------------
    def qualify(self, path: str) -> str:
        return path

    def info(self, path: str) -> FileInfo | None:
        bucket, key = self.split(path)
        name = key.rpartition("/")[2] or bucket
        if key:
            try:
                head = self._call(bucket, key, "head_object", Key=key)
                return FileInfo(path, name, False, int(head["ContentLength"]),
                                int(head["LastModified"].timestamp() * 1000))
            except Exception as error:
                if not self._refused(error, "404", "NoSuchKey", "NotFound"):
                    raise
        listed = self._call(bucket, key, "list_objects_v2", Prefix=f"{key}/" if key else "", MaxKeys=1)
        return FileInfo(path, name, True, 0, 0) if listed.get("KeyCount", 0) or not key else None

    def _pages(self, bucket: str, prefix: str, delimiter: str | None, after: str = "") -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            extra: dict[str, str] = {"Delimiter": delimiter} if delimiter else {}
            if after and not token:
                extra["StartAfter"] = f"{prefix}{after}"
            page = self._call(bucket, prefix, "list_objects_v2", Prefix=prefix, **extra,
                              **({"ContinuationToken": token} if token else {}))
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def _keys(self, bucket: str, key: str) -> list[tuple[str, int]]:
        return [(item["Key"], int(item["Size"])) for page in self._pages(bucket, f"{key}/" if key else "", None)
                for item in page.get("Contents", [])]

    def list(self, path: str, after: str = "") -> list[FileInfo]:
        bucket, key = self.split(path)
        prefix, base = (f"{key}/" if key else ""), path.rstrip("/")
        found: dict[str, FileInfo] = {}
        for page in self._pages(bucket, prefix, "/", after):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(prefix):].rstrip("/")
                found[name] = FileInfo(f"{base}/{name}", name, True, 0, 0)
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix):]
                if name and "/" not in name:  # not the folder's own marker object
                    found.setdefault(name, FileInfo(f"{base}/{name}", name, False, int(item["Size"]),
                                                    int(item["LastModified"].timestamp() * 1000)))
        return list(found.values())

    def size(self, path: str) -> int:
        info = self.info(path)
        if info is None or not info.is_dir:
            return info.size if info else 0
        return sum(size for _, size in self._keys(*self.split(path)))

    def touch(self, path: str) -> None:
        self.write_bytes(path, self.read_bytes(path))

    def mkdirs(self, path: str) -> None:
        """Nothing to do: an object store has no folders, a key's prefixes exist while objects do."""

    def delete(self, path: str, recursive: bool) -> bool:
        info = self.info(path)
        if info is None:
            return False
        bucket, key = self.split(path)
        if not info.is_dir:
            self._call(bucket, key, "delete_object", Key=key)
            return True
        keys = [k for k, _ in self._keys(bucket, key)]
        if not recursive and [k for k in keys if k != f"{key}/"]:
            return False
        # folders too, deepest first: stores with real folders (SeaweedFS's filer) would list them as empty
        prefix = f"{key}/" if key else ""
        folders = {prefix + "/".join(parts[:n]) + "/" for parts in (k[len(prefix):].rstrip("/").split("/")
                                                                     for k in keys) for n in range(1, len(parts))}
        files = [k for k in keys if not k.endswith("/")]
        for start in range(0, len(files), 1000):
            self._call(bucket, key, "delete_objects",
                       Delete={"Objects": [{"Key": k} for k in files[start:start + 1000]], "Quiet": True})
        # one by one, deepest first: SeaweedFS keeps a folder a batch delete names while it still has children
        for folder in [*sorted(folders | {k for k in keys if k.endswith("/")}, key=len, reverse=True),
                       *([f"{key}/"] if key else [])]:
            self._call(bucket, folder, "delete_object", Key=folder)
        return True

    def rename(self, src: str, dst: str) -> bool:
        """Copy, then delete: not atomic (a reader may see both or, for a folder, part of the copy)."""
        if self.info(dst) is not None:
            return False
        return self.replace(src, dst)

    def replace(self, src: str, dst: str) -> bool:
        info = self.info(src)
        if info is None:
            return False
        (bucket, key), (dst_bucket, dst_key) = self.split(src), self.split(dst)
        pairs = ([(k, dst_key + k[len(key):]) for k, _ in self._keys(bucket, key)] if info.is_dir
                 else [(key, dst_key)])
        for old, new in pairs:
            self._call(dst_bucket, new, "copy_object", Key=new, CopySource={"Bucket": bucket, "Key": old})
        self.delete(src, True)
        return True

    def create_exclusive(self, path: str, data: bytes) -> bool:
        bucket, key = self.split(path)
        self.check_conditional_writes(bucket)
        try:
            self._call(bucket, key, "put_object", Key=key, Body=data, IfNoneMatch="*")
        except Exception as error:
            if self._refused(error, "PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def read_bytes(self, path: str) -> bytes:
        bucket, key = self.split(path)
        try:
            return bytes(self._call(bucket, key, "get_object", Key=key)["Body"].read())
        except Exception as error:
            if self._refused(error, "NoSuchKey", "404"):
                raise FileNotFoundError(path) from None
            raise

    def write_bytes(self, path: str, data: bytes) -> None:
        bucket, key = self.split(path)
        self._call(bucket, key, "put_object", Key=key, Body=data)

    # --- compare-and-swap --------------------------------------------------------------------------
    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag (the tag :meth:`write_if_match` compares with), or None if absent."""
        bucket, key = self.split(path)
        try:
            got = self._call(bucket, key, "get_object", Key=key)
        except Exception as error:
            if self._refused(error, "NoSuchKey", "404"):
                return None
            raise
        return bytes(got["Body"].read()), str(got["ETag"])

    def write_if_match(self, path: str, data: bytes, tag: str) -> str | None:
        """Replace the object only if its ETag is still ``tag``: its new ETag, or None if another writer
        changed (or deleted) it first."""
        bucket, key = self.split(path)
        self.check_conditional_writes(bucket)
        try:
            put = self._call(bucket, key, "put_object", Key=key, Body=data, IfMatch=tag)
        except Exception as error:
            if self._refused(error, "PreconditionFailed", "412", "ConditionalRequestConflict", "NoSuchKey", "404"):
                return None
            raise
        return str(put["ETag"])

    def check_conditional_writes(self, bucket: str) -> None:
        """Make sure the store behind ``bucket`` refuses a second create-if-absent (probed once per process).

        Raises
        ------
        StorageError: it does not (``S3_NO_CONDITIONAL_WRITES``), unless the user opted in.
        """
        place = (self.endpoint(bucket), bucket)
        with _PROBE_LOCK:
            honoured = _PROBED.get(place)
            if honoured is None:
                key = f"_spark_flows/probe-{uuid.uuid4().hex}"
                try:
                    self._call(bucket, key, "put_object", Key=key, Body=b"1", IfNoneMatch="*")
                    try:
                        self._call(bucket, key, "put_object", Key=key, Body=b"2", IfNoneMatch="*")
                        honoured = False
                    except Exception as error:
                        if not self._refused(error, "PreconditionFailed", "412", "ConditionalRequestConflict"):
                            raise
                        honoured = True
                finally:
                    self._call(bucket, key, "delete_object", Key=key)
                _PROBED[place] = honoured
        if honoured:
            return
        if self._allow:
            logger.warning("%s (bucket %s) ignores conditional writes: locks and manifests there are best effort "
                           "(%s is set)", place[0], bucket, ALLOW_UNCONDITIONAL_ENV)
            return
        raise StorageError(
            f"{place[0]} (bucket {bucket}) ignores conditional writes (If-None-Match), so two runs could both take "
            f"a lock or publish over each other: use a store that honours them, or set {ALLOW_UNCONDITIONAL_ENV}=1 "
            "to accept best-effort locks", condition="S3_NO_CONDITIONAL_WRITES", parameters={
                "endpoint": place[0], "bucket": bucket})


def hadoop_lookup(conf: Any) -> SettingLookup:
    """S3A settings from a Hadoop ``Configuration`` (a classic session's ``hadoopConfiguration()``)."""

    def lookup(bucket: str, key: str) -> str | None:
        value = conf.get(f"fs.s3a.bucket.{bucket}.{key}") or conf.get(f"fs.s3a.{key}")
        return str(value) if value else None

    return lookup


def spark_conf_lookup(get: Callable[[str], str | None]) -> SettingLookup:
    """S3A settings from ``spark.hadoop.fs.s3a.*`` confs (``get`` is e.g. a Connect session's conf lookup)."""

    def lookup(bucket: str, key: str) -> str | None:
        return get(f"spark.hadoop.fs.s3a.bucket.{bucket}.{key}") or get(f"spark.hadoop.fs.s3a.{key}") or None

    return lookup
