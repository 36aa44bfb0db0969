"""Shared plumbing for the benchmarks: one local Spark session, timing, a printed table."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from spark_flows.config import load_settings
from spark_flows.session import get_session

WORK = Path(os.environ.get("SPARK_FLOWS_BENCH_DIR", "data/bench"))


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


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [f"\n{title}", line, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells[1:]]
    return "\n".join([*out, line])


def data_files(path: str) -> int:
    return sum(1 for p in Path(path).rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv")
               and "_delta_log" not in p.parts)
