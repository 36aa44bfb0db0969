"""A job's declared flow without Spark: load a job by name, path or module, and take the graph its plan draws.

:func:`job_graph` calls the job's own ``main(["--graph", "json", ...])``: the job parses its flags, builds its
plan once as for a run, and the harness hands the plan's graph here instead of printing it. So the drawn flow
is the flow of the blocks the job runs, for exactly those arguments.

Example
-------
>>> flow = job_graph("jobs.devices_loader", ["--batch-id", "7"])
>>> flow.node("devices_loader.devices").rules
{'idempotency': 'Delta txnAppId/txnVersion devices_loader@7'}
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

from spark_flows.errors import InputNotFoundError, SparkFlowsValueError
from spark_flows.flow.graph import Graph

__all__ = ["job_graph", "load_job", "requested"]

_requested: contextvars.ContextVar[list[Graph] | None] = contextvars.ContextVar("spark_flows_graph", default=None)


def requested() -> list[Graph] | None:
    """Set while :func:`job_graph` runs a job's ``main``: the job harness puts the flow there and stops."""
    return _requested.get()


@contextlib.contextmanager
def _collecting() -> Iterator[list[Graph]]:
    found: list[Graph] = []
    token = _requested.set(found)
    try:
        yield found
    finally:
        _requested.reset(token)


def load_job(spec: str) -> ModuleType:
    """The job module named by ``spec``: a ``.py`` file (imported by path: ``spark-submit`` puts no package on
    the path) or a module path (``jobs.visits_cube``, ``my_pkg.jobs.daily``); it must define ``main(argv)``.

    Raises
    ------
    InputNotFoundError: no such file or module, or it defines no ``main``.
    """
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise InputNotFoundError(f"job file {spec} does not exist: give an existing .py file or a module path",
                                     parameters={"job": spec})
        name = f"spark_flows_job_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(name, path.resolve())
        if loader_spec is None or loader_spec.loader is None:
            raise InputNotFoundError(f"cannot load job {spec}: not a Python file", parameters={"job": spec})
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(spec)
        except ImportError as exc:
            raise InputNotFoundError(f"cannot import job module {spec} ({exc}); give a module path or a .py file",
                                     parameters={"job": spec}) from exc
    if not callable(getattr(module, "main", None)):
        raise InputNotFoundError(f"job {spec} has no main(argv) -> int", parameters={"job": spec})
    return module


def job_graph(job: str | ModuleType, argv: Sequence[str] = ()) -> Graph:
    """The flow ``job`` draws for ``argv`` (parsed by the job's own parser), without starting Spark.

    Raises
    ------
    InputNotFoundError: no such job (see :func:`load_job`).
    SparkFlowsValueError: the job draws no flow, or its arguments are invalid.
    """
    module = load_job(job) if isinstance(job, str) else job
    with _collecting() as found:
        code = module.main(["--graph", "json", *argv])
    if code != 0 or not found:
        name = getattr(module, "NAME", getattr(module, "__name__", str(job)))
        raise SparkFlowsValueError(f"job {name} gave no flow for arguments {list(argv)} (exit {code}): "
                                   + ("see its usage error above" if code else "its plan draws none"),
                                   parameters={"job": str(name), "argv": list(argv), "exit_code": code})
    return found[0]
