"""``SeqSleepClassifier``: SeqSleepNet as a skorch / scikit-learn classifier (REFERENCE §3-§5).

The estimator is a :class:`skorch.NeuralNetClassifier`; its behaviour is added through skorch's
overridable methods (``initialize``, ``initialize_module``, ``get_all_learnable_params``,
``get_split_datasets``, ``get_iterator``, ``infer``, ``get_loss``) and a default callback
(:class:`StepValidation`), not by rewriting the fit loop.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import os
import signal
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog
from skorch.utils import to_tensor

from skseqsleep._checks import check_positive_int, is_real
from skseqsleep._fast import WindowBlockBatch, shared_forward, training_loader
from skseqsleep._files import atomic_write
from skseqsleep._labels import check_stage_labels
from skseqsleep._windows import (
    RecordingsDataset,
    WindowBatches,
    find_recordings,
    make_windows,
    multiplicative_fusion,
)
from skseqsleep.nn.seqsleepnet import SeqSleepNet

__all__ = ["SeqSleepClassifier", "StepValidation", "load_model", "resolve_device"]

#: The three parts of SeqSleepNet that ``trainable_parts`` selects (REFERENCE §3); the
#: network defines them.
PARTS = SeqSleepNet.PARTS
#: Settings that must agree between a warm-start source and the classifier.
_ARCH_KEYS = ("n_channels", "n_freq_bins", "n_frames", "n_filters", "rnn_hidden",
              "attention_size", "n_classes", "cell")
#: Settings the classifier sets itself (estimator params or inferred from X).
_OWN_KEYS = ("n_channels", "n_frames", "n_freq_bins", "seq_len", "cell")
_MODEL_FORMAT = "skseqsleep.SeqSleepClassifier"
_MODEL_FORMAT_VERSION = 1  # the newest format save_model writes and load_model reads
_TRAIN_SAMPLERS = ("per-window", "shared")
_INFERENCE = ("encode-once", "per-window")
_FROZEN_MODES = ("eval", "train")
_ENCODE_CHUNK = 512     # epochs per encode_epochs call at inference
_WINDOW_CHUNK = 256     # windows per classify_sequences / forward call at inference


def resolve_device(device: str | torch.device | None) -> str:
    """Resolve ``"auto"`` to ``"cuda"`` when CUDA is available, else ``"cpu"``.

    Examples
    --------
    >>> from skseqsleep.classifier import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    if device is None:
        return "cpu"
    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def _check_device(device, requested) -> str:
    """``device`` (a resolved device) if torch can use it here, else a ``ValueError`` naming
    ``requested`` (the ``device`` parameter) and what this machine has."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={requested!r} is not a torch device ({exc}); use 'auto', "
                         "'cpu', 'cuda' or 'cuda:<index>'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "torch finds no usable CUDA device")
            raise ValueError(f"device={requested!r} asks for CUDA, but {why} on this machine "
                             "(available: cpu); use device='cpu', or device='auto' (CUDA when "
                             "available, else CPU)")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"device={requested!r} asks for CUDA device {dev.index}, but this "
                             f"machine has {n} (cuda:0 to cuda:{n - 1})")
    elif dev.type != "cpu":
        try:        # e.g. mps or xpu in a build or on a machine without them
            torch.empty(0, device=dev)
        except (RuntimeError, AssertionError) as exc:
            why = (str(exc).strip().splitlines() or [""])[0][:160]   # torch's can be long
            raise ValueError(f"device={requested!r} cannot be used on this machine "
                             f"({type(exc).__name__}: {why}); use device='cpu', or "
                             "device='auto' (CUDA when available, else CPU)") from None
    return device


def _normalise_parts(trainable_parts) -> tuple[str, ...]:
    if isinstance(trainable_parts, str):
        parts = PARTS if trainable_parts == "all" else (trainable_parts,)
    else:
        try:
            parts = tuple(trainable_parts)
        except TypeError:
            raise ValueError(f"trainable_parts must be 'all', a part name or a tuple of part "
                             f"names from {PARTS}, got {trainable_parts!r}") from None
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise ValueError(f"trainable_parts: unknown part(s) {bad}; expected 'all', () or names "
                         f"from {PARTS}, got {trainable_parts!r}")
    return tuple(p for p in PARTS if p in parts)


def _looks_like_bins(n: int) -> bool:
    """Whether ``n`` is ``nfft / 2 + 1`` for a power-of-two ``nfft`` >= 16 (the usual counts of
    frequency bins; used to spot spectrograms with frames and bins swapped)."""
    return n >= 9 and ((n - 1) & (n - 2)) == 0


def _short_recordings_message(recs, seq_len: int) -> str | None:
    """``"k recording(s) shorter than seq_len=L epochs (name: length, ...)"`` or None."""
    short = np.flatnonzero(recs.lengths < seq_len)
    if not len(short):
        return None
    listed = ", ".join(f"{recs.names[i]}: {int(recs.lengths[i])}" for i in short[:5])
    more = f", ... ({len(short) - 5} more)" if len(short) > 5 else ""
    return (f"{len(short)} recording(s) shorter than seq_len={seq_len} epochs "
            f"(recording: epochs {listed}{more})")


def _read_model_file(path) -> dict:
    from skseqsleep.pretrained import is_tf_checkpoint, load_tf_checkpoint_state

    path = Path(path).expanduser()
    # a folder is never a saved model: let the checkpoint reader say what it found there
    # (none or several '*.index' files) instead of "no model file"
    if path.is_dir() or is_tf_checkpoint(path):
        state = load_tf_checkpoint_state(path)
        return {"config": dict(state["config"]), "state_dict": state["state_dict"],
                "classes": None}
    if not path.is_file():
        raise FileNotFoundError(f"no model file or TensorFlow checkpoint at {path}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a model saved by SeqSleepClassifier.save_model "
                         f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, dict) or content.get("format") != _MODEL_FORMAT:
        raise ValueError(f"{path} is not a model saved by SeqSleepClassifier.save_model "
                         f"(expected a dict with format={_MODEL_FORMAT!r})")
    _check_format_version(content, str(path), "; the file is damaged or was not written by "
                          "SeqSleepClassifier.save_model")
    missing = [k for k in ("config", "state_dict") if not isinstance(content.get(k), dict)]
    if missing:
        raise ValueError(f"{path}: the model file lacks {missing} (each a dict); found the "
                         f"keys {sorted(content)}")
    return content


def _check_format_version(content: Mapping, where: str, damaged: str = "") -> None:
    """``content["format_version"]`` (a saved model's, or a warm-start dict's) must be an
    integer no newer than this package's :data:`_MODEL_FORMAT_VERSION`."""
    version = content.get("format_version")
    if isinstance(version, bool) or not isinstance(version, numbers.Integral):  # np.bool_ isn't
        raise ValueError(  # noqa: TRY004 - the content, not an argument, is wrong
            f"{where}: format_version must be an integer, found {version!r}{damaged}")
    if version > _MODEL_FORMAT_VERSION:
        by = content.get("skseqsleep_version")
        by = f" (it was written by skseqsleep {by})" if by else ""
        raise ValueError(f"{where}: format_version {int(version)}; this skseqsleep reads "
                         f"model format version {_MODEL_FORMAT_VERSION} or older{by}: upgrade "
                         "skseqsleep to load it")


def _check_save_path(path) -> Path:
    """The file ``path`` as a Path, after checking that a file can be written there."""
    target = Path(path).expanduser()
    if target.is_symlink():
        target = target.resolve()  # replace the file the link points to, not the link
    if target.is_dir():
        raise IsADirectoryError(f"cannot save the model to {target}: it is a directory; give "
                                f"a file name, e.g. {target / 'model.pt'}")
    folder = target.parent
    if folder.is_dir():
        return target
    # the first ancestor that exists tells a missing folder from a file in the way
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise NotADirectoryError(f"cannot save the model to {target}: {ancestor} is a file, "
                                 "not a folder")
    raise FileNotFoundError(f"cannot save the model to {target}: the folder {folder} does not "
                            "exist; create it first")


