"""Shared plumbing for the benchmarks: one local Spark session, repeated timings (median and spread), the
machine's load, a printed table.

Every mode runs ``SPARK_FLOWS_BENCH_REPEATS`` times (default 3) and is printed as ``median (min-max)``;
each table says the machine's load before and after it, so a ratio can be told from noise.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from spark_flows.core.config import load_settings
from spark_flows.core.session import get_session

WORK = Path(os.environ.get("SPARK_FLOWS_BENCH_DIR", "data/bench"))
REPEATS = max(1, int(os.environ.get("SPARK_FLOWS_BENCH_REPEATS", "3")))


@dataclass(frozen=True)
class Timing:
    """The wall seconds of the repeated runs of one mode."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def cell(self) -> str:
        """``median (min-max)``, or the one figure of a single run."""
        if len(self.runs) == 1:
            return f"{self.runs[0]:.2f}"
        return f"{self.median:.2f} ({min(self.runs):.2f}-{max(self.runs):.2f})"

    def ratio(self, to: Timing) -> str:
        """Median over median, with the spread of the run-by-run extremes (``0.64x (0.60-0.70)``)."""
        low, high = min(self.runs) / max(to.runs), max(self.runs) / min(to.runs)
        if len(self.runs) == 1 and len(to.runs) == 1:
            return f"{self.median / to.median:.2f}x"
        return f"{self.median / to.median:.2f}x ({low:.2f}-{high:.2f})"


def repeat(run: Callable[[int], float | None], repeats: int = REPEATS) -> Timing:
    """Time ``run(i)`` ``repeats`` times; a run may return its own measured seconds (else it is timed whole)."""
    runs = []
    for i in range(repeats):
        with stopwatch() as elapsed:
            measured = run(i)
        runs.append(measured if measured is not None else elapsed())
    return Timing(tuple(runs))


def load() -> str:
    """The machine's 1-minute load average against its cores (``1.9 on 2 cores``)."""
    return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def bench_session() -> SparkSession:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # the shipped configuration (embedded local.toml: FAIR pools, 4 shuffle partitions), on 2 cores
    return get_session(load_settings(overrides={"master": "local[2]", "spark_conf": {
        "spark.ui.enabled": "false", "spark.driver.memory": "6g"}}))


def fresh(path: Path) -> str:
    shutil.rmtree(path, ignore_errors=True)
    return str(path)


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    began = time.monotonic()
    ended: list[float] = []
    yield lambda: (ended[0] if ended else time.monotonic()) - began
    ended.append(time.monotonic())


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], *, load_before: str | None = None,
          note: str | None = None, runs: int = REPEATS) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    heading = [f"\n{title}"]
    if load_before is not None:
        heading.append(f"machine load: {load_before} before, {load()} after; {runs} run(s) per mode, "
                       "median (min-max)")
    out = [*heading, line, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells[1:]]
    return "\n".join([*out, line, *([note] if note else [])])


def data_files(path: str) -> int:
    return sum(1 for p in Path(path).rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv")
               and "_delta_log" not in p.parts)
