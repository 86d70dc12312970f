"""A skorch callback timing the training steps of a classifier fit (shared by the benchmark
scripts; run them from anywhere: the script's folder is on ``sys.path``)."""

import time

import numpy as np
import torch
from skorch.callbacks import Callback

from skseqsleep.classifier import resolve_device


class StepClock(Callback):
    """Record the time of every training step end; stop the fit after ``n_steps`` steps
    (``None``: never). On CUDA the clock synchronises first (kernels run asynchronously)."""

    def __init__(self, n_steps: int | None = None, device: str = "cpu"):
        self.n_steps = n_steps
        self.device = device

    def _now(self) -> float:
        if resolve_device(self.device).startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_begin(self, net, **kwargs):
        self.stamps_ = [self._now()]

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.stamps_.append(self._now())
            if self.n_steps is not None and len(self.stamps_) > self.n_steps:
                raise KeyboardInterrupt  # skorch ends fit cleanly

    @property
    def ends_(self) -> list[float]:
        """End time of every training step."""
        return self.stamps_[1:]

    def step_times(self) -> np.ndarray:
        """Duration of every training step (the first includes the wait for its batch)."""
        return np.diff(self.stamps_)
