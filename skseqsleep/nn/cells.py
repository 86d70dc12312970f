"""Recurrent cells of SeqSleepNet: GRU, LSTM and the released BN-LSTM (REFERENCE §3).

Every cell here is a module that maps a whole sequence ``x`` of shape ``(N, T, D)`` to the
sequence of its hidden states ``(N, T, H)``, starting from zero states. A bidirectional layer
(:class:`BidirectionalRNN`) holds two such cells, ``fw`` and ``bw``; the backward cell is run
on the time-reversed sequence and its outputs are reversed back, exactly as REFERENCE §3
describes the released code (so the backward cell's processing step 0 is the last frame).

Dropout (REFERENCE §3: keep probability 0.75, i.e. ``p = 0.25``) is applied by
:class:`BidirectionalRNN`, as TensorFlow's ``DropoutWrapper(input_keep_prob,
output_keep_prob)`` does around each cell of the released code: on the input of each
direction's cell (an independent mask per direction, per time step and per feature) and on the
output sequence of each direction's cell, before the two directions are concatenated. The
dropout is never applied to the recurrent state. It is active only in training mode. The masks
are drawn with TensorFlow 1's rule (:class:`Dropout`).
"""

from __future__ import annotations

import torch
from torch import nn

from skseqsleep._checks import check_positive_int as _check_positive_int
from skseqsleep._checks import is_real
from skseqsleep.nn._gru_ext import gru_sequence

__all__ = ["BNLSTM", "GRU", "LSTM", "BidirectionalRNN", "Dropout", "StepBatchNorm", "make_cell"]

CELLS = ("gru", "lstm", "bnlstm")


