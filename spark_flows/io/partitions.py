"""The partition layout of dated data, formatted in one place: a day is a ``date`` until a path or a partition
value needs its key (``date=YYYYMMDD``, ``hour=HH``).

Example
-------
>>> import datetime as dt
>>> day = dt.date(2024, 1, 1)
>>> date_key(day), day_path("data/raw/visits", day), hour_path("data/raw/visits/", day, 6)
('20240101', 'data/raw/visits/date=20240101', 'data/raw/visits/date=20240101/hour=06')
>>> day_of_key("20240101") == day
True
"""

from __future__ import annotations

import datetime as dt


def date_key(day: dt.date) -> str:
    """The partition value of a day: ``YYYYMMDD``."""
    return f"{day:%Y%m%d}"


def day_of_key(key: str) -> dt.date:
    """The day a :func:`date_key` names (``ValueError`` for anything else)."""
    return dt.datetime.strptime(key, "%Y%m%d").date()


def day_path(root: str, day: dt.date) -> str:
    """The directory of one day under ``root``: ``<root>/date=YYYYMMDD``."""
    return f"{root.rstrip('/')}/date={date_key(day)}"


def hour_path(root: str, day: dt.date, hour: int) -> str:
    """The directory of one hour under ``root``: ``<root>/date=YYYYMMDD/hour=HH``."""
    return f"{day_path(root, day)}/hour={hour:02d}"
