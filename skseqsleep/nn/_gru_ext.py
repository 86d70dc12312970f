"""The compiled GRU recurrence used by :class:`skseqsleep.nn.cells.GRU` on the CPU.

``torch.nn.GRU`` on the CPU runs each time step as about ten ATen operations forward and,
through autograd, about twenty backward. At the shapes of the shared-epoch sampler (51
epochs x 29 frames, 32 windows x 20 epochs) those calls, not the arithmetic, are most of a
training step (``docs/performance.rst``). ``csrc/gru.cpp`` runs one direction over the whole
sequence with one matrix product and two vectorised sigmoid calls per step and the gate
arithmetic in plain loops, and has its own backward pass through time (one matrix product per
step, one for the recurrent weights' gradient). It computes the same function as
``torch.nn.GRU`` with the same parameters, up to float rounding (``tanh(a)`` is evaluated as
``2 sigmoid(2a) - 1``); ``tests/test_gru_ext.py`` checks outputs and gradients against
``torch.nn.GRU`` and with ``torch.autograd.gradcheck``.

The extension is compiled on first use with :func:`torch.utils.cpp_extension.load` (a C++
compiler is needed, and ninja, which the pip ``ninja`` dependency provides; about 30 s once,
cached in ``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``). The environment variable ``SKSEQSLEEP_GRU`` chooses:

``auto`` (default)
    the compiled recurrence on the CPU for float32/float64 when it builds, else
    ``torch.nn.GRU`` with one :class:`RuntimeWarning` that says why;
``torch``
    always ``torch.nn.GRU`` (nothing is compiled);
``compiled``
    the compiled recurrence on the CPU, and an error if it cannot be built.

On CUDA, for half precision and under autocast ``torch.nn.GRU`` is always used. Seeded results
depend on the choice at float-rounding level, so :func:`gru_backend` is recorded in a
study's ``provenance.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
import time
import warnings
from pathlib import Path

import torch

__all__ = ["gru_backend", "gru_sequence"]

_ENV = "SKSEQSLEEP_GRU"
_CHOICES = ("auto", "torch", "compiled")
_SOURCE = Path(__file__).with_name("csrc") / "gru.cpp"
_LOCK = threading.Lock()
_STATE: dict = {}


def _choice() -> str:
    value = os.environ.get(_ENV, "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        raise ValueError(f"{_ENV} must be one of {_CHOICES}, got {value!r}")
    return value


@contextlib.contextmanager
def environ(name: str, value: str | None):
    """``os.environ[name] = value`` inside the block, restored (or removed) after it;
    ``value=None`` leaves the environment as it is."""
    if value is None:
        yield
        return
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def _ninja_on_path():
    """``torch.utils.cpp_extension`` runs ``ninja`` from ``PATH``; when none is there (a venv
    used without activating it, a machine without a system ninja), the pip ``ninja``
    package's (a dependency) is put first on ``PATH`` for the build."""
    if shutil.which("ninja") is not None:
        yield
        return
    try:
        import ninja
    except ImportError:
        yield
        return
    path = os.pathsep.join(p for p in (ninja.BIN_DIR, os.environ.get("PATH")) if p)
    with environ("PATH", path):
        yield


#: A build lock older than this (s) was left by a build that was killed (a build takes about
#: 30 s): it is removed, or every later process would wait for it forever.
_STALE_LOCK_S = 30 * 60


def _remove_stale_lock(build_directory: str) -> None:
    lock = os.path.join(build_directory, "lock")
    try:
        age = time.time() - os.path.getmtime(lock)
    except OSError:        # no lock: nothing to do
        return
    if age > _STALE_LOCK_S:
        try:
            os.remove(lock)
        except FileNotFoundError:   # another process removed it first
            return
        warnings.warn(f"removed the build lock {lock}, {age / 60:.0f} min old, left by a GRU "
                      "extension build that was interrupted", RuntimeWarning, stacklevel=2)


def _build():
    from torch.utils import cpp_extension

    # the source's own hash names the build, so an edited source never meets a stale build
    name = f"skseqsleep_gru_{hashlib.sha256(_SOURCE.read_bytes()).hexdigest()[:12]}"
    build_directory = None
    try:  # torch's own choice of folder (TORCH_EXTENSIONS_DIR or its default)
        build_directory = cpp_extension._get_build_directory(name, False)
    except AttributeError:  # pragma: no cover - a torch without it: no stale-lock check
        pass
    if build_directory is not None:
        _remove_stale_lock(build_directory)
    with _ninja_on_path():
        return cpp_extension.load(name=name, sources=[str(_SOURCE)], extra_cflags=["-O3"],
                                  build_directory=build_directory, verbose=False)


def _extension():
    """The compiled module, or None (``torch`` chosen, or ``auto`` and the build failed)."""
    choice = _choice()
    if choice == "torch":
        return None
    with _LOCK:
        if "module" not in _STATE:
            try:
                _STATE["module"], _STATE["error"] = _build(), None
            except (RuntimeError, OSError, ImportError, subprocess.SubprocessError) as exc:
                # compiler, ninja or headers missing, a build error, an unloadable library
                _STATE["module"], _STATE["error"] = None, f"{type(exc).__name__}: {exc}"
                _STATE["warned"] = False
        module, error = _STATE["module"], _STATE["error"]
        if module is None:
            if choice == "compiled":
                raise RuntimeError(f"{_ENV}=compiled, but the GRU extension ({_SOURCE.name}) "
                                   f"could not be built: {error}")
            if not _STATE["warned"]:
                _STATE["warned"] = True
                warnings.warn(f"the compiled GRU recurrence could not be built, using "
                              f"torch.nn.GRU instead (slower on the CPU; set {_ENV}=torch to "
                              f"silence this): {error}", RuntimeWarning, stacklevel=3)
        return module


