"""Configuration: TOML files turned once into a frozen :class:`Settings`, with flag overrides.

The embedded default (``spark_flows/conf/local.toml``) runs everything in local mode with data under
``./data``. Users copy it (or ``conf/cluster.toml``) and pass ``--conf-file``; explicit flags win.

Example
-------
>>> from spark_flows.core.config import load_settings
>>> s = load_settings(overrides={"master": "local[2]", "spark_conf": {"spark.sql.shuffle.partitions": "2"}})
>>> s.master, s.spark_conf["spark.sql.shuffle.partitions"]
('local[2]', '2')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from spark_flows.core.compat import tomllib
from spark_flows.errors import ConfigError

DEFAULT_CONF_NAME = "local.toml"


@dataclass(frozen=True)
class Settings:
    """Typed configuration shared by the bundled jobs.

    Attributes
    ----------
    master: Spark master used when the job is not launched by ``spark-submit --master``.
    remote: Spark Connect server (``sc://host:port``) to use instead of starting Spark; ``None``: classic
        Spark (or ``$SPARK_REMOTE`` when set).
    app_name: Spark application name.
    spark_conf: extra Spark configuration, applied unless ``spark-submit`` already set the key.
    data_root: root under which bundled jobs read and write (any Hadoop FS URI or a local path).
    delta_package: Maven coordinates of Delta Lake's JVM artifact; by default the one built for the installed
        pyspark's Spark line (:func:`default_delta_package`).
    lock_ttl_seconds: a run lock whose heartbeat is older than this may be taken over.
    heartbeat_seconds: how often a live run refreshes its lock.
    s3a: put Hadoop's S3A (``hadoop-aws`` matching pyspark's Hadoop, :func:`hadoop_aws_package`) beside Delta
        on the classpath of the sessions, servers and ``spark-submit`` runs spark_flows starts, for
        ``s3a://`` paths; implied by ``s3_endpoint``.
    s3_endpoint: an S3-compatible server instead of AWS's (``http://127.0.0.1:8333``); ``http://`` turns
        TLS off.
    s3_path_style: path-style requests (``endpoint/bucket/key``), as most S3-compatible servers want.
    s3_region: the signing region (``fs.s3a.endpoint.region``). Credentials never come from here: S3A's
        provider chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles, instance roles) finds them.
    source: where the settings came from (file path, or ``embedded``).
    """

    master: str = "local[*]"
    remote: str | None = None
    app_name: str = "spark_flows"
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    data_root: str = "data"
    delta_package: str = field(default_factory=lambda: default_delta_package())
    lock_ttl_seconds: int = 120
    heartbeat_seconds: int = 20
    s3a: bool = False
    s3_endpoint: str | None = None
    s3_path_style: bool = False
    s3_region: str | None = None
    source: str = "embedded"

    def packages(self) -> list[str]:
        """The Maven packages of the JVMs spark_flows starts: Delta's, and ``hadoop-aws`` for ``s3a://``."""
        return [self.delta_package, *([hadoop_aws_package()] if self.s3a or self.s3_endpoint else [])]

    def storage_conf(self) -> dict[str, str]:
        """The ``spark.hadoop.fs.s3a.*`` settings that :attr:`s3_endpoint`, path style and region stand for.

        >>> conf = Settings(s3_endpoint="http://127.0.0.1:8333", s3_path_style=True).storage_conf()
        >>> conf["spark.hadoop.fs.s3a.connection.ssl.enabled"], conf["spark.hadoop.fs.s3a.path.style.access"]
        ('false', 'true')
        """
        conf: dict[str, str] = {}
        if self.s3_endpoint:
            conf["spark.hadoop.fs.s3a.endpoint"] = self.s3_endpoint
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(self.s3_endpoint.startswith("https")).lower()
        if self.s3_path_style:
            conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        if self.s3_region:
            conf["spark.hadoop.fs.s3a.endpoint.region"] = self.s3_region
        return conf

    def path(self, *parts: str) -> str:
        """Join ``parts`` under :attr:`data_root` (``'data'``, ``'raw'`` -> ``'data/raw'``)."""
        return "/".join([self.data_root.rstrip("/"), *(p.strip("/") for p in parts)])


#: Delta Lake's JVM release; it is published for Spark 4.0, 4.1 and 4.2 (``delta-spark_<spark>_2.13``)
DELTA_JVM_VERSION = "4.4.0"


def default_delta_package(spark_version: str | None = None) -> str:
    """The Delta artifact built for ``spark_version`` (default: the installed pyspark's), e.g.

    >>> default_delta_package("4.1.4")
    'io.delta:delta-spark_4.1_2.13:4.4.0'
    """
    if spark_version is None:
        from pyspark import __version__ as installed

        spark_version = str(installed)
    line = ".".join(spark_version.split(".")[:2])
    return f"io.delta:delta-spark_{line}_2.13:{DELTA_JVM_VERSION}"


def spark_jars_dir() -> Path:
    """The jars Spark runs with: ``$SPARK_HOME/jars`` (set under ``spark-submit``, where ``pyspark`` may be
    imported from a zip), else the installed pyspark's."""
    import pyspark

    home = os.environ.get("SPARK_HOME")
    for candidate in ([Path(home) / "jars"] if home else []) + [Path(pyspark.__file__).parent / "jars"]:
        if candidate.is_dir():
            return candidate
    raise ConfigError("no Spark jars directory: set SPARK_HOME or install pyspark")


