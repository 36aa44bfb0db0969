"""The book's datasets in one place: their schemas and their partition layout (``date=YYYYMMDD/hour=HH``).

Jobs, the sample generator, the fan-in's hourly parents and the benchmarks all take paths and schemas from
here, so the layout is written once.

Example
-------
>>> import datetime as dt
>>> day = dt.date(2024, 1, 1)
>>> date_key(day), day_path("data/raw/visits", day), hour_path("data/raw/visits/", day, 6)
('20240101', 'data/raw/visits/date=20240101', 'data/raw/visits/date=20240101/hour=06')
>>> DEVICES_SCHEMA.simpleString()
'struct<type:string,full_name:string,version:string>'
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType, TimestampType

DEVICE_TYPES = ("lenovo", "galaxy", "htc", "lg", "iphone", "mac")
PAGES = ("home", "index", "contact", "about", "categories", "main", "page_1", "page_2", "page_3")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge", "Opera")
NETWORKS = ("wifi", "4g", "5g", "adsl", "fiber")
#: The hours the book's partial-day example lacks.
BOOK_MISSING_HOURS = (6, 11, 16, 17, 18)
HOURS_PER_DAY = 24

DEVICES_SCHEMA = StructType(
    [
        StructField("type", StringType()),
        StructField("full_name", StringType()),
        StructField("version", StringType()),
    ]
)

VISITS_SCHEMA = StructType(
    [
        StructField("visit_id", StringType()),
        StructField("event_time", TimestampType()),
        StructField("user_id", StringType()),
        StructField("keep_private", BooleanType()),
        StructField("page", StringType()),
        StructField(
            "context",
            StructType(
                [
                    StructField("referral", StringType()),
                    StructField("ad_id", StringType()),
                    StructField(
                        "user",
                        StructType(
                            [
                                StructField("ip", StringType()),
                                StructField("login", StringType()),
                                StructField("connected_since", TimestampType()),
                            ]
                        ),
                    ),
                    StructField(
                        "technical",
                        StructType(
                            [
                                StructField("browser", StringType()),
                                StructField("browser_version", StringType()),
                                StructField("network_type", StringType()),
                                StructField("device_type", StringType()),
                                StructField("device_version", StringType()),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ]
)

#: the events of the bundled streaming job (``jobs/visits_stream.py``): one JSON line per visit
VISIT_EVENTS_SCHEMA = StructType(
    [
        StructField("visit_id", StringType()),
        StructField("event_time", TimestampType()),
        StructField("user_id", StringType()),
        StructField("page", StringType()),
        StructField("duration_ms", LongType()),
    ]
)


def date_key(day: dt.date) -> str:
    """The partition value of a day: ``YYYYMMDD``."""
    return f"{day:%Y%m%d}"


def day_path(root: str, day: dt.date) -> str:
    """The directory of one day under ``root``: ``<root>/date=YYYYMMDD``."""
    return f"{root.rstrip('/')}/date={date_key(day)}"


def hour_path(root: str, day: dt.date, hour: int) -> str:
    """The directory of one hour under ``root``: ``<root>/date=YYYYMMDD/hour=HH``."""
    return f"{day_path(root, day)}/hour={hour:02d}"
