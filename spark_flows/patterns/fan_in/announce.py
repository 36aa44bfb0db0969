"""Partial data announced where consumers look: a notification when a fan-in publishes an incomplete result.

The completeness columns and table say it in the data; :class:`~spark_flows.io.writers.DeltaWriter`'s
``metadata`` puts it in the commit's ``userMetadata`` (the table's history); and :func:`announce_partial`
calls the producer's notifications (:func:`webhook`, or any function of a :class:`PartialResult`) so a
consumer or a person learns of it without polling.

Example
-------
>>> from spark_flows.patterns.fan_in.completeness import Completeness
>>> seen = []
>>> announce_partial(Completeness(("00", "01"), {"01": "no data"}), "/tables/cube", {"date": "20240101"},
...                  [seen.append])
True
>>> seen[0].completeness["missing"]
{'01': 'no data'}
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from spark_flows.errors import NotificationFailedError, error_summary, invalid_argument
from spark_flows.patterns.fan_in.completeness import Completeness

logger = logging.getLogger(__name__)

__all__ = ["Notify", "PartialResult", "announce_partial", "webhook"]


@dataclass(frozen=True)
class PartialResult:
    """What a notification receives: where the partial result went and how complete it is."""

    output: str
    partition: Mapping[str, str]
    completeness: Mapping[str, Any]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """JSON-ready, as :func:`webhook` posts it."""
        return {"event": "partial_result_published", **asdict(self)}


Notify = Callable[[PartialResult], object]


def webhook(url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None) -> Notify:
    """A notification that POSTs the :class:`PartialResult` as JSON to ``url``; a non-2xx answer fails it."""
    if not url.startswith(("http://", "https://")):
        raise invalid_argument("webhook url", url, "an http:// or https:// URL")

    def post(result: PartialResult) -> int:
        body = json.dumps(result.as_record(), default=str).encode()
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **(headers or {})})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)

    post.__name__ = f"webhook({url})"
    return post


def announce_partial(completeness: Completeness, output: str, partition: Mapping[str, str],
                     notify: Sequence[Notify], extra: Mapping[str, Any] | None = None) -> bool:
    """Call every notification when ``completeness`` is partial; ``True`` if it was (and they ran).

    Call it after the result is published. Every notification is tried.

    Raises
    ------
    NotificationFailedError: a notification raised; the result stays published, the message names which
        notifications failed (rerunning the job republishes the same partition and announces again).
    """
    if not completeness.is_approximate:
        return False
    result = PartialResult(output, dict(partition), completeness.as_record(), dict(extra or {}))
    failed: dict[str, str] = {}
    for callback in notify:
        try:
            callback(result)
        except Exception as exc:
            failed[getattr(callback, "__name__", repr(callback))] = error_summary(exc)
    if failed:
        raise NotificationFailedError(
            f"partial result {output} {dict(partition)} is published ({completeness.describe()}) but "
            f"{len(failed)} notification(s) failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
            parameters={"output": output, "failed": failed})
    logger.info("announced partial result %s %s to %d notification(s)", output, dict(partition), len(notify))
    return True
