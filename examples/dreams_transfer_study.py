"""
Transfer-learning study on real data: MASS-pretrained EEG model -> DREAMS
=========================================================================

The finetuning study of Phan et al. (TBME 2020; REFERENCE §4, §6) run on a small real target
cohort: the authors' MASS-pretrained 1-channel EEG network (C4-A1, BN-LSTM cells, released as
a TensorFlow checkpoint) is transferred to the DREAMS Sleep Spindles excerpts, with
leave-one-excerpt-out cross-validation over the excerpts recorded at >= 100 Hz (7 excerpts,
307 scored 30-s epochs; excerpt 3 is recorded at 50 Hz and left out). Each fold compares
direct transfer, the four finetuning strategies and training from scratch, with the paper's
training settings (Adam 1e-4, 10 training epochs, validation every 10 steps, patience 50,
batch 32, L = 20) and one held-out excerpt of the training excerpts as inner validation set.
Metrics are pooled over the 7 test excerpts. The results are in ``docs/dreams_study.rst``.

Neither the DREAMS files (CC BY-NC-ND) nor the checkpoint are shipped with skseqsleep; this
script is not run when the documentation is built (no ``plot_`` prefix). Tell it where they
are::

    python examples/dreams_transfer_study.py --shared /path/to/shared
    python examples/dreams_transfer_study.py --dreams DREAMS_DIR \\
        --checkpoint .../1chan_eeg/pretrained_model.ckpt

``--shared`` (or the ``SKSEQSLEEP_SHARED`` environment variable) names a folder holding
``data/dreams/`` and ``pretrained/phan2019-mass/1chan_eeg/pretrained_model.ckpt.index``.
Results go to ``--output-dir`` (re-running with the same folder resumes); ``--rst FILE``
also writes the tables as reStructuredText. On 2 CPU cores (1 torch thread) the 42 fold fits
take about a quarter of an hour.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

#: Where the inputs lie inside a shared data folder (see ``--shared``).
DREAMS_SUBDIR = Path("data") / "dreams"
CHECKPOINT_SUBPATH = Path("pretrained") / "phan2019-mass" / "1chan_eeg" / "pretrained_model.ckpt"
METRIC_COLUMNS = (("accuracy", "Accuracy (%)", 100, 1), ("kappa", "Cohen's kappa", 1, 3),
                  ("macro_f1", "Macro F1 (%)", 100, 1),
                  ("macro_sensitivity", "Macro sensitivity (%)", 100, 1),
                  ("macro_specificity", "Macro specificity (%)", 100, 1))


def locate_inputs(shared=None, dreams=None, checkpoint=None, environ=None):
    """Return ``(dreams_dir, checkpoint_prefix)``, checked to exist.

    Explicit ``dreams`` / ``checkpoint`` win; the rest is taken from ``shared`` or, when that
    is None, from the ``SKSEQSLEEP_SHARED`` environment variable. Raises FileNotFoundError
    naming what is missing and where it was looked for.
    """
    environ = os.environ if environ is None else environ
    if shared is None and (dreams is None or checkpoint is None):
        shared = environ.get("SKSEQSLEEP_SHARED")
        if shared is None:
            missing = " and ".join(n for n, v in (("--dreams", dreams),
                                                  ("--checkpoint", checkpoint)) if v is None)
            raise FileNotFoundError(
                f"no data location given: pass {missing}, or --shared DIR (or set "
                "SKSEQSLEEP_SHARED) to a folder holding "
                f"{DREAMS_SUBDIR}/ and {CHECKPOINT_SUBPATH}.index")
    base = Path(shared).expanduser() if shared is not None else None
    dreams = Path(dreams).expanduser() if dreams is not None else base / DREAMS_SUBDIR
    checkpoint = (Path(checkpoint).expanduser() if checkpoint is not None
                  else base / CHECKPOINT_SUBPATH)
    if not dreams.is_dir():
        raise FileNotFoundError(f"DREAMS folder not found: {dreams} (expected excerptN.txt "
                                "and Hypnogram_excerptN.txt files there)")
    if not any(dreams.glob("excerpt*.txt")):
        raise FileNotFoundError(f"the DREAMS folder {dreams} holds no excerptN.txt file")
    from skseqsleep.pretrained.tensorbundle import resolve_checkpoint_prefix

    try:  # a prefix, its .index file or its folder, as ``--source checkpoint:`` reads them
        checkpoint = resolve_checkpoint_prefix(checkpoint)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"TensorFlow checkpoint not found: {exc} (give the prefix "
                                ".../1chan_eeg/pretrained_model.ckpt, its .index file or its "
                                "folder)") from None
    return dreams, checkpoint


def _rst_table(header, rows, widths=None):
    out = [".. list-table::", "   :header-rows: 1", ""]
    if widths:
        out[2:2] = [f"   :widths: {' '.join(str(w) for w in widths)}"]
    for row in [header, *rows]:
        out.append(f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(out) + "\n"


def pooled_table_rst(rows):
    """The pooled table (one row per strategy, paper's order) as an RST list-table.

    ``rows`` are :class:`skseqsleep.study.TableRow` objects (``StudyResult.rows``).
    """
    body = [[r.label, *(f"{scale * getattr(r, key):.{nd}f}"
                        for key, _, scale, nd in METRIC_COLUMNS), str(r.n_epochs)]
            for r in rows]
    return _rst_table(["System", *(h for _, h, _, _ in METRIC_COLUMNS), "Test epochs"], body)


def per_excerpt_table_rst(per_fold, labels, metric="accuracy"):
    """One metric for every (strategy, test excerpt) as an RST list-table.

    ``per_fold`` is ``StudyResult.per_fold``; ``labels`` maps strategy keys to row labels
    (rows in the order of ``labels``). Accuracy and macro F1 are printed in %, kappa as is.
    """
    scale, nd = {k: (s, d) for k, _, s, d in METRIC_COLUMNS}[metric]
    excerpts = sorted({p["test_subject"] for p in per_fold},
                      key=lambda s: (len(str(s)), str(s)))
    n_epochs = {p["test_subject"]: p["n_epochs"] for p in per_fold}
    cell = {(p["strategy"], p["test_subject"]): p[metric] for p in per_fold}
    body = [[label, *(f"{scale * cell[(key, e)]:.{nd}f}" for e in excerpts)]
            for key, label in labels.items() if any(k == key for k, _ in cell)]
    header = ["System", *(f"{e} ({n_epochs[e]})" for e in excerpts)]
    return _rst_table(header, body)


def per_excerpt_text(per_fold, labels, metric="accuracy"):
    """The same numbers as :func:`per_excerpt_table_rst`, as fixed-width text."""
    lines = per_excerpt_table_rst(per_fold, labels, metric).splitlines()
    rows, cells = [], []
    for line in lines[3:]:
        if line.startswith("   * - "):
            cells = [line[7:]]
            rows.append(cells)
        elif line.startswith("     - "):
            cells.append(line[7:])
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{r[0]:<{width}}  " + "  ".join(f"{c:>15}" for c in r[1:])
                     for r in rows) + "\n"


def build_parser():
    p = argparse.ArgumentParser(
        prog="dreams_transfer_study.py",
        description="Leave-one-excerpt-out transfer-learning study: the authors' "
                    "MASS-pretrained EEG checkpoint finetuned on the DREAMS excerpts.")
    p.add_argument("--shared", help="folder holding data/dreams/ and pretrained/phan2019-mass/ "
                   "(default: $SKSEQSLEEP_SHARED)")
    p.add_argument("--dreams", help="DREAMS Sleep Spindles folder (overrides --shared)")
    p.add_argument("--checkpoint", help="checkpoint prefix .../1chan_eeg/pretrained_model.ckpt "
                   "or its folder (overrides --shared)")
    p.add_argument("--output-dir", default="dreams_study_results",
                   help="results folder; re-running with the same folder resumes "
                        "(default: %(default)s)")
    p.add_argument("--strategies", default=None,
                   help="comma-separated strategies, as for skseqsleep study: all (finetune "
                        "the entire network), softmax+arnn, softmax+seqrnn, softmax, direct, "
                        "scratch (default: the six)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per fold (default 1)")
    p.add_argument("--n-jobs", type=int, default=1, help="folds run in parallel (default 1)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--rst", help="also write the tables as reStructuredText to this file")
    p.add_argument("--no-plots", action="store_true", help="write no PNG figures")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return p


def parse_strategies(text):
    """``--strategies`` as ``skseqsleep study`` reads it: ``"all"`` is the strategy that
    finetunes the entire network (not "every strategy"); ``None`` (no option) runs the six."""
    from skseqsleep.cli import split_names

    return None if text is None else split_names(text)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        dreams, checkpoint = locate_inputs(args.shared, args.dreams, args.checkpoint)
    except FileNotFoundError as exc:
        build_parser().error(str(exc))
    from skseqsleep.study import StudyInputError, run_study

    strategies = parse_strategies(args.strategies)
    t0 = time.perf_counter()
    try:
        result = run_study(args.output_dir, source=f"checkpoint:{checkpoint}",
                           target=f"dreams:{dreams}", strategies=strategies,
                           random_state=args.random_state, n_jobs=args.n_jobs,
                           torch_threads=args.threads, plots=not args.no_plots,
                           verbose=0 if args.quiet else 1)
    except StudyInputError as exc:  # bad options or data: one line and exit status 2
        build_parser().error(str(exc))
    wall = time.perf_counter() - t0
    print(result.to_text())
    labels = {r.strategy: r.label for r in result.rows}
    print("Accuracy (%) per test excerpt (test epochs in brackets)")
    print(per_excerpt_text(result.per_fold, labels, "accuracy"))
    print(f"wall time {wall:.0f} s; outputs in {result.output_dir}")
    if args.rst:
        text = ["Pooled over all folds", "", pooled_table_rst(result.rows),
                "Accuracy (%) per test excerpt (test epochs in brackets)", "",
                per_excerpt_table_rst(result.per_fold, labels, "accuracy"),
                "Cohen's kappa per test excerpt", "",
                per_excerpt_table_rst(result.per_fold, labels, "kappa"),
                "Macro F1 (%) per test excerpt", "",
                per_excerpt_table_rst(result.per_fold, labels, "macro_f1")]
        Path(args.rst).write_text("\n".join(text))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