def _load_state_checked(module, state, where: str,
                        described: str = "the network described by the file's config") -> None:
    """``module.load_state_dict(state, strict=True)``, naming ``where`` and the differences."""
    state = {k: torch.as_tensor(v) for k, v in state.items()}     # arrays or tensors
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} in the saved weights, "
              f"{tuple(own[k].shape)} in the network" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("shape mismatch", shapes)):
        if items:
            more = f", ... ({len(items) - 5} more)" if len(items) > 5 else ""
            problems.append(f"{label} {', '.join(items[:5])}{more}")
    if not problems:
        try:
            module.load_state_dict(state, strict=True)
            return
        except RuntimeError as exc:
            problems.append(str(exc).splitlines()[0])
    raise ValueError(f"{where}: the saved weights do not match {described}: "
                     + "; ".join(problems))


def _architecture_differences(source_config, config) -> list[str]:
    """The architecture keys (``_ARCH_KEYS``, and ``seq_len`` for BN-LSTM cells, whose
    population statistics are per position) on which a warm-start source's network config and
    ``config`` disagree; the weights cannot be carried over across these."""
    keys = list(_ARCH_KEYS) + (["seq_len"] if config.get("cell") == "bnlstm" else [])
    return [k for k in keys
            if k in source_config and k in config and source_config[k] != config[k]]


def _source_state(source) -> dict:
    """``{"config", "state_dict", "classes"}`` of a warm-start source."""
    from sklearn.pipeline import Pipeline

    if isinstance(source, (str, os.PathLike)):
        return _read_model_file(source)
    if isinstance(source, Pipeline):
        for _, step in reversed(source.steps):
            if isinstance(step, SeqSleepClassifier):
                return _source_state(step)
        raise ValueError("warm_start_from: the pipeline has no SeqSleepClassifier step")
    if isinstance(source, SeqSleepClassifier):
        if not getattr(source, "initialized_", False) or not hasattr(source, "module_config_"):
            raise ValueError(
                "warm_start_from: the SeqSleepClassifier given is not fitted (scikit-learn "
                "clones the parameter values it sets, e.g. the candidates of a GridSearchCV "
                "param_grid, which drops their fitted state: give a file written by save_model "
                "or a dict {'config': ..., 'state_dict': ...} there instead)")
        return {"config": dict(source.module_config_),
                "state_dict": {k: v.detach().cpu() for k, v in
                               source.module_.state_dict().items()},
                "classes": [int(c) for c in source.classes_]}
    if isinstance(source, Mapping) and "state_dict" in source and "config" in source:
        return _check_source_mapping(source)
    raise TypeError("warm_start_from must be a path (saved model or TensorFlow checkpoint), a "
                    "fitted SeqSleepClassifier, a Pipeline containing one, or a dict with "
                    "'config' and 'state_dict' (as load_tf_checkpoint_state or "
                    f"torch.load of a saved model give); got {type(source).__name__}")


def _check_source_mapping(source) -> dict:
    """A ``{"config", "state_dict"}`` warm-start dict, checked as a model file's content is."""
    where = "warm_start_from (a dict)"
    if source.get("format_version") is not None:    # optional in a dict
        _check_format_version(source, where)
    for key in ("config", "state_dict"):
        if not isinstance(source[key], Mapping):
            raise TypeError(f"{where}: {key!r} must be a dict, found "
                            f"{type(source[key]).__name__}")
    def kind(v) -> str:  # numpy dtype kind of an array or tensor, "" for anything else
        if isinstance(v, torch.Tensor):
            return "f" if v.is_floating_point() else "c" if v.is_complex() else "i"
        return v.dtype.kind if isinstance(v, np.ndarray) else ""

    bad = [f"{k!r} ({type(v).__name__}"
           + (f" of dtype {v.dtype})" if isinstance(v, (torch.Tensor, np.ndarray)) else ")")
           for k, v in source["state_dict"].items()
           if not isinstance(k, str) or kind(v) not in ("f", "i", "u", "b")]
    if bad:
        more = f", ... ({len(bad) - 3} more)" if len(bad) > 3 else ""
        raise TypeError(f"{where}: 'state_dict' must map parameter names to real-valued "
                        f"tensors or arrays; found {', '.join(bad[:3])}{more}")
    return {"config": dict(source["config"]), "state_dict": source["state_dict"],
            "classes": source.get("classes")}


class _EarlyStop(KeyboardInterrupt):
    """Raised by :class:`StepValidation` when ``patience`` runs out. A ``KeyboardInterrupt``,
    so that skorch ends training as for an interrupt (``on_train_end`` restores the best
    weights); :meth:`SeqSleepClassifier.fit_loop` tells it apart from a user's Ctrl-C."""


class StepValidation(Callback):
    """Validate every ``net.validate_every`` training steps and keep the best model.

    REFERENCE §4: accuracy averaged over the window positions (no ensemble) on the validation
    recordings; the best model is kept (ties: the later one); training stops after
    ``net.patience`` validations without improvement; the best weights are restored at the end
    of ``fit``. Every validation is appended to ``net.validation_history_`` and the last one of
    each training epoch is shown in skorch's table (``valid_acc``, ``valid_loss``).
    """

    def initialize(self):
        self._reset()
        return self

    def _reset(self):
        self.step_ = 0
        self.best_acc_ = -math.inf
        self.best_state_ = None
        self.best_step_ = None
        self.misses_ = 0
        self.losses_ = []

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self._reset()

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if not training:
            return
        self.step_ += 1
        if loss is not None:
            self.losses_.append(float(loss.detach()) if torch.is_tensor(loss) else float(loss))
        if getattr(net, "valid_dataset_", None) is None:
            return
        if self.step_ % net.validate_every == 0:
            self._validate(net)

    def _validate(self, net, stop=True):
        acc, loss = net.validation_scores(net.valid_dataset_)
        improved = acc >= self.best_acc_
        if improved:
            self.best_acc_ = acc
            self.best_step_ = self.step_
            self.best_state_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
            self.misses_ = 0
        else:
            self.misses_ += 1
        net.validation_history_.append({
            "step": self.step_,
            "epoch": len(net.history),
            "valid_acc": float(acc),
            "valid_loss": float(loss),
            "train_loss": float(np.mean(self.losses_)) if self.losses_ else float("nan"),
            "best": bool(improved),
        })
        self.losses_ = []
        if len(net.history):
            net.history.record("valid_acc", float(acc))
            net.history.record("valid_loss", float(loss))
        if stop and self.misses_ >= net.patience:
            raise _EarlyStop(f"Stopping after {self.misses_} validations without improvement "
                             f"(best valid_acc {self.best_acc_:.4f} at step "
                             f"{self.best_step_}).")

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if getattr(net, "valid_dataset_", None) is None:
            return
        if self.best_state_ is None and self.step_ > 0:
            # fewer than validate_every steps: validate the final model once
            self._validate(net, stop=False)
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
            net.best_step_ = self.best_step_
            self.best_state_ = None     # do not keep a second copy of the weights (pickling)


