"""Time-frequency input of SeqSleepNet: :class:`SpectrogramTransformer` (REFERENCE §2)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import get_window
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ._checks import is_positive_finite
from ._checks import is_real as _is_real
from ._constants import DEFAULT_FS, EPOCH_SECONDS

#: The (frames, bins) of SeqSleepNet's input at ``DEFAULT_FS`` (REFERENCE §1-§2).
_NETWORK_SHAPE = (29, 129)

__all__ = ["SpectrogramTransformer"]

# Upper bound on frames x nfft values handled at once (about 64 MB of float64 per buffer):
# 40 000 epochs are processed in chunks of ~1 100 single-channel epochs.
_CHUNK_VALUES = 2 ** 23


#: Up to this rate (Hz), epochs a whole multiple of the expected length are first explained as
#: epochs at a higher sampling rate (PSG channels are usually recorded at 100-1000 Hz); above
#: it, only as continuous signal given as one epoch.
_HIGHEST_PSG_RATE = 1000


class SpectrogramTransformer(TransformerMixin, BaseEstimator):
    """Log-magnitude spectrograms of 30-s epochs, standardised per frequency bin (REFERENCE §2).

    Each epoch of each channel is cut into frames of ``window_seconds`` (a *symmetric* Hamming
    window, ``scipy.signal.get_window("hamming", N, fftbins=False)``), with ``overlap``, no
    centring and no padding; each frame gets an ``nfft``-point real FFT. With the defaults a
    3000-sample epoch gives 29 frames x 129 bins. The magnitude is log-scaled as
    ``20 * log10(|X| + eps)`` (``eps`` only matters for exact zeros, e.g. flat signals), then
    each frequency bin of each channel is z-scored with the mean and standard deviation over
    all epochs and all frames seen in :meth:`fit` (the training fold); :meth:`transform` uses
    these training statistics. REFERENCE §2 fits them on the training subjects only; in a
    Pipeline whose classifier holds out validation subjects (``train_split``), the
    transformer also sees those subjects, since it cannot know them: to follow the
    reference, fit the transformer on the training subjects and give the classifier the
    validation subjects (``PredefinedGroupSplit``), as ``skseqsleep study`` does.

    The computation is vectorised over epochs (strided frames and one batched FFT) and runs
    in chunks of epochs to bound memory, so a whole cohort (40 000 epochs) goes through at
    once.

    Parameters
    ----------
    fs : float, default=100
        Sampling rate of ``X`` in Hz (REFERENCE §1: the network expects 100 Hz).
    window_seconds : float, default=2.0
        Frame length in seconds; ``window_seconds * fs`` must be a whole number of samples.
    overlap : float, default=0.5
        Fraction of overlap between consecutive frames, in ``[0, 1)``; the hop is
        ``round(n_window * (1 - overlap))`` samples.
    nfft : int, default=256
        FFT length (at least the window length); ``nfft // 2 + 1`` frequency bins.
    log_scale : bool, default=True
        Return ``20 * log10(|X| + eps)`` (dB); if False, the magnitude ``|X|``.
    standardize : bool, default=True
        Z-score each (channel, frequency bin) with the statistics learned in :meth:`fit`.
    eps : float, default=1e-10
        Added to the magnitude before the logarithm.
    epoch_seconds : float or None, default=30
        Expected epoch length: ``X`` must have exactly ``epoch_seconds * fs`` samples per
        epoch, otherwise :meth:`fit` raises an error naming both numbers. ``None`` accepts any
        number of samples of at least one window, with
        ``1 + (n_samples - n_window) // hop`` frames.

    Attributes
    ----------
    n_features_in_ : int
        Values per epoch seen in :meth:`fit`, ``n_channels_ * n_samples_`` (for 2-D input,
        the number of columns, as usual in scikit-learn).
    n_channels_ : int
        Channels seen in :meth:`fit` (1 for 2-D input).
    n_samples_ : int
        Samples per epoch and channel.
    n_frames_ : int
        Frames per epoch (29 with the defaults).
    frequencies_ : ndarray of shape (n_freq_bins,)
        Centre frequency of each bin in Hz.
    window_ : ndarray of shape (n_window,)
        The symmetric Hamming window.
    mean_, scale_ : ndarray of shape (n_channels_, n_freq_bins) or None
        Per channel and bin, the mean and the (population) standard deviation of the
        log-spectrogram over all training epochs and frames; ``None`` when
        ``standardize=False``. A zero standard deviation is replaced by 1.

    Notes
    -----
    Input ``X`` is the dataset Bunch's ``X``: ``(n_epochs, n_samples)`` for one channel or
    ``(n_epochs, n_channels, n_samples)``. The output is always 4-D float32
    ``(n_epochs, n_channels, n_frames, n_freq_bins)`` (``n_channels = 1`` for 2-D input), the
    layout :class:`~skseqsleep.SeqSleepClassifier` expects. The transformer needs no
    metadata: inside a :class:`~sklearn.pipeline.Pipeline` with metadata routing enabled it
    requests nothing, so ``groups``/``recordings`` go to the classifier only.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(8, 3000)).astype(np.float32)   # 8 epochs of 30 s at 100 Hz
    >>> tf = SpectrogramTransformer().fit(X)
    >>> Z = tf.transform(X)
    >>> Z.shape, Z.dtype
    ((8, 1, 29, 129), dtype('float32'))
    >>> bool(np.allclose(Z.mean(axis=(0, 2)), 0, atol=1e-4))
    True
    """

    def __init__(self, fs: float = DEFAULT_FS, window_seconds: float = 2.0,
                 overlap: float = 0.5, nfft: int = 256, log_scale: bool = True,
                 standardize: bool = True, eps: float = 1e-10,
                 epoch_seconds: float | None = EPOCH_SECONDS) -> None:
        self.fs = fs
        self.window_seconds = window_seconds
        self.overlap = overlap
        self.nfft = nfft
        self.log_scale = log_scale
        self.standardize = standardize
        self.eps = eps
        self.epoch_seconds = epoch_seconds

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> tuple[int, int]:
        """Validate the parameters; return (window length, hop) in samples."""
        name = type(self).__name__
        if not is_positive_finite(self.fs):
            raise ValueError(f"{name}: fs must be a positive number of Hz, got {self.fs!r}")
        if not is_positive_finite(self.window_seconds):
            raise ValueError(f"{name}: window_seconds must be a positive number, "
                             f"got {self.window_seconds!r}")
        n_window = round(self.window_seconds * self.fs)
        if n_window < 1 or abs(self.window_seconds * self.fs - n_window) > 1e-6:
            raise ValueError(
                f"{name}: window_seconds * fs must be a whole number of samples, got "
                f"{self.window_seconds!r} s x {self.fs!r} Hz = {self.window_seconds * self.fs}")
        if not _is_real(self.overlap) or not 0 <= self.overlap < 1:
            raise ValueError(f"{name}: overlap must be in [0, 1), got {self.overlap!r}")
        hop = round(n_window * (1 - self.overlap))
        if hop < 1:
            raise ValueError(f"{name}: overlap={self.overlap!r} leaves a hop of 0 samples with "
                             f"a {n_window}-sample window")
        if (not isinstance(self.nfft, numbers.Integral) or isinstance(self.nfft, bool)
                or self.nfft < n_window):
            hint = ("" if self.fs == DEFAULT_FS else
                    f"; for SeqSleepNet, resample the signals to {DEFAULT_FS:g} Hz instead "
                    f"(its input is fs={DEFAULT_FS:g}, nfft=256, REFERENCE §1-§2)")
            raise ValueError(f"{name}: nfft must be an integer of at least the window length "
                             f"({n_window} samples), got {self.nfft!r}{hint}")
        for flag in ("log_scale", "standardize"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise TypeError(f"{name}: {flag} must be True or False, "
                                 f"got {getattr(self, flag)!r}")
        if not is_positive_finite(self.eps):
            raise ValueError(f"{name}: eps must be a positive finite number, got {self.eps!r}")
        if self.epoch_seconds is not None:
            if not is_positive_finite(self.epoch_seconds):
                raise ValueError(f"{name}: epoch_seconds must be a positive number or None, "
                                 f"got {self.epoch_seconds!r}")
            n = self.epoch_seconds * self.fs
            if abs(n - round(n)) > 1e-6:
                raise ValueError(
                    f"{name}: epoch_seconds * fs must be a whole number of samples, got "
                    f"{self.epoch_seconds!r} s x {self.fs!r} Hz = {n}")
        return n_window, hop

    def _validate_X(self, X) -> np.ndarray:
        """Finite float array of shape (n_epochs, n_channels, n_samples)."""
        try:
            X = check_array(X, dtype=[np.float64, np.float32], allow_nd=True,
                            ensure_all_finite=True, input_name="X",
                            estimator=self)
        except ValueError as err:
            if "got 1D array" not in str(err):
                raise
            # sklearn's advice (reshape to one feature or one sample) is wrong here: a 1-D
            # array is most likely a continuous signal
            raise ValueError(
                f"X is 1-D, but {type(self).__name__} expects epochs: shape (n_epochs, "
                "n_samples) or (n_epochs, n_channels, n_samples). Cut a continuous signal "
                "into 30-s epochs first, e.g. x[:len(x) // n * n].reshape(-1, n) with "
                f"n = 30 * fs samples per epoch (one epoch: x[None, :]). [{err}]") from None
        if X.ndim not in (2, 3):
            raise ValueError(
                "X must be (n_epochs, n_samples) or (n_epochs, n_channels, n_samples), got an "
                f"array of shape {X.shape}")
        if X.ndim == 2:
            X = X[:, None, :]
        if X.shape[1] < 1:
            raise ValueError(f"X has no channel (shape {X.shape})")
        return X

    # ------------------------------------------------------------------ computation
    def _chunks(self, n_epochs: int, n_channels: int):
        per_epoch = max(1, n_channels * self.n_frames_ * self.nfft)
        step = max(1, _CHUNK_VALUES // per_epoch)
        for start in range(0, n_epochs, step):
            yield slice(start, min(start + step, n_epochs))

    def _spectra(self, X: np.ndarray) -> np.ndarray:
        """Log-magnitude (or magnitude) spectra, float64 (n, C, n_frames, n_freq_bins)."""
        n_window = self.window_.shape[0]
        hop = self._hop
        frames = sliding_window_view(X, n_window, axis=-1)[..., ::hop, :]
        frames = frames[..., :self.n_frames_, :] * self.window_      # float64 copy
        mag = np.abs(np.fft.rfft(frames, n=self.nfft, axis=-1))
        if self.log_scale:
            np.add(mag, self.eps, out=mag)
            np.log10(mag, out=mag)
            mag *= 20.0
        return mag

    def _standardize_into(self, out: np.ndarray, sl: slice) -> None:
        if self.mean_ is not None:
            block = out[sl].astype(np.float64)
            block -= self.mean_[None, :, None, :]
            block /= self.scale_[None, :, None, :]
            out[sl] = block

    def _setup(self, X) -> np.ndarray:
        """Validate parameters and X, set the shape attributes; return X as 3-D."""
        n_window, hop = self._check_params()
        X = self._validate_X(X)
        _, n_channels, n_samples = X.shape
        name = type(self).__name__
        if self.epoch_seconds is not None:
            expected = round(self.epoch_seconds * self.fs)
            if n_samples != expected:
                hint = ("resample the signals or set epoch_seconds=None to accept other "
                        "lengths")
                if n_samples > expected and n_samples % expected == 0:
                    continuous = (f"{n_samples} = {n_samples // expected} x {expected}: if X "
                                  "holds continuous signal rather than epochs, cut it into "
                                  f"epochs of {expected} samples (shape (n_epochs, {expected})"
                                  f" or (n_epochs, n_channels, {expected}))")
                    rate = n_samples / self.epoch_seconds
                    if rate <= _HIGHEST_PSG_RATE:
                        # 30-s epochs recorded at a multiple of fs (200 Hz for 100 Hz) look
                        # like continuous signal: name the sampling rate first
                        fix = (f"resample them to {self.fs:g} Hz" if self.fs == DEFAULT_FS
                               else f"set fs={rate:g} or resample them to {self.fs:g} Hz")
                        hint = (f"if X holds {self.epoch_seconds:g}-s epochs sampled at "
                                f"{rate:g} Hz, {fix} (SeqSleepNet expects {DEFAULT_FS:g} Hz, "
                                f"REFERENCE §1); {continuous}")
                    else:
                        hint = f"{continuous}; otherwise {hint}"
                raise ValueError(
                    f"X has {n_samples} samples per epoch, but {name} expects {expected} "
                    f"(epoch_seconds={self.epoch_seconds} s at fs={self.fs} Hz); {hint}")
        if n_samples < n_window:
            raise ValueError(
                f"X has {n_samples} feature(s) (samples per epoch), fewer than the "
                f"{n_window}-sample window of {name}")
        self._hop = hop
        self.window_ = get_window("hamming", n_window, fftbins=False)
        self.n_channels_ = n_channels
        self.n_samples_ = n_samples
        self.n_features_in_ = n_channels * n_samples
        self.n_frames_ = 1 + (n_samples - n_window) // hop
        self.frequencies_ = np.fft.rfftfreq(self.nfft, d=1.0 / self.fs)
        if (self.fs != DEFAULT_FS
                and (self.n_frames_, len(self.frequencies_)) == _NETWORK_SHAPE):
            # the same shape as at 100 Hz, other frequencies: SeqSleepNet would take them
            warnings.warn(
                f"{name}(fs={self.fs:g}) gives spectrograms of the shape SeqSleepNet expects "
                f"({_NETWORK_SHAPE[0]} x {_NETWORK_SHAPE[1]}) but with bins from 0 to "
                f"{self.fs / 2:g} Hz; the network's triangular filterbank assumes 100-Hz "
                f"signals (bins 0 to 50 Hz, REFERENCE §1, §3): resample the signals to 100 Hz "
                "for SeqSleepClassifier (the dataset loaders do; scipy.signal.resample_poly)",
                UserWarning, stacklevel=3)
        self.mean_ = None
        self.scale_ = None
        return X

    def _learn(self, X: np.ndarray, out: np.ndarray | None = None) -> None:
        """One pass of STFTs: fill ``out`` (if given) and learn mean_/scale_ (if asked)."""
        if not self.standardize and out is None:
            return
        n_epochs, n_channels, _ = X.shape
        n_bins = self.nfft // 2 + 1
        count = 0
        mean = np.zeros((n_channels, n_bins))
        m2 = np.zeros((n_channels, n_bins))
        flat = np.zeros(n_channels, dtype=np.int64)
        for sl in self._chunks(n_epochs, n_channels):
            spec = self._spectra(X[sl])
            if out is not None:
                out[sl] = spec
            if not self.standardize:
                continue
            flat += (np.ptp(X[sl], axis=-1) == 0).sum(axis=0)
            # merge this chunk's (count, mean, M2) into the running ones (Chan et al.)
            n_b = spec.shape[0] * spec.shape[2]
            mean_b = spec.mean(axis=(0, 2))
            m2_b = ((spec - mean_b[None, :, None, :]) ** 2).sum(axis=(0, 2))
            total = count + n_b
            delta = mean_b - mean
            mean += delta * (n_b / total)
            m2 += m2_b + delta ** 2 * (count * n_b / total)
            count = total
        if self.standardize:
            if flat.any():
                counts = ", ".join(f"channel {c}: {k} of {n_epochs}"
                                   for c, k in enumerate(flat) if k)
                warnings.warn(
                    f"{type(self).__name__}.fit: epochs with a flat (constant) signal are in "
                    f"the training data ({counts}); their log spectra fall to about "
                    f"20 log10(eps) = {20 * np.log10(self.eps):g} dB and distort the "
                    "standardisation statistics of every epoch. Remove them (disconnected "
                    "or saturated electrode?) before fitting.", UserWarning, stacklevel=3)
            std = np.sqrt(m2 / count)
            std[std == 0] = 1.0
            self.mean_ = mean
            self.scale_ = std

    def fit(self, X, y=None) -> SpectrogramTransformer:
        """Learn the per-channel, per-bin standardisation statistics of the training epochs.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_samples) or (n_epochs, n_channels, n_samples)
            Epochs of raw signal at ``fs`` Hz.
        y : ignored

        Returns
        -------
        self : SpectrogramTransformer
        """
        self._learn(self._setup(X))
        return self

    def _output(self, n_epochs: int) -> np.ndarray:
        n_bins = self.nfft // 2 + 1
        return np.empty((n_epochs, self.n_channels_, self.n_frames_, n_bins), dtype=np.float32)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Fit on ``X`` and return its standardised spectrograms (one pass of STFTs).

        Equal to ``fit(X).transform(X)``.
        """
        X = self._setup(X)
        out = self._output(X.shape[0])
        self._learn(X, out=out)
        for sl in self._chunks(X.shape[0], X.shape[1]):
            self._standardize_into(out, sl)
        return out

    def transform(self, X) -> np.ndarray:
        """Spectrograms of ``X`` standardised with the training statistics.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_samples) or (n_epochs, n_channels, n_samples)
            Same channels and samples per epoch as in :meth:`fit`.

        Returns
        -------
        spectrograms : ndarray of shape (n_epochs, n_channels, n_frames, n_freq_bins), float32
        """
        check_is_fitted(self, "n_features_in_")
        X = self._validate_X(X)
        n_epochs, n_channels, n_samples = X.shape
        name = type(self).__name__
        if n_channels != self.n_channels_:
            raise ValueError(
                f"X has {n_channels} channel(s), but {name} was fitted on "
                f"{self.n_channels_} channel(s)")
        if n_samples != self.n_samples_:
            raise ValueError(
                f"X has {n_channels * n_samples} features, but {name} is expecting "
                f"{self.n_features_in_} features as input ({n_samples} samples per epoch "
                f"found, {self.n_samples_} expected)")
        out = self._output(n_epochs)
        for sl in self._chunks(n_epochs, n_channels):
            out[sl] = self._spectra(X[sl])
            self._standardize_into(out, sl)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # the output is float32 whatever the input (the network's dtype)
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
