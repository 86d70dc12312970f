"""Dropout masks: ``torch.nn.Dropout`` (``bernoulli_``) against ``skseqsleep.nn.cells.Dropout``
(TensorFlow 1's rule, ``floor(keep + uniform)``), measured side by side in one run.

Prints, on this machine, for the full-size network of REFERENCE §3 (GRU cells, batch 32
windows, L = 20, Adam):

1. the time to draw and apply one mask of each shape a training step uses (the ARNN's input
   and output over the per-window sampler's 640 epochs, the SeqRNN's over 32 windows);
2. the median training step of each sampler (per-window: every window runs the whole
   network; shared: one block of 32 consecutive windows, each distinct epoch encoded once,
   :mod:`skseqsleep._fast`) with each dropout module swapped into every bidirectional RNN,
   the variants alternated in rounds so that both see the same load.

Run from the repository root::

    python benchmarks/bench_dropout.py --threads 1 [--rounds 3]

Figures and the machine they were taken on are recorded in ``docs/performance.rst``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _timing import best_of, machine, median_time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from skseqsleep._fast import WindowBlockSampler, shared_forward
from skseqsleep.nn import SeqSleepNet
from skseqsleep.nn.cells import BidirectionalRNN, Dropout

B, L, P = 32, 20, 0.25


def _use(net: nn.Module, kind: str) -> None:
    for m in net.modules():
        if isinstance(m, BidirectionalRNN):
            m.dropout = nn.Dropout(P) if kind == "torch" else Dropout(P)
    net.train()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8, help="per-window steps per round")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("machine:", machine())

    print("\n1. one mask drawn and applied (best of 20, ms)")
    shapes = {"ARNN input (640 epochs x 29 x 32)": (640, 29, 32),
              "ARNN output (640 epochs x 29 x 64)": (640, 29, 64),
              "SeqRNN input (32 windows x 20 x 128)": (B, L, 128)}
    tf_drop = Dropout(P).train()
    for name, shape in shapes.items():
        x = torch.randn(shape)
        t_torch = best_of(lambda x=x: nn.functional.dropout(x, P, True), 20)
        t_tf = best_of(lambda x=x: tf_drop(x), 20)
        print(f"   {name}: torch {t_torch * 1e3:.2f}, TF rule {t_tf * 1e3:.2f} "
              f"({t_torch / t_tf:.2f}x)")

    torch.manual_seed(0)
    n_epochs = 2000
    X = torch.randn(n_epochs, 1, 29, 129)
    y = torch.randint(0, 5, (n_epochs,))
    net = SeqSleepNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    blocks = list(WindowBlockSampler([[0, n_epochs]], L, B, random_state=0))
    rng = np.random.default_rng(0)
    state = {"i": 0}

    def step(sampler: str) -> None:
        if sampler == "per-window":
            starts = torch.as_tensor(rng.integers(0, n_epochs - L + 1, B))
            idx = starts[:, None] + torch.arange(L)
            logits, target = net(X[idx]), y[idx]
        else:
            b = blocks[state["i"] % len(blocks)]
            state["i"] += 1
            logits = shared_forward(net, X[torch.as_tensor(b.epochs)], b.windows)
            target = y[torch.as_tensor(b.starts)[:, None] + torch.arange(L)]
        loss = nn.functional.cross_entropy(logits.reshape(-1, 5), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    print("\n2. median training step (ms), variants alternated in rounds")
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for kind in ("torch", "tf"):
            _use(net, kind)
            for sampler, n in (("per-window", args.steps), ("shared", 4 * args.steps)):
                step(sampler)
                times.setdefault((sampler, kind), []).append(
                    median_time(lambda s=sampler: step(s), n))
    for sampler in ("per-window", "shared"):
        t_torch = float(np.median(times[sampler, "torch"]))
        t_tf = float(np.median(times[sampler, "tf"]))
        print(f"   {sampler}: torch.nn.Dropout {t_torch * 1e3:.1f}, TF rule {t_tf * 1e3:.1f} "
              f"({t_torch / t_tf:.2f}x faster)")
    for kind in ("torch", "tf"):
        ratio = np.median(times["per-window", kind]) / np.median(times["shared", kind])
        print(f"   shared / per-window speed-up with {kind} masks: {ratio:.2f}x")


if __name__ == "__main__":
    main()
