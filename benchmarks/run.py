"""`make bench`: every benchmark side by side in one run, figures and ratios printed as tables.

    make bench                      # all
    make bench BENCH=split          # one of: split, fan_in, runners, connect, stream, delta_log, history, s3,
                                    # growth, jobs
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bench_session

BENCHMARKS = ["split", "fan_in", "runners", "connect", "stream", "delta_log", "history", "s3", "growth", "jobs"]


def main(argv: list[str]) -> int:
    chosen = argv or [b for b in os.environ.get("BENCH", "").split(",") if b] or BENCHMARKS
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {BENCHMARKS}", file=sys.stderr)
        return 2
    spark = bench_session()
    spark.sparkContext.setLogLevel("ERROR")
    for name in chosen:
        for text in importlib.import_module(f"benchmarks.bench_{name}").run(spark):
            print(text, flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