class _TorchRNN(nn.Module):
    """One-layer ``batch_first`` torch RNN (``_torch_rnn``) returning only its output sequence."""

    _torch_rnn: type[nn.RNNBase]

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = self._torch_rnn(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class GRU(_TorchRNN):
    """Gated recurrent unit over a whole sequence (the paper's cell, REFERENCE §3).

    Holds a :class:`torch.nn.GRU` (one layer, ``batch_first``; its parameters, state dict and
    torch's default initialisation) and returns only the output sequence. On the CPU the
    recurrence runs in a compiled loop with its own backward pass
    (:func:`skseqsleep.nn.gru_backend`: the same function up to float rounding, 1.8-2.1x faster
    at the shared sampler's shapes); ``SKSEQSLEEP_GRU=torch`` keeps ``torch.nn.GRU``'s own.

    REFERENCE §3 says "GRU" without the variant. torch's GRU (like cuDNN's) applies the reset
    gate after the recurrent product, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    whereas TensorFlow 1's ``GRUCell`` (the authors' framework) applies it before,
    ``n = tanh(W_in x + W_hn (r * h) + b_n)``; the two are different functions of the same
    shapes, so GRU weights do not carry over between them (the released checkpoints use
    BN-LSTM cells, which are implemented here as released).

    Parameters
    ----------
    input_size : int
        Number of input features ``D``.
    hidden_size : int
        Number of hidden units ``H``.

    Examples
    --------
    >>> import torch
    >>> GRU(32, 64)(torch.zeros(3, 29, 32)).shape
    torch.Size([3, 29, 64])
    """

    _torch_rnn = nn.GRU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gru_sequence(x, self.rnn)


class LSTM(_TorchRNN):
    """Plain LSTM over a whole sequence (wrapper of :class:`torch.nn.LSTM`, ``batch_first``).

    Parameters
    ----------
    input_size : int
        Number of input features ``D``.
    hidden_size : int
        Number of hidden units ``H``.

    Examples
    --------
    >>> import torch
    >>> LSTM(32, 64)(torch.zeros(3, 29, 32)).shape
    torch.Size([3, 29, 64])
    """

    _torch_rnn = nn.LSTM


class StepBatchNorm(nn.Module):
    """Batch normalisation with population statistics per processing step (REFERENCE §3).

    ``BN_s(z) = scale * (z - mu) / sqrt(var + eps) + offset``. In training mode ``mu`` and
    ``var`` are the statistics of the batch at step ``s`` (mean and *biased* variance over the
    batch axis, as ``tf.nn.moments``) and the population statistics of step ``min(s, S-1)`` are
    updated as ``pop = decay * pop + (1 - decay) * batch`` (the released code's convention,
    ``pop_mean * decay + batch_mean * (1 - decay)``). In evaluation mode ``mu = pop_mean[min(s,
    S-1)]`` and ``var = pop_var[min(s, S-1)]``. Steps beyond ``S - 1`` share the last statistics
    in both modes (as the released code clamps the step index).

    The names and shapes match the checkpoint variables ``.../{xh,hh,c}/{scale, offset,
    pop_mean, pop_var}``: ``scale`` and ``offset`` ``(size,)``, ``pop_mean`` and ``pop_var``
    ``(S, size)`` buffers (initialised to 0 and 1).

    Parameters
    ----------
    size : int
        Number of normalised features.
    n_steps : int
        Number ``S`` of steps with their own population statistics.
    offset : bool, default=True
        Whether the layer has a learned offset (the ``xh`` normalisation has none).
    offset_init : torch.Tensor or None
        Initial offset (default zeros). ``scale`` is initialised to 0.1.
    decay : float, default=0.95
        Decay of the population statistics.
    eps : float, default=1e-5
        Added to the variance.

    Examples
    --------
    >>> import torch
    >>> bn = StepBatchNorm(4, n_steps=3).eval()
    >>> bn(torch.ones(2, 5, 4)).shape  # (N, T, size), steps 0..4
    torch.Size([2, 5, 4])
    """

    def __init__(self, size: int, n_steps: int, offset: bool = True,
                 offset_init: torch.Tensor | None = None, decay: float = 0.95,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.size = int(size)
        self.n_steps = int(n_steps)
        self.decay = float(decay)
        self.eps = float(eps)
        self.scale = nn.Parameter(torch.full((size,), 0.1))
        if offset:
            init = torch.zeros(size) if offset_init is None else offset_init.clone().float()
            self.offset = nn.Parameter(init)
        else:
            self.register_parameter("offset", None)
        self.register_buffer("pop_mean", torch.zeros(n_steps, size))
        self.register_buffer("pop_var", torch.ones(n_steps, size))

    def extra_repr(self) -> str:
        return (f"size={self.size}, n_steps={self.n_steps}, offset={self.offset is not None}, "
                f"decay={self.decay}, eps={self.eps}")

    def forward(self, z: torch.Tensor, start_step: int = 0) -> torch.Tensor:
        """Normalise ``z`` of shape ``(N, T, size)`` holding steps ``start_step .. +T-1``."""
        n_t = z.shape[1]
        if self.training:
            self._check_batch(z)
            mean = z.mean(dim=0)                       # (T, size)
            var = z.var(dim=0, unbiased=False)
            self._update(mean.detach(), var.detach(), start_step)
        else:
            idx = torch.arange(start_step, start_step + n_t, device=z.device)
            idx = idx.clamp(max=self.n_steps - 1)
            mean = self.pop_mean[idx]
            var = self.pop_var[idx]
        return self._normalise(z, mean, var)

    def step(self, z: torch.Tensor, s: int) -> torch.Tensor:
        """Normalise ``z`` of shape ``(N, size)`` at processing step ``s`` (same as
        ``forward(z[:, None], s)[:, 0]``, without the sequence axis)."""
        if self.training:
            self._check_batch(z)
            mean = z.mean(dim=0)
            var = z.var(dim=0, unbiased=False)
            self._update(mean.detach()[None], var.detach()[None], s)
        else:
            k = min(s, self.n_steps - 1)
            mean = self.pop_mean[k]
            var = self.pop_var[k]
        return self._normalise(z, mean, var)

    @staticmethod
    def _check_batch(z: torch.Tensor) -> None:
        # over one sample, z - mean is 0: the output would ignore the input (torch's
        # BatchNorm refuses this too)
        if z.shape[0] < 2:
            raise ValueError(
                f"StepBatchNorm in training mode needs more than one sample per step for its "
                f"batch statistics, got a batch of {z.shape[0]} (input shape "
                f"{tuple(z.shape)}); with cell='bnlstm', train with batch_size >= 2")

    def _normalise(self, z: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        out = (z - mean) * torch.rsqrt(var + self.eps) * self.scale
        if self.offset is not None:
            out = out + self.offset
        return out

    @torch.no_grad()
    def _update(self, mean: torch.Tensor, var: torch.Tensor, start_step: int) -> None:
        d = self.decay
        n_t = mean.shape[0]
        # steps below S - 1 each own one row: one vectorised update
        n_own = max(0, min(n_t, self.n_steps - 1 - start_step))
        if n_own:
            rows = slice(start_step, start_step + n_own)
            self.pop_mean[rows].mul_(d).add_((1 - d) * mean[:n_own].to(self.pop_mean.dtype))
            self.pop_var[rows].mul_(d).add_((1 - d) * var[:n_own].to(self.pop_var.dtype))
        # the remaining steps all update the last row, one after the other
        for t in range(n_own, n_t):
            self.pop_mean[-1].mul_(d).add_((1 - d) * mean[t].to(self.pop_mean.dtype))
            self.pop_var[-1].mul_(d).add_((1 - d) * var[t].to(self.pop_var.dtype))


class BNLSTM(nn.Module):
    """The released code's batch-normalised LSTM cell (REFERENCE §3), over a whole sequence.

    At processing step ``s`` (``h_{-1} = c_{-1} = 0``)::

        xh = BN_xh,s(x_s @ W_xh)            (no offset)
        hh = BN_hh,s(h_{s-1} @ W_hh)        (with offset)
        f, i, o, j = split(xh + hh, 4)      (blocks of H, in this order)
        c_s = c_{s-1} * sigmoid(f) + sigmoid(i) * tanh(j)
        h_s = tanh(BN_c,s(c_s)) * sigmoid(o)

    with :class:`StepBatchNorm` (``eps = 1e-5``, decay 0.95, ``S = n_steps`` steps of
    statistics, inference at step ``min(s, S-1)``). Initialisation: ``W_xh`` and ``W_hh``
    orthogonal, BN scales 0.1, the ``hh`` offset's forget block 1 and the rest 0.

    Parameter names map one-to-one to the checkpoint variables ``.../BNLSTMCell/W_xh`` (``(D,
    4H)``, used as ``x @ W_xh``), ``W_hh`` (``(H, 4H)``), ``xh/{scale,pop_mean,pop_var}``,
    ``hh/{scale,offset,pop_mean,pop_var}``, ``c/{scale,offset,pop_mean,pop_var}``: here
    ``W_xh``, ``W_hh``, ``xh.scale``, ``hh.offset``, ``c.pop_var``, and so on.

    ``x @ W_xh`` and its normalisation are computed for all steps at once; only the recurrent
    part loops over the steps.

    Parameters
    ----------
    input_size : int
        Number of input features ``D``.
    hidden_size : int
        Number of hidden units ``H``.
    n_steps : int
        Number ``S`` of steps with their own BN population statistics (29 for the epoch-level
        RNN, 20 for the sequence RNN).
    decay : float, default=0.95
        Decay of the population statistics.
    eps : float, default=1e-5
        BN epsilon.

    Examples
    --------
    >>> import torch
    >>> cell = BNLSTM(32, 64, n_steps=29)
    >>> cell(torch.randn(3, 29, 32)).shape
    torch.Size([3, 29, 64])
    >>> tuple(cell.W_xh.shape), tuple(cell.hh.pop_mean.shape)
    ((32, 256), (29, 256))
    """

    def __init__(self, input_size: int, hidden_size: int, n_steps: int, decay: float = 0.95,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.input_size = _check_positive_int("BNLSTM: input_size", input_size)
        self.hidden_size = _check_positive_int("BNLSTM: hidden_size", hidden_size)
        self.n_steps = _check_positive_int("BNLSTM: n_steps", n_steps)
        h4 = 4 * self.hidden_size
        self.W_xh = nn.Parameter(nn.init.orthogonal_(torch.empty(input_size, h4)))
        self.W_hh = nn.Parameter(nn.init.orthogonal_(torch.empty(hidden_size, h4)))
        forget_one = torch.zeros(h4)
        forget_one[:hidden_size] = 1.0  # block order f, i, o, j: f comes first
        self.xh = StepBatchNorm(h4, n_steps, offset=False, decay=decay, eps=eps)
        self.hh = StepBatchNorm(h4, n_steps, offset=True, offset_init=forget_one,
                                decay=decay, eps=eps)
        self.c = StepBatchNorm(hidden_size, n_steps, offset=True, decay=decay, eps=eps)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, n_steps={self.n_steps}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] == 0:
            raise ValueError(f"BNLSTM expects input of shape (N, T, {self.input_size}) with "
                             f"T >= 1, got {tuple(x.shape)}")
        n, n_t, _ = x.shape
        hsz = self.hidden_size
        # (N, T, 4H), all steps at once, then one view per step: unbind's backward stacks the
        # T step gradients once, where indexing xh[:, s] would make each step's backward
        # build (and the engine sum) a zero-filled (N, T, 4H) tensor, T^2 work that was
        # two thirds of a training step
        xh = self.xh(x @ self.W_xh).unbind(1)
        h = x.new_zeros(n, hsz)
        c = x.new_zeros(n, hsz)
        outputs = []
        for s in range(n_t):
            hh = self.hh.step(h @ self.W_hh, s)
            f, i, o, j = (xh[s] + hh).split(hsz, dim=1)
            c = c * torch.sigmoid(f) + torch.sigmoid(i) * torch.tanh(j)
            h = torch.tanh(self.c.step(c, s)) * torch.sigmoid(o)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


def make_cell(cell: str, input_size: int, hidden_size: int, n_steps: int) -> nn.Module:
    """Build one direction's cell: ``"gru"``, ``"lstm"`` or ``"bnlstm"``.

    Examples
    --------
    >>> type(make_cell("bnlstm", 32, 64, n_steps=29)).__name__
    'BNLSTM'
    """
    if cell == "gru":
        return GRU(input_size, hidden_size)
    if cell == "lstm":
        return LSTM(input_size, hidden_size)
    if cell == "bnlstm":
        return BNLSTM(input_size, hidden_size, n_steps=n_steps)
    raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")


class Dropout(nn.Module):
    """Dropout with TensorFlow 1's mask rule, the one the released code uses (REFERENCE §3).

    In training mode each element is kept with probability ``keep = 1 - p`` and scaled by
    ``1 / keep``; the mask is ``floor(keep + u)`` with ``u`` uniform on ``[0, 1)``, as
    ``tf.nn.dropout`` draws it. The distribution is that of :class:`torch.nn.Dropout`
    (independent Bernoulli draws), but a uniform draw plus a floor costs about half of
    ``torch.bernoulli_`` per element on the CPU, which made a training step 1.09x (per-window)
    to 1.13x (shared sampler) faster (``docs/performance.rst``). For half-precision inputs
    the uniform is drawn in float32 (bfloat16's coarse grid would shift the keep rate). In
    evaluation mode, or with ``p = 0``, the input is returned unchanged.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in ``[0, 1)``.

    Examples
    --------
    >>> import torch
    >>> drop = Dropout(0.5).train()
    >>> set(drop(torch.ones(1000)).unique().tolist()) == {0.0, 2.0}
    True
    >>> torch.equal(drop.eval()(torch.ones(3)), torch.ones(3))
    True
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not (is_real(p) and 0 <= p < 1):
            raise ValueError(f"dropout probability p must be a number in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        u = torch.rand_like(x, dtype=dtype)   # in x's memory layout, as the tables were made
        mask = u.add_(keep).floor_().div_(keep)
        return x * mask.to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BidirectionalRNN(nn.Module):
    """Bidirectional RNN with the released code's dropout placement (REFERENCE §3).

    ``out = concat(drop(fw(drop(x))), reverse(drop(bw(drop(reverse(x))))))`` along the
    feature axis, each ``drop`` an independent :class:`Dropout` draw (active in training mode
    only). The backward cell consumes the time-reversed sequence.

    Parameters
    ----------
    input_size : int
        Number of input features ``D``.
    hidden_size : int
        Hidden units per direction ``H`` (the output has ``2 H`` features).
    cell : {"gru", "lstm", "bnlstm"}
        Cell type.
    n_steps : int
        Steps of BN population statistics (``bnlstm`` only).
    dropout : float
        Dropout probability on cell inputs and outputs.

    Examples
    --------
    >>> import torch
    >>> BidirectionalRNN(32, 64, "gru", n_steps=29, dropout=0.25)(torch.zeros(2, 29, 32)).shape
    torch.Size([2, 29, 128])
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str, n_steps: int,
                 dropout: float) -> None:
        super().__init__()
        self.fw = make_cell(cell, input_size, hidden_size, n_steps)
        self.bw = make_cell(cell, input_size, hidden_size, n_steps)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_fw = self.dropout(self.fw(self.dropout(x)))
        out_bw = self.dropout(self.bw(self.dropout(x.flip(1)))).flip(1)
        return torch.cat([out_fw, out_bw], dim=-1)
