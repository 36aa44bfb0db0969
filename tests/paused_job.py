"""Run a bundled job with a pause point patched in, so a test can SIGKILL it at a point of its choosing.

    spark-submit tests/paused_job.py JOB WHEN:MODULE:ATTR[:N] -- JOB_ARGS...

``WHEN`` is ``before`` or ``after``; at the N-th call (default 1) of ``MODULE.ATTR`` (a function or a method,
``ATTR`` dotted as ``Class.method``) the job prints ``PAUSED AT <spec>`` on stderr and stops there until it
is killed. The hook lives here, in the tests: the shipped job is run unchanged.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `jobs` and the sources of this checkout


def patch_pause(spec: str) -> None:
    """Wrap the function ``spec`` names so that its N-th call stops dead before or after it runs."""
    when, module_name, attr, *nth = spec.split(":")
    if when not in ("before", "after"):
        raise SystemExit(f"paused_job: WHEN must be before or after, got {when!r}")
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
            calls[0] += 1
            here = calls[0] == target
        if here and when == "before":
            _stop(spec)
        result = original(*args, **kwargs)
        if here and when == "after":
            _stop(spec)
        return result

    setattr(owner, name, paused)


def _stop(spec: str) -> None:
    print(f"PAUSED AT {spec}", file=sys.stderr, flush=True)
    while True:  # until the test's SIGKILL
        time.sleep(60)


def main(argv: list[str]) -> int:
    job, spec, sep, *job_args = argv
    if sep != "--":
        raise SystemExit("usage: paused_job.py JOB WHEN:MODULE:ATTR[:N] -- JOB_ARGS...")
    patch_pause(spec)
    module = importlib.import_module(f"jobs.{job}")
    return int(module.main(job_args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
