"""Shared-epoch computation of SeqSleepNet windows (training and prediction).

Every epoch of a recording belongs to up to ``L`` overlapping stride-1 windows (``L = 20``,
REFERENCE §4-§5), and the epoch-level part of the network (ARNN: filterbank, epoch-level
bi-RNN and attention, REFERENCE §3) is nearly all of the compute. Computed window by
window, each epoch's ARNN vector is therefore computed up to ``L`` times. This module
computes it **once per epoch** and hands the SeqRNN the windows as index views into the
per-epoch vectors:

- prediction: :func:`fused_log_scores` encodes every epoch once, runs the SeqRNN and the
  softmax layer over every window, and sums the natural-log softmax outputs of the windows
  covering each epoch (the multiplicative fusion of REFERENCE §5). It equals the window by
  window computation (:func:`per_window_logits`) up to float rounding.
- training: :class:`WindowBlockSampler` draws minibatches of ``batch_size`` windows made of
  contiguous *blocks* of windows, so that the windows of one minibatch share most of their
  epochs; :func:`shared_forward` encodes the distinct epochs of the minibatch once and returns
  the same ``(B, L, n_classes)`` logits as ``module(x_windows)``. The per-window loss is
  unchanged. Two things differ from window by window training, and both are documented
  choices: (a) the windows of a minibatch are contiguous blocks instead of independent draws
  (``block_size=1`` gives back independent draws), and (b) in training mode the ARNN's
  dropout masks (and a BN-LSTM's batch statistics) are drawn once per *distinct epoch* of the
  minibatch and shared by every window containing it, while window by window computation
  draws them once per (window, position). The SeqRNN's dropout is still drawn per window.
  In evaluation mode both computations are the same function of the weights.

Windows are ``(start)`` indices into the epoch array, never materialised copies: a minibatch
copies only its distinct epochs (about ``block_size + L - 1`` per block).

The network is anything with the two methods of :class:`skseqsleep.nn.SeqSleepNet`
(CONTRIBUTING, "Network"): ``encode_epochs(x (N, C, T, F)) -> (N, D)`` and
``classify_sequences(features (B, L, D)) -> logits (B, L, K)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = [
    "WindowBlockBatch",
    "WindowBlockLoader",
    "WindowBlockSampler",
    "fused_log_scores",
    "per_window_logits",
    "recording_bounds",
    "shared_forward",
    "shared_window_logits",
    "window_starts",
]


# ---------------------------------------------------------------------------------------------
# recordings and windows as indices
# ---------------------------------------------------------------------------------------------
def recording_bounds(recordings=None, n_epochs: int | None = None) -> np.ndarray:
    """Start and stop epoch index of each recording (contiguous runs of equal ids).

    Parameters
    ----------
    recordings : array-like of shape (n_epochs,) or None
        Recording id of every epoch; epochs of one recording are contiguous and in time
        order (CONTRIBUTING, "Dataset Bunch"). Each run of equal consecutive ids is one
        recording. ``None`` means the whole array is one recording (then ``n_epochs`` is
        required).
    n_epochs : int, optional
        Number of epochs; checked against ``len(recordings)`` when both are given.

    Returns
    -------
    bounds : ndarray of shape (n_recordings, 2), int64
        ``[start, stop)`` of each recording, in array order.

    Examples
    --------
    >>> recording_bounds(["a", "a", "a", "b", "b"]).tolist()
    [[0, 3], [3, 5]]
    >>> recording_bounds(None, n_epochs=4).tolist()
    [[0, 4]]
    """
    if recordings is None:
        if n_epochs is None:
            raise ValueError("recording_bounds needs `recordings` or `n_epochs`; got neither")
        return np.array([[0, int(n_epochs)]], dtype=np.int64)
    rec = np.asarray(recordings)
    if rec.ndim != 1:
        raise ValueError(f"`recordings` must be 1-D (one id per epoch); got shape {rec.shape}")
    if n_epochs is not None and len(rec) != n_epochs:
        raise ValueError(f"`recordings` has {len(rec)} entries but X has {n_epochs} epochs")
    if len(rec) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    change = np.flatnonzero(rec[1:] != rec[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(rec)]])
    return np.stack([starts, stops], axis=1).astype(np.int64)


def _check_bounds(bounds) -> np.ndarray:
    b = np.asarray(bounds, dtype=np.int64)
    if b.ndim != 2 or b.shape[1] != 2:
        raise ValueError(f"`bounds` must have shape (n_recordings, 2); got {b.shape}")
    if np.any(b[:, 1] < b[:, 0]):
        raise ValueError("`bounds` has a recording whose stop is before its start")
    return b


def window_starts(bounds, seq_len: int) -> np.ndarray:
    """Global start index of every stride-1 window of ``seq_len`` epochs within a recording.

    Windows never cross two recordings (REFERENCE §4). Recordings shorter than ``seq_len``
    contribute no window.

    Parameters
    ----------
    bounds : array-like of shape (n_recordings, 2)
        As returned by :func:`recording_bounds`.
    seq_len : int
        Window length ``L`` in epochs.

    Returns
    -------
    starts : ndarray of shape (n_windows,), int64

    Examples
    --------
    >>> window_starts([[0, 4], [4, 7]], seq_len=3).tolist()
    [0, 1, 4]
    """
    b = _check_bounds(bounds)
    parts = [np.arange(s, e - seq_len + 1, dtype=np.int64) for s, e in b if e - s >= seq_len]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# training: minibatches of contiguous window blocks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowBlockBatch:
    """One minibatch of windows that share their epochs.

    Attributes
    ----------
    epochs : ndarray (E,) of int64 or Tensor (E, C, T, F)
        The distinct epochs the windows cover: global epoch indices (from
        :class:`WindowBlockSampler`) or their spectrograms (from :class:`WindowBlockLoader`).
    windows : ndarray or LongTensor of shape (B, L)
        Window ``b`` is made of the epochs at rows ``windows[b]`` of ``epochs``.
    starts : ndarray of shape (B,), int64
        Global start index of each window (``epochs[windows[b, 0]]`` when ``epochs`` holds
        indices).

    ``len(batch)`` is the number of windows ``B``, so that skorch records the batch size.
    """

    epochs: object
    windows: object
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


class WindowBlockSampler:
    """Minibatches of ``batch_size`` windows built from contiguous blocks of windows.

    At every iteration (one pass over the training data) each recording's windows are cut
    into blocks of ``block_size`` consecutive windows, starting at a random offset so that
    block boundaries move from pass to pass; the blocks of all recordings are shuffled and
    packed in that order into minibatches of exactly ``batch_size`` windows (a block that
    does not fit is split across two minibatches). Every window is used exactly once per
    pass, except those of the last partial minibatch, which is dropped when ``drop_last``
    (REFERENCE §4). ``block_size=1`` gives independently shuffled windows, as in the
    reference.

    A block of ``c`` windows covers ``c + L - 1`` epochs instead of ``c * L``: with
    ``batch_size=32``, ``L=20`` and ``block_size=32``, about 51 distinct epochs per minibatch
    instead of 640.

    Parameters
    ----------
    bounds : array-like of shape (n_recordings, 2)
        ``[start, stop)`` epoch indices of each recording (:func:`recording_bounds`).
    seq_len : int, default=20
        Window length ``L``.
    batch_size : int, default=32
        Windows per minibatch.
    block_size : int or None, default=None
        Windows per block; ``None`` means ``batch_size``.
    drop_last : bool, default=True
        Drop the last partial minibatch.
    random_state : int, RandomState instance or None
        Seeds the block offsets and the shuffling; successive passes differ, and the same
        seed gives the same sequence of passes.

    Examples
    --------
    >>> sampler = WindowBlockSampler([[0, 30], [30, 70]], seq_len=20, batch_size=8,
    ...                              random_state=0)
    >>> len(sampler)  # 11 + 21 = 32 windows
    4
    >>> batch = next(iter(sampler))
    >>> len(batch), batch.windows.shape
    (8, (8, 20))
    """

    def __init__(self, bounds, seq_len: int = 20, batch_size: int = 32,
                 block_size: int | None = None, drop_last: bool = True, random_state=None):
        self.bounds = _check_bounds(bounds)
        if int(seq_len) < 1:
            raise ValueError(f"seq_len must be a positive integer; got {seq_len!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        bs = batch_size if block_size is None else block_size
        if int(bs) < 1:
            raise ValueError(f"block_size must be a positive integer or None; got {block_size!r}")
        self.seq_len = int(seq_len)
        self.batch_size = int(batch_size)
        self.block_size = int(bs)
        self.drop_last = bool(drop_last)
        self._rng = check_random_state(random_state)
        lengths = self.bounds[:, 1] - self.bounds[:, 0]
        self._n_windows_per_rec = np.maximum(lengths - self.seq_len + 1, 0)
        self.n_windows = int(self._n_windows_per_rec.sum())

    def __len__(self) -> int:
        n, b = self.n_windows, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def _blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, count) of every block of this pass, in shuffled order."""
        rng, k = self._rng, self.block_size
        starts, counts = [], []
        for (s, _), n_w in zip(self.bounds, self._n_windows_per_rec):
            if n_w == 0:
                continue
            offset = rng.randint(k) if n_w > k > 1 else 0
            cuts = np.arange(offset, n_w, k)
            cuts = np.concatenate([[0], cuts[cuts > 0], [n_w]])
            starts.append(s + cuts[:-1])
            counts.append(np.diff(cuts))
        if not starts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts, counts = np.concatenate(starts), np.concatenate(counts)
        order = rng.permutation(len(starts))
        return starts[order], counts[order]

    def __iter__(self) -> Iterator[WindowBlockBatch]:
        block_starts, block_counts = self._blocks()
        # every window of this pass, block by block, in the shuffled block order
        if len(block_starts):
            win = np.concatenate([np.arange(s, s + c) for s, c in zip(block_starts, block_counts)])
        else:
            win = np.zeros(0, np.int64)
        steps = np.arange(self.seq_len)
        for i in range(len(self)):
            starts = win[i * self.batch_size:(i + 1) * self.batch_size]
            members = starts[:, None] + steps  # (B, L) global epoch indices
            epochs, inverse = np.unique(members, return_inverse=True)
            yield WindowBlockBatch(epochs=epochs, windows=inverse.reshape(members.shape),
                                   starts=starts)


