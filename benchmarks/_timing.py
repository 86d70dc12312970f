"""Timing helpers shared by the benchmark scripts (run them from anywhere: the script's folder
is on ``sys.path``)."""

import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


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


def gru_choice(value: str | None):
    """``SKSEQSLEEP_GRU=value`` inside a ``with`` block (:func:`skseqsleep.nn.gru_backend`;
    the choice is read at every GRU call), restored after it; ``None`` leaves it as it is."""
    from skseqsleep.nn._gru_ext import environ

    return environ("SKSEQSLEEP_GRU", value)


def machine() -> dict:
    """The machine, interpreter, torch build, threads, load average and GPU of this run."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_avg": os.getloadavg(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
