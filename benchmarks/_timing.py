"""Timing helpers shared by the benchmark scripts (run them from anywhere: the script's folder
is on ``sys.path``)."""

import time

import numpy as np


def run_times(fn, repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn()``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def best_of(fn, repeat: int = 5) -> float:
    """Fastest of ``repeat`` calls (seconds): the least disturbed by other load."""
    return min(run_times(fn, repeat))


def median_time(fn, repeat: int) -> float:
    """Median of ``repeat`` calls (seconds)."""
    return float(np.median(run_times(fn, repeat)))
