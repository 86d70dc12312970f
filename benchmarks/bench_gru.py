"""GRU recurrence: ``torch.nn.GRU`` against this package's compiled one, side by side.

Prints, on this machine, the time of one direction of a GRU layer (64 hidden units, from zero
state) over a whole sequence at the shapes a SeqSleepNet training step uses (REFERENCE §3:
29 frames per epoch, L = 20, batch 32 windows):

* the ARNN over the shared sampler's 51 distinct epochs (51 x 29 x 32 inputs),
* the SeqRNN over 32 windows (32 x 20 x 128),
* the ARNN over the per-window sampler's 640 epochs (640 x 29 x 32),

forward + backward (training) and forward only under ``torch.no_grad`` (prediction), the two
implementations alternated in rounds so that both see the same load. The backend is switched
with ``SKSEQSLEEP_GRU`` (``torch`` / ``compiled``, :mod:`skseqsleep.nn._gru_ext`).

Run from the repository root::

    python benchmarks/bench_gru.py --threads 1 [--rounds 3]

Figures and the machine they were taken on are recorded in ``docs/performance.rst``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _timing import gru_choice, machine, median_time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from skseqsleep.nn._gru_ext import gru_backend, gru_sequence

SHAPES = {"shared ARNN (51 epochs x 29 frames x 32)": (51, 29, 32),
          "SeqRNN (32 windows x 20 epochs x 128)": (32, 20, 128),
          "per-window ARNN (640 epochs x 29 frames x 32)": (640, 29, 32)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with gru_choice("compiled"):
        gru_backend()  # build (or load) the extension before timing
    print("machine:", machine())
    print("\none direction, 64 hidden units, median ms (training: forward + backward; "
          "prediction: forward under no_grad)")
    for label, (n, t, d) in SHAPES.items():
        torch.manual_seed(0)
        rnn = torch.nn.GRU(d, 64, batch_first=True)
        x = torch.randn(n, t, d, requires_grad=True)
        w = torch.randn(n, t, 64)
        reps = 30 if n < 100 else 8

        def train(x=x, rnn=rnn, w=w):
            (gru_sequence(x, rnn) * w).sum().backward()

        def predict(x=x, rnn=rnn):
            with torch.no_grad():
                gru_sequence(x, rnn)

        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for backend in ("torch", "compiled"):
                for kind, fn in (("train", train), ("predict", predict)):
                    with gru_choice(backend):
                        fn()
                        times.setdefault((kind, backend), []).append(median_time(fn, reps))
        med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        print(f"   {label}:")
        for kind in ("train", "predict"):
            a, b = med[kind, "torch"], med[kind, "compiled"]
            print(f"      {kind:8s} torch.nn.GRU {a:7.2f}, compiled {b:7.2f} ({a / b:.2f}x)")


if __name__ == "__main__":
    main()