class SeqSleepClassifier(NeuralNetClassifier):
    """SeqSleepNet sleep stager as a scikit-learn classifier (skorch based).

    Input ``X`` is the output of :class:`~skseqsleep.SpectrogramTransformer`: float32 array of
    shape ``(n_epochs, n_channels, 29, 129)`` (one row per 30-s epoch, epochs of a recording
    adjacent and in time order); ``y`` holds stage labels 0..4 (W, N1, N2, N3, REM).

    Parameters
    ----------
    module : class, default=None
        The network class; ``None`` means :class:`skseqsleep.nn.SeqSleepNet`. Its
        ``n_channels`` (and ``n_frames``, ``n_freq_bins``) are inferred from ``X`` in ``fit``;
        other settings go through ``module__*`` (e.g. ``module__rnn_hidden=64``,
        ``module__n_filters=32``, ``module__dropout=0.25``), as in skorch.
    seq_len : int, default=20
        Epochs per sequence window L (REFERENCE §3).
    cell : {"gru", "lstm", "bnlstm"} or None, default=None
        Recurrent cell of both bi-RNNs (the paper: GRU; the authors' released models: BN-LSTM).
        ``None``: the cell of ``warm_start_from`` when one is given (so the authors'
        checkpoints load without naming their BN-LSTM cell), else ``"gru"``.
    trainable_parts : "all", str or tuple of str, default="all"
        Parts trained by ``fit``: ``"all"``, ``"softmax"``, ``("softmax", "arnn")``,
        ``("softmax", "seqrnn")``, or ``()`` for direct transfer (``fit`` trains nothing; it
        loads ``warm_start_from`` and records the classes). A frozen part gets no gradient
        (``requires_grad=False``), is not given to the optimiser, and, with the default
        ``frozen_mode="eval"``, is kept in eval mode while training (no dropout, no batch-norm
        statistic updates). REFERENCE §4: the released code still runs frozen parts in
        training mode; the package freezes completely by default (``frozen_mode``).
    warm_start_from : path, SeqSleepClassifier, Pipeline, dict or None, default=None
        Starting weights, loaded in every ``fit`` after initialisation: a file written by
        :meth:`save_model`, a TensorFlow checkpoint of the authors (a prefix or a folder with a
        ``.index`` file, read by :func:`skseqsleep.pretrained.load_tf_checkpoint_state`), a
        fitted classifier, a fitted pipeline containing one, or a dict with ``"config"`` and
        ``"state_dict"`` (what ``load_tf_checkpoint_state`` returns, or ``torch.load`` of a
        saved model; checked as a model file is). ``sklearn.clone`` keeps this
        parameter as is (the same object, not an unfitted copy), so every fold of
        ``cross_validate`` starts from the same weights. The architecture must match
        (channels, cell, sizes); a mismatch is a ``ValueError`` naming it. Only the network
        weights are taken (not the source's spectrogram standardisation).
    train_split : callable or None, default=None
        Inner validation split, e.g. :class:`~skseqsleep.model_selection.GroupHoldout` or
        :class:`~skseqsleep.model_selection.PredefinedGroupSplit` (whole subjects, needs
        ``groups``). ``None``: no validation, train ``max_epochs`` epochs. A splitter whose
        ``random_state`` is None (e.g. ``GroupHoldout(n_valid_groups=4)``) draws the
        validation subjects from a seed derived from the classifier's ``random_state``
        (``fit`` uses a copy of it; the splitter given is not modified); a splitter with its
        own ``random_state`` keeps it.
    validate_every : int, default=10
        Validate every this many training steps (REFERENCE §4).
    patience : int, default=50
        Stop after this many validations without improvement (REFERENCE §4).
    l2_lambda : float, default=1e-3
        λ of the reference's L2 term λ/2·‖θ‖² over all trainable parameters except the
        filterbank (REFERENCE §4). The reference sums the cross-entropy over the batch; this
        class averages it (over windows and positions), so the L2 term is divided by the
        batch size too: loss = mean CE + λ/(2·batch_size)·Σ‖θ‖² (= 1.5625e-5·Σ‖θ‖² with the
        defaults), the same optimum as the reference's loss / batch_size.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, window shuffling, dropout and the validation subjects of
        a ``train_split`` without a ``random_state`` of its own (torch's RNG is forked, so
        the global torch RNG is left untouched). Same seed, same CPU type and same number of
        torch threads (``torch.get_num_threads()``): bit-identical predictions (1 and 2
        threads differ by about 1e-8).
    train_sampler : {"per-window", "shared"}, default="per-window"
        How training minibatches are built: ``"per-window"`` gathers ``batch_size`` shuffled
        windows and runs the whole network on each (reference behaviour). Every pass over the
        data draws a new permutation of all training windows; the last partial batch is
        dropped (REFERENCE §4). skorch's ``iterator_train`` is not used. ``"shared"``
        (:mod:`skseqsleep._fast`) builds each minibatch from contiguous blocks of
        ``train_block_size`` consecutive windows (block boundaries and order reshuffled every
        pass) and runs the ARNN once per distinct epoch of the minibatch (about 51 epochs
        instead of 640 with one block of 32): the same per-window loss, 4-5x faster per
        step on CPU; ARNN dropout masks are then shared by the windows containing an epoch.
        Its minibatches are less diverse (each step sees about 51 distinct epochs, not 640),
        which costs accuracy at equal passes and equal ``lr``; a three times higher ``lr``
        (3e-4 instead of the reference 1e-4) made up for it on simulated cohorts and for
        DREAMS whole-network finetuning, and left it about a point behind (within the seed
        noise) for DREAMS softmax + ARNN finetuning (docs/performance.rst gives the
        measured figures).
    train_block_size : int or None, default=None
        Windows per contiguous block of ``train_sampler="shared"``; ``None`` means
        ``batch_size`` (a minibatch is then mostly one stretch of one recording: the
        fastest). Smaller blocks mix several recordings and places per minibatch (more
        diverse, fewer shared epochs, slower); ``1`` gives independent windows. Used only
        with ``train_sampler="shared"`` (a warning says so otherwise).
    frozen_mode : {"eval", "train"}, default="eval"
        How the parts outside ``trainable_parts`` run while ``fit`` trains. ``"eval"``: frozen
        completely (eval-mode dropout; BN-LSTM cells normalise with their population
        statistics and do not update them). ``"train"``: as the authors' released code
        (REFERENCE §4), in training mode: dropout active and, with BN-LSTM cells, batch
        statistics used and the population statistics updated, although the weights get no
        gradient. Prediction and validation always run in eval mode.
    inference : {"encode-once", "per-window"}, default="encode-once"
        ``"encode-once"`` runs the ARNN once per epoch (``encode_epochs``) and the SeqRNN over
        all windows of those features (exact in eval mode); ``"per-window"`` runs the full
        network on every window (the plain reference computation).
    criterion, optimizer, lr, max_epochs, batch_size, device, verbose, **kwargs
        As in skorch. Defaults follow REFERENCE §4: cross-entropy, Adam, lr=1e-4,
        max_epochs=10, batch_size=32 windows (the last partial batch is dropped; ``fit``
        raises a ``ValueError`` when the training recordings have fewer windows than
        ``batch_size``, since it would make no training step).
        ``device="auto"`` picks CUDA when available, else CPU, at initialisation (the
        parameter stays ``"auto"``; the device used is ``device_``). A device this machine
        lacks (e.g. ``"cuda"`` without CUDA) is a ``ValueError`` in ``fit``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        ``arange(n_classes)`` (stage labels 0..4), whichever stages ``y`` holds: the network
        always has one output per stage. Hence scikit-learn's ``cross_val_predict(...,
        method="predict_proba")``, which label-encodes ``y`` before fitting, works only when
        every stage occurs in ``y`` (it fails with an IndexError otherwise, and a missing
        stage would shift the labels of the others); ``method="predict"``,
        ``cross_validate`` and the study are not affected.
    module_ : torch.nn.Module
    module_config_ : dict
        Keyword arguments the network was built with (JSON-able).
    n_channels_ : int
    device_ : str
    train_windows_, valid_windows_ : ndarray of shape (n_windows, 2)
        The ``(recording, start)`` pairs of the training / validation windows of the last fit
        (``recording`` indexes ``train_recordings_`` / ``valid_recordings_``, ``start`` counts
        epochs from the recording's first epoch).
    validation_history_ : list of dict
        One dict per validation: ``step``, ``epoch``, ``valid_acc``, ``valid_loss``,
        ``train_loss`` (mean training loss since the previous validation), ``best``.
    best_step_ : int
        Training step of the restored best model (with a ``train_split``).

    Notes
    -----
    Recordings. Pass ``recordings`` (one id per epoch) to ``fit`` and ``predict``; sequence
    windows never cross two recordings. Without it, contiguous runs of equal ``groups`` are
    recordings (with a warning: the nights of a subject stored next to each other become one
    recording); without both, the whole ``X`` is one recording (with a warning). With both,
    a recording whose epochs carry two ``groups`` values (subjects) is a ``ValueError``. With
    scikit-learn metadata routing enabled, ``fit`` requests ``groups`` and ``recordings`` and
    ``predict``/``predict_proba``/``score`` request ``recordings`` and ``groups`` by default.

    Continued training. ``partial_fit`` (inherited from skorch) is not supported and raises
    ``NotImplementedError``; ``fit`` starts from ``warm_start_from`` (a fitted classifier or a
    saved model) to continue training from a model.

    Prediction (REFERENCE §5). Every stride-1 window of each recording is classified; the fused
    score of an epoch is the sum of the natural-log softmax outputs of all windows covering it;
    ``predict`` is its argmax and ``predict_proba`` the softmax of the mean log-probability.
    A recording shorter than ``seq_len`` is classified as one shorter window covering it all
    (``predict``, ``predict_proba`` and ``score`` warn, naming it and its length) and
    contributes no training window (``fit`` warns).

    Examples
    --------
    >>> import numpy as np
    >>> from skseqsleep import SeqSleepClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 1, 29, 129)).astype("float32")
    >>> y = rng.integers(0, 5, size=40)
    >>> clf = SeqSleepClassifier(seq_len=4, module__n_filters=4, module__rnn_hidden=4,
    ...                          module__attention_size=4, max_epochs=1, verbose=0,
    ...                          random_state=0)
    >>> nights = np.repeat(["night1", "night2"], 20)
    >>> clf.fit(X, y, recordings=nights).predict(X[:20], recordings=nights[:20]).shape
    (20,)
    """

    __metadata_request__fit: ClassVar[dict] = {"groups": True, "recordings": True}
    __metadata_request__predict: ClassVar[dict] = {"groups": True, "recordings": True}
    __metadata_request__predict_proba: ClassVar[dict] = {"groups": True, "recordings": True}
    __metadata_request__score: ClassVar[dict] = {"groups": True, "recordings": True}

    def __init__(
        self,
        module=None,
        *,
        seq_len: int = 20,
        cell: str | None = None,
        trainable_parts="all",
        warm_start_from=None,
        train_split=None,
        validate_every: int = 10,
        patience: int = 50,
        l2_lambda: float = 1e-3,
        random_state=None,
        train_sampler: str = "per-window",
        train_block_size: int | None = None,
        inference: str = "encode-once",
        frozen_mode: str = "eval",
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr: float = 1e-4,
        max_epochs: int = 10,
        batch_size: int = 32,
        device: str = "auto",
        verbose: int = 1,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.seq_len = seq_len
        self.cell = cell
        self.trainable_parts = trainable_parts
        self.warm_start_from = warm_start_from
        self.validate_every = validate_every
        self.patience = patience
        self.l2_lambda = l2_lambda
        self.random_state = random_state
        self.train_sampler = train_sampler
        self.train_block_size = train_block_size
        self.inference = inference
        self.frozen_mode = frozen_mode

    # ------------------------------------------------------------------ sklearn plumbing
    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("step_validation", StepValidation()),
            ("print_log", PrintLog()),
        ]

    @property
    def classes_(self):
        try:
            return self.classes_inferred_
        except AttributeError:
            raise AttributeError(f"{type(self).__name__} is not fitted: no classes_") from None

    def __sklearn_clone__(self):
        # Keep warm_start_from as is: cloning a fitted source would drop its weights.
        new = super().__sklearn_clone__()
        new.warm_start_from = self.warm_start_from
        return new

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_step_cache_", None)     # per-fit cache of parameter references
        return state

    def __setstate__(self, state):
        requested = state.get("device")
        if isinstance(requested, str) and requested == "auto":
            resolved = resolve_device("auto")
            state = dict(state)
            state["device"] = resolved
            super().__setstate__(state)
            self.device = "auto"
            if "device_" in state:
                self.device_ = resolved
        else:
            super().__setstate__(state)
            if "device_" in state:
                self.device_ = resolve_device(self.device)

    def check_data(self, X, y=None):
        pass

    # ------------------------------------------------------------------ validation of inputs
    def _check_X(self, X, *, what: str = "X", against_network: bool = True) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 4:
            raise ValueError(
                f"{what} must be the SpectrogramTransformer output of shape (n_epochs, "
                f"n_channels, n_frames, n_freq_bins), e.g. (n, 1, 29, 129); got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{what} has 0 epochs; at least one epoch is needed")
        if not np.issubdtype(X.dtype, np.floating):
            raise ValueError(f"{what} must hold floats, got dtype {X.dtype}")
        X = np.ascontiguousarray(X, dtype=np.float32)
        finite = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ValueError(f"{what} must be finite: {len(bad)} epoch(s) hold NaN or inf "
                             f"values (first at epoch {bad[0]}); check the raw signal and the "
                             "SpectrogramTransformer input")
        if against_network and hasattr(self, "module_config_"):
            expected = tuple(self.module_config_[k] for k in ("n_channels", "n_frames",
                                                              "n_freq_bins"))
            if X.shape[1:] != expected:
                raise ValueError(f"{what} has epochs of shape {X.shape[1:]} but the network "
                                 f"expects (n_channels, n_frames, n_freq_bins) = {expected}")
        return X

    def _check_params(self):
        for name in ("seq_len", "validate_every", "patience", "batch_size", "max_epochs"):
            check_positive_int(name, getattr(self, name))
        if self.train_sampler not in _TRAIN_SAMPLERS:
            raise ValueError(f"train_sampler must be one of {_TRAIN_SAMPLERS}, "
                             f"got {self.train_sampler!r}")
        block = self.train_block_size
        if block is not None:
            check_positive_int("train_block_size", block, "a positive integer or None")
        if block is not None and self.train_sampler != "shared":
            warnings.warn(f"train_block_size={block} is used only with train_sampler='shared'; "
                          f"it is ignored with train_sampler={self.train_sampler!r}",
                          UserWarning, stacklevel=3)
        self._check_inference()
        if self.frozen_mode not in _FROZEN_MODES:
            raise ValueError(f"frozen_mode must be one of {_FROZEN_MODES}, got "
                             f"{self.frozen_mode!r}")
        if self.warm_start:
            raise ValueError(
                "warm_start=True (skorch: keep the network and train on at the next fit) is not "
                "supported: fit always starts from warm_start_from or from random weights; to "
                "continue training a fitted model, give it as warm_start_from=<fitted "
                "classifier or file written by save_model> to a new classifier")
        lam = self.l2_lambda
        if not is_real(lam) or not math.isfinite(lam) or lam < 0:
            raise ValueError(f"l2_lambda must be a finite number >= 0, got {lam!r}")
        return _normalise_parts(self.trainable_parts)

    def _check_inference(self):
        if self.inference not in _INFERENCE:
            raise ValueError(f"inference must be one of {_INFERENCE}, got {self.inference!r}")

    # ------------------------------------------------------------------ initialisation
    def _module_class(self):
        module = SeqSleepNet if self.module is None else self.module
        if isinstance(module, torch.nn.Module) or not callable(module):
            raise TypeError("module must be a network class (default SeqSleepNet), got "
                            f"{type(module).__name__}; pass settings as module__*")
        return module

    def _module_config(self, source_config: Mapping | None = None) -> dict[str, Any]:
        if not hasattr(self, "n_channels_"):
            raise ValueError(f"{type(self).__name__} infers the network's input size from X: "
                             "call fit (or load_model) before initialize")
        extra = self.get_params_for("module")
        clash = [k for k in _OWN_KEYS if k in extra]
        if clash:
            raise ValueError(f"module__{clash[0]} is set by the classifier (seq_len and cell "
                             "are estimator parameters; n_channels, n_frames, n_freq_bins are "
                             "inferred from X); remove it")
        cls = self._module_class()
        config = {}
        for name, par in inspect.signature(cls).parameters.items():
            if par.default is not inspect.Parameter.empty and par.kind in (
                    par.POSITIONAL_OR_KEYWORD, par.KEYWORD_ONLY):
                config[name] = par.default
        # numpy scalars (e.g. from ParameterGrid over an array) as Python numbers: torch's
        # layers and save_model's JSON take those only
        config.update({k: v.item() if isinstance(v, np.generic) else v
                       for k, v in extra.items()})
        config.update(n_channels=int(self.n_channels_), n_frames=int(self.n_frames_),
                      n_freq_bins=int(self.n_freq_bins_), seq_len=int(self.seq_len),
                      cell=self.cell if self.cell is not None
                      else (source_config or {}).get("cell", "gru"))
        return config

    @contextlib.contextmanager
    def _resolved_device(self):
        """Let skorch's code, which reads ``self.device``, see the resolved device.

        ``device="auto"`` is not a torch device: while the block runs, ``self.device`` is
        ``resolve_device("auto")``; afterwards it is ``"auto"`` again (``get_params`` is
        unchanged). Other values are left as they are (skorch may change them, e.g.
        ``load_params`` maps an unavailable CUDA device to the CPU).
        """
        requested = self.device
        if not (isinstance(requested, str) and requested == "auto"):
            yield
            return
        self.device = resolve_device(requested)
        try:
            yield
        finally:
            self.device = requested

    def initialize(self):
        """Initialise the network on ``device_`` (``"auto"`` resolved here), load
        ``warm_start_from`` and freeze the parts outside ``trainable_parts``.

        Raises
        ------
        ValueError
            If ``device`` names a device this machine does not have (e.g. ``"cuda"``
            without CUDA).
        """
        self.device_ = _check_device(resolve_device(self.device), self.device)
        with self._resolved_device():
            super().initialize()
        return self

    def _initialize_module(self, reason=None):
        # skorch moves the new network to self.device: also when set_params(module__...)
        # re-initialises a fitted classifier
        with self._resolved_device():
            return super()._initialize_module(reason=reason)

    def _initialize_criterion(self, reason=None):
        with self._resolved_device():
            return super()._initialize_criterion(reason=reason)

    def load_params(self, *args, **kwargs):
        """skorch's ``load_params``, with ``device="auto"`` resolved (see :meth:`initialize`).

        :meth:`save_model` / :meth:`load_model` are the classifier's own format (weights,
        architecture and classes, no pickle).
        """
        with self._resolved_device():
            return super().load_params(*args, **kwargs)

    def initialize_module(self):
        source = (None if self.warm_start_from is None
                  else _source_state(self.warm_start_from))
        config = self._module_config(None if source is None else source["config"])
        self.module_ = self._module_class()(**config)
        self.module_config_ = config
        missing = [p for p in PARTS if not isinstance(getattr(self.module_, p, None),
                                                      torch.nn.Module)]
        if missing:
            raise TypeError(f"the network must have sub-modules {PARTS}; missing {missing}")
        if source is not None:
            self._load_warm_start(source)
        parts = _normalise_parts(self.trainable_parts)
        for part in PARTS:
            for p in getattr(self.module_, part).parameters():
                p.requires_grad_(part in parts)
        return self

    def _load_warm_start(self, src):
        cfg, own = src["config"], self.module_config_
        diffs = [f"{k}: source {cfg[k]!r}, this classifier {own[k]!r}"
                 for k in _architecture_differences(cfg, own)]
        if diffs:
            hint = ""
            if any(d.startswith("cell") for d in diffs):
                hint = f" (set cell={cfg['cell']!r})"
            raise ValueError("warm_start_from has an incompatible architecture: "
                             + "; ".join(diffs) + hint)
        _load_state_checked(self.module_, src["state_dict"], "warm_start_from",
                            described="this classifier's network")

    def initialize_optimizer(self, *args, **kwargs):
        """The optimiser gets only the trainable parts; none for direct transfer."""
        if not _normalise_parts(self.trainable_parts):
            self.optimizer_ = None
            return self
        return super().initialize_optimizer(*args, **kwargs)

    def get_all_learnable_params(self):
        """Only the parameters of the trainable parts go to the optimiser."""
        parts = _normalise_parts(self.trainable_parts)
        for part in parts:
            for name, p in getattr(self.module_, part).named_parameters():
                yield f"{part}.{name}", p

    # ------------------------------------------------------------------ training
    @contextlib.contextmanager
    def _seeded(self, seed):
        if seed is None:
            yield
            return
        devices = []
        if self.device_.startswith("cuda") and torch.cuda.is_available():
            devices = [torch.device(self.device_).index or 0]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def fit(self, X, y, groups=None, recordings=None, **fit_params):
        """Train on all stride-1 windows of ``seq_len`` epochs inside each recording.

        Parameters
        ----------
        X : array of shape (n_epochs, n_channels, 29, 129)
        y : int array of shape (n_epochs,)
            Stage labels 0..4.
        groups : array of shape (n_epochs,), optional
            Subject of every epoch (for ``train_split``; fallback recordings).
        recordings : array of shape (n_epochs,), optional
            Recording id of every epoch.
        **fit_params
            None are used: any other keyword (``sample_weight``, ``class_weight``, ...) is a
            ``TypeError`` rather than silently ignored (the loss is the unweighted per-window
            mean of REFERENCE §4).

        Returns
        -------
        self

        Notes
        -----
        A fit that raises leaves the classifier unfitted (``predict`` raises
        ``NotFittedError``), also when it had been fitted before: the network is
        re-initialised early in ``fit``, so the previous weights are gone either way, and a
        half-initialised network must not predict as if it were trained. This includes
        Ctrl-C (SIGINT) during training: ``KeyboardInterrupt`` propagates, where skorch would
        end training and return the partly trained network as if it had finished. A callback
        that raises ``KeyboardInterrupt`` to stop training (as skorch's ``EarlyStopping``
        does) still ends training normally.
        """
        if fit_params:
            raise TypeError(
                f"{type(self).__name__}.fit got unexpected keyword argument(s) "
                f"{sorted(fit_params)}: it takes X, y, groups and recordings only (sample or "
                "class weights are not supported: the loss is the unweighted per-window mean, "
                "REFERENCE §4)")
        try:
            return self._fit(X, y, groups, recordings)
        except BaseException:       # KeyboardInterrupt included (see fit_loop)
            self._forget_fit()
            raise

    #: what ``fit`` sets; removed again when a fit fails (see :meth:`fit`, Notes)
    _FITTED_ATTRIBUTES = (
        "module_", "criterion_", "optimizer_", "module_config_", "classes_inferred_",
        "validation_history_", "train_windows_", "train_recordings_", "valid_windows_",
        "valid_recordings_", "best_step_", "train_rng_")
    # n_channels_, n_frames_, n_freq_bins_ (the input sizes) stay: initialize() needs them

    def set_params(self, **params):
        """Set parameters (scikit-learn / skorch).

        On a fitted classifier, ``module__*`` settings that differ from the fitted network's
        would make skorch build a new, randomly initialised network in its place, silently
        (a loaded model then predicted at random); a different ``seq_len`` or ``cell`` would
        make predictions run windows or cells the network was not trained with. Here the
        classifier says so and becomes unfitted instead (a ``UserWarning``; ``predict``
        raises ``NotFittedError`` until the next ``fit``). Values equal to the fitted
        network's, and ``cell=None``, leave it as it is.
        """
        config = self.__dict__.get("module_config_")
        if self.initialized_ and config is not None:
            module_params = {k: v for k, v in params.items() if k.startswith("module__")}
            # module__* settings, and seq_len and cell (cell=None: follow the warm-start
            # source at the next fit, which leaves the fitted network as it is)
            changed = [k for k, v in module_params.items()
                       if k[len("module__"):] not in config or config[k[len("module__"):]] != v]
            changed += [k for k in ("seq_len", "cell") if k in params
                        and params[k] is not None and params[k] != config.get(k)]
            if changed:
                warnings.warn(
                    f"set_params({', '.join(changed)}) changes the network of this fitted "
                    f"{type(self).__name__}: its trained weights are discarded and it is "
                    "unfitted until the next fit", UserWarning, stacklevel=2)
                self._forget_fit()      # skorch then only stores the settings
            elif module_params:
                for k, v in module_params.items():   # recorded, the network kept
                    setattr(self, k, v)
                params = {k: v for k, v in params.items() if k not in module_params}
        return super().set_params(**params)

    def _forget_fit(self):
        for attr in self._FITTED_ATTRIBUTES:
            self.__dict__.pop(attr, None)
        self.initialized_ = False

    def _check_fit_settings(self):
        """The checks ``fit`` makes before any work: the parameters (:meth:`_check_params`)
        and the device. Returns ``(trainable parts, resolved device)``; also used by the
        study to refuse bad settings before it writes anything."""
        return self._check_params(), _check_device(resolve_device(self.device), self.device)

    def _fit(self, X, y, groups, recordings):
        parts, self.device_ = self._check_fit_settings()
        X = np.asarray(X)
        if X.ndim == 4:
            self.n_channels_, self.n_frames_, self.n_freq_bins_ = (int(s) for s in X.shape[1:])
        # nothing of an earlier fit survives this one; its network (and the classes it
        # predicts, set again below) is replaced by initialize, which may read it first
        # (warm_start_from this classifier: continuing training, or direct transfer)
        for attr in self._FITTED_ATTRIBUTES:
            if attr not in ("module_", "module_config_", "classes_inferred_"):
                self.__dict__.pop(attr, None)
        X = self._check_X(X, against_network=False)
        if _looks_like_bins(X.shape[2]) and not _looks_like_bins(X.shape[3]):
            warnings.warn(
                f"X has epochs of shape {X.shape[1:]} = (n_channels, n_frames, n_freq_bins): "
                f"n_frames={X.shape[2]} is a number of frequency bins of an FFT (nfft / 2 + 1 "
                f"with nfft a power of two, as SpectrogramTransformer gives, e.g. (1, 29, "
                f"129)) and n_freq_bins={X.shape[3]} is not; are the last two axes swapped? "
                "(np.swapaxes(X, 2, 3) swaps them)", UserWarning, stacklevel=2)
        recs = find_recordings(len(X), recordings, groups, what="X")
        rs = check_random_state(self.random_state)
        torch_seed = int(rs.randint(2**31 - 1)) if self.random_state is not None else None
        self.train_rng_ = np.random.default_rng(int(rs.randint(2**31 - 1)))
        split_seed = int(rs.randint(2**31 - 1))
        with self._seeded(torch_seed):
            if not parts:
                # direct transfer: no training at all
                self.initialize()
                n_classes = int(self.module_config_["n_classes"])
                check_stage_labels(y, "y", n_classes=n_classes, n_epochs=len(X))
                self.classes_inferred_ = np.arange(n_classes)
                self.validation_history_ = []
                self.train_windows_ = np.zeros((0, 2), np.int64)
                self.train_recordings_ = recs.names
                if self.warm_start_from is None:
                    warnings.warn("trainable_parts=() (direct transfer) without "
                                  "warm_start_from: the network keeps its random weights",
                                  UserWarning, stacklevel=2)
                return self
            n_classes = int(self._peek_n_classes())
            y = check_stage_labels(y, "y", n_classes=n_classes, n_epochs=len(X))
            dataset = RecordingsDataset(X, y, groups, recs, int(self.seq_len))
            short = _short_recordings_message(recs, int(self.seq_len))
            if short:
                warnings.warn(f"{short} give no training window", UserWarning, stacklevel=2)
            self.classes_inferred_ = np.arange(n_classes)
            self.validation_history_ = []
            self._in_fit_ = True     # lets skorch's fit call partial_fit (see partial_fit)
            self._train_split_ = self._seeded_split(split_seed)    # see get_split_datasets
            try:
                with self._noting_ctrl_c():
                    super().fit(dataset, None)
            finally:
                for attr in ("_in_fit_", "_train_split_", "valid_dataset_", "_step_cache_",
                             "_epoch_kwargs_"):
                    self.__dict__.pop(attr, None)
                # taken in every case: a Ctrl-C noted in a fit that then failed must not
                # interrupt the next fit
                interrupted = self.__dict__.pop("_interrupted_", False)
            if interrupted:
                # skorch ends training on Ctrl-C and returns as if it had finished; in a
                # cross-validation or a study that stored a cut-short fit as a result
                raise KeyboardInterrupt(f"{type(self).__name__}.fit interrupted")
        return self

    @contextlib.contextmanager
    def _noting_ctrl_c(self):
        """Note a Ctrl-C (SIGINT) that arrives while skorch trains.

        skorch ends training on any ``KeyboardInterrupt`` and returns as if it had finished.
        A callback raising one to stop training (skorch's ``EarlyStopping`` does) keeps that
        meaning; a real Ctrl-C is noted here so that ``fit`` raises it afterwards. Signal
        handlers can only be set in the main thread; elsewhere (and where SIGINT is ignored)
        nothing is installed.
        """
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is not threading.main_thread() or not callable(previous):
            yield
            return

        def on_sigint(signum, frame):
            self._interrupted_ = True
            previous(signum, frame)

        signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's training loop; early stopping closes the epoch it cuts short.

        Early stopping (:class:`StepValidation`) usually comes in the middle of an epoch: that
        epoch is closed as a finished one is (``train_loss`` and ``dur`` recorded, its row
        printed) before training ends.
        """
        try:
            return super().fit_loop(X, y, epochs, **fit_params)
        except _EarlyStop as stop:
            self.notify("on_epoch_end", **self._epoch_kwargs_)
            if self.verbose:
                print(stop)
            raise

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Not supported: raises ``NotImplementedError``.

        skorch's ``partial_fit`` would train further on ``X`` as given, without this
        classifier's input checks, recordings and sequence windows, validation split and
        early stopping. To continue training from a model, fit a classifier that starts from
        its weights: ``SeqSleepClassifier(warm_start_from=fitted_clf).fit(X, y,
        recordings=...)``, where ``warm_start_from`` may also be a file written by
        :meth:`save_model` (``fit`` always starts from ``warm_start_from``, or from random
        weights without it).

        Parameters
        ----------
        X, y, classes, **fit_params
            Ignored.

        Raises
        ------
        NotImplementedError
            Always (``fit`` uses skorch's ``partial_fit`` internally).
        """
        if self.__dict__.get("_in_fit_"):
            return super().partial_fit(X, y, classes, **fit_params)
        raise NotImplementedError(
            f"{type(self).__name__} does not support partial_fit; use fit, and to continue "
            "training from a model pass it as warm_start_from=<fitted classifier or file "
            "written by save_model> to a new classifier's fit")

    def _seeded_split(self, seed: int):
        """``train_split``, or, if it has a ``random_state`` that is None, a shallow copy of it
        with ``random_state=seed`` (drawn from the classifier's ``random_state``); the user's
        splitter is not modified."""
        split = self.train_split
        if split is None or not hasattr(split, "random_state") or split.random_state is not None:
            return split
        split = copy.copy(split)
        split.random_state = seed
        return split

    def _peek_n_classes(self) -> int:
        extra = self.get_params_for("module")
        if "n_classes" in extra:
            return extra["n_classes"]
        sig = inspect.signature(self._module_class()).parameters
        return sig["n_classes"].default if "n_classes" in sig else 5

    def get_split_datasets(self, X, y=None, **fit_params):
        """Split the recordings with ``train_split`` (whole subjects); the validation part is
        used by :class:`StepValidation` every ``validate_every`` steps, not per epoch."""
        dataset = self.get_dataset(X, y)
        valid = None
        split = self.__dict__.get("_train_split_", self.train_split)
        if split:
            train, valid = split(dataset, **fit_params)
        else:
            train = dataset
        for part in (train, valid):
            if part is not None and not isinstance(part, RecordingsDataset):
                raise TypeError(
                    "train_split must split the classifier's dataset of recordings by whole "
                    "subjects and return two such datasets (use skseqsleep.model_selection."
                    f"GroupHoldout or PredefinedGroupSplit); got {type(part).__name__}")
        if len(train) == 0:
            raise ValueError(
                f"no training window: every training recording is shorter than seq_len="
                f"{self.seq_len} epochs (recording lengths {train.recs.lengths[:5].tolist()})")
        if len(train) < int(self.batch_size):
            held_out = ("" if valid is None else
                        f" (after train_split held out {len(valid.recs)} validation "
                        "recording(s))")
            raise ValueError(
                f"only {len(train)} training window(s) of seq_len={self.seq_len} epochs"
                f"{held_out} for batch_size={self.batch_size}: the last partial minibatch is "
                "dropped (REFERENCE §4), so fit would make no training step; lower "
                f"batch_size to at most {len(train)} or add recordings")
        if valid is not None and len(valid.recs) == 0:
            valid = None
        self.train_windows_ = train.train_windows.as_pairs(train.recs)
        self.train_recordings_ = train.recs.names
        if valid is not None:
            vw = valid.eval_windows     # built once per fit, reused by every validation
            self.valid_windows_ = vw.as_pairs(valid.recs)
            self.valid_recordings_ = valid.recs.names
            self.valid_dataset_ = valid
        return train, None

    def get_iterator(self, dataset, training=False):
        """Training batches of windows, built by the ``train_sampler`` strategy.

        ``"per-window"`` (reference) yields ``(X[idx], y[idx])`` with ``idx`` of shape
        ``(batch_size, seq_len)``, gathered from the epoch array on the fly
        (:class:`skseqsleep._windows.WindowBatches`); skorch's ``iterator_train`` is not
        used for the classifier's own dataset. Other strategies plug in here (and, if their
        batches differ, in :meth:`infer`). Non-training iterators are skorch's.
        """
        is_windows = training and isinstance(dataset, RecordingsDataset)
        if is_windows and self.train_sampler == "per-window":
            return WindowBatches(dataset, int(self.batch_size), self.train_rng_)
        if is_windows and self.train_sampler == "shared":
            block = None if self.train_block_size is None else int(self.train_block_size)
            return training_loader(dataset, int(self.batch_size), self.train_rng_,
                                   block_size=block)
        return super().get_iterator(dataset, training=training)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Work out once per fit what every training step needs (see :meth:`_step_setup`)."""
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.__dict__.pop("_step_cache_", None)
        self._step_cache_ = self._step_setup()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        self.__dict__.pop("_step_cache_", None)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Keep what skorch passes to the epoch hooks, for the epoch that early stopping
        closes (:meth:`fit_loop`)."""
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        self._epoch_kwargs_ = {"dataset_train": dataset_train, "dataset_valid": dataset_valid}

    def _step_setup(self) -> tuple[tuple[str, ...], tuple[torch.nn.Parameter, ...]]:
        """``(frozen parts, L2-penalised learnable parameters)`` of the current network.

        The penalised parameters are those of :meth:`get_all_learnable_params` (in that
        order) that are in the network's ``l2_parameters()``, or, for a network without that
        method, whose name does not contain ``"filterbank"``. During ``fit`` this is
        computed once (``on_train_begin``) and kept until the end of training; outside
        ``fit`` it is computed at every call.
        """
        cached = self.__dict__.get("_step_cache_")
        if cached is not None:
            return cached
        parts = _normalise_parts(self.trainable_parts)
        frozen = tuple(part for part in PARTS if part not in parts)
        module = self.module_
        if hasattr(module, "l2_parameters"):
            penalised = {id(p) for p in module.l2_parameters()}
        else:
            penalised = {id(p) for n, p in module.named_parameters() if "filterbank" not in n}
        l2 = tuple(p for _, p in self.get_all_learnable_params() if id(p) in penalised)
        return frozen, l2

    def infer(self, x, **fit_params):
        """Forward a batch of windows ``(batch, L, n_channels, n_frames, n_freq_bins)``.

        While training, the frozen parts are put back in eval mode (no dropout, no
        batch-norm statistic updates). ``fit_params`` are not passed to the network."""
        module = self.module_
        if module.training and self.frozen_mode == "eval":
            for part in self._step_setup()[0]:
                getattr(module, part).eval()
        if isinstance(x, WindowBlockBatch):  # train_sampler="shared"
            return shared_forward(module, x.epochs.to(self.device_), x.windows)
        x = to_tensor(x, device=self.device_)
        return module(x)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Cross-entropy averaged over windows and positions, plus (training) the L2 term
        λ/(2·batch_size)·Σ‖θ‖² over the trainable parameters except the filterbank."""
        y_true = to_tensor(y_true, device=self.device_).long()
        loss = self.criterion_(y_pred.reshape(-1, y_pred.shape[-1]), y_true.reshape(-1))
        if training and self.l2_lambda:
            l2 = sum(p.pow(2).sum() for p in self._step_setup()[1])
            if torch.is_tensor(l2):
                loss = loss + self.l2_lambda / (2 * self.batch_size) * l2
        return loss

    # ------------------------------------------------------------------ inference
    def _iter_window_log_probas(self, X, recs, windows, inference=None):
        """Yield ``(epoch_index (n, l), log_probas (n, l, K) tensor)`` for all windows."""
        if inference is None:
            self._check_inference()     # set_params(inference=...) after fit is checked here
            inference = self.inference
        module = self.module_
        module.eval()
        dev = self.device_
        with torch.inference_mode():
            if inference == "encode-once":
                ep = np.concatenate([np.arange(a, b) for a, b in zip(recs.starts, recs.stops)])
                pos = np.full(len(X), -1, dtype=np.int64)
                pos[ep] = np.arange(len(ep))
                feats = torch.cat([
                    module.encode_epochs(torch.from_numpy(X[ep[i:i + _ENCODE_CHUNK]]).to(dev))
                    for i in range(0, len(ep), _ENCODE_CHUNK)])
                for length, w in windows.by_length():
                    idx_all = w.epoch_index(length)
                    for i in range(0, len(idx_all), _WINDOW_CHUNK):
                        idx = idx_all[i:i + _WINDOW_CHUNK]
                        f = feats[torch.from_numpy(pos[idx]).to(dev)]
                        yield idx, torch.log_softmax(module.classify_sequences(f), dim=-1)
            else:
                for length, w in windows.by_length():
                    idx_all = w.epoch_index(length)
                    for i in range(0, len(idx_all), _WINDOW_CHUNK):
                        idx = idx_all[i:i + _WINDOW_CHUNK]
                        xb = torch.from_numpy(X[idx]).to(dev)
                        yield idx, torch.log_softmax(module(xb), dim=-1)

    def validation_scores(self, dataset: RecordingsDataset) -> tuple[float, float]:
        """Accuracy and cross-entropy averaged over all window positions of ``dataset``'s
        recordings (no ensemble, REFERENCE §4).

        The windows are the dataset's ``eval_windows``: built once, when ``fit`` splits off
        the validation recordings, and reused by every validation (each fit builds new
        datasets, hence new windows)."""
        if dataset.seq_len == int(self.seq_len):
            windows = dataset.eval_windows
        else:
            windows = make_windows(dataset.recs, int(self.seq_len), short="whole")
        y = torch.from_numpy(np.asarray(dataset.y))
        correct, nll, count = 0, 0.0, 0
        for idx, logp in self._iter_window_log_probas(dataset.X, dataset.recs, windows):
            yt = y[torch.from_numpy(idx)].to(logp.device)
            correct += int((logp.argmax(-1) == yt).sum())
            nll += float(-logp.gather(-1, yt.unsqueeze(-1)).sum())
            count += yt.numel()
        return correct / count, nll / count

    def fused_log_scores(self, X, recordings=None, groups=None, *, inference=None):
        """Multiplicative fusion of the shift-by-one ensemble (REFERENCE §5).

        Returns
        -------
        scores : ndarray (n_epochs, n_classes)
            Sum, over the windows covering each epoch, of their natural-log softmax outputs.
        counts : ndarray (n_epochs,)
            Number of windows covering each epoch.
        """
        self.check_is_fitted()
        X = self._check_X(X)
        recs = find_recordings(len(X), recordings, groups, what="X")
        short = _short_recordings_message(recs, int(self.seq_len))
        if short:
            warnings.warn(f"{short} are each classified as one shorter window over all their "
                          "epochs (less context than the training windows)", UserWarning,
                          stacklevel=3)
        windows = make_windows(recs, int(self.seq_len), short="whole")
        k = int(self.module_config_["n_classes"])
        fused = np.zeros((len(X), k)), np.zeros(len(X), dtype=np.int64)
        for idx, logp in self._iter_window_log_probas(X, recs, windows, inference):
            multiplicative_fusion(logp.double().cpu().numpy(), idx, len(X), out=fused)
        return fused

    def predict_proba(self, X, recordings=None, groups=None):
        """Softmax of the mean log-probability over the windows covering each epoch.

        Parameters
        ----------
        X : array of shape (n_epochs, n_channels, 29, 129)
        recordings, groups : array of shape (n_epochs,), optional
            See the class Notes (windows never cross two recordings).

        Returns
        -------
        ndarray of shape (n_epochs, n_classes)
        """
        scores, counts = self.fused_log_scores(X, recordings, groups)
        return torch.softmax(torch.from_numpy(scores / counts[:, None]), dim=1).numpy()

    def predict(self, X, recordings=None, groups=None):
        """Stage of every epoch: argmax of the fused log-probabilities (REFERENCE §5).

        Parameters
        ----------
        X : array of shape (n_epochs, n_channels, 29, 129)
        recordings, groups : array of shape (n_epochs,), optional

        Returns
        -------
        ndarray of shape (n_epochs,)
        """
        scores, _ = self.fused_log_scores(X, recordings, groups)
        return self.classes_[scores.argmax(axis=1)]

    def score(self, X, y, recordings=None, groups=None, sample_weight=None):
        """Accuracy of :meth:`predict` (recording-aware).

        Parameters
        ----------
        X : array of shape (n_epochs, n_channels, 29, 129)
        y : int array of shape (n_epochs,)
            Stage labels 0..4, checked as in ``fit``.
        recordings, groups : array of shape (n_epochs,), optional
        sample_weight : array of shape (n_epochs,), optional

        Returns
        -------
        float
        """
        from sklearn.metrics import accuracy_score

        self.check_is_fitted()
        X = self._check_X(X)
        y = check_stage_labels(y, "y", n_classes=int(self.module_config_["n_classes"]),
                               n_epochs=len(X))
        return accuracy_score(y, self.predict(X, recordings, groups),
                              sample_weight=sample_weight)

    # ------------------------------------------------------------------ persistence
    def save_model(self, path) -> None:
        """Save the fitted network: weights, architecture, classes and package version.

        The file is written with :func:`torch.save` and holds only a plain dict of tensors,
        strings and numbers (no pickled objects), so :meth:`load_model` reads it with
        ``torch.load(weights_only=True)``. It is first written to a temporary file in the
        same folder, then renamed: a failed save leaves no partial file and keeps any
        previous file at ``path`` as it was.

        Parameters
        ----------
        path : path-like
            The file to write (conventionally ``*.pt``). Its folder must exist.

        Raises
        ------
        IsADirectoryError
            ``path`` is a folder.
        FileNotFoundError
            The folder of ``path`` does not exist.
        NotADirectoryError
            A parent of ``path`` is a file, not a folder.
        """
        from skseqsleep import __version__

        self.check_is_fitted()
        config = dict(self.module_config_)
        for k, v in config.items():
            if not isinstance(v, (bool, int, float, str, type(None))):
                raise TypeError(f"cannot save network setting {k}={v!r}: not JSON-able")
        target = _check_save_path(path)
        content = {
            "format": _MODEL_FORMAT,
            "format_version": _MODEL_FORMAT_VERSION,
            "skseqsleep_version": __version__,
            "config": config,
            "classes": [int(c) for c in self.classes_],
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
        }
        try:
            atomic_write(target, lambda fh: torch.save(content, fh))
        except OSError as err:
            if err.errno is None:
                raise
            # name the model file, not the temporary one, keeping the error's class
            raise type(err)(err.errno, f"cannot save the model to {target}: "
                            f"{err.strerror} (while writing the temporary file "
                            f"{err.temporary_file} in its folder); nothing was written") from err

    @classmethod
    def load_model(cls, path, **params) -> SeqSleepClassifier:
        """Load a model written by :meth:`save_model` as a fitted classifier.

        Parameters
        ----------
        path : path-like
        **params
            Further estimator parameters (e.g. ``device="cpu"``, ``verbose=0``). The
            architecture (``seq_len``, ``cell``, ``module__*``) comes from the file: giving
            one of them with another value is a ``ValueError``.
        """
        content = _read_model_file(path)
        where = str(Path(path).expanduser())
        config = dict(content["config"])
        missing = [k for k in _OWN_KEYS if k not in config]
        if missing:
            raise ValueError(f"{where}: the model's config lacks the key(s) {missing} "
                             f"(found {sorted(config)}); the file is damaged or was not "
                             "written by SeqSleepClassifier.save_model")
        n_classes = config.get("n_classes", 5)
        classes = content.get("classes")
        if classes is not None and list(classes) != list(range(int(n_classes))):
            raise ValueError(f"{where}: the model's classes {list(classes)!r} do not match its "
                             f"network's n_classes={n_classes} (expected "
                             f"{list(range(int(n_classes)))}); the file is inconsistent")
        own = {k: config.pop(k) for k in _OWN_KEYS}
        from_file = {"seq_len": own["seq_len"], "cell": own["cell"],
                     **{f"module__{k}": v for k, v in config.items()}}
        clash = [f"{k}={params[k]!r} (the file has {v!r})" for k, v in from_file.items()
                 if k in params and params[k] != v]
        if clash:
            raise ValueError(f"{where}: the network's architecture comes from the model file; "
                             f"cannot load it with {', '.join(clash)}")
        params = {k: v for k, v in params.items() if k not in from_file}
        clf = cls(**from_file, **params)
        clf.n_channels_ = int(own["n_channels"])
        clf.n_frames_ = int(own["n_frames"])
        clf.n_freq_bins_ = int(own["n_freq_bins"])
        clf.initialize()
        _load_state_checked(clf.module_, content["state_dict"], where)
        clf.classes_inferred_ = np.arange(int(n_classes))
        clf.validation_history_ = []
        return clf


def load_model(path, **params) -> SeqSleepClassifier:
    """Load a model written by :meth:`SeqSleepClassifier.save_model`.

    Examples
    --------
    >>> from skseqsleep.classifier import load_model  # doctest: +SKIP
    >>> clf = load_model("model.pt", verbose=0)         # doctest: +SKIP
    """
    return SeqSleepClassifier.load_model(path, **params)
