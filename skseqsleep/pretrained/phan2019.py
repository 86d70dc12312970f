"""The authors' MASS-pretrained SeqSleepNet checkpoints, mapped onto ``SeqSleepNet(cell="bnlstm")``.

The released checkpoints (REFERENCE §3; ``pquochuy/sleep_transfer_learning``, CC BY-NC 4.0:
download them from the authors, they are not shipped) are TensorFlow 1.x TensorBundles read
with :func:`~skseqsleep.pretrained.tensorbundle.read_tensorbundle`. Each variable is copied
unchanged into the parameter or buffer of the same meaning:

==================================================  =========================================
checkpoint variable                                 ``SeqSleepNet`` state
==================================================  =========================================
``filterbank-layer-eeg/Variable`` (129, 32)         ``arnn.filterbanks.0.V``
``filterbank-layer-eog/Variable`` (129, 32)         ``arnn.filterbanks.1.V`` (2-channel model)
``frame_rnn_layer/{fw,bw}/BNLSTMCell/W_xh`` (D, 4H)  ``arnn.rnn.{fw,bw}.W_xh`` (used as x @ W_xh)
``frame_rnn_layer/{fw,bw}/BNLSTMCell/W_hh`` (H, 4H)  ``arnn.rnn.{fw,bw}.W_hh`` (used as h @ W_hh)
``frame_rnn_layer/.../{xh,hh,c}/{scale,offset}``     ``arnn.rnn.{fw,bw}.{xh,hh,c}.{scale,offset}``
``frame_rnn_layer/.../{xh,hh,c}/pop_{mean,var}``     ``arnn.rnn.{fw,bw}.{xh,hh,c}.pop_{mean,var}``
(S, .)                                              (buffers, row s = processing step s)
``frame_attention_layer/Variable`` (128, 64)        ``arnn.attention.W`` (W_omega)
``frame_attention_layer/Variable_1``, ``_2`` (64,)   ``arnn.attention.b``, ``arnn.attention.u``
``epoch_rnn_layer/{fw,bw}/BNLSTMCell/...``          ``seqrnn.{fw,bw}....`` (as the frame RNN)
``output_layer/output/weights`` (128, 5)            ``softmax.weight`` (**transposed**: (5, 128))
``output_layer/output/biases`` (5,)                 ``softmax.bias``
==================================================  =========================================

The 4H columns of ``W_xh``, ``W_hh`` and of the ``xh``/``hh`` statistics are the gate blocks in
the released order **f, i, o, j** (forget, input, output, candidate), which is also the order
of :class:`skseqsleep.nn.BNLSTM`; the xh normalisation has no offset. The filterbank mask is
not stored in the checkpoint (it is fixed); the network builds it from REFERENCE §3.

Channels: a model has one ``filterbank-layer-<name>`` per input channel, in the order
``eeg``, ``eog``, ``emg`` (the released code's order), so the 2-channel model takes EEG as
input channel 0 and EOG as channel 1. The released 1-channel EOG model still names its only
filterbank ``filterbank-layer-eeg`` (the code names the first channel "eeg" whatever it is):
which signal a 1-channel model expects is told by where it comes from (``1chan_eeg``: MASS
C4-A1 EEG; ``1chan_eog``: MASS horizontal EOG), not by the variable name.

Optimiser state (``*/Adam``, ``*/Adam_1``, ``beta1_power``, ``beta2_power``) and
``global_step`` are ignored; any other unexpected or missing variable is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .tensorbundle import (
    read_bundle_index,
    read_tensorbundle,
    resolve_checkpoint_prefix,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..nn import SeqSleepNet

__all__ = ["is_tf_checkpoint", "load_phan2019_model", "load_tf_checkpoint_state"]

#: Filterbank scopes of the released code, in input-channel order.
CHANNEL_SCOPES = ("eeg", "eog", "emg")

_IGNORED_SUFFIXES = ("/Adam", "/Adam_1")
_IGNORED_NAMES = {"beta1_power", "beta2_power", "global_step"}
_RNN_SCOPES = {"frame_rnn_layer": "arnn.rnn", "epoch_rnn_layer": "seqrnn"}
_BN_TENSORS = {
    "xh": ("scale", "pop_mean", "pop_var"),
    "hh": ("scale", "offset", "pop_mean", "pop_var"),
    "c": ("scale", "offset", "pop_mean", "pop_var"),
}


def is_tf_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a TensorFlow TensorBundle checkpoint.

    True for a prefix whose ``.index`` file exists (``.../pretrained_model.ckpt``), for the
    ``.index`` file itself, and for a folder holding exactly one ``*.index`` file.

    Examples
    --------
    >>> is_tf_checkpoint("no/such/model.ckpt")
    False
    """
    try:
        resolve_checkpoint_prefix(path)
    except (FileNotFoundError, OSError):
        return False
    return True


