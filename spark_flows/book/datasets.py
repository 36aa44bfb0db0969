"""The book's datasets in one place: their schemas and the values the sample generator draws from.

Their partition layout (``date=YYYYMMDD/hour=HH``) is the library's own: :mod:`spark_flows.io.partitions`.

Example
-------
>>> DEVICES_SCHEMA.simpleString()
'struct<type:string,full_name:string,version:string>'
"""

from __future__ import annotations

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
