"""SeqSleepNet speed and memory, measured side by side in one run (issue 6).

Prints, on this machine:

1. training windows per second of ``SeqSleepClassifier.fit``: ``train_sampler="per-window"``
   (the reference: every window runs the whole network) versus ``"shared"`` (contiguous
   window blocks, each distinct epoch encoded once, :mod:`skseqsleep._fast`); median step
   time over a bounded number of steps, the two samplers alternated in rounds;
2. prediction of one 8-hour night (960 epochs): ``inference="per-window"`` versus
   ``"encode-once"``, and the time to stage that night from raw signal
   (``SpectrogramTransformer.transform`` + ``predict``);
3. ``SpectrogramTransformer`` epochs per second;
4. peak memory (``ru_maxrss``, in a subprocess) of a pipeline fit on 40 000 epochs of raw
   signal, bounded to a few training steps (``--memory-steps``);
5. training-step throughput of physioex's SeqSleepNet (PyPI ``physioex==2.0.4``, in its own
   venv under ``~/.cache/skseqsleep-bench``, created on first use with ``torch==2.13.0``)
   against this package's network at the same batch size (32), sequence length (20) and input
   size (1 x 29 x 129), steps interleaved in one process;
6. optionally (``--accuracy-seeds S ...``) test accuracy of the samplers on simulated cohorts
   (``skseqsleep.datasets.make_sleep_cohort``), one per seed: per-window, shared, shared with
   each ``--block-sizes`` block, and optionally per-window with another training seed (the
   noise floor, ``--accuracy-noise``), shared with more passes
   (``--accuracy-shared-passes``) and, as a control (``--accuracy-composition``), the shared
   sampler's minibatches computed window by window (:class:`BlockedPerWindow`: dropout masks
   and batch statistics per window, as the reference), which separates the effect of the
   minibatch composition from that of sharing the epoch computation.

Run from the repository root::

    python benchmarks/bench_seqsleepnet.py                # everything but accuracy
    python benchmarks/bench_seqsleepnet.py --skip training prediction memory physioex \
        --threads 1 --accuracy-seeds 0 1 2 --block-sizes 16 8 --accuracy-noise
    python benchmarks/bench_seqsleepnet.py --quick        # smoke run, smaller sizes

Figures and the machine they were taken on are recorded in ``docs/performance.rst``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _clock import StepClock
from _timing import gru_choice, machine, median_time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
from skseqsleep._fast import WindowBlockBatch
from skseqsleep.nn._gru_ext import gru_backend

BATCH, L, T, F = 32, 20, 29, 129
PHYSIOEX = "physioex==2.0.4"
TORCH_PIN = "torch==2.13.0"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
class BlockedPerWindow(SeqSleepClassifier):
    """Control for the accuracy section: the shared sampler's minibatches (blocks of
    neighbouring windows), but every window runs the whole network, with its own dropout
    masks, as in the per-window sampler. Only the minibatch composition differs from the
    reference; only the shared computation differs from ``train_sampler="shared"``."""

    def infer(self, x, **fit_params):
        if isinstance(x, WindowBlockBatch):   # the windows, gathered: per-window computation
            x = x.epochs[torch.as_tensor(x.windows)]
        return super().infer(x, **fit_params)


def make_classifier(sampler: str, block_size: int | None = None, **kw) -> SeqSleepClassifier:
    """A classifier with ``train_sampler=sampler`` (and ``train_block_size`` when shared)."""
    if sampler == "shared":
        kw["train_block_size"] = block_size
    return SeqSleepClassifier(train_sampler=sampler, **kw)


def random_spectrograms(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, T, F), dtype=np.float32)


def random_raw(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3000), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# 1. training windows per second through SeqSleepClassifier.fit
# ---------------------------------------------------------------------------------------------
def bench_training(args) -> dict:
    n_rec, per_rec = 4, 500
    X = random_spectrograms(n_rec * per_rec)
    y = np.random.default_rng(1).integers(0, 5, len(X))
    rec = np.repeat([f"night{i}" for i in range(n_rec)], per_rec)
    # (name, sampler, block size, GRU backend); "shared" alone is the classifier's own setting,
    # None the package's GRU choice (SKSEQSLEEP_GRU, default auto: compiled on the CPU)
    variants = [("per-window", "per-window", None, None), ("shared", "shared", None, None)]
    variants += [(f"shared, blocks of {b}", "shared", b, None) for b in args.block_sizes]
    if args.cell == "gru" and args.device == "cpu" and not args.no_torch_gru:
        variants += [(f"{s}, torch.nn.GRU", s, None, "torch") for s in ("per-window", "shared")]
    times = {name: [] for name, _, _, _ in variants}
    for r in range(args.rounds):
        for name, sampler, block, gru in variants:
            n = (args.train_steps_per_window if sampler == "per-window"
                 else args.train_steps_shared)
            clock = StepClock(n + 2, args.device)
            clf = make_classifier(sampler, block_size=block, max_epochs=100, verbose=0,
                                  cell=args.cell,
                                  device=args.device, random_state=r,
                                  callbacks=[("clock", clock)])
            with gru_choice(gru):
                clf.fit(X, y, recordings=rec)
            times[name].extend(clock.step_times()[2:])  # first 2 steps: warm-up
    out = {"variants": [name for name, _, _, _ in variants]}
    gflop = {}    # per (sampler, block): the torch.nn.GRU rows count the same network
    for name, sampler, block, _ in variants:
        med = float(np.median(times[name]))
        if (sampler, block) not in gflop:
            gflop[sampler, block] = step_gflop(sampler, block, args.cell)
        out[name] = {"median_step_s": med, "windows_per_s": BATCH / med,
                     "n_steps": len(times[name]), "gflop_per_step": gflop[sampler, block]}
    out["speedup"] = out["shared"]["windows_per_s"] / out["per-window"]["windows_per_s"]
    out["via"] = "SeqSleepClassifier(train_sampler=..., train_block_size=...)"
    out["cell"] = args.cell
    out["gru"] = gru_backend(args.device) if args.cell == "gru" else None
    return out


def step_gflop(sampler: str, block: int | None, cell: str = "gru") -> float:
    """Floating-point operations of one training step's forward + backward pass, counted by
    ``torch.utils.flop_counter`` (matrix products; element-wise work is not counted).

    Counted with ``torch.nn.GRU``'s recurrence (``SKSEQSLEEP_GRU=torch``): the compiled one
    makes the same matrix products, but the counter does not see its in-place ``addmm_``."""

    from torch.utils.flop_counter import FlopCounterMode

    from skseqsleep._fast import WindowBlockSampler, shared_forward
    from skseqsleep.nn import SeqSleepNet

    net = SeqSleepNet(cell=cell).train()
    X = torch.from_numpy(random_spectrograms(2000, seed=5))
    with gru_choice("torch"), FlopCounterMode(display=False) as counter:
        if sampler == "per-window":
            starts = torch.arange(BATCH) * 60
            out = net(X[starts[:, None] + torch.arange(L)])
        else:
            b = next(iter(WindowBlockSampler([[0, 1000], [1000, 2000]], L, BATCH,
                                             block_size=block, random_state=0)))
            out = shared_forward(net, X[torch.as_tensor(b.epochs)], torch.as_tensor(b.windows))
        out.sum().backward()
    return counter.get_total_flops() / 1e9


# ---------------------------------------------------------------------------------------------
# 2-3. prediction, staging one night, transformer
# ---------------------------------------------------------------------------------------------
def bench_prediction(args) -> dict:
    n_night = 960
    raw_train = random_raw(2000, seed=2)
    raw_night = random_raw(n_night, seed=3)
    tf = SpectrogramTransformer().fit(raw_train)
    # a fitted classifier of the default architecture (weights do not matter for timing)
    Xtr = tf.transform(raw_train[:200])
    clf = SeqSleepClassifier(max_epochs=1, verbose=0, device=args.device, random_state=0)
    clf.fit(Xtr, np.arange(200) % 5, recordings=np.zeros(200, int))
    rec = np.zeros(n_night, int)

    def stage():
        return clf.predict(tf.transform(raw_night), recordings=rec)

    stage()  # warm-up
    t_stage = median_time(stage, args.repeat)
    Xn = tf.transform(raw_night)
    t_encode_once = median_time(lambda: clf.set_params(inference="encode-once").predict(
        Xn, recordings=rec), args.repeat)
    t0 = time.perf_counter()
    clf.set_params(inference="per-window").predict(Xn, recordings=rec)
    t_per_window = time.perf_counter() - t0  # once: ~20 x the work
    clf.set_params(inference="encode-once")
    # transformer throughput on a larger block of epochs
    raw_big = random_raw(args.transform_epochs, seed=4)
    tf.transform(raw_big[:100])
    t_tf = median_time(lambda: tf.transform(raw_big), args.repeat)
    return {
        "night_epochs": n_night,
        "stage_night_from_raw_s": t_stage,
        "predict_encode_once_s": t_encode_once,
        "predict_per_window_s": t_per_window,
        "prediction_speedup": t_per_window / t_encode_once,
        "transformer_epochs_per_s": args.transform_epochs / t_tf,
        "transformer_epochs": args.transform_epochs,
    }


# ---------------------------------------------------------------------------------------------
# 4. peak memory of a fit on 40 000 epochs (subprocess)
# ---------------------------------------------------------------------------------------------
MEMORY_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
import torch
torch.set_num_threads({threads})
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench_dir!r})
import bench_seqsleepnet as B
from sklearn.pipeline import Pipeline
from skseqsleep import SpectrogramTransformer

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

n, per = {n_epochs}, 1000
raw = np.random.default_rng(0).standard_normal((n, 3000), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 5, n)
rec = np.repeat(np.arange(n // per), per)
rss_data = rss_mb()
clock = B.StepClock({steps})
clf = B.make_classifier({sampler!r}, max_epochs=1, verbose=0, device={device!r}, random_state=0,
                        callbacks=[("clock", clock)])
pipe = Pipeline([("spectrogram", SpectrogramTransformer()), ("classifier", clf)])
t0 = time.perf_counter()
pipe.fit(raw, y, classifier__recordings=rec)
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
gpu_peak = (torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None)
print(json.dumps({{"rss_after_data_mb": rss_data, "peak_rss_mb": peak, "gpu_peak_mb": gpu_peak,
                  "n_steps": len(clock.step_times()), "fit_s": elapsed}}))
"""


