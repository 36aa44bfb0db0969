"""Bounded waits: poll a cheap check until it holds or the time is up (the book's sensors).

:class:`Wait` is the one polling loop of the library: :func:`~spark_flows.patterns.markers.wait_for_marker` waits
for a readiness marker with it, :func:`~spark_flows.patterns.fan_in.merge.fan_in` for missing parents. Checks read
metadata only (a listing, a small JSON file), never rows.

Example
-------
>>> seen = []
>>> def third_time() -> str | None:
...     seen.append(1)
...     return "ready" if len(seen) == 3 else None
>>> waited = Wait(timeout=5, poll_interval=0.01).until(third_time, "the third poll")
>>> waited.value, waited.polls
('ready', 3)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from spark_flows.errors import invalid_argument

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Waited(Generic[T]):
    """What a wait found (``None`` when the time ran out), after how long and how many polls."""

    value: T | None
    seconds: float
    polls: int


@dataclass(frozen=True)
class Wait:
    """Poll every ``poll_interval`` seconds (times ``backoff`` after each poll, up to ``max_interval``) for at
    most ``timeout`` seconds; ``timeout=0`` checks once."""

    timeout: float = 600.0
    poll_interval: float = 10.0
    backoff: float = 1.0
    max_interval: float = 300.0

    def __post_init__(self) -> None:
        for name, value, ok, expected in (("timeout", self.timeout, self.timeout >= 0, ">= 0"),
                                          ("poll_interval", self.poll_interval, self.poll_interval > 0, "> 0"),
                                          ("backoff", self.backoff, self.backoff >= 1.0, ">= 1")):
            if not ok:
                raise invalid_argument(name, value, f"a number {expected}")

    def until(self, check: Callable[[], T | None], what: str) -> Waited[T]:
        """Call ``check`` until it returns something other than ``None``, or the timeout passes."""
        began, polls, interval = time.monotonic(), 0, self.poll_interval
        while True:
            polls += 1
            value = check()
            waited = time.monotonic() - began
            if value is not None:
                if polls > 1:
                    logger.info("%s after %.1fs (%d polls)", what, waited, polls)
                return Waited(value, waited, polls)
            if waited >= self.timeout:
                return Waited(None, waited, polls)
            if polls == 1:
                logger.info("waiting for %s (timeout %gs, every %gs)", what, self.timeout, self.poll_interval)
            time.sleep(min(interval, max(self.timeout - waited, 0.0)))
            interval = min(interval * self.backoff, self.max_interval)


NO_WAIT = Wait(timeout=0.0, poll_interval=1.0)
"""Look once, do not wait (a lock held by a live run is refused at once)."""
SENSOR = Wait()
"""The book's sensor: look every 10 s for up to 10 minutes."""