def hadoop_aws_package() -> str:
    """``org.apache.hadoop:hadoop-aws`` at the version of the Hadoop the installed pyspark bundles (S3A must
    match it), e.g. ``org.apache.hadoop:hadoop-aws:3.5.0`` with pyspark 4.2."""
    jars = spark_jars_dir()
    found = sorted(jars.glob("hadoop-client-api-*.jar"))
    if not found:
        raise ConfigError(f"no hadoop-client-api jar under {jars}: s3a needs pyspark's bundled Hadoop")
    version = found[-1].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{version}"


def embedded_conf_text(name: str = DEFAULT_CONF_NAME) -> str:
    """Return the text of a configuration file shipped inside the package."""
    return resources.files("spark_flows").joinpath("conf").joinpath(name).read_text(encoding="utf-8")


def embedded_conf_path(name: str) -> str:
    """Return a filesystem path to a file shipped in ``spark_flows/conf`` (e.g. ``log4j2.properties``)."""
    return str(resources.files("spark_flows").joinpath("conf").joinpath(name))


#: Environment variable with extra options for the driver JVMs spark_flows starts (a local session,
#: ``spark-submit``, the local Connect server), e.g. ``-XX:TieredStopAtLevel=1 -XX:+UseSerialGC``: short jobs on a
#: small machine spend most of their CPU in the JIT compiler and the collector's threads otherwise.
JAVA_OPTIONS_ENV = "SPARK_FLOWS_JAVA_OPTIONS"


def java_options(spark_conf: Mapping[str, str], role: str = "driver") -> str:
    """The ``spark.<role>.extraJavaOptions`` of a JVM spark_flows starts: the shipped quiet log4j2 file, then (for
    the driver) ``$SPARK_FLOWS_JAVA_OPTIONS``, then the caller's own ``spark.<role>.extraJavaOptions`` (kept, never
    replaced).

    Example
    -------
    >>> java_options({"spark.driver.extraJavaOptions": "-Dmine=1"}).split()[-1]
    '-Dmine=1'
    """
    log4j = f"-Dlog4j2.configurationFile=file:{embedded_conf_path('log4j2.properties')}"
    tuning = os.environ.get(JAVA_OPTIONS_ENV, "") if role == "driver" else ""
    parts = [log4j, tuning, spark_conf.get(f"spark.{role}.extraJavaOptions", "")]
    return " ".join(p.strip() for p in parts if p.strip())


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _from_toml(raw: Mapping[str, Any], source: str) -> Settings:
    try:
        spark = raw.get("spark", {})
        paths = raw.get("paths", {})
        delta = raw.get("delta", {})
        runner = raw.get("runner", {})
        storage = raw.get("storage", {})
        conf = {str(k): str(v) for k, v in spark.get("conf", {}).items()}
        return Settings(
            master=str(spark.get("master", Settings.master)),
            remote=str(spark["remote"]) if spark.get("remote") else None,
            app_name=str(spark.get("app_name", Settings.app_name)),
            spark_conf=conf,
            data_root=str(paths.get("data_root", Settings.data_root)),
            delta_package=str(delta.get("package") or default_delta_package()),
            lock_ttl_seconds=int(runner.get("lock_ttl_seconds", Settings.lock_ttl_seconds)),
            heartbeat_seconds=int(runner.get("heartbeat_seconds", Settings.heartbeat_seconds)),
            s3a=_flag(storage.get("s3a", False), "storage.s3a"),
            s3_endpoint=str(storage["s3_endpoint"]) if storage.get("s3_endpoint") else None,
            s3_path_style=_flag(storage.get("s3_path_style", False), "storage.s3_path_style"),
            s3_region=str(storage["s3_region"]) if storage.get("s3_region") else None,
            source=source,
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(f"invalid configuration in {source}: {exc}") from exc


def load_settings(conf_file: str | None = None, *, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Load settings from ``conf_file`` (default: the embedded ``local.toml``) and apply ``overrides``.

    Parameters
    ----------
    conf_file: path of a TOML file; ``None`` for the embedded default.
    overrides: field names of :class:`Settings` mapped to values; ``None`` values are ignored, and
        ``spark_conf`` is merged key by key rather than replaced.

    Raises
    ------
    ConfigError: the file is missing, unreadable, not TOML, or holds values of the wrong type.
    """
    if conf_file is None:
        text, source = embedded_conf_text(), "embedded local.toml"
    else:
        path = Path(conf_file)
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ConfigError(
                f"cannot read conf file {conf_file}: {exc.strerror or exc}; "
                "pass an existing TOML file to --conf-file or omit it for the embedded default"
            ) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"conf file {source} is not valid TOML: {exc}") from exc
    settings = _from_toml(raw, source)
    return apply_overrides(settings, overrides or {})


def apply_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """Return ``settings`` with the non-``None`` ``overrides`` applied (``spark_conf`` merged)."""
    known = set(Settings.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    values = {k: v for k, v in overrides.items() if v is not None}
    if "spark_conf" in values:
        values["spark_conf"] = {**settings.spark_conf, **values["spark_conf"]}
    return replace(settings, **values)


def parse_key_values(pairs: list[str] | None, *, flag: str = "--spark-conf") -> dict[str, str]:
    """Parse ``["k=v", ...]`` into a dict, naming ``flag`` in the error for a pair without ``=``."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}")
        result[key.strip()] = value.strip()
    return result