def bench_memory(args) -> dict:
    out = {"n_epochs": args.memory_epochs, "steps": args.memory_steps}
    raw_mb = args.memory_epochs * 3000 * 4 / 2**20
    spec_mb = args.memory_epochs * T * F * 4 / 2**20
    out["raw_mb"], out["spectrograms_mb"] = raw_mb, spec_mb
    out["materialised_windows_mb"] = (args.memory_epochs - L + 1) * L * T * F * 4 / 2**20
    for sampler in ("per-window", "shared"):
        code = MEMORY_SCRIPT.format(root=str(ROOT), bench_dir=str(Path(__file__).parent),
                                    n_epochs=args.memory_epochs, steps=args.memory_steps,
                                    sampler=sampler, threads=torch.get_num_threads(),
                                    device=args.device)
        res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
        if res.returncode != 0:
            out[sampler] = {"error": res.stderr[-2000:]}
            continue
        out[sampler] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


# ---------------------------------------------------------------------------------------------
# 5. physioex's SeqSleepNet, interleaved with ours in its venv
# ---------------------------------------------------------------------------------------------
PHYSIOEX_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from physioex.models.seqsleepnet import SeqSleepNet as PxNet
from skseqsleep.nn import SeqSleepNet
from skseqsleep._fast import WindowBlockSampler, shared_forward

