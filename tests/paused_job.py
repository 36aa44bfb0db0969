"""Run a bundled job with a pause point patched in, so a test can SIGKILL it at a point of its choosing.

    spark-submit tests/paused_job.py JOB WHEN:MODULE:ATTR[:N | @BATCH] -- JOB_ARGS...

``WHEN`` is ``before`` or ``after``; at the N-th call (default 1) of ``MODULE.ATTR`` (a function or a method,
``ATTR`` dotted as ``Class.method``), or with ``@BATCH`` at its first call for that (micro-)batch (an argument
that is a ``Batch`` of that version, or the int micro-batch id), the job prints ``PAUSED AT <spec>`` on stderr
and stops there until it is killed. The hook lives here, in the tests: the shipped job is run unchanged.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `jobs` and the sources of this checkout

from spark_flows.io.writers import Batch  # after the checkout joins the path


def _batch_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """The (micro-)batch a call is for: a ``Batch`` argument's version, else an int argument (a batch id)."""
    values = [*args, *kwargs.values()]
    for value in values:
        if isinstance(value, Batch):
            return value.version
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return ints[0] if ints else None


def pausing(spec: str, stop: Callable[[str], None]) -> tuple[Any, str, Callable[..., Any]]:
    """``(owner, name, wrapper)``: the function ``spec`` names, wrapped to call ``stop(spec)`` before or
    after its chosen call (the N-th, or the first for batch ``@B``); set it with ``setattr`` or ``monkeypatch``."""
    when, module_name, attr, *nth = spec.split(":")
    if when not in ("before", "after"):
        raise SystemExit(f"paused_job: WHEN must be before or after, got {when!r}")
    attr, _, batch = attr.partition("@")
    target = int(nth[0]) if nth else 1
    owner: Any = importlib.import_module(module_name)
    *parents, name = attr.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls, guard = [0], threading.Lock()

    @functools.wraps(original)
    def paused(*args: Any, **kwargs: Any) -> Any:
        with guard:
            if batch:
                here = calls[0] == 0 and _batch_of(args, kwargs) == int(batch)
                calls[0] += 1 if here else 0
            else:
                calls[0] += 1
                here = calls[0] == target
        if here and when == "before":
            stop(spec)
        result = original(*args, **kwargs)
        if here and when == "after":
            stop(spec)
        return result

    return owner, name, paused


def _stop(spec: str) -> None:
    print(f"PAUSED AT {spec}", file=sys.stderr, flush=True)
    while True:  # until the test's SIGKILL
        time.sleep(60)


def main(argv: list[str]) -> int:
    job, spec, sep, *job_args = argv
    if sep != "--":
        raise SystemExit("usage: paused_job.py JOB WHEN:MODULE:ATTR[:N] -- JOB_ARGS...")
    setattr(*pausing(spec, _stop))
    module = importlib.import_module(f"jobs.{job}")
    return int(module.main(job_args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
