"""Bounded waits on events: a test waits for what it needs to happen, and fails naming it if it never does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, *, timeout: float = 120, interval: float = 0.05) -> T:
    """Return ``condition()``'s first truthy value; fail with ``what`` if none comes within ``timeout`` seconds.

    The timeout is a bound for a broken feature, never the event the test is about: a test passes as soon as
    the event happens, however busy the machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