def _variable_map(n_channels: int) -> dict[str, str]:
    """Checkpoint variable name -> ``SeqSleepNet`` state_dict key (no transposition info)."""
    out = {}
    for c in range(n_channels):
        out[f"filterbank-layer-{CHANNEL_SCOPES[c]}/Variable"] = f"arnn.filterbanks.{c}.V"
    for scope, prefix in _RNN_SCOPES.items():
        for direction in ("fw", "bw"):
            base = f"{scope}/{direction}/BNLSTMCell"
            mod = f"{prefix}.{direction}"
            out[f"{base}/W_xh"] = f"{mod}.W_xh"
            out[f"{base}/W_hh"] = f"{mod}.W_hh"
            for bn, names in _BN_TENSORS.items():
                for n in names:
                    out[f"{base}/{bn}/{n}"] = f"{mod}.{bn}.{n}"
    out["frame_attention_layer/Variable"] = "arnn.attention.W"
    out["frame_attention_layer/Variable_1"] = "arnn.attention.b"
    out["frame_attention_layer/Variable_2"] = "arnn.attention.u"
    out["output_layer/output/weights"] = "softmax.weight"
    out["output_layer/output/biases"] = "softmax.bias"
    return out


def _is_optimiser_state(name: str) -> bool:
    return name in _IGNORED_NAMES or name.endswith(_IGNORED_SUFFIXES)