def gru_backend(device="cpu", dtype=torch.float32) -> str:
    """Which GRU recurrence :class:`skseqsleep.nn.cells.GRU` runs for this device and dtype.

    GRU cells (the paper's, REFERENCE §3; ``SeqSleepClassifier(cell="gru")``, the default)
    run their recurrence compiled on the CPU when they can: the same function as
    :class:`torch.nn.GRU` with the same parameters, up to float rounding, 1.8-2.1x faster at
    the shapes of the shared-epoch sampler (``docs/performance.rst``). The environment
    variable ``SKSEQSLEEP_GRU`` chooses: ``auto`` (default: compiled if it builds, else
    ``torch.nn.GRU`` with one :class:`RuntimeWarning`), ``torch`` (never compile) or
    ``compiled`` (an error if it cannot be built). The first call compiles the extension
    (a C++ compiler is needed; ninja comes with the package; about 30 s, then cached in
    ``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``).

    Seeded GRU results depend on the answer at float-rounding level; ``skseqsleep study``
    records it for GRU cells on the CPU (``gru_cpu`` among the arguments in ``study.json``
    and ``provenance.json``). Under autocast, ``torch.nn.GRU`` runs. The compiled recurrence
    has no second derivative (double backward raises; ``torch`` has it).

    Parameters
    ----------
    device : str or torch.device, default="cpu"
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    {"compiled", "torch"}
        ``"torch"`` on CUDA (cuDNN) and for half precision, whatever the choice (and
        :class:`~skseqsleep.nn.cells.GRU` uses ``torch.nn.GRU`` under autocast too).

    Raises
    ------
    ValueError
        ``SKSEQSLEEP_GRU`` is not one of ``auto``, ``torch``, ``compiled``.
    RuntimeError
        ``SKSEQSLEEP_GRU=compiled`` and the extension cannot be built.

    Examples
    --------
    >>> gru_backend("cpu", torch.float16)
    'torch'
    """
    if torch.device(device).type != "cpu" or dtype not in (torch.float32, torch.float64):
        return "torch"
    return "compiled" if _extension() is not None else "torch"


class _GRUSequence(torch.autograd.Function):
    """``(gi, w_hh, b_hh, reverse, save) -> hidden states (N, T, H)``; ``save=False`` (no
    gradient will be asked for) keeps one step's scratch instead of every step's gates."""

    @staticmethod
    def forward(ctx, gi, w_hh, b_hh, reverse, save):
        ext = _extension()
        save = bool(save) and any(ctx.needs_input_grad[:3])
        hs, saved = ext.gru_forward(gi.contiguous(), w_hh, b_hh, reverse, save)
        if save:
            ctx.save_for_backward(hs, saved, w_hh)
        # the module that made the forward pass makes the backward pass (SKSEQSLEEP_GRU may
        # change in between)
        ctx.ext, ctx.reverse = ext, reverse
        return hs.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            # create_graph=True: the backward pass is not itself differentiable (and
            # once_differentiable would drop a second-order term silently when the loss is
            # linear in the outputs)
            raise RuntimeError("the compiled GRU recurrence has no second derivative; set "
                               f"{_ENV}=torch for double backward through GRU cells")
        hs, saved, w_hh = ctx.saved_tensors
        weights = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        dgi, dw, db = ctx.ext.gru_backward(grad.transpose(0, 1), hs, saved, w_hh,
                                           ctx.reverse, weights)
        return (dgi if ctx.needs_input_grad[0] else None,
                dw if ctx.needs_input_grad[1] else None,
                db if ctx.needs_input_grad[2] else None, None, None)


def gru_sequence(x: torch.Tensor, rnn: torch.nn.GRU, reverse: bool = False) -> torch.Tensor:
    """Output sequence ``(N, T, H)`` of a one-layer, ``batch_first`` ``rnn`` from zero state.

    ``reverse=True`` runs the recurrence from the last step to the first (the backward
    direction of a bidirectional layer) and returns the states in input order, i.e.
    ``rnn(x.flip(1))[0].flip(1)``. Uses the compiled recurrence when :func:`gru_backend`
    says so, else ``rnn`` itself.

    Examples
    --------
    >>> rnn = torch.nn.GRU(3, 4, batch_first=True)
    >>> x = torch.randn(2, 5, 3)
    >>> torch.allclose(gru_sequence(x, rnn), rnn(x)[0], atol=1e-6)
    True
    """
    if (x.dim() == 3 and x.size(0) > 0 and x.size(1) > 0 and rnn.weight_hh_l0.dtype == x.dtype
            and not torch.is_autocast_enabled(x.device.type)  # e.g. bfloat16 autocast
            and gru_backend(x.device, x.dtype) == "compiled"):
        gi = torch.nn.functional.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0)
        save = torch.is_grad_enabled() and (gi.requires_grad or rnn.weight_hh_l0.requires_grad
                                            or rnn.bias_hh_l0.requires_grad)
        return _GRUSequence.apply(gi, rnn.weight_hh_l0, rnn.bias_hh_l0, reverse, save)
    if reverse:
        return rnn(x.flip(1))[0].flip(1)
    return rnn(x)[0]
