"""Seconds from `gameplane up` to every service ready (warm venv). Target: under 15 s.

Runs `gameplane up` in a subprocess, times until its READY line, stops it; repeats within the
BENCH_SECONDS budget (default 60 s, at most 5 runs, at least 1) reusing one data dir as a
developer's repeated `make run` does, and reports the median.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _common import bench_seconds, log, result_line

from gameplane.devtools.harness import launch

MAX_RUNS = 5


def main() -> None:
    budget = bench_seconds(60.0)
    times: list[float] = []
    services = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gp-bench-startup-") as tmp:
        while len(times) < MAX_RUNS and (not times or time.monotonic() - started + times[-1] * 1.5 < budget):
            t0 = time.monotonic()
            running = launch(Path(tmp))
            elapsed = time.monotonic() - t0
            services = len(running.urls)
            running.shutdown()
            times.append(elapsed)
            log(f"run {len(times)}: {services} services ready in {elapsed:.2f}s")
    log(f"startup: runs={len(times)} min={min(times):.2f}s max={max(times):.2f}s")
    result_line("startup", ready_s=statistics.median(times), services=services)


if __name__ == "__main__":
    main()
