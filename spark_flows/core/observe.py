"""The one hook by which lower layers tell what they did to whoever listens in this context.

A writer (in ``io``) publishes each output it wrote, skipped or refused; a recording (in ``flow``) listens, so
the writers need not know who records them. Listeners are per context (``contextvars``): a thread started in
a copy of its caller's context (as the split's branches are) publishes to its caller's listeners.

Example
-------
>>> seen = []
>>> with listening(lambda kind, payload: seen.append((kind, payload))):
...     publish("output", "t1")
>>> publish("output", "t2")  # nobody listens: nothing happens
>>> seen
[('output', 't1')]
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

Listener = Callable[[str, Any], None]

_listeners: contextvars.ContextVar[tuple[Listener, ...]] = contextvars.ContextVar("spark_flows_listeners",
                                                                                  default=())


def publish(kind: str, payload: Any) -> None:
    """Hand ``payload`` to every listener of this context."""
    for listener in _listeners.get():
        listener(kind, payload)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener(kind, payload)`` for what is published in this context until the block ends."""
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)
