"""Derive the stage-transition statistics used by ``make_sleep_cohort``.

Reads the 39 official Sleep-EDF-SC-20 hypnograms (subjects 0-19) from the shared data folder
with :func:`skseqsleep.datasets.read_hypnogram`, keeps the in-bed part of each night with
:func:`skseqsleep.datasets.trim_in_bed` and the package's shipped in-bed table (REFERENCE §1:
from max(lights-off, hypnogram start) to min(lights-on, recording stop), whole 30-s epochs),
maps R&K stages to AASM (S3 and S4 -> N3) and counts, per fraction-of-night bin, the epoch-to-
epoch stage transitions. Only numbers (counts, proportions, smoothed probabilities) are written
to ``skseqsleep/datasets/data/hypnogram_transition_stats.json``; no data are copied.

Run from the repository root::

    python tools/derive_hypnogram_stats.py [--shared ../shared] [--n-bins 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from skseqsleep._constants import EPOCH_SECONDS as EPOCH
from skseqsleep._constants import STAGES
from skseqsleep.datasets import read_hypnogram, trim_in_bed

#: left edges (epochs since the last REM epoch) of the REM-refractoriness bins
REM_EDGES = [0, 1, 2, 4, 10, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 240, 300]


def epochs_since_rem(night: np.ndarray) -> np.ndarray:
    """tau per epoch: epochs since the last REM epoch, else since sleep onset, else 0."""
    tau = np.zeros(night.size, dtype=np.int64)
    last = None
    asleep = False
    onset = 0
    for t, stage in enumerate(night):
        if last is not None:
            tau[t] = t - last
        elif asleep:
            tau[t] = t - onset
        if stage == 4:
            last = t
        if not asleep and stage > 0:
            asleep, onset = True, t
    return tau


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=root.parent / "shared")
    parser.add_argument("--n-bins", type=int, default=10)
    parser.add_argument("--smoothing", type=float, default=20.0,
                        help="pseudo-count pulling each bin's rows towards the whole-night row")
    parser.add_argument("--out", type=Path,
                        default=root / "skseqsleep/datasets/data/hypnogram_transition_stats.json")
    args = parser.parse_args()

    data = args.shared / "data/sleep-edf"
    files = sorted((data / "hypnograms").glob("SC4*-Hypnogram.edf"))
    files = [f for f in files if int(f.name[3:5]) < 20]
    if len(files) != 39:
        raise SystemExit(f"expected the 39 SC-20 hypnograms, found {len(files)}")

    k = args.n_bins
    edges = np.array(REM_EDGES)
    rem_from = np.zeros(edges.size, dtype=np.int64)
    rem_to = np.zeros(edges.size, dtype=np.int64)
    counts = np.zeros((k, 5, 5), dtype=np.int64)
    initial = np.zeros(5, dtype=np.int64)
    stage_counts = np.zeros(5, dtype=np.int64)
    third_counts = np.zeros((3, 5), dtype=np.int64)
    lengths, n_excluded = [], 0
    for path in files:
        recording = path.name[:7] + "0"
        # the package's reader and the shipped in-bed table (REFERENCE §1)
        hyp = read_hypnogram(path)
        night = hyp.stages[trim_in_bed(hyp, "table", recording=recording).keep]
        n = night.size
        lengths.append(n)
        n_excluded += int((night < 0).sum())
        valid = night >= 0
        stage_counts += np.bincount(night[valid], minlength=5)
        frac = np.arange(n) / n
        third = np.minimum((frac * 3).astype(int), 2)
        np.add.at(third_counts, (third[valid], night[valid]), 1)
        if night[0] >= 0:
            initial[night[0]] += 1
        a, b = night[:-1], night[1:]
        ok = (a >= 0) & (b >= 0)
        bins = np.minimum((frac[:-1] * k).astype(int), k - 1)
        np.add.at(counts, (bins[ok], a[ok], b[ok]), 1)
        # REM refractoriness: entry into REM as a function of the time since REM
        tau = epochs_since_rem(night)
        nrem = ok & (a != 4)
        which = np.searchsorted(edges, tau[:-1], side="right") - 1
        np.add.at(rem_from, which[nrem], 1)
        np.add.at(rem_to, which[nrem & (b == 4)], 1)

    pooled = counts.sum(0).astype(float)
    pooled_p = pooled / pooled.sum(1, keepdims=True)
    rowsum = counts.sum(2, keepdims=True)
    probs = (counts + args.smoothing * pooled_p) / (rowsum + args.smoothing)

    overall = rem_to.sum() / rem_from.sum()
    factor = (rem_to + args.smoothing * overall) / (rem_from + args.smoothing) / overall
    out = {
        "description": (
            "Stage statistics of the in-bed part of the 39 Sleep-EDF-SC-20 hypnograms "
            "(subjects 0-19, official EDF+ hypnograms, R&K S3+S4 -> N3, movement/unscored "
            "epochs excluded), derived by tools/derive_hypnogram_stats.py. "
            "transition_counts[b][i][j]: number of epoch pairs (i at t, j at t+1) with t/n in "
            "[b/n_bins, (b+1)/n_bins); transition_probabilities: the same rows smoothed "
            f"towards the whole-night row with a pseudo-count of {args.smoothing:g}."),
        "stages": list(STAGES),
        "epoch_seconds": EPOCH,
        "n_recordings": len(files),
        "n_in_bed_epochs": int(sum(lengths)),
        "n_excluded_epochs": n_excluded,
        "night_length_epochs": {"mean": float(np.mean(lengths)), "min": int(min(lengths)),
                                "max": int(max(lengths))},
        "stage_counts": stage_counts.tolist(),
        "stage_proportions": np.round(stage_counts / stage_counts.sum(), 5).tolist(),
        "stage_proportions_by_third": np.round(
            third_counts / third_counts.sum(1, keepdims=True), 5).tolist(),
        "initial_stage_counts": initial.tolist(),
        "n_bins": k,
        "smoothing": args.smoothing,
        "transition_counts": counts.tolist(),
        "transition_probabilities": np.round(probs, 6).tolist(),
        "rem_refractoriness": {
            "description": (
                "Entries into REM from a non-REM epoch, binned by tau = epochs since the last "
                "REM epoch (before the first REM epoch: since sleep onset, the first non-W "
                "epoch; 0 before sleep onset). bin b holds tau in [edges[b], edges[b+1]). "
                "factor = smoothed entry rate of the bin / overall entry rate."),
            "bin_edges_epochs": REM_EDGES,
            "from_non_rem": rem_from.tolist(),
            "to_rem": rem_to.tolist(),
            "factor": np.round(factor, 5).tolist(),
        },
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(files)} nights, {sum(lengths)} in-bed epochs ({n_excluded} excluded); "
          f"proportions {dict(zip(STAGES, out['stage_proportions']))}")
    print("by third:", out["stage_proportions_by_third"])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
