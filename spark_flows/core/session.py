"""Build or reuse a Delta-enabled SparkSession.

Three ways in, one function: under ``spark-submit`` the master, jars and confs given on the command line
win; in a plain ``python`` process (the demo, a notebook) spark_flows starts Spark itself in the configured
master with Delta's JVM artifact resolved from Maven Central by Spark's own resolver (Ivy, cached after the
first run); under pytest the fixture's session is reused as it is.

Example
-------
>>> get_session() is spark          # an active session is reused as it is
True
>>> spark.conf.get("spark.sql.extensions")
'io.delta.sql.DeltaSparkSessionExtension'
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pyspark.sql import SparkSession

from spark_flows.core import backend
from spark_flows.core.backend import is_remote, live_session, submitted_conf_keys
from spark_flows.core.config import Settings, java_options, load_settings, spark_jars_dir
from spark_flows.errors import EnvironmentSetupError

logger = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

#: Environment variable holding a comma-separated list of local jar files to use instead of resolving
#: ``Settings.packages()``: the bootstrap saves the jars Spark's resolver fetched once (or, when that
#: resolver cannot reach Maven Central, the jars ``mvn`` copied), so later starts need no resolution.
JARS_ENV = "SPARK_FLOWS_JARS"


def cached_jars() -> str | None:
    """The jar list in ``$SPARK_FLOWS_JARS`` if every file in it exists, else ``None`` (resolve instead)."""
    jars = [j.strip().removeprefix("file:") for j in os.environ.get(JARS_ENV, "").split(",") if j.strip()]
    return ",".join(jars) if jars and all(os.path.isfile(j) for j in jars) else None


def without_bundled(jars: list[str]) -> list[str]:
    """``jars`` without those holding a class pyspark's own jars hold too (Ivy brings Hadoop 3.4, Parquet,
    Jackson, log4j and commons-logging along with Delta): on the class path in front of pyspark's jars they
    would replace the versions Spark runs with. The bootstrap saves the list this leaves."""
    import zipfile

    def classes(jar: str) -> set[str]:
        with zipfile.ZipFile(jar) as archive:
            return {n for n in archive.namelist() if n.endswith(".class") and not n.startswith("META-INF/")}

    bundled: set[str] = set()
    for jar in spark_jars_dir().glob("*.jar"):
        bundled |= classes(str(jar))
    return [j for j in jars if not classes(j.removeprefix("file:")) & bundled]


def jar_conf(settings: Settings, given: Mapping[str, str] | None = None) -> dict[str, str]:
    """How the JVMs spark_flows starts get Delta's (and S3A's) jars: the cached jars on the driver's and the
    executors' class path (read in place: ``spark.jars`` would copy every jar, 690 MB with S3A's SDK, into
    each application's work directory), else ``spark.jars.packages`` for Spark's resolver. Class paths the
    caller set in ``given`` stay in front."""
    jars = cached_jars()
    if not jars:
        return {"spark.jars.packages": ",".join(settings.packages())}
    path = jars.replace(",", os.pathsep)
    conf = {}
    for key in ("spark.driver.extraClassPath", "spark.executor.extraClassPath"):
        own = (given or {}).get(key) or settings.spark_conf.get(key)
        conf[key] = os.pathsep.join(p for p in (own, path) if p)
    return conf


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by ``spark-submit`` (the JVM is already running)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def delta_builder(settings: Settings) -> SparkSession.Builder:
    """Return a builder carrying the Delta extension and catalog, and ``settings`` for a new local JVM.

    Nothing starts until ``getOrCreate()``. Under ``spark-submit`` the master, packages and any conf
    already given on the command line are left alone.
    """
    builder = SparkSession.builder.appName(settings.app_name)
    builder = builder.config("spark.sql.extensions", DELTA_EXTENSION)
    builder = builder.config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    if launched_by_spark_submit():
        given = submitted_conf_keys()
        for key, value in settings.spark_conf.items():
            if key not in given:
                builder = builder.config(key, value)
        return builder
    builder = builder.master(settings.master)
    if not os.environ.get("PYSPARK_PYTHON"):
        # Python workers run this interpreter (pyspark reads the variable when the context starts), not
        # whichever `python3` is first on PATH: a driver on 3.13 beside a system 3.11 would otherwise fail
        # with PYTHON_VERSION_MISMATCH on the first job that runs Python on the executors
        os.environ["PYSPARK_PYTHON"] = sys.executable
    for key, value in {**settings.storage_conf(), **settings.spark_conf, **jar_conf(settings)}.items():
        builder = builder.config(key, value)
    return builder.config("spark.driver.extraJavaOptions", java_options(settings.spark_conf))


def get_session(settings: Settings | None = None) -> SparkSession:
    """Return the active SparkSession, or build a Delta-enabled one from ``settings``.

    Parameters
    ----------
    settings: the configuration used when a new session must be built (default: the embedded
        ``local.toml``, as :func:`~spark_flows.core.config.load_settings` gives it).

    Returns
    -------
    SparkSession with Delta Lake available.

    Raises
    ------
    EnvironmentSetupError: Java is missing, or Delta's classes are not on the classpath (the message gives
        the ``--packages`` flag to add).
    """
    active = live_session()
    if active is not None:
        return active
    settings = settings or load_settings()
    remote = remote_url(settings)
    if remote is not None:
        return connect_session(remote, settings)
    try:
        spark = delta_builder(settings).getOrCreate()
    except Exception as exc:  # the gateway fails with a generic error when Java is absent or broken
        raise EnvironmentSetupError(
            f"could not start Spark ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}); "
            "spark_flows needs Java 17+ on PATH or JAVA_HOME, and network access to Maven Central "
            f"the first time (to resolve {settings.delta_package})",
            parameters={"package": settings.delta_package},
        ) from exc
    require_delta(spark, settings.delta_package)
    return spark


def remote_url(settings: Settings) -> str | None:
    """The Spark Connect server to use: ``settings.remote``, else ``$SPARK_REMOTE``; never under spark-submit."""
    if launched_by_spark_submit():
        return None
    return settings.remote or os.environ.get("SPARK_REMOTE") or None


def _check_reachable(url: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the address, when nothing listens at an ``sc://host:port`` URL.

    (The Connect client itself retries an unreachable server for about ten minutes.)
    """
    if not url.startswith("sc://"):
        return  # e.g. "local[2]": pyspark starts a local server itself
    address = url[len("sc://"):].split("/", 1)[0].split(";", 1)[0]
    host, _, port = address.rpartition(":")
    host = (host or address).strip("[]")
    try:
        port_number = int(port) if host != address else 15002
    except ValueError:
        raise EnvironmentSetupError(f"invalid Spark Connect URL {url!r}: expected sc://host:port",
                                    condition="INVALID_REMOTE", parameters={"url": url}) from None
    try:
        socket.create_connection((host, port_number), timeout=timeout).close()
    except OSError as exc:
        raise EnvironmentSetupError(
            f"cannot reach the Spark Connect server at {url} ({exc.strerror or exc}); start it, or check "
            "--remote / $SPARK_REMOTE", condition="REMOTE_UNREACHABLE",
            parameters={"url": url, "host": host, "port": port_number}) from exc