class WindowBlockLoader:
    """Iterable of ``(WindowBlockBatch, y_windows)`` with the spectrograms gathered.

    A thin layer over :class:`WindowBlockSampler` that copies only the distinct epochs of
    each minibatch out of ``X`` (never the windows), suitable as a skorch iterator.

    Parameters
    ----------
    X : ndarray of shape (n_epochs, C, T, F), float32
        Spectrograms of all epochs (not copied).
    y : ndarray of shape (n_epochs,) or None
        Stage of every epoch; the loader yields ``y[windows]`` as a ``(B, L)`` LongTensor.
    sampler : WindowBlockSampler

    Examples
    --------
    >>> X = np.zeros((30, 1, 29, 129), np.float32); y = np.zeros(30, np.int64)
    >>> loader = WindowBlockLoader(X, y, WindowBlockSampler([[0, 30]], batch_size=4))
    >>> batch, yb = next(iter(loader))
    >>> len(batch), tuple(batch.epochs.shape[1:]), tuple(yb.shape)
    (4, (1, 29, 129), (4, 20))
    """

    def __init__(self, X, y, sampler: WindowBlockSampler):
        self.X = X
        self.y = y
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for b in self.sampler:
            xb = torch.as_tensor(np.ascontiguousarray(self.X[b.epochs]))
            batch = WindowBlockBatch(epochs=xb, windows=torch.as_tensor(b.windows),
                                     starts=b.starts)
            yb = None
            if self.y is not None:
                yb = torch.as_tensor(np.asarray(self.y)[b.starts[:, None]
                                                        + np.arange(self.sampler.seq_len)])
            yield batch, yb


