"""Command line interface: ``skseqsleep <command> ...`` (also ``python -m skseqsleep``).

Commands
--------
study
    The transfer-learning study of Phan et al. (TBME 2020); see :func:`skseqsleep.study.run_study`.

Wrong arguments, missing data folders and unknown channels end with exit status 2 and a
one-line message on stderr (no traceback).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

PROG = "skseqsleep"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (-1 = all cores), "
                                         f"got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("--n-jobs 0 runs nothing; use 1, N or -1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


#: Highest subject number of Sleep-EDF Expanded (SC: 0-82, ST: 1-24).
_MAX_SUBJECT = 82


def _subjects(text: str) -> list[int]:
    """``"0-19"``, ``"0,1,5"`` or a mix: ``"0-3,7"``."""
    spans: list[tuple[int, int]] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                spans.append((lo, hi))
            elif part:
                spans.append((int(part), int(part)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected subject numbers like '0-19' or '0,1,5'; got {text!r}") from None
    if not spans or min(lo for lo, _ in spans) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative subject numbers; got {text!r}")
    highest = max(hi for _, hi in spans)
    if highest > _MAX_SUBJECT:       # before building the list (0-30000000 took 3 GB)
        raise argparse.ArgumentTypeError(
            f"subject {highest} is beyond the Sleep-EDF numbering (0-{_MAX_SUBJECT}); "
            f"got {text!r}")
    return [n for lo, hi in spans for n in range(lo, hi + 1)]


def _param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected PARAM=VALUE (e.g. module__rnn_hidden=16), "
                                         f"got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return name.strip(), parsed


def _add_study_parser(sub) -> None:
    from skseqsleep.study import (
        PAPER_SETTINGS,
        SIMULATED_SETTINGS,
        SIMULATED_TARGET_CHANNELS,
        SLEEP_EDF_CHANNELS,
        STRATEGIES,
    )

    sim = SIMULATED_SETTINGS
    p = sub.add_parser(
        "study", help="the transfer-learning study (pretrain, finetune, evaluate)",
        description=(
            "Deep transfer learning for sleep staging (Phan et al., TBME 2020): pretrain "
            "SeqSleepNet on a source cohort, then for each target channel compare direct "
            "transfer, finetuning the softmax, softmax+ARNN, softmax+SeqRNN, the entire "
            "network, and training from scratch, with leave-one-subject-out cross-validation. "
            "Without arguments it runs a small simulated study in a few minutes; with "
            "real data (--source mass:PATH or checkpoint:PATH, --target sleep-edf:PATH) it "
            "runs the paper's protocol. Re-running with the same --output-dir resumes."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default="study_results",
                   help="results folder (tables, per-fold results, figures); re-running with "
                        "the same arguments resumes (default: study_results)")
    p.add_argument("--source", default="simulated",
                   help="simulated (default) | mass:PATH | checkpoint:PATH (the authors' TF "
                        "checkpoint, e.g. .../1chan_eeg/pretrained_model.ckpt) | model:PATH "
                        "(a model saved with SeqSleepClassifier.save_model, e.g. "
                        "OUTPUT_DIR/source_model.pt)")
    p.add_argument("--target", default="simulated",
                   help="simulated (default) | sleep-edf:PATH | dreams:PATH | "
                        "recordings:CSV (your own EDF recordings: a CSV with the columns "
                        "recording, subject, psg, hypnogram; needs --channel)")
    p.add_argument("--channel", action="append", dest="channels", metavar="NAME",
                   help="target channel, repeat for several (each is a separate table block); "
                        "default: {} (simulated), {} (Sleep-EDF), the EEG channel "
                        "(DREAMS)".format(*(" and ".join(map(repr, chans)) for chans in (
                            SIMULATED_TARGET_CHANNELS, SLEEP_EDF_CHANNELS))))
    p.add_argument("--strategies", default=",".join(STRATEGIES),
                   help="comma-separated subset of: " + ", ".join(STRATEGIES)
                        + f" (default: all {len(STRATEGIES)}, in this order; 'all' alone is "
                        f"the '{STRATEGIES['all'].label}' row)")
    p.add_argument("--subjects", type=_subjects, default=None,
                   help="Sleep-EDF subjects, e.g. 0-19 (default: 0-19 = SC-20 with the "
                        "published 20-fold split)")
    p.add_argument("--fetch", action="store_true",
                   help="download the Sleep-EDF files into the sleep-edf PATH first")
    p.add_argument("--fetch-url", default=None, metavar="URL",
                   help="a mirror of PhysioNet's Sleep-EDF folder for --fetch")
    p.add_argument("--stage-texts", type=_stage_texts, default=None, metavar="JSON",
                   help="recordings:CSV target: the hypnograms' vocabulary, a JSON object "
                        "{annotation text: stage} (stage 0-4, W/N1/N2/N3/REM, or null for "
                        "an epoch without a usable stage) or the path of a file holding one "
                        "(default: Sleep-EDF/MASS texts, 'Sleep stage N1/N2/N3' and the bare "
                        "labels W, N1, N2, N3, R, REM, ?)")
    g = p.add_argument_group(
        "training settings",
        textwrap.fill("defaults: simulated target " + ", ".join(
            f"{k}={v}" for k, v in sim.items() if not k.startswith("sim_") and v is not None)
        + "; real target: the paper's (REFERENCE §4) through the classifier's defaults, "
        f"pretraining {PAPER_SETTINGS['pretrain_max_epochs']} epochs", width=78,
                      initial_indent="  ", subsequent_indent="  "))
    for name, typ, text in (
            ("max-epochs", _positive_int, "training epochs of each finetuning / scratch fit"),
            ("pretrain-max-epochs", _positive_int, "training epochs of the source model"),
            ("validate-every", _positive_int, "validate every N training steps"),
            ("patience", _positive_int, "stop after N validations without improvement"),
            ("batch-size", _positive_int, "sequences per minibatch"),
            ("lr", _positive_float, "Adam learning rate"),
            ("seq-len", _positive_int, "sequence length L (epochs per window)"),
            ("n-valid-subjects", _positive_int,
             "validation subjects per fold (not for SC-20, which has the published split)"),
            ("n-filters", _positive_int, "filterbank size of the network"),
            ("rnn-hidden", _positive_int, "hidden units per direction of both bi-RNNs"),
            ("attention-size", _positive_int, "size of the attention layer"),
            ("cell", str, "recurrent cell: gru (paper), lstm or bnlstm (released code)")):
        g.add_argument(f"--{name}", type=typ, default=None, help=text)
    s = p.add_argument_group("simulated cohorts")
    for name, key, text in (
            ("sim-source-subjects", "sim_source_subjects", "subjects of the source cohort"),
            ("sim-target-subjects", "sim_target_subjects", "subjects of the target cohort"),
            ("sim-nights", "sim_nights", "nights per subject"),
            ("sim-epochs", "sim_epochs_per_night", "30-s epochs per night")):
        s.add_argument(f"--{name}", type=_positive_int, default=None, dest=key,
                       metavar=name.upper().replace("-", "_"),
                       help=f"{text} (default {sim[key]})")
    p.add_argument("--set", action="append", type=_param, default=[], metavar="PARAM=VALUE",
                   dest="classifier_params",
                   help="extra SeqSleepClassifier parameter, e.g. module__rnn_hidden=16 or "
                        "train_sampler=shared (repeatable); those the study sets itself "
                        "(lr, max_epochs, ...) are refused: use their options")
    p.add_argument("--random-state", type=int, default=0,
                   help="seed of the simulation and of every fold (default: 0)")
    r = p.add_argument_group("execution")
    r.add_argument("--n-jobs", type=_n_jobs, default=1,
                   help="folds run in parallel with joblib (-1: all cores; default: 1)")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the folds on a Dask cluster (e.g. tcp://10.0.0.1:8786)")
    r.add_argument("--threads", type=_positive_int, default=None,
                   help="torch threads per fold and for pretraining (default 1; use "
                        "--n-jobs for more cores)")
    r.add_argument("--plot-recording", default=None, metavar="RECORDING",
                   help="recording whose hypnogram (scored vs predicted) is plotted "
                        "(default: the first test recording)")
    r.add_argument("--no-plots", action="store_true", help="write no PNG figures")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_run_study_command)


def split_names(text: str) -> list[str]:
    """A comma-separated option (``--strategies all,softmax+arnn``) as a list of names."""
    return [s.strip() for s in text.split(",") if s.strip()]


def _stage_texts(value: str) -> dict:
    """``--stage-texts``: a JSON object, or the path of a file holding one."""
    text = value
    if not value.lstrip().startswith(("{", "[")):      # not inline JSON: a file
        path = Path(value).expanduser()
        if not path.is_file():
            raise argparse.ArgumentTypeError(
                f"expected a JSON object such as '{{\"Wake\": \"W\", \"REM\": \"REM\"}}' "
                f"or the path of a file holding one; there is no file {value}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise argparse.ArgumentTypeError(f"cannot read {value}: {exc}") from exc
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"expected a JSON object such as '{{\"Wake\": \"W\", \"REM\": \"REM\"}}'; "
            f"{value!r} does not hold one ({exc})") from exc
    if not isinstance(mapping, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{annotation text: stage}}; "
                                         f"got {type(mapping).__name__}")
    return mapping


def _run_study_command(args: argparse.Namespace) -> int:
    from skseqsleep.study import SIMULATED_SETTINGS, run_study

    strategies = split_names(args.strategies)
    # every study setting has an option whose dest is the setting's name
    settings = {key: getattr(args, key) for key in SIMULATED_SETTINGS
                if getattr(args, key) is not None}
    result = run_study(
        args.output_dir, source=args.source, target=args.target, channels=args.channels,
        strategies=strategies, subjects=args.subjects, fetch=args.fetch,
        fetch_url=args.fetch_url, settings=settings,
        classifier_params=dict(args.classifier_params), random_state=args.random_state,
        n_jobs=args.n_jobs, scheduler=args.scheduler, torch_threads=args.threads,
        plot_recording=args.plot_recording, plots=not args.no_plots,
        verbose=0 if args.quiet else 1, stage_texts=args.stage_texts)
    print(result.to_text(), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``skseqsleep`` argument parser (one sub-parser per command)."""
    from skseqsleep import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="SeqSleepNet and deep transfer learning for sleep staging.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_study_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad arguments or data).

    Examples
    --------
    >>> from skseqsleep.cli import main
    >>> main(["study", "--output-dir", "study_results"])  # doctest: +SKIP
    """
    from skseqsleep.study import StudyInputError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (StudyInputError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted; finished folds are stored, re-run the same "
              "command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
