"""Readable progress for people watching a job: spark_flows' own log lines, and a line now and then while a
Spark action runs long.

The library logs under the ``spark_flows`` logger and propagates to the application's handlers (a platform's
logging sees the lines). :func:`enable_progress` is the one call for a job that has set up no logging: a
line per step, branch, fan-in parent and partition, with rows and seconds, to stderr; with a session, also
a heartbeat line every ``every`` seconds naming the running Spark jobs and their tasks done (classic Spark;
a Spark Connect client has no status tracker, so there the heartbeat is off). Bundled jobs take
``--progress``.

Example
-------
>>> stop = enable_progress("WARNING")
>>> logging.getLogger("spark_flows").level == logging.WARNING
True
>>> stop()
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from pyspark.sql import SparkSession

from spark_flows.core import backend

logger = logging.getLogger(__name__)

_HANDLER_FLAG = "_spark_flows"


def configure_logging(level: str) -> None:
    """Set spark_flows' level; add a stderr handler only when the application configured none.

    The ``spark_flows`` logger keeps propagating, so an application's (or platform's) handlers see its lines.
    """
    library = logging.getLogger("spark_flows")
    library.setLevel(level)
    library.propagate = True
    mine = [h for h in library.handlers if getattr(h, _HANDLER_FLAG, False)]
    if logging.getLogger().handlers:  # the application has its own logging: use it, add nothing
        for handler in mine:
            library.removeHandler(handler)
    elif not mine:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        setattr(handler, _HANDLER_FLAG, True)
        library.addHandler(handler)
    logging.getLogger("py4j").setLevel(logging.WARNING)


def enable_progress(level: str = "INFO", *, spark: SparkSession | None = None, every: float = 30.0
                    ) -> Callable[[], None]:
    """Show spark_flows' progress lines at ``level``; with ``spark``, a heartbeat every ``every`` seconds
    while Spark jobs run. Returns a function that stops the heartbeat."""
    configure_logging(level)
    if spark is None or backend.of(spark).running_jobs() is None:
        return lambda: None
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                running = backend.of(spark).running_jobs()
            except Exception:  # the session is stopping: nothing to report any more
                return
            if running:
                logger.info("still running: %s", "; ".join(running))

    threading.Thread(target=beat, name="spark_flows-progress", daemon=True).start()
    return stop.set
