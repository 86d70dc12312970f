"""SeqSleepNet in plain PyTorch (REFERENCE §3).

The network has three named parts, the units of ``trainable_parts`` (REFERENCE §3):

- ``arnn`` (:class:`ARNN`): per-channel filterbank layer, epoch-level bidirectional RNN over
  the frames of one epoch, attention pooling -> one vector of ``2 * rnn_hidden`` per epoch;
- ``seqrnn`` (:class:`~skseqsleep.nn.cells.BidirectionalRNN`): bidirectional RNN over the
  ``L`` epoch vectors of a sequence;
- ``softmax``: one :class:`torch.nn.Linear` ``(2 * rnn_hidden) -> n_classes`` shared by all
  positions. It returns logits; the softmax itself is applied by the loss or the classifier.

Every parameter and buffer of :class:`SeqSleepNet` belongs to exactly one of these parts.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from skseqsleep._checks import check_positive_int as _check_positive_int
from skseqsleep._checks import is_real

from .cells import CELLS, BidirectionalRNN

__all__ = ["ARNN", "Attention", "Filterbank", "SeqSleepNet", "triangular_filterbank"]


def triangular_filterbank(n_filters: int = 32, nfft: int = 256, fs: float = 100,
                          f_min: float = 0, f_max: float = 50) -> np.ndarray:
    """Linear triangular filterbank used as the fixed mask of the filterbank layer.

    REFERENCE §3: ``n_filters + 2`` points equally spaced in Hz from ``f_min`` to ``f_max``;
    ``bin[k] = floor((nfft + 1) * hz[k] / fs)``; filter ``j`` rises linearly from 0 at
    ``bin[j]`` to 1 at ``bin[j+1]`` and falls back to 0 at ``bin[j+2]`` (the value at
    ``bin[j+2]`` itself is 0).

    Parameters
    ----------
    n_filters : int, default=32
        Number of filters ``M``.
    nfft : int, default=256
        FFT length; the filterbank has ``nfft // 2 + 1`` rows (frequency bins).
    fs : float, default=100
        Sampling rate in Hz.
    f_min, f_max : float, default=0, 50
        Frequency range in Hz.

    Returns
    -------
    mask : ndarray of shape (nfft // 2 + 1, n_filters), float32
        Column ``j`` is filter ``j``.

    Examples
    --------
    >>> mask = triangular_filterbank()
    >>> mask.shape
    (129, 32)
    >>> float(mask[3, 0]), float(mask[0, 0])   # bins are 0, 3, 7, ...: filter 0 peaks at 3
    (1.0, 0.0)
    """
    n_filters = _check_positive_int("n_filters", n_filters)
    nfft = _check_positive_int("nfft", nfft)
    for name, value in (("fs", fs), ("f_min", f_min), ("f_max", f_max)):
        if not is_real(value) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if fs <= 0:
        raise ValueError(f"fs must be positive, got {fs!r}")
    if not 0 <= f_min < f_max:
        raise ValueError(f"the filterbank range needs 0 <= f_min < f_max, got f_min={f_min!r}, "
                         f"f_max={f_max!r}")
    n_bins = nfft // 2 + 1
    hz = np.linspace(f_min, f_max, n_filters + 2)
    bins = np.floor((nfft + 1) * hz / fs).astype(int)
    if bins.min() < 0 or bins.max() >= n_bins:
        raise ValueError(
            f"the filterbank range {f_min}-{f_max} Hz does not fit in the {n_bins} bins of a "
            f"{nfft}-point FFT at fs={fs} Hz (bins found from {bins.min()} to {bins.max()})")
    mask = np.zeros((n_bins, n_filters), dtype=np.float64)
    for j in range(n_filters):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(lo, mid):
            mask[i, j] = (i - lo) / (mid - lo)
        for i in range(mid, hi):
            mask[i, j] = (hi - i) / (hi - mid)
    empty = np.flatnonzero(mask.sum(axis=0) == 0)
    if len(empty):
        raise ValueError(
            f"{len(empty)} of the {n_filters} triangular filters would be all zero (filters "
            f"{empty[:5].tolist()}{'...' if len(empty) > 5 else ''}): {f_min}-{f_max} Hz "
            f"spans only {bins[-1] - bins[0]} of the {n_bins} frequency bins of a {nfft}-point "
            f"FFT at fs={fs} Hz, too few for {n_filters} filters; use fewer filters or more "
            "frequency bins")
    return mask.astype(np.float32)


class Filterbank(nn.Module):
    """Learnable filterbank layer of one channel (REFERENCE §3).

    ``W = sigmoid(V) * mask``; each frame's spectrum (``n_freq_bins`` values) is multiplied by
    ``W`` -> ``n_filters`` values. ``V`` ``(n_freq_bins, n_filters)`` is initialised N(0, 1)
    and learned; ``mask`` (:func:`triangular_filterbank`) is a fixed buffer. ``V`` maps to the
    checkpoint variable ``filterbank-layer-<channel>/Variable``.

    Parameters
    ----------
    n_freq_bins : int, default=129
        Frequency bins of the input (``nfft = 2 * (n_freq_bins - 1)``).
    n_filters : int, default=32
        Number of filters.
    fs : float, default=100
        Sampling rate used to place the triangular filters (0 to ``fs / 2``).

    Examples
    --------
    >>> import torch
    >>> Filterbank()(torch.zeros(4, 29, 129)).shape
    torch.Size([4, 29, 32])
    """

    def __init__(self, n_freq_bins: int = 129, n_filters: int = 32, fs: float = 100) -> None:
        super().__init__()
        nfft = 2 * (n_freq_bins - 1)
        self.V = nn.Parameter(torch.randn(n_freq_bins, n_filters))
        mask = triangular_filterbank(n_filters, nfft, fs, 0, fs / 2)
        self.register_buffer("mask", torch.from_numpy(mask))

    @property
    def weight(self) -> torch.Tensor:
        """The effective filterbank ``W = sigmoid(V) * mask``."""
        return torch.sigmoid(self.V) * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


class Attention(nn.Module):
    """Attention pooling over the frames of an epoch (REFERENCE §3).

    ``v_t = tanh(a_t @ W + b)``, ``e_t = v_t @ u``, ``alpha = softmax_t(e)``, output
    ``sum_t alpha_t a_t``. ``W`` ``(D, A)``, ``b`` ``(A,)``, ``u`` ``(A,)`` map to the checkpoint
    variables ``frame_attention_layer/Variable``, ``Variable_1``, ``Variable_2``; they are
    initialised N(0, 0.1²) as in the released code.

    Parameters
    ----------
    input_size : int
        Features per frame ``D`` (``2 * rnn_hidden``).
    attention_size : int
        Attention size ``A``.

    Examples
    --------
    >>> import torch
    >>> pooled, alpha = Attention(128, 64)(torch.randn(3, 29, 128))
    >>> pooled.shape, alpha.shape
    (torch.Size([3, 128]), torch.Size([3, 29]))
    """

    def __init__(self, input_size: int, attention_size: int) -> None:
        super().__init__()
        self.W = nn.Parameter(0.1 * torch.randn(input_size, attention_size))
        self.b = nn.Parameter(0.1 * torch.randn(attention_size))
        self.u = nn.Parameter(0.1 * torch.randn(attention_size))

    def forward(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.tanh(a @ self.W + self.b)              # (N, T, A)
        alpha = torch.softmax(v @ self.u, dim=1)          # (N, T)
        return (alpha.unsqueeze(-1) * a).sum(dim=1), alpha


class ARNN(nn.Module):
    """Epoch-level attentional RNN: filterbanks + bi-RNN over frames + attention (REFERENCE §3).

    Input ``(N, n_channels, n_frames, n_freq_bins)``; one :class:`Filterbank` per channel
    (``filterbanks[c]`` for input channel ``c``), outputs concatenated in channel order ->
    ``(N, n_frames, n_channels * n_filters)`` -> :class:`BidirectionalRNN` ``rnn`` ->
    :class:`Attention` ``attention`` -> ``(N, 2 * rnn_hidden)``.

    Examples
    --------
    >>> import torch
    >>> ARNN(n_channels=2)(torch.zeros(3, 2, 29, 129)).shape
    torch.Size([3, 128])
    """

    def __init__(self, n_channels: int = 1, n_freq_bins: int = 129, n_frames: int = 29,
                 n_filters: int = 32, rnn_hidden: int = 64, attention_size: int = 64,
                 cell: str = "gru", dropout: float = 0.25) -> None:
        super().__init__()
        self.filterbanks = nn.ModuleList(
            Filterbank(n_freq_bins, n_filters) for _ in range(n_channels))
        self.rnn = BidirectionalRNN(n_channels * n_filters, rnn_hidden, cell, n_frames, dropout)
        self.attention = Attention(2 * rnn_hidden, attention_size)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        feats = torch.cat([fb(x[:, c]) for c, fb in enumerate(self.filterbanks)], dim=-1)
        pooled, alpha = self.attention(self.rnn(feats))
        return (pooled, alpha) if return_attention else pooled


class SeqSleepNet(nn.Module):
    """SeqSleepNet (Phan et al., TNSRE 2019), REFERENCE §3.

    Parameters
    ----------
    n_channels : int, default=1
        Input channels (one filterbank per channel; e.g. 2 for EEG + EOG).
    n_freq_bins : int, default=129
        Frequency bins per frame (REFERENCE §2).
    n_frames : int, default=29
        Frames per epoch; also the number ``S`` of BN-LSTM statistics steps of the ARNN.
    n_filters : int, default=32
        Filters per channel in the filterbank layer.
    rnn_hidden : int, default=64
        Hidden units per direction of both bidirectional RNNs.
    attention_size : int, default=64
        Attention size.
    seq_len : int, default=20
        Sequence length ``L`` used in training; also the number ``S`` of BN-LSTM statistics
        steps of the SeqRNN. Shorter or longer sequences are accepted at any time (the BN-LSTM
        then uses step ``min(s, S-1)``).
    n_classes : int, default=5
        Number of sleep stages.
    cell : {"gru", "lstm", "bnlstm"}, default="gru"
        Recurrent cell: the paper's GRU, a plain LSTM, or the released code's BN-LSTM
        (:class:`~skseqsleep.nn.cells.BNLSTM`, needed to load the authors' checkpoints).
    dropout : float, default=0.25
        Dropout probability on the input and the output of every RNN cell of both bi-RNNs
        (training mode only; see :class:`~skseqsleep.nn.cells.BidirectionalRNN`).

    Attributes
    ----------
    arnn : ARNN
        Filterbank + epoch-level bi-RNN + attention.
    seqrnn : BidirectionalRNN
        Sequence-level bi-RNN.
    softmax : torch.nn.Linear
        Output layer, shared by all positions (returns logits).

    Notes
    -----
    Parameter naming (for the checkpoint loader, REFERENCE §3 table; ``fw``/``bw`` alike):

    ================================================  ===========================================
    checkpoint variable                               parameter / buffer
    ================================================  ===========================================
    ``filterbank-layer-eeg/Variable`` (``-eog``)      ``arnn.filterbanks.0.V`` (``.1.V``)
    ``frame_rnn_layer/fw/BNLSTMCell/W_xh``, ``W_hh``  ``arnn.rnn.fw.W_xh``, ``arnn.rnn.fw.W_hh``
    ``frame_rnn_layer/fw/BNLSTMCell/hh/offset``       ``arnn.rnn.fw.hh.offset`` (same for
                                                      ``xh``/``hh``/``c`` x ``scale``/``offset``/
                                                      ``pop_mean``/``pop_var``)
    ``frame_attention_layer/Variable{,_1,_2}``        ``arnn.attention.W``, ``.b``, ``.u``
    ``epoch_rnn_layer/fw/BNLSTMCell/...``             ``seqrnn.fw....`` (as above)
    ``output_layer/output/weights``, ``biases``       ``softmax.weight`` (transposed), ``.bias``
    ================================================  ===========================================

    Initialisation: filterbank ``V`` N(0, 1); attention N(0, 0.1²); BN-LSTM as in the released
    code (:class:`~skseqsleep.nn.cells.BNLSTM`); GRU, LSTM and the softmax layer keep torch's
    defaults. All draws use torch's global generator: seed it (``torch.manual_seed``) before
    building the network for reproducible weights.

    With ``cell="bnlstm"`` in training mode, the batch statistics of the ARNN are taken over all
    ``batch * L`` epochs of the batch, those of the SeqRNN over the ``batch`` sequences (as in
    the released code). The number of frames and the sequence length of the input are not
    fixed: ``n_frames`` and ``seq_len`` only set how many steps of BN statistics exist.

    Examples
    --------
    >>> import torch
    >>> net = SeqSleepNet(cell="gru").eval()
    >>> x = torch.zeros(2, 20, 1, 29, 129)       # (batch, L, channels, frames, bins)
    >>> net(x).shape
    torch.Size([2, 20, 5])
    >>> net.encode_epochs(x.flatten(0, 1)).shape
    torch.Size([40, 128])
    """

    #: Names of the three parts, the units of ``trainable_parts``.
    PARTS = ("arnn", "seqrnn", "softmax")

    def __init__(self, n_channels: int = 1, n_freq_bins: int = 129, n_frames: int = 29,
                 n_filters: int = 32, rnn_hidden: int = 64, attention_size: int = 64,
                 seq_len: int = 20, n_classes: int = 5, cell: str = "gru",
                 dropout: float = 0.25) -> None:
        super().__init__()
        self.n_channels = _check_positive_int("n_channels", n_channels)
        self.n_freq_bins = _check_positive_int("n_freq_bins", n_freq_bins)
        if self.n_freq_bins < 2:
            raise ValueError(f"n_freq_bins must be at least 2, got {n_freq_bins!r}")
        self.n_frames = _check_positive_int("n_frames", n_frames)
        self.n_filters = _check_positive_int("n_filters", n_filters)
        self.rnn_hidden = _check_positive_int("rnn_hidden", rnn_hidden)
        self.attention_size = _check_positive_int("attention_size", attention_size)
        self.seq_len = _check_positive_int("seq_len", seq_len)
        self.n_classes = _check_positive_int("n_classes", n_classes)
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes!r}")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        self.cell = cell
        if not (is_real(dropout) and 0 <= dropout < 1):
            raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)

        self.arnn = ARNN(n_channels, n_freq_bins, n_frames, n_filters, rnn_hidden,
                         attention_size, cell, dropout)
        self.seqrnn = BidirectionalRNN(2 * rnn_hidden, rnn_hidden, cell, seq_len, dropout)
        self.softmax = nn.Linear(2 * rnn_hidden, n_classes)

    def _check_tensor(self, x, what: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}; convert "
                            "it with torch.as_tensor(x, dtype=torch.float32)")
        dtype = self.softmax.weight.dtype
        if x.dtype != dtype:
            raise TypeError(f"{what} has dtype {x.dtype} but the network's parameters are "
                            f"{dtype}; convert it with x.to({dtype})")
        if x.numel() == 0:
            raise ValueError(f"{what} is empty (shape {tuple(x.shape)})")

    def _check_epochs(self, x: torch.Tensor, ndim: int, layout: str) -> None:
        self._check_tensor(x, "the input")
        if x.ndim != ndim or x.shape[-3] != self.n_channels or x.shape[-1] != self.n_freq_bins:
            raise ValueError(
                f"expected spectrograms of shape {layout} with n_channels={self.n_channels} "
                f"and n_freq_bins={self.n_freq_bins}, got shape {tuple(x.shape)}")

    def encode_epochs(self, x: torch.Tensor, return_attention: bool = False):
        """ARNN: one ``2 * rnn_hidden`` vector per epoch.

        Parameters
        ----------
        x : torch.Tensor of shape (N, n_channels, n_frames, n_freq_bins)
            Spectrograms of ``N`` epochs.
        return_attention : bool, default=False
            Also return the attention weights ``(N, n_frames)`` (each row sums to 1).

        Returns
        -------
        features : torch.Tensor of shape (N, 2 * rnn_hidden)
        attention : torch.Tensor of shape (N, n_frames), only if ``return_attention``
        """
        self._check_epochs(x, 4, "(N, n_channels, n_frames, n_freq_bins)")
        return self.arnn(x, return_attention=return_attention)

    def classify_sequences(self, features: torch.Tensor) -> torch.Tensor:
        """SeqRNN then the shared softmax layer: ``(B, L, 2H)`` -> logits ``(B, L, n_classes)``."""
        self._check_tensor(features, "features")
        if features.ndim != 3 or features.shape[-1] != 2 * self.rnn_hidden:
            raise ValueError(
                f"expected epoch features of shape (batch, L, {2 * self.rnn_hidden}), "
                f"got shape {tuple(features.shape)}")
        return self.softmax(self.seqrnn(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, L, n_classes)`` of spectrogram sequences.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, L, n_channels, n_frames, n_freq_bins)
        """
        self._check_epochs(x, 5, "(batch, L, n_channels, n_frames, n_freq_bins)")
        b, n_l = x.shape[:2]
        # through the two public halves, so a subclass that overrides either one computes
        # the same function here as in the shared-epoch path (skseqsleep._fast.shared_forward)
        return self.classify_sequences(self.encode_epochs(x.flatten(0, 1)).view(b, n_l, -1))

    def filterbank_parameters(self) -> Iterator[nn.Parameter]:
        """The filterbank layers' ``V`` (one per channel)."""
        for fb in self.arnn.filterbanks:
            yield fb.V

    def l2_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters under the L2 penalty (REFERENCE §4): every parameter except the
        filterbank ``V`` s.

        As in the released code (``tf.trainable_variables()`` minus the ``filterbank-layer-*``
        scopes), biases, BN scales/offsets and attention parameters are included; BN
        population statistics are buffers, not parameters, and are never penalised.
        """
        excluded = {id(p) for p in self.filterbank_parameters()}
        for p in self.parameters():
            if id(p) not in excluded:
                yield p