B, L, T, F = 32, 20, 29, 129
torch.manual_seed(0)
X = torch.randn(2000, 1, T, F)
y = torch.randint(0, 5, (2000,))
ce = torch.nn.functional.cross_entropy

def trainer(net, forward):
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    def step(batch):
        out = forward(net, batch)
        loss = ce(out.reshape(-1, out.shape[-1]), batch["y"].reshape(-1))
        opt.zero_grad(); loss.backward(); opt.step()
    return step

def windows_forward(net, b):
    return net(b["x"])

def shared(net, b):
    return shared_forward(net, b["epochs"], b["windows"])

nets = {{
    "physioex default (LSTM x4 / GRU x4, attention 32)":
        trainer(PxNet(in_chan=1), windows_forward),
    "physioex paper sizes (1 layer each, attention 64)":
        trainer(PxNet(in_chan=1, seqnlayer1=1, seqnlayer2=1, attentionsize=64), windows_forward),
    "skseqsleep per-window": trainer(SeqSleepNet(), windows_forward),
    "skseqsleep shared": trainer(SeqSleepNet(), shared),
}}
per_window = iter(WindowBlockSampler([[0, 2000]], L, B, block_size=1, random_state=1))
blocks = iter(WindowBlockSampler([[0, 2000]], L, B, random_state=2))