def connect_session(url: str, settings: Settings) -> SparkSession:
    """A Spark Connect session to ``url``; the server provides Spark and Delta Lake (``--remote``).

    Settings' ``spark.sql.*`` keys are applied to the session; other keys belong to the server.

    Raises
    ------
    EnvironmentSetupError: nothing listens at ``url`` (named in the message), or the server lacks Delta.
    """
    _check_reachable(url)
    spark = SparkSession.builder.remote(url).getOrCreate()
    for key, value in settings.spark_conf.items():
        if key.startswith("spark.sql."):
            try:
                spark.conf.set(key, value)
            except Exception:  # a static SQL conf of the server: its own value stands
                logger.debug("Spark Connect server keeps its own %s", key)
    require_delta(spark, settings.delta_package)
    return spark


def require_delta(spark: SparkSession, package: str) -> None:
    """Raise :class:`EnvironmentSetupError` unless Delta Lake is there: its JVM classes (classic), its
    extension in the server's configuration (Spark Connect)."""
    if is_remote(spark):
        if DELTA_EXTENSION not in (spark.conf.get("spark.sql.extensions", "") or ""):
            raise EnvironmentSetupError(
                f"the Spark Connect server has no Delta Lake: start it with --packages {package} --conf "
                f"spark.sql.extensions={DELTA_EXTENSION} --conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
                condition="DELTA_NOT_ON_CLASSPATH", parameters={"package": package})
        return
    if not backend.of(spark).class_loadable(DELTA_EXTENSION):
        raise EnvironmentSetupError(
            "Delta Lake classes are not on Spark's classpath: run spark-submit with "
            f"--packages {package} (or use `spark-flows submit`, which adds it)",
            condition="DELTA_NOT_ON_CLASSPATH", parameters={"package": package})


@contextmanager
def job_session(settings: Settings) -> Iterator[SparkSession]:
    """Yield a session for a job; stop it afterwards only if this call created it.

    Jobs called in-process (tests, the demo) reuse the caller's session and leave it running.
    """
    existed = live_session() is not None
    spark = get_session(settings)
    try:
        yield spark
    finally:
        if not existed:
            spark.stop()
