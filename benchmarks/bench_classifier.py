"""SeqSleepClassifier speed, measured side by side in one run (REFERENCE §3-§5 sizes).

1. Training throughput (windows per second) of ``SeqSleepClassifier.fit`` (per-window
   sampler: shuffled windows gathered from the epoch array on the fly, skorch loop, L2 term,
   Adam), next to a plain hand-written torch loop doing the same work on the same windows
   (gather, forward, cross-entropy + L2, backward, Adam step): the ratio is the estimator's
   overhead.
2. Time to stage one 8-hour night (960 epochs) from the raw signal: fitted
   ``SpectrogramTransformer.transform`` + ``predict`` (shift-by-one ensemble with
   multiplicative fusion), with the default ``inference="encode-once"`` (ARNN once per epoch,
   SeqRNN over all windows) next to ``inference="per-window"`` (the full network on each of
   the 941 windows, the plain reference computation).

Full-size network: GRU cells, 32 filters, 64 hidden units, attention 64, L = 20, 1 channel.
Timings are the best of ``--repeat`` runs (the machine may be shared).

Usage::

    python benchmarks/bench_classifier.py [--threads N] [--steps S] [--repeat R]
"""

import argparse
import time

import numpy as np
import torch
from _clock import StepClock
from _timing import best_of, machine

from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
from skseqsleep.nn import SeqSleepNet


def raw_night(n_epochs, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(3000) / 100
    y = np.repeat(rng.integers(0, 5, n_epochs // 10 + 1), 10)[:n_epochs]
    x = 3 * np.sin(2 * np.pi * (2 + 4 * y[:, None]) * t) + rng.normal(size=(n_epochs, 3000))
    return x.astype(np.float32), y


def plain_training(X, y, n_steps, batch_size=32, seq_len=20, seed=0):
    """Hand-written loop: the same windows, network, loss and optimiser, no skorch.

    Returns the total time (network creation included) and the end time of every step."""
    t0 = time.perf_counter()
    ends = []
    torch.manual_seed(seed)
    net = SeqSleepNet(n_channels=X.shape[1], seq_len=seq_len)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    penalised = list(net.l2_parameters())
    rng = np.random.default_rng(seed)
    starts = rng.permutation(len(X) - seq_len + 1)
    offsets = np.arange(seq_len)
    net.train()
    for b in range(n_steps):
        idx = starts[b * batch_size:(b + 1) * batch_size, None] + offsets
        xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
        logits = net(xb)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), yb.reshape(-1))
        loss = loss + 1e-3 / (2 * batch_size) * sum(p.pow(2).sum() for p in penalised)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ends.append(time.perf_counter())
    return ends[-1] - t0, ends


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=8, help="training steps timed (>= 2)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error(f"--steps must be at least 2 (the rate is measured between the first and "
                     f"the last step), got {args.steps}")
    torch.set_num_threads(args.threads)
    print("machine:", machine())

    # the first torch optimiser of a process imports torch._dynamo (seconds): do it untimed
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])

    # ---------------------------------------------------------------- training throughput
    seq_len, batch = 20, 32
    n_windows = args.steps * batch
    raw, y = raw_night(n_windows + seq_len - 1, seed=1)
    X = SpectrogramTransformer(fs=100).fit_transform(raw)
    recs = np.zeros(len(X), dtype=int)

    def estimator_fit():
        clock = StepClock()
        t0 = time.perf_counter()
        SeqSleepClassifier(max_epochs=1, verbose=0, device="cpu", random_state=0,
                           callbacks=[("clock", clock)]).fit(X, y, recordings=recs)
        total = time.perf_counter() - t0
        return total, clock.ends_

    def steady(ends):
        # steps 2..S: from the end of the first step to the end of the last one
        return (len(ends) - 1) * batch / (ends[-1] - ends[0])

    est, plain = [], []
    for _ in range(args.repeat):        # interleaved, so that load changes hit both
        est.append(estimator_fit())
        plain.append(plain_training(X, y, args.steps))
    r_est = max(steady(ends) for _, ends in est)
    r_plain = max(steady(ends) for _, ends in plain)
    t_est = min(total for total, _ in est)
    t_plain = min(total for total, _ in plain)
    print(f"training, {args.steps} steps of {batch} windows of {seq_len} epochs "
          f"(steady state over steps 2..{args.steps}):")
    print(f"  SeqSleepClassifier.fit  {r_est:8.1f} windows/s")
    print(f"  plain torch loop        {r_plain:8.1f} windows/s")
    print(f"  ratio estimator / plain throughput: {r_est / r_plain:.2f}")
    print(f"  whole fit (checks, initialisation, {args.steps} steps) {t_est:.2f} s, plain loop "
          f"(network creation, {args.steps} steps) {t_plain:.2f} s, ratio {t_plain / t_est:.2f}")

    # ---------------------------------------------------------------- staging one night
    night, _ = raw_night(960, seed=2)
    transformer = SpectrogramTransformer(fs=100).fit(night)
    clf = SeqSleepClassifier(max_epochs=1, verbose=0, device="cpu", random_state=0)
    clf.fit(X, y, recordings=recs)           # weights do not matter for timing
    rec_night = np.zeros(960, dtype=int)

    def stage(inference):
        clf.set_params(inference=inference)
        return clf.predict(transformer.transform(night), recordings=rec_night)

    t_tr = best_of(lambda: transformer.transform(night), args.repeat)
    t_once = best_of(lambda: stage("encode-once"), args.repeat)
    t_win = best_of(lambda: stage("per-window"), max(1, args.repeat - 1))
    same = np.array_equal(stage("encode-once"), stage("per-window"))
    clf.set_params(inference="encode-once")
    print("staging one 8-hour night (960 epochs, 941 windows) from the raw signal:")
    print(f"  transform only                          {t_tr:7.3f} s")
    print(f"  transform + predict, encode-once        {t_once:7.3f} s")
    print(f"  transform + predict, per-window (plain) {t_win:7.3f} s")
    print(f"  speed-up encode-once vs per-window: {t_win / t_once:.1f}x "
          f"(identical predictions: {same})")


if __name__ == "__main__":
    main()
