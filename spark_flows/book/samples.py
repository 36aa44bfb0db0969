"""Deterministic generators of the book's datasets: devices and hourly visits.

Rows are computed by Spark from ``spark.range`` and hashes of the row id and a seed, so the same
arguments always give the same data, at any size, without Python loops on the driver.

Example
-------
>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> write_devices(spark, f"{root}/devices", rows=20)
20
>>> len(write_visits(spark, f"{root}/visits", "2024-01-01", rows_per_hour=1, missing_hours=BOOK_MISSING_HOURS))
19
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import time
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flows.book.datasets import (  # noqa: F401  (re-exported: the generator's public names)
    BOOK_MISSING_HOURS,
    BROWSERS,
    DEVICE_TYPES,
    DEVICES_SCHEMA,
    HOURS_PER_DAY,
    NETWORKS,
    PAGES,
    VISIT_EVENTS_SCHEMA,
    VISITS_SCHEMA,
)
from spark_flows.errors import invalid_argument
from spark_flows.io.filesystems import local_path
from spark_flows.io.partitions import date_key, day_path, hour_path
from spark_flows.io.storage import Storage

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

MALFORMED_DEVICE_LINES = ('{"type": "galaxy", "full_name": ', "not json at all", '{"type": ["lg"]')


def _pick(values: Iterable[str], seed: int) -> Column:
    options = F.array(*[F.lit(v) for v in values])
    return F.element_at(options, (F.pmod(F.hash(F.col("id"), F.lit(seed)), F.size(options)) + 1).cast("int"))


def _bucket(seed: int, modulo: int) -> Column:
    return F.pmod(F.hash(F.col("id"), F.lit(seed)), F.lit(modulo))


def devices_frame(spark: SparkSession, rows: int, *, seed: int = 42, partitions: int | None = None) -> DataFrame:
    """Return ``rows`` devices (``type, full_name, version``); about 1 in 20 has a null ``full_name``.

    Lazy: launches no Spark job.
    """
    base = spark.range(0, rows, 1, partitions) if partitions else spark.range(rows)
    device_type = _pick(DEVICE_TYPES, seed)
    return base.select(
        device_type.alias("type"),
        F.when(_bucket(seed + 1, 20) == 0, F.lit(None).cast("string"))
        .otherwise(F.concat_ws(" ", F.initcap(device_type), F.lit("model"), _bucket(seed + 2, 40).cast("string")))
        .alias("full_name"),
        F.concat(F.lit("v"), _bucket(seed + 3, 15).cast("string"), F.lit("."), _bucket(seed + 4, 10).cast("string"))
        .alias("version"),
    )


def write_devices(
    spark: SparkSession,
    path: str,
    *,
    rows: int = 1000,
    seed: int = 42,
    malformed: int = 0,
    files: int = 1,
    compression: str | None = None,
) -> int:
    """Write ``rows`` devices as JSON lines under ``path`` (replacing it) and return the valid row count.

    Parameters
    ----------
    malformed: number of unparseable lines added in an extra file ``part-malformed.json``.
    files: number of JSON files to write.
    compression: ``None`` or a Spark JSON codec such as ``"gzip"``.

    Triggers one Spark job.
    """
    writer = devices_frame(spark, rows, seed=seed).repartition(files).write.mode("overwrite")
    if compression:
        writer = writer.option("compression", compression)
    writer.json(path)
    if malformed:
        lines = [MALFORMED_DEVICE_LINES[i % len(MALFORMED_DEVICE_LINES)] for i in range(malformed)]
        Storage(spark).write_text(f"{path.rstrip('/')}/part-malformed.json", "\n".join(lines) + "\n")
    return rows


def visits_frame(spark: SparkSession, day: dt.date, *, rows_per_hour: int = 100, seed: int = 7) -> DataFrame:
    """Return one day of visits with ``hour`` (``"00"``..``"23"``) and ``date`` (``YYYYMMDD``) columns.

    Lazy: launches no Spark job.
    """
    start = dt.datetime.combine(day, dt.time())
    hour = (F.col("id") % HOURS_PER_DAY).cast("int")
    seconds = hour * 3600 + _bucket(seed, 3600)
    event_time = F.timestamp_seconds(F.lit(int(start.replace(tzinfo=dt.timezone.utc).timestamp())) + seconds)
    return spark.range(rows_per_hour * HOURS_PER_DAY).select(
        F.concat(F.lit(f"v-{date_key(day)}-"), F.col("id").cast("string")).alias("visit_id"),
        event_time.alias("event_time"),
        F.concat(F.lit("u"), _bucket(seed + 1, 500).cast("string")).alias("user_id"),
        (_bucket(seed + 2, 10) == 0).alias("keep_private"),
        _pick(PAGES, seed + 3).alias("page"),
        F.struct(
            F.when(_bucket(seed + 4, 3) == 0, F.lit("search")).otherwise(F.lit("direct")).alias("referral"),
            F.when(_bucket(seed + 5, 4) == 0, F.concat(F.lit("ad-"), _bucket(seed + 6, 9).cast("string")))
            .alias("ad_id"),
            F.struct(
                F.concat_ws(".", F.lit("10"), _bucket(seed + 7, 255).cast("string"), F.lit("0"), F.lit("1"))
                .alias("ip"),
                F.concat(F.lit("login"), _bucket(seed + 1, 500).cast("string")).alias("login"),
                (event_time - F.make_interval(F.lit(0), F.lit(0), F.lit(0), _bucket(seed + 8, 30).cast("int")))
                .alias("connected_since"),
            ).alias("user"),
            F.struct(
                _pick(BROWSERS, seed + 9).alias("browser"),
                F.concat(_bucket(seed + 10, 30).cast("string"), F.lit(".0")).alias("browser_version"),
                _pick(NETWORKS, seed + 11).alias("network_type"),
                _pick(("pc", "smartphone", "tablet"), seed + 12).alias("device_type"),
                F.concat(F.lit("v"), _bucket(seed + 13, 5).cast("string")).alias("device_version"),
            ).alias("technical"),
        ).alias("context"),
        F.lpad(hour.cast("string"), 2, "0").alias("hour"),
        F.lit(date_key(day)).alias("date"),
    )


def write_visits(
    spark: SparkSession,
    root: str,
    day: dt.date | str,
    *,
    rows_per_hour: int = 100,
    seed: int = 7,
    missing_hours: Iterable[int] = (),
    empty_hours: Iterable[int] = (),
    corrupt_hours: Iterable[int] = (),
) -> list[int]:
    """Write one day of visits as JSON lines in ``<root>/date=YYYYMMDD/hour=HH`` and return the hours written.

    The day's previous partitions are replaced; other days are left alone.

    Parameters
    ----------
    missing_hours: hours with no directory at all (the book's partial day: :data:`BOOK_MISSING_HOURS`).
    empty_hours: hours whose directory exists but holds no rows.
    corrupt_hours: hours that get an extra file of bytes that are not JSON.

    Triggers one Spark job.
    """
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    missing, empty = set(missing_hours), set(empty_hours)
    written = [h for h in range(HOURS_PER_DAY) if h not in missing and h not in empty]
    storage = Storage(spark)
    storage.delete(day_path(root, day))
    frame = visits_frame(spark, day, rows_per_hour=rows_per_hour, seed=seed)
    frame = frame.where(F.col("hour").isin([f"{h:02d}" for h in written]))
    frame.repartition("hour").write.mode("append").partitionBy("date", "hour").json(root)
    for hour in sorted(empty):
        storage.mkdirs(hour_path(root, day, hour))
    for hour in sorted(set(corrupt_hours)):
        storage.write_text(f"{hour_path(root, day, hour)}/part-corrupt.json", "\x00\x01 garbage {{{\n")
    return written


def write_visit_events(
    spark: SparkSession | None,
    root: str,
    start: dt.date | str,
    *,
    days: int = 1,
    files_per_day: int = 4,
    rows_per_hour: int = 20,
    seed: int = 11,
) -> list[str]:
    """Write visit events as JSON lines files for a file stream source, one file per slice of a day, in
    event-time order; returns the files written (oldest first).

    Each file holds ``24 / files_per_day`` hours of ``rows_per_hour`` events (:data:`VISIT_EVENTS_SCHEMA`)
    and appears whole (written to a hidden name, then renamed). Local files get modification times one
    second apart, so a file source (which takes the oldest first) reads them in event-time order. Needs no
    Spark job; ``spark=None`` writes local files.
    """
    if files_per_day < 1 or HOURS_PER_DAY % files_per_day:
        raise invalid_argument("files_per_day", files_per_day, "a divisor of 24")
    first = dt.date.fromisoformat(start) if isinstance(start, str) else start
    storage, rng = Storage(spark), random.Random(seed)
    hours_per_file, written = HOURS_PER_DAY // files_per_day, []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        for part in range(files_per_day):
            lines = []
            for hour in range(part * hours_per_file, (part + 1) * hours_per_file):
                for n in range(rows_per_hour):
                    at = dt.datetime.combine(day, dt.time(hour)) + dt.timedelta(seconds=rng.randrange(3600))
                    lines.append(json.dumps({
                        "visit_id": f"e-{date_key(day)}-{hour:02d}-{n:05d}", "event_time": f"{at.isoformat()}Z",
                        "user_id": f"u{rng.randrange(500)}", "page": rng.choice(PAGES),
                        "duration_ms": rng.randrange(100, 60_000)}))
            path = f"{root.rstrip('/')}/visits-{date_key(day)}-{part:02d}.json"
            storage.write_text(path, "\n".join(lines) + "\n")
            written.append(path)
    if not _SCHEME.match(root) or root.startswith("file:"):
        base = time.time() - len(written)
        for index, path in enumerate(written):
            os.utime(local_path(path), (base + index, base + index))
    return written
