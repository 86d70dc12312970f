"""Shared-epoch training of SeqSleepNet: minibatches of contiguous window blocks.

Every epoch of a recording belongs to up to ``L`` overlapping stride-1 windows (``L = 20``,
REFERENCE §4), and the epoch-level part of the network (ARNN: filterbank, epoch-level bi-RNN
and attention, REFERENCE §3) is nearly all of the compute. Computed window by window (the
reference, ``SeqSleepClassifier(train_sampler="per-window")``), a minibatch of 32 windows
runs the ARNN on 32 x 20 = 640 epochs. Here:

- :class:`WindowBlockSampler` draws minibatches of ``batch_size`` windows made of contiguous
  *blocks* of windows, so that the windows of one minibatch share most of their epochs (a
  block of 32 consecutive windows covers 51 distinct epochs instead of 640);
- :func:`shared_forward` encodes the distinct epochs of the minibatch once
  (``encode_epochs``) and hands the SeqRNN (``classify_sequences``) the windows as index
  views into the per-epoch vectors; it returns the same ``(B, L, n_classes)`` logits as
  ``module(x_windows)``, so the per-window loss is unchanged, and in evaluation mode the
  loss and its gradients equal the window-by-window ones up to float rounding.

Two things differ from window-by-window training, both documented choices:

(a) the windows of a minibatch are contiguous blocks instead of independent draws
    (``block_size=1`` gives back independently shuffled windows);
(b) in training mode the ARNN's dropout masks (and a BN-LSTM's batch statistics) are drawn
    once per *distinct epoch* of the minibatch and shared by every window containing it,
    whereas window-by-window computation draws them once per (window, position). The SeqRNN's
    dropout is still drawn per window.

Windows are start indices into the epoch array, never materialised copies: a minibatch
copies only its distinct epochs out of ``X``.

Prediction already runs the ARNN once per epoch in the classifier
(``SeqSleepClassifier(inference="encode-once")``); this module is about training.
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

from skseqsleep._windows import window_counts

__all__ = [
    "WindowBlockBatch",
    "WindowBlockLoader",
    "WindowBlockSampler",
    "shared_forward",
    "training_loader",
]


def _check_bounds(bounds) -> np.ndarray:
    b = np.asarray(bounds, dtype=np.int64)
    if b.ndim != 2 or b.shape[1] != 2:
        raise ValueError(f"`bounds` must have shape (n_recordings, 2); got {b.shape}")
    if np.any(b[:, 1] < b[:, 0]):
        raise ValueError("`bounds` has a recording whose stop is before its start")
    return b


def _as_rng(random_state):
    """A numpy Generator stays as is (the classifier's ``train_rng_``); anything else goes
    through :func:`sklearn.utils.check_random_state`."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return check_random_state(random_state)


def _randint(rng, high: int) -> int:
    return int(rng.integers(high) if isinstance(rng, np.random.Generator) else rng.randint(high))


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
        ``[start, stop)`` epoch indices of each recording (for the classifier's
        ``Recordings``: ``np.column_stack([recs.starts, recs.stops])``). Recordings shorter
        than ``seq_len`` give no window (REFERENCE §4: windows never cross recordings).
    seq_len : int, default=20
        Window length ``L``.
    batch_size : int, default=32
        Windows per minibatch.
    block_size : int or None, default=None
        Windows per block; ``None`` means ``batch_size``.
    drop_last : bool, default=True
        Drop the last partial minibatch.
    random_state : int, RandomState, numpy Generator or None
        Seeds the block offsets and the shuffling (a Generator is used as is); successive
        passes differ, and the same seed gives the same sequence of passes.

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
        self._rng = _as_rng(random_state)
        self._n_windows_per_rec = window_counts(self.bounds[:, 1] - self.bounds[:, 0],
                                                self.seq_len)
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
            offset = _randint(rng, k) if n_w > k > 1 else 0
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
        first = np.cumsum(block_counts) - block_counts  # position of each block's 1st window
        win = (np.repeat(block_starts - first, block_counts)
               + np.arange(int(block_counts.sum()), dtype=np.int64))
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


def training_loader(dataset, batch_size: int = 32, random_state=None,
                    block_size: int | None = None) -> WindowBlockLoader:
    """Shared-epoch training iterator over a classifier's training dataset.

    The hook for ``SeqSleepClassifier(train_sampler="shared")``: its ``get_iterator`` returns
    this for the training windows, and its ``infer`` passes a :class:`WindowBlockBatch` to
    :func:`shared_forward`.

    Parameters
    ----------
    dataset : object with ``X``, ``y``, ``seq_len`` and ``recs`` (``starts``, ``stops``)
        The classifier's ``RecordingsDataset`` (training recordings of the full epoch array).
    batch_size : int, default=32
        Windows per minibatch (the last partial minibatch is dropped, REFERENCE §4).
    random_state : int, RandomState, numpy Generator or None
        The classifier passes its ``train_rng_``.
    block_size : int or None, default=None
        Windows per block (``None``: ``batch_size``).

    Returns
    -------
    WindowBlockLoader

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> ds = SimpleNamespace(X=np.zeros((50, 1, 29, 129), np.float32), y=np.zeros(50, int),
    ...                      seq_len=20, recs=SimpleNamespace(starts=[0], stops=[50]))
    >>> len(training_loader(ds, batch_size=8, random_state=0))  # 31 windows
    3
    """
    bounds = np.column_stack([np.asarray(dataset.recs.starts), np.asarray(dataset.recs.stops)])
    sampler = WindowBlockSampler(bounds, seq_len=int(dataset.seq_len), batch_size=batch_size,
                                 block_size=block_size, drop_last=True,
                                 random_state=random_state)
    return WindowBlockLoader(dataset.X, dataset.y, sampler)