def shared_forward(module, epochs: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Logits of every window from one ARNN pass over the distinct epochs.

    Parameters
    ----------
    module : SeqSleepNet-like
        Has ``encode_epochs`` and ``classify_sequences``.
    epochs : Tensor of shape (E, C, T, F)
        Spectrograms of the distinct epochs.
    windows : LongTensor of shape (B, L)
        Rows of ``epochs`` making up each window.

    Returns
    -------
    logits : Tensor of shape (B, L, n_classes)
        ``module(epochs[windows])`` in evaluation mode, up to float rounding; gradients flow
        back into each epoch once per window that contains it.

    Examples
    --------
    >>> from skseqsleep.nn import SeqSleepNet
    >>> net = SeqSleepNet(seq_len=3).eval()
    >>> x = torch.randn(4, 1, 29, 129); win = torch.tensor([[0, 1, 2], [1, 2, 3]])
    >>> shared_forward(net, x, win).shape
    torch.Size([2, 3, 5])
    """
    windows = torch.as_tensor(windows, device=epochs.device)
    features = module.encode_epochs(epochs)
    return module.classify_sequences(features[windows])


# ---------------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------------
def _module_device(module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def per_window_logits(module, X, starts, seq_len: int, batch_size: int = 32) -> torch.Tensor:
    """Reference computation: run the whole network on each window separately.

    Each window is materialised as ``(B, L, C, T, F)``, ``batch_size`` windows at a time, and
    passed to ``module(x)``; every epoch is encoded once per window containing it. Used as the
    reference in tests and benchmarks.

    Returns
    -------
    logits : Tensor of shape (n_windows, L, n_classes) on the CPU

    Examples
    --------
    >>> from skseqsleep.nn import SeqSleepNet
    >>> net = SeqSleepNet(seq_len=3).eval()
    >>> X = np.random.default_rng(0).standard_normal((5, 1, 29, 129)).astype(np.float32)
    >>> per_window_logits(net, X, [0, 2], seq_len=3).shape
    torch.Size([2, 3, 5])
    """
    device = _module_device(module)
    starts = np.asarray(starts, dtype=np.int64)
    steps = np.arange(seq_len)
    out = []
    with torch.no_grad():
        for i in range(0, len(starts), batch_size):
            idx = starts[i:i + batch_size, None] + steps
            xb = torch.as_tensor(np.ascontiguousarray(X[idx]), device=device)
            out.append(module(xb).cpu())
    if not out:
        return torch.zeros(0, seq_len, 0)
    return torch.cat(out)


def _encode_all(module, X, epoch_batch_size: int, device, index=None) -> torch.Tensor:
    """ARNN vectors of ``X[index]`` (all epochs when ``index`` is None), chunk by chunk."""
    n = len(X) if index is None else len(index)
    feats = []
    for i in range(0, n, epoch_batch_size):
        rows = slice(i, i + epoch_batch_size) if index is None else index[i:i + epoch_batch_size]
        xb = torch.as_tensor(np.ascontiguousarray(X[rows]), device=device)
        feats.append(module.encode_epochs(xb))
    return torch.cat(feats)


def shared_window_logits(module, X, starts, seq_len: int, epoch_batch_size: int = 512,
                         window_batch_size: int = 512) -> torch.Tensor:
    """Logits of the given windows, each epoch encoded once (evaluation, no gradient).

    The epochs covered by the windows are encoded once, ``epoch_batch_size`` at a time, and
    the windows are classified ``window_batch_size`` at a time from index views of the
    per-epoch vectors. Same result as :func:`per_window_logits` up to float rounding.

    Returns
    -------
    logits : Tensor of shape (n_windows, L, n_classes) on the CPU

    Examples
    --------
    >>> from skseqsleep.nn import SeqSleepNet
    >>> net = SeqSleepNet(seq_len=3).eval()
    >>> X = np.random.default_rng(0).standard_normal((5, 1, 29, 129)).astype(np.float32)
    >>> a = shared_window_logits(net, X, [0, 2], seq_len=3)
    >>> torch.allclose(a, per_window_logits(net, X, [0, 2], seq_len=3), atol=1e-5)
    True
    """
    device = _module_device(module)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:
        return torch.zeros(0, seq_len, 0)
    members = starts[:, None] + np.arange(seq_len)
    epochs, inverse = np.unique(members, return_inverse=True)
    windows = torch.as_tensor(inverse.reshape(members.shape), device=device)
    with torch.no_grad():
        feats = _encode_all(module, X, epoch_batch_size, device, index=epochs)
        out = [module.classify_sequences(feats[windows[i:i + window_batch_size]]).cpu()
               for i in range(0, len(windows), window_batch_size)]
    return torch.cat(out)


def fused_log_scores(module, X, bounds, seq_len: int, epoch_batch_size: int = 512,
                     window_batch_size: int = 512) -> np.ndarray:
    """Per-epoch sum of the log-softmax outputs of every window covering it (REFERENCE §5).

    Every epoch is encoded once (ARNN), then every stride-1 window of each recording goes
    through the SeqRNN and the softmax layer, and the natural-log softmax outputs of the
    windows covering each epoch are summed (multiplicative fusion, no renormalisation).
    A recording shorter than ``seq_len`` epochs is classified as one window of its own
    length (each of its epochs then has exactly one term).

    Parameters
    ----------
    module : SeqSleepNet-like, in evaluation mode
    X : ndarray of shape (n_epochs, C, T, F)
    bounds : array-like of shape (n_recordings, 2)
        ``[start, stop)`` of each recording (:func:`recording_bounds`).
    seq_len : int
        Window length ``L``.
    epoch_batch_size, window_batch_size : int
        Epochs per ARNN call and windows per SeqRNN call (memory versus speed).

    Returns
    -------
    scores : ndarray of shape (n_epochs, n_classes), float32
        ``scores.argmax(1)`` is the fused prediction; ``n_windows[:, None]`` divides it into
        the mean log-probability.

    Examples
    --------
    >>> from skseqsleep.nn import SeqSleepNet
    >>> net = SeqSleepNet(seq_len=3).eval()
    >>> X = np.random.default_rng(0).standard_normal((6, 1, 29, 129)).astype(np.float32)
    >>> fused_log_scores(net, X, [[0, 6]], seq_len=3).shape
    (6, 5)
    """
    b = _check_bounds(bounds)
    n = len(X)
    if b.size and (b.min() < 0 or b.max() > n):
        raise ValueError(f"`bounds` point outside X, which has {n} epochs")
    device = _module_device(module)
    with torch.no_grad():
        feats = _encode_all(module, X, epoch_batch_size, device)
        scores = None
        starts = window_starts(b, seq_len)
        steps = torch.arange(seq_len, device=device)
        for i in range(0, len(starts), window_batch_size):
            idx = torch.as_tensor(starts[i:i + window_batch_size], device=device)[:, None] + steps
            logp = torch.log_softmax(module.classify_sequences(feats[idx]), dim=-1)
            if scores is None:
                scores = torch.zeros(n, logp.shape[-1], device=device, dtype=logp.dtype)
            scores.index_add_(0, idx.reshape(-1), logp.reshape(-1, logp.shape[-1]))
        for s, e in b:
            if 0 < e - s < seq_len:  # short recording: one window of its own length
                logp = torch.log_softmax(module.classify_sequences(feats[None, s:e]), dim=-1)[0]
                if scores is None:
                    scores = torch.zeros(n, logp.shape[-1], device=device, dtype=logp.dtype)
                scores[s:e] += logp
    if scores is None:
        raise ValueError("fused_log_scores got no epoch to classify (X or bounds is empty)")
    return scores.cpu().numpy()
