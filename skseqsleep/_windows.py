"""Recordings, sequence windows and multiplicative fusion (REFERENCE §4-§5).

A *window* is ``seq_len`` consecutive epochs of one recording, stored as a pair of indices
``(recording, start)`` into the epoch array: windows are never materialised as an
``(n_windows, seq_len, ...)`` copy; a batch gathers ``X[start + arange(seq_len)]`` on the fly.

Rules (documented on :class:`~skseqsleep.SeqSleepClassifier`):

* recordings are contiguous runs of rows; with ``recordings`` given, a recording id that occurs
  in two separate runs is an error; without ``recordings``, contiguous runs of equal ``groups``
  are recordings (with a warning); without both, the whole X is one recording (with a
  warning); with both, every recording must belong to one subject (one ``groups`` value);
* a recording of ``n >= seq_len`` epochs has ``n - seq_len + 1`` stride-1 windows; a recording
  shorter than ``seq_len`` has one shorter window covering it all (prediction and validation);
  training uses only full-length windows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch.utils.data import Dataset

from skseqsleep._checks import check_epoch_labels, mixed_types_error


@dataclass(frozen=True)
class Recordings:
    """Contiguous recordings of an epoch array: ``names[i]`` spans ``starts[i]:stops[i]``."""

    names: np.ndarray
    starts: np.ndarray
    stops: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return self.stops - self.starts

    def __len__(self) -> int:
        return len(self.names)

    def take(self, index) -> Recordings:
        index = np.asarray(index)
        return Recordings(self.names[index], self.starts[index], self.stops[index])


def _runs(values: np.ndarray):
    """Starts and stops of the runs of equal consecutive values."""
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    stops = np.concatenate([change, [n]]).astype(np.int64)
    return starts, stops


def _check_one_subject_per_recording(groups, names, starts, stops) -> None:
    """Raise if ``groups`` changes inside a recording (a change point that is no start)."""
    change = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    inside = change[~np.isin(change, starts)]
    if len(inside):
        i = int(np.searchsorted(stops, inside[0], side="right"))
        subjects = np.unique(groups[starts[i]:stops[i]]).tolist()
        raise ValueError(f"recording '{names[i]}' holds epochs of several subjects "
                         f"{subjects[:4]}; a recording belongs to one subject")


def find_recordings(n_epochs: int, recordings=None, groups=None, *,
                    what: str = "X") -> Recordings:
    """Locate the recordings of an epoch array (see the module docstring for the rules)."""
    if n_epochs == 0:
        raise ValueError(f"{what} has 0 epochs; at least one epoch is needed")
    if recordings is not None:
        recordings = check_epoch_labels("recordings", recordings, n_epochs, what)
    if groups is not None:
        groups = check_epoch_labels("groups", groups, n_epochs, what)
    if recordings is not None:
        values = recordings
        starts, stops = _runs(values)
        names = values[starts]
        try:
            uniq, counts = np.unique(names, return_counts=True)
        except TypeError:
            raise mixed_types_error("recordings", names) from None
        if (counts > 1).any():
            bad = uniq[counts > 1][0]
            runs = [(int(a), int(b) - 1) for a, b, nm in zip(starts, stops, names) if nm == bad]
            raise ValueError(
                f"recording '{bad}' is not contiguous in {what}: its epochs appear in "
                f"{len(runs)} separate runs of rows {runs[:3]}; the epochs of one recording "
                "must be adjacent rows in time order")
        if groups is not None:
            _check_one_subject_per_recording(groups, names, starts, stops)
        return Recordings(names, starts, stops)
    if groups is not None:
        values = groups
        starts, stops = _runs(values)
        names = np.asarray([f"{values[s]}#run{i}" for i, s in enumerate(starts)])
        warnings.warn(
            f"recordings was not given: the {len(starts)} contiguous run(s) of equal groups in "
            f"{what} are treated as {len(starts)} recording(s), so the nights of a subject "
            "stored next to each other are one recording and sequence windows may span the "
            "boundary between them; pass recordings=... (one recording id per epoch; "
            "recordings=groups when every subject has exactly one recording)",
            UserWarning, stacklevel=4)
        return Recordings(names, starts, stops)
    warnings.warn(
        f"neither recordings nor groups were given: the whole {what} ({n_epochs} epochs) "
        "is treated as one recording, so sequence windows may span the boundary between "
        "two nights; pass recordings=... (one recording id per epoch)",
        UserWarning, stacklevel=4)
    return Recordings(np.asarray(["recording-0"]), np.asarray([0]), np.asarray([n_epochs]))


@dataclass(frozen=True)
class Windows:
    """Sequence windows as index arrays: window ``i`` covers epochs
    ``start[i] : start[i] + length[i]`` of recording ``recording[i]`` (global epoch indices)."""

    recording: np.ndarray
    start: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def as_pairs(self, recs: Recordings) -> np.ndarray:
        """``(n_windows, 2)`` array of ``(recording, start within the recording)``."""
        return np.stack([self.recording, self.start - recs.starts[self.recording]], axis=1)

    def take(self, index) -> Windows:
        return Windows(self.recording[index], self.start[index], self.length[index])

    def by_length(self):
        """Yield ``(length, Windows)`` groups of equal length (longest first)."""
        for length in np.unique(self.length)[::-1]:
            yield int(length), self.take(np.flatnonzero(self.length == length))

    def epoch_index(self, length: int | None = None) -> np.ndarray:
        """``(n_windows, length)`` global epoch indices (all windows must have that length)."""
        length = int(self.length[0]) if length is None else length
        return self.start[:, None] + np.arange(length)[None, :]


def window_counts(lengths, seq_len: int) -> np.ndarray:
    """Number of stride-1 windows of ``seq_len`` epochs in recordings of ``lengths`` epochs.

    ``max(length - seq_len + 1, 0)``: a recording shorter than ``seq_len`` has no full-length
    window (:func:`make_windows` with ``short="whole"`` then gives it one shorter window).

    Parameters
    ----------
    lengths : array-like of int
        Epochs per recording.
    seq_len : int
        Window length ``L``.

    Returns
    -------
    ndarray of int64, same shape as ``lengths``

    Examples
    --------
    >>> window_counts([30, 40, 5], seq_len=20)
    array([11, 21,  0])
    """
    return np.maximum(np.asarray(lengths, dtype=np.int64) - int(seq_len) + 1, 0)


def make_windows(recs: Recordings, seq_len: int, *, short: str = "whole") -> Windows:
    """All stride-1 windows of ``seq_len`` epochs inside each recording.

    ``short="whole"``: a recording shorter than ``seq_len`` gets one window over all its
    epochs; ``short="skip"``: it gets none (training).
    """
    rec_idx, starts, lengths = [], [], []
    counts = window_counts(recs.lengths, seq_len)
    for i, (a, b, k) in enumerate(zip(recs.starts, recs.stops, counts)):
        if k > 0:
            rec_idx.append(np.full(k, i))
            starts.append(a + np.arange(k))
            lengths.append(np.full(k, seq_len))
        elif short == "whole":
            rec_idx.append(np.array([i]))
            starts.append(np.array([a]))
            lengths.append(np.array([int(b - a)]))
    if not starts:
        empty = np.zeros(0, np.int64)
        return Windows(empty, empty, empty)
    return Windows(np.concatenate(rec_idx).astype(np.int64),
                   np.concatenate(starts).astype(np.int64),
                   np.concatenate(lengths).astype(np.int64))


class RecordingsDataset(Dataset):
    """Epochs of several recordings, with their labels, subjects and windows.

    Holds the full epoch array ``X`` (never copied); a subset (validation subjects) keeps
    the same ``X`` and selects recordings. ``len`` and ``[i]`` address the full-length
    training windows, so the dataset also works with a plain ``DataLoader``.
    ``eval_windows`` (all windows, a short recording as one shorter window) is built on
    first use and kept: validation reuses it at every check.
    """

    def __init__(self, X: np.ndarray, y, groups, recs: Recordings, seq_len: int):
        self.X = X
        self.y = y
        self.groups = None if groups is None else np.asarray(groups)
        self.recs = recs
        self.seq_len = seq_len
        self.train_windows = make_windows(recs, seq_len, short="skip")

    @cached_property
    def eval_windows(self) -> Windows:
        """Windows scored in validation: ``make_windows(recs, seq_len, short="whole")``."""
        return make_windows(self.recs, self.seq_len, short="whole")

    @property
    def epoch_groups(self):
        """Subject of every epoch of the selected recordings (None without groups)."""
        if self.groups is None:
            return None
        return np.concatenate([self.groups[a:b] for a, b in zip(self.recs.starts, self.recs.stops)])

    def recording_groups(self) -> np.ndarray:
        """Subject of every selected recording (find_recordings has checked that each
        recording holds one subject)."""
        return np.asarray(self.groups)[self.recs.starts]

    def split_groups(self, valid_groups):
        """(training dataset, validation dataset) with the recordings of ``valid_groups``
        in the validation one."""
        is_valid = np.isin(self.recording_groups(), valid_groups)
        return (RecordingsDataset(self.X, self.y, self.groups,
                                  self.recs.take(np.flatnonzero(~is_valid)), self.seq_len),
                RecordingsDataset(self.X, self.y, self.groups,
                                  self.recs.take(np.flatnonzero(is_valid)), self.seq_len))

    def __len__(self) -> int:
        return len(self.train_windows)

    def __getitem__(self, i):
        idx = self.train_windows.start[i] + np.arange(self.seq_len)
        return torch.from_numpy(self.X[idx]), torch.from_numpy(np.asarray(self.y[idx]))


class WindowBatches:
    """Iterate over shuffled minibatches of training windows (REFERENCE §4).

    Each pass draws a new permutation from ``rng``; the last partial batch is dropped. A batch
    is ``(X[idx], y[idx])`` with ``idx`` of shape ``(batch_size, seq_len)``, gathered on the
    fly from the shared epoch array.
    """

    def __init__(self, dataset: RecordingsDataset, batch_size: int, rng: np.random.Generator):
        self.dataset = dataset
        self.batch_size = batch_size
        self.rng = rng

    def __len__(self) -> int:
        return len(self.dataset.train_windows) // self.batch_size

    def __iter__(self):
        ds = self.dataset
        starts = ds.train_windows.start
        order = self.rng.permutation(len(starts))
        offsets = np.arange(ds.seq_len)
        for b in range(len(self)):
            sel = order[b * self.batch_size:(b + 1) * self.batch_size]
            idx = starts[sel][:, None] + offsets[None, :]
            yield torch.from_numpy(ds.X[idx]), torch.from_numpy(np.asarray(ds.y[idx]))


def multiplicative_fusion(log_probas: np.ndarray, epoch_index: np.ndarray,
                          n_epochs: int, out: tuple[np.ndarray, np.ndarray] | None = None,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Sum the log-probabilities of every window covering each epoch (REFERENCE §5).

    Parameters
    ----------
    log_probas : array of shape (n_windows, length, n_classes)
        Natural-log softmax outputs of the windows.
    epoch_index : int array of shape (n_windows, length)
        Epoch covered by every window position.
    n_epochs : int
    out : (scores, counts), optional
        Arrays to add into (float64 ``(n_epochs, n_classes)`` and int64 ``(n_epochs,)``), so
        that the windows can be fused chunk by chunk.

    Returns
    -------
    scores : (n_epochs, n_classes) sums of log-probabilities (no renormalisation)
    counts : (n_epochs,) number of windows covering each epoch
    """
    log_probas = np.asarray(log_probas, dtype=np.float64)
    k = log_probas.shape[-1]
    if out is None:
        out = np.zeros((n_epochs, k)), np.zeros(n_epochs, dtype=np.int64)
    scores, counts = out
    np.add.at(scores, epoch_index.ravel(), log_probas.reshape(-1, k))
    np.add.at(counts, epoch_index.ravel(), 1)
    return scores, counts