def batch_for(name):
    if name.endswith("shared"):
        b = next(blocks)
        return {{"epochs": X[torch.as_tensor(b.epochs)], "windows": torch.as_tensor(b.windows),
                "y": y[torch.as_tensor(b.starts)[:, None] + torch.arange(L)]}}
    b = next(per_window)
    idx = torch.as_tensor(b.starts)[:, None] + torch.arange(L)
    return {{"x": X[idx], "y": y[idx]}}

times = {{k: [] for k in nets}}
for r in range({steps} + 2):
    for name, step in nets.items():
        b = batch_for(name)
        t0 = time.perf_counter(); step(b); dt = time.perf_counter() - t0
        if r >= 2:
            times[name].append(dt)
print(json.dumps({{k: float(np.median(v)) for k, v in times.items()}}))
"""


def physioex_python(args) -> Path | str:
    venv = Path(args.physioex_venv).expanduser()
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} and installing {TORCH_PIN} {PHYSIOEX} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        res = subprocess.run([str(py), "-m", "pip", "install", "-q", TORCH_PIN, PHYSIOEX],
                             check=False, capture_output=True, text=True)
        if res.returncode != 0:
            return f"pip install failed: {res.stderr[-1500:]}"
    return py


def bench_physioex(args) -> dict:
    py = physioex_python(args)
    if isinstance(py, str):
        return {"error": py}
    code = PHYSIOEX_SCRIPT.format(root=str(ROOT), threads=torch.get_num_threads(),
                                  steps=args.physioex_steps)
    res = subprocess.run([str(py), "-c", code], check=False, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    med = json.loads(res.stdout.strip().splitlines()[-1])
    return {name: {"median_step_s": t, "windows_per_s": BATCH / t} for name, t in med.items()}


# ---------------------------------------------------------------------------------------------
# 6. accuracy of the two samplers on a simulated cohort
# ---------------------------------------------------------------------------------------------
def accuracy_variants(args) -> list[tuple[str, dict]]:
    """(name, classifier settings) of every accuracy variant, per-window first."""
    passes = args.accuracy_epochs

    def shared_blocks(suffix="", **extra):  # blocks of 32, then each --block-sizes
        return [(("shared" if b is None else f"shared, blocks of {b}") + suffix,
                 {"train_sampler": "shared", "train_block_size": b, "max_epochs": passes,
                  **extra}) for b in [None, *args.block_sizes]]

    out = [("per-window", {"train_sampler": "per-window", "max_epochs": passes})]
    if args.accuracy_noise:  # the noise floor: the reference with another training seed
        out.append(("per-window, other seed", {"train_sampler": "per-window",
                                               "max_epochs": passes, "seed_offset": 1000}))
    out += shared_blocks()
    if args.accuracy_composition:
        out.append(("shared minibatches, per-window computation",
                    {"train_sampler": "shared", "max_epochs": passes,
                     "estimator": BlockedPerWindow}))
    if args.accuracy_shared_passes:
        out.append((f"shared, {args.accuracy_shared_passes} passes",
                    {"train_sampler": "shared", "max_epochs": args.accuracy_shared_passes}))
    for lr in args.accuracy_lrs:  # both samplers (every block size) at another learning rate
        out.append((f"per-window, lr {lr:g}", {"train_sampler": "per-window",
                                               "max_epochs": passes, "lr": lr}))
        out += shared_blocks(f", lr {lr:g}", lr=lr)
    return out


def bench_accuracy(args) -> dict:
    from skseqsleep.datasets import make_sleep_cohort

    n_test = max(1, args.accuracy_subjects // 4)
    variants = accuracy_variants(args)
    out = {"variants": [name for name, _ in variants], "seeds": [],
           "subjects": args.accuracy_subjects, "test_subjects": n_test,
           "passes": args.accuracy_epochs, "accuracy": {}, "fit_s": {}}
    for seed in args.accuracy_seeds:
        data = make_sleep_cohort(n_subjects=args.accuracy_subjects, random_state=seed)
        subjects = np.unique(data.groups)
        test = np.isin(data.groups, subjects[:n_test])
        tf = SpectrogramTransformer(fs=data.fs).fit(data.X[~test])
        Xtr, Xte = tf.transform(data.X[~test]), tf.transform(data.X[test])
        line = []
        for name, settings in variants:
            settings = dict(settings)
            random_state = seed + settings.pop("seed_offset", 0)
            estimator = settings.pop("estimator", SeqSleepClassifier)
            clf = estimator(verbose=0, device=args.device, random_state=random_state,
                            **settings)
            t0 = time.perf_counter()
            clf.fit(Xtr, data.y[~test], recordings=data.recordings[~test])
            fit_s = time.perf_counter() - t0
            acc = float(np.mean(clf.predict(Xte, recordings=data.recordings[test])
                                == data.y[test]))
            out["accuracy"].setdefault(name, []).append(acc)
            out["fit_s"].setdefault(name, []).append(fit_s)
            line.append(f"{name} {acc:.4f} ({fit_s:.0f} s)")
        out["seeds"].append(seed)
        print(f"  seed {seed}: " + "; ".join(line), flush=True)
    return out


# ---------------------------------------------------------------------------------------------
def report(results: dict) -> None:
    m = results["machine"]
    print("\n=== SeqSleepNet benchmark ===")
    print(f"machine: {m['nproc']} cores, {m['cpu']}, torch {m['torch']} "
          f"({m['torch_threads']} threads), python {m['python']}")
    print(f"GPU: {m.get('gpu') or 'none visible to torch'}; classifier device: "
          f"{results['args']['device']}")
    print(f"load average at start {m['load_avg']}, at end {results['load_avg_end']}")
    if "training" in results:
        tr = results["training"]
        gru = f", GRU recurrence: {tr['gru']}" if tr.get("gru") else ""
        print(f"\n[1] training windows/s through {tr['via']} ({tr.get('cell', 'gru')} cells"
              f"{gru}, batch {BATCH}, L {L}, "
              "median step incl. data gathering, loss with L2, Adam):")
        pw = tr["per-window"]["windows_per_s"]
        fl = tr["per-window"]["gflop_per_step"]
        for s in tr.get("variants", ("per-window", "shared")):
            print(f"    {s:22s} {tr[s]['windows_per_s']:8.1f} windows/s "
                  f"(median step {tr[s]['median_step_s'] * 1000:.1f} ms over "
                  f"{tr[s]['n_steps']} steps; {tr[s]['windows_per_s'] / pw:.2f}x per-window; "
                  f"{tr[s]['gflop_per_step']:.2f} GFLOP/step, {fl / tr[s]['gflop_per_step']:.2f}x "
                  f"fewer; {tr[s]['gflop_per_step'] / tr[s]['median_step_s']:.1f} GFLOP/s)")
        print(f"    shared / per-window: {tr['speedup']:.2f}x   (target >= 6x; the FLOP ratio "
              f"{fl / tr['shared']['gflop_per_step']:.2f}x is the ceiling at equal efficiency)")
        if "per-window, torch.nn.GRU" in tr:
            ref = tr["per-window, torch.nn.GRU"]["windows_per_s"]
            print(f"    with torch.nn.GRU in both samplers: "
                  f"{tr['shared, torch.nn.GRU']['windows_per_s'] / ref:.2f}x; shared (this "
                  f"package's GRU) / per-window with torch.nn.GRU: "
                  f"{tr['shared']['windows_per_s'] / ref:.2f}x")
    if "prediction" in results:
        p = results["prediction"]
        print(f"\n[2] one 8-hour night ({p['night_epochs']} epochs):")
        print(f"    predict, inference='per-window' : {p['predict_per_window_s']:.3f} s")
        print(f"    predict, inference='encode-once': {p['predict_encode_once_s']:.3f} s"
              f"   -> {p['prediction_speedup']:.1f}x   (target >= 10x)")
        print(f"    staged from raw signal (transform + predict): "
              f"{p['stage_night_from_raw_s']:.3f} s   (target < 1 s)")
        print(f"[3] SpectrogramTransformer.transform: {p['transformer_epochs_per_s']:.0f} "
              f"epochs/s ({p['transformer_epochs']} epochs)")
    if "memory" in results:
        mem = results["memory"]
        print(f"\n[4] pipeline fit on {mem['n_epochs']} epochs of raw signal "
              f"(SpectrogramTransformer + classifier, stopped after {mem['steps']} training "
              "steps), peak RSS of the process:")
        print(f"    raw signal {mem['raw_mb']:.0f} MiB, spectrograms {mem['spectrograms_mb']:.0f} "
              f"MiB; materialised windows would be {mem['materialised_windows_mb'] / 1024:.1f} "
              "GiB")
        for s in ("per-window", "shared"):
            r = mem[s]
            if "error" in r:
                print(f"    {s}: failed: {r['error']}")
                continue
            gpu = (f"; GPU memory peak {r['gpu_peak_mb']:.0f} MiB"
                   if r.get("gpu_peak_mb") is not None else "")
            print(f"    {s:11s} peak {r['peak_rss_mb']:.0f} MiB (RSS after making the data "
                  f"{r['rss_after_data_mb']:.0f} MiB; fit {r['fit_s']:.1f} s{gpu})")
    if "physioex" in results:
        px = results["physioex"]
        print(f"\n[5] training steps, batch {BATCH} x L {L} x (1, {T}, {F}), Adam, "
              "interleaved in one process (physioex venv):")
        if "error" in px:
            print(f"    failed: {px['error']}")
        else:
            ref = px["skseqsleep shared"]["median_step_s"]
            for name, r in px.items():
                print(f"    {name:52s} {r['median_step_s'] * 1000:8.1f} ms/step "
                      f"{r['windows_per_s']:8.1f} windows/s  ({r['median_step_s'] / ref:.2f}x "
                      "the shared step time)")
    if "accuracy" in results:
        a = results["accuracy"]
        acc = {name: np.array(v) for name, v in a["accuracy"].items()}
        pw = acc["per-window"]
        print(f"\n[6] test accuracy (fused predictions) on simulated cohorts "
              f"(make_sleep_cohort, {a['subjects']} subjects x one 960-epoch night, "
              f"{a['test_subjects']} test), {a['passes']} training passes unless named, "
              f"seeds {a['seeds']}:")
        for name in a["variants"]:
            v, d = acc[name], (acc[name] - pw) * 100
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            diff = "" if name == "per-window" else (
                f"; minus per-window {d.mean():+.2f} points (standard error {se:.2f}, "
                f"worse in {int((d < 0).sum())} of {len(d)})")
            print(f"    {name:42s} mean {v.mean():.4f}, mean fit "
                  f"{np.mean(a['fit_s'][name]):.0f} s{diff}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["training", "prediction", "memory", "physioex"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--train-steps-per-window", type=int, default=10)
    ap.add_argument("--train-steps-shared", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--transform-epochs", type=int, default=9600)
    ap.add_argument("--memory-epochs", type=int, default=40_000)
    ap.add_argument("--memory-steps", type=int, default=20)
    ap.add_argument("--physioex-steps", type=int, default=10)
    ap.add_argument("--physioex-venv", default="~/.cache/skseqsleep-bench/physioex-venv")
    ap.add_argument("--accuracy-seeds", type=int, nargs="*", default=[],
                    help="cohort/training seeds of the accuracy comparison (none: skipped)")
    ap.add_argument("--accuracy-subjects", type=int, default=6,
                    help="simulated subjects (one 960-epoch night each); a quarter are test")
    ap.add_argument("--accuracy-epochs", type=int, default=4, help="training passes")
    ap.add_argument("--accuracy-noise", action="store_true",
                    help="also train per-window with another seed (the noise floor)")
    ap.add_argument("--accuracy-shared-passes", type=int, default=None,
                    help="also train the shared sampler (blocks of 32) this many passes")
    ap.add_argument("--accuracy-lrs", type=float, nargs="*", default=[], metavar="LR",
                    help="also train per-window and shared (blocks of 32 and of each "
                         "--block-sizes) with these Adam learning rates (the classifier's "
                         "default is 1e-4, REFERENCE §4)")
    ap.add_argument("--accuracy-composition", action="store_true",
                    help="also train with the shared sampler's minibatches computed window by "
                         "window (composition control)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's default); 1 is far more stable on "
                         "a machine shared with other jobs")
    ap.add_argument("--block-sizes", type=int, nargs="*", default=[],
                    help="also time (and, with --accuracy-seeds, evaluate) the shared sampler "
                         "with these block sizes (windows per contiguous block; the default "
                         "block is the batch size, 32)")
    ap.add_argument("--device", default="cpu",
                    help="torch device of the classifier sections: cpu (default), cuda, or "
                         "auto (CUDA when available); the physioex section stays on the CPU")
    ap.add_argument("--cell", default="gru", choices=("gru", "lstm", "bnlstm"),
                    help="recurrent cell of the training section's network (default gru, the "
                         "paper's; bnlstm is the authors' released models' cell)")
    ap.add_argument("--no-torch-gru", action="store_true",
                    help="do not also time both samplers with torch.nn.GRU's recurrence "
                         "(SKSEQSLEEP_GRU=torch) beside the package's default")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.rounds, args.train_steps_per_window, args.train_steps_shared = 1, 3, 6
        args.repeat, args.transform_epochs = 1, 960
        args.memory_epochs, args.memory_steps, args.physioex_steps = 4000, 3, 2
    results = {"machine": machine(), "args": vars(args)}
    sections = [("training", bench_training), ("prediction", bench_prediction),
                ("memory", bench_memory), ("physioex", bench_physioex)]
    for name, fn in sections:
        if name in args.skip:
            continue
        print(f"running {name}...", flush=True)
        results[name] = fn(args)
    if args.accuracy_seeds:
        print("running accuracy...", flush=True)
        results["accuracy"] = bench_accuracy(args)
    results["load_avg_end"] = os.getloadavg()
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