def load_tf_checkpoint_state(path: str | os.PathLike) -> dict:
    """Read one of the authors' SeqSleepNet TensorFlow checkpoints as a torch state.

    Parameters
    ----------
    path : str or path-like
        The checkpoint prefix (``.../pretrained_model.ckpt``, whose files are
        ``pretrained_model.ckpt.index`` and ``pretrained_model.ckpt.data-00000-of-00001``),
        its ``.index`` file, or the folder holding it.

    Returns
    -------
    dict
        ``{"config": kwargs, "state_dict": state}`` such that
        ``SeqSleepNet(**kwargs).load_state_dict(state)`` (strict) reproduces the released
        network. ``kwargs`` holds ``n_channels`` (number of ``filterbank-layer-*`` variables;
        EEG is channel 0 and EOG channel 1 in the 2-channel model), ``n_freq_bins``,
        ``n_frames``, ``n_filters``, ``rnn_hidden``, ``attention_size``, ``seq_len``,
        ``n_classes`` (all read from the variable shapes), ``cell="bnlstm"`` and
        ``dropout=0.25`` (REFERENCE §3; dropout is not stored in a checkpoint). ``state`` maps
        every state_dict key of that network to a float32 CPU tensor: the checkpoint's values
        (the output weights transposed to ``nn.Linear``'s ``(out, in)`` layout) and the fixed
        filterbank masks.

    Raises
    ------
    FileNotFoundError
        When no checkpoint is found at ``path``.
    CheckpointFormatError
        When the files are malformed or corrupt.
    ValueError
        When the checkpoint is not a BN-LSTM SeqSleepNet: missing or unexpected variables
        (listed), or shapes that do not fit together.

    Examples
    --------
    >>> from skseqsleep.nn import SeqSleepNet
    >>> state = load_tf_checkpoint_state("1chan_eeg/pretrained_model.ckpt")  # doctest: +SKIP
    >>> state["config"]["n_channels"], state["config"]["cell"]  # doctest: +SKIP
    (1, 'bnlstm')
    >>> net = SeqSleepNet(**state["config"])  # doctest: +SKIP
    >>> net.load_state_dict(state["state_dict"])  # doctest: +SKIP
    <All keys matched successfully>
    """
    import torch

    from ..nn import SeqSleepNet

    prefix = resolve_checkpoint_prefix(path)
    _, entries = read_bundle_index(prefix)
    shapes = {e.name: e.shape for e in entries if not _is_optimiser_state(e.name)}

    fb_names = sorted(n for n in shapes if n.startswith("filterbank-layer-"))
    n_channels = len(fb_names)
    expected_fb = [f"filterbank-layer-{s}/Variable" for s in CHANNEL_SCOPES[:n_channels]]
    if n_channels == 0 or sorted(expected_fb) != fb_names:
        raise ValueError(
            f"checkpoint {prefix}: expected filterbank variables {expected_fb or [expected_fb]} "
            f"for channels in the order {CHANNEL_SCOPES}, found {fb_names}")

    def shape_of(name, ndim):
        if name not in shapes:
            raise ValueError(f"checkpoint {prefix}: variable {name!r} is missing "
                             "(not a BN-LSTM SeqSleepNet checkpoint?)")
        if len(shapes[name]) != ndim:
            raise ValueError(f"checkpoint {prefix}: variable {name!r} has shape "
                             f"{shapes[name]}, expected {ndim} dimensions")
        return shapes[name]

    n_freq_bins, n_filters = shape_of(expected_fb[0], 2)
    rnn_hidden = shape_of("frame_rnn_layer/fw/BNLSTMCell/W_hh", 2)[0]
    n_frames = shape_of("frame_rnn_layer/fw/BNLSTMCell/c/pop_mean", 2)[0]
    seq_len = shape_of("epoch_rnn_layer/fw/BNLSTMCell/c/pop_mean", 2)[0]
    attention_size = shape_of("frame_attention_layer/Variable", 2)[1]
    n_classes = shape_of("output_layer/output/weights", 2)[1]
    config = {
        "n_channels": n_channels, "n_freq_bins": int(n_freq_bins), "n_frames": int(n_frames),
        "n_filters": int(n_filters), "rnn_hidden": int(rnn_hidden),
        "attention_size": int(attention_size), "seq_len": int(seq_len),
        "n_classes": int(n_classes), "cell": "bnlstm", "dropout": 0.25,
    }

    mapping = _variable_map(n_channels)
    missing = sorted(set(mapping) - set(shapes))
    unexpected = sorted(set(shapes) - set(mapping))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {prefix} does not match a {n_channels}-channel BN-LSTM SeqSleepNet: "
            f"missing variables {missing}, unexpected variables {unexpected}")

    # shapes (and the fixed buffers) from a network built without random initialisation
    with torch.device("meta"):
        template = SeqSleepNet(**config).state_dict()
    values = read_tensorbundle(prefix, names=sorted(mapping))
    state = {}
    mismatched = []
    for name, key in mapping.items():
        arr = values[name]
        if key == "softmax.weight":
            arr = arr.T
        if tuple(arr.shape) != tuple(template[key].shape) or arr.dtype != np.float32:
            mismatched.append(f"{name}: {values[name].dtype}{tuple(values[name].shape)} -> "
                              f"{key} {tuple(template[key].shape)}")
            continue
        state[key] = torch.from_numpy(np.ascontiguousarray(arr))
    if mismatched:
        raise ValueError(
            f"checkpoint {prefix}: variables whose dtype or shape does not fit the network "
            f"{config}: {mismatched}")
    # fixed buffers (filterbank masks): built from numpy, so real even in the meta template
    fixed = [k for k in template if k not in state]
    for key in fixed:
        state[key] = template[key].detach().clone()
    # keep the network's own state_dict order
    return {"config": config, "state_dict": {k: state[k] for k in template}}


def load_phan2019_model(path: str | os.PathLike) -> SeqSleepNet:
    """The authors' pretrained SeqSleepNet, loaded and in evaluation mode.

    Parameters
    ----------
    path : str or path-like
        Checkpoint prefix, ``.index`` file or folder (see :func:`load_tf_checkpoint_state`).

    Returns
    -------
    skseqsleep.nn.SeqSleepNet
        ``SeqSleepNet(cell="bnlstm", ...)`` with the checkpoint's weights and BN population
        statistics, in ``eval()`` mode (inference uses the population statistics).

    Examples
    --------
    >>> import torch
    >>> net = load_phan2019_model("1chan_eeg/pretrained_model.ckpt")  # doctest: +SKIP
    >>> net(torch.zeros(1, 20, 1, 29, 129)).shape  # doctest: +SKIP
    torch.Size([1, 20, 5])
    """
    import torch

    from ..nn import SeqSleepNet

    state = load_tf_checkpoint_state(Path(os.fspath(path)))
    with torch.device("meta"):  # no random initialisation: every tensor comes from the state
        net = SeqSleepNet(**state["config"])
    net.load_state_dict(state["state_dict"], strict=True, assign=True)
    leftover = [n for n, t in [*net.named_parameters(), *net.named_buffers()] if t.is_meta]
    if leftover:  # pragma: no cover - every tensor is in the state_dict
        raise RuntimeError(f"tensors not loaded from {path}: {leftover}")
    return net.eval()
