"""The compiled GRU recurrence (skseqsleep/nn/_gru_ext.py, csrc/gru.cpp).

Expected values come from ``torch.nn.GRU`` itself (an independent implementation of the same
equations) and from ``torch.autograd.gradcheck`` (finite differences). The build-failure
paths run in a subprocess with a C++ compiler that does not exist and an empty extensions
folder, so the extension really fails to build there.
"""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from skseqsleep.nn import SeqSleepNet
from skseqsleep.nn import gru_backend as public_gru_backend
from skseqsleep.nn._gru_ext import _GRUSequence, gru_backend, gru_sequence
from skseqsleep.nn.cells import GRU

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def compiled(monkeypatch):
    """The compiled recurrence, required (CI: a build failure must fail, not fall back)."""
    monkeypatch.setenv("SKSEQSLEEP_GRU", "compiled")
    assert gru_backend("cpu", torch.float32) == "compiled"


def _reference(rnn, x, reverse):
    return rnn(x.flip(1))[0].flip(1) if reverse else rnn(x)[0]


SHAPES = [(1, 1, 3, 4), (3, 6, 5, 4), (51, 29, 32, 64), (2, 20, 128, 64)]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_outputs_equal_torch_gru(compiled, shape, reverse):
    n, t, d, h = shape
    torch.manual_seed(0)
    rnn = torch.nn.GRU(d, h, batch_first=True)
    x = torch.randn(n, t, d)
    out = gru_sequence(x, rnn, reverse=reverse)
    assert out.shape == (n, t, h)
    torch.testing.assert_close(out, _reference(rnn, x, reverse), atol=2e-6, rtol=1e-5)
    with torch.no_grad():  # prediction: nothing saved for a backward pass, same values
        torch.testing.assert_close(gru_sequence(x, rnn, reverse=reverse), out)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_gradients_equal_torch_gru_in_double(compiled, shape, reverse):
    n, t, d, h = shape
    torch.manual_seed(1)
    rnn = torch.nn.GRU(d, h, batch_first=True).double()
    x = torch.randn(n, t, d, dtype=torch.double, requires_grad=True)
    weights = torch.randn(n, t, h, dtype=torch.double)
    params = [x, *rnn.parameters()]
    ours = torch.autograd.grad((gru_sequence(x, rnn, reverse) * weights).sum(), params)
    ref = torch.autograd.grad((_reference(rnn, x, reverse) * weights).sum(), params)
    for name, a, b in zip(["x", "w_ih", "w_hh", "b_ih", "b_hh"], ours, ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10, msg=name)
    # an output used twice and a later step only: gradients still agree
    ours = torch.autograd.grad(gru_sequence(x, rnn, reverse)[:, -1].pow(2).sum(), params)
    ref = torch.autograd.grad(_reference(rnn, x, reverse)[:, -1].pow(2).sum(), params)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck(compiled, reverse):
    torch.manual_seed(2)
    rnn = torch.nn.GRU(3, 4, batch_first=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.double, requires_grad=True)

    def f(x, w_ih, w_hh, b_ih, b_hh):
        gi = torch.nn.functional.linear(x, w_ih, b_ih)
        return _GRUSequence.apply(gi, w_hh, b_hh, reverse, True)

    inputs = [x] + [p.detach().clone().requires_grad_(True) for p in rnn.parameters()]
    assert torch.autograd.gradcheck(f, inputs)


def test_gru_cell_and_network_use_it(compiled, monkeypatch):
    torch.manual_seed(3)
    cell = GRU(32, 64)
    x = torch.randn(4, 29, 32)
    out = cell(x)
    assert out.grad_fn is not None and "GRUSequence" in type(out.grad_fn).__name__
    torch.testing.assert_close(out, cell.rnn(x)[0], atol=2e-6, rtol=1e-5)
    # the whole network in evaluation mode agrees with torch.nn.GRU's to float rounding
    net = SeqSleepNet(seq_len=3).eval()
    xs = torch.randn(2, 3, 1, 29, 129)
    with torch.no_grad():
        a = net(xs)
        monkeypatch.setenv("SKSEQSLEEP_GRU", "torch")
        b = net(xs)
    assert not torch.equal(a, b)  # two implementations ...
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # ... of one function


def test_prediction_saves_no_gates(compiled):
    """Under no_grad (the classifier predicts under inference_mode) the forward pass keeps one
    step's scratch, not every step's gates: measured with the profiler's memory record."""
    torch.manual_seed(6)
    rnn = torch.nn.GRU(32, 64, batch_first=True)    # trainable weights, as in a fitted net
    x = torch.randn(640, 29, 32)
    gates = 29 * 4 * 640 * 64 * 4                    # bytes of every step's r, z, n, gh_n

    def peak_bytes(fn):
        with torch.profiler.profile(profile_memory=True) as prof:
            fn()
        return sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)

    def predict():
        with torch.inference_mode():
            gru_sequence(x, rnn)

    def predict_saving():    # the same call with the gates kept for a backward pass
        with torch.inference_mode():
            gi = torch.nn.functional.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0)
            _GRUSequence.apply(gi, rnn.weight_hh_l0, rnn.bias_hh_l0, False, True)

    saving = peak_bytes(predict_saving)
    assert saving > gates
    assert peak_bytes(predict) < saving - 0.9 * gates


def test_double_backward_is_refused_not_wrong(compiled):
    torch.manual_seed(7)
    rnn = torch.nn.GRU(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3, requires_grad=True)
    out = gru_sequence(x, rnn)  # a loss linear in the outputs: the case that went silent
    with pytest.raises(RuntimeError, match="no second derivative; set SKSEQSLEEP_GRU=torch"):
        torch.autograd.grad(out.sum(), x, create_graph=True)


def test_backend_switched_between_forward_and_backward(compiled, monkeypatch):
    torch.manual_seed(8)
    rnn = torch.nn.GRU(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3, requires_grad=True)
    out = gru_sequence(x, rnn)
    monkeypatch.setenv("SKSEQSLEEP_GRU", "torch")
    ours = torch.autograd.grad(out.sum(), x)[0]
    torch.testing.assert_close(ours, torch.autograd.grad(rnn(x)[0].sum(), x)[0],
                               atol=1e-6, rtol=1e-5)


def test_frozen_recurrent_weights(compiled):
    """Partial finetuning: the gradient reaches the input (and W_ih) but not frozen W_hh."""
    torch.manual_seed(9)
    rnn = torch.nn.GRU(3, 4, batch_first=True).double()
    rnn.weight_hh_l0.requires_grad_(False)
    rnn.bias_hh_l0.requires_grad_(False)
    x = torch.randn(2, 5, 3, dtype=torch.double, requires_grad=True)
    gru_sequence(x, rnn, reverse=True).pow(2).sum().backward()
    assert rnn.weight_hh_l0.grad is None and rnn.bias_hh_l0.grad is None
    ours = (x.grad.clone(), rnn.weight_ih_l0.grad.clone())
    x.grad = None
    rnn.weight_ih_l0.grad = None
    _reference(rnn, x, True).pow(2).sum().backward()
    torch.testing.assert_close(ours[0], x.grad, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(ours[1], rnn.weight_ih_l0.grad, atol=1e-12, rtol=1e-10)


def test_cpu_autocast_runs_torch_gru(compiled):
    torch.manual_seed(10)
    cell = GRU(6, 4)
    x = torch.randn(3, 5, 6, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = cell(x)
        ref = cell.rnn(x)[0]
    assert torch.equal(out, ref)
    out.float().sum().backward()
    assert x.grad is not None


def test_same_input_same_bits(compiled):
    torch.manual_seed(4)
    rnn = torch.nn.GRU(8, 16, batch_first=True)
    x = torch.randn(5, 7, 8, requires_grad=True)
    runs = []
    for _ in range(2):
        out = gru_sequence(x, rnn, reverse=True)
        grads = torch.autograd.grad(out.sum(), [x, *rnn.parameters()])
        runs.append((out.detach(), grads))
    assert torch.equal(runs[0][0], runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_torch_choice_is_torch_gru_exactly(monkeypatch):
    monkeypatch.setenv("SKSEQSLEEP_GRU", "torch")
    assert gru_backend("cpu", torch.float32) == "torch"
    torch.manual_seed(5)
    cell = GRU(6, 4)
    x = torch.randn(3, 5, 6)
    assert torch.equal(cell(x), cell.rnn(x)[0])


def test_half_precision_and_bad_choice(monkeypatch):
    monkeypatch.setenv("SKSEQSLEEP_GRU", "compiled")
    assert public_gru_backend is gru_backend
    assert gru_backend("cpu", torch.bfloat16) == "torch"
    assert gru_backend("cuda", torch.float32) == "torch"
    monkeypatch.setenv("SKSEQSLEEP_GRU", "fast")
    with pytest.raises(ValueError, match=r"SKSEQSLEEP_GRU must be one of .*'auto'.*got 'fast'"):
        gru_backend()


def test_fitted_network_pickles_without_the_extension(compiled):
    net = SeqSleepNet(seq_len=2)
    x = torch.randn(1, 2, 1, 29, 129)
    net(x).sum().backward()
    clone = pickle.loads(pickle.dumps(net.eval()))
    with torch.no_grad():
        assert torch.equal(clone(x), net(x))


def _run_without_compiler(choice, tmp_path):
    code = textwrap.dedent("""
        import warnings, torch
        from skseqsleep.nn.cells import GRU
        from skseqsleep.nn._gru_ext import gru_backend
        cell = GRU(3, 4)
        x = torch.randn(2, 5, 3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = cell(x)
            backend = gru_backend()
            cell(x)
        print("BACKEND", backend)
        print("EQUAL", torch.equal(out, cell.rnn(x)[0]))
        print("WARNINGS", len(caught))
        for w in caught:
            print("WARNING", w.category.__name__, str(w.message).splitlines()[0])
    """)
    env = dict(os.environ, SKSEQSLEEP_GRU=choice, CXX=str(tmp_path / "no-such-c++"),
               TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_auto_falls_back_to_torch_gru_with_one_warning(tmp_path):
    proc = _run_without_compiler("auto", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "BACKEND torch" in lines and "EQUAL True" in lines
    assert "WARNINGS 1" in lines, proc.stdout  # once per process, not per call
    warning = next(line for line in lines if line.startswith("WARNING "))
    assert "RuntimeWarning" in warning and "torch.nn.GRU instead" in warning
    assert "SKSEQSLEEP_GRU=torch" in warning


def test_compiled_choice_fails_loudly_without_a_compiler(tmp_path):
    proc = _run_without_compiler("compiled", tmp_path)
    assert proc.returncode != 0
    assert "SKSEQSLEEP_GRU=compiled, but the GRU extension (gru.cpp) could not be built" \
        in proc.stderr


def test_builds_with_the_ninja_package_when_path_has_none(tmp_path):
    """A PATH with the C++ compiler but no ninja (a venv run without activating it): the
    build takes the pip ``ninja`` dependency's binary, and PATH is restored afterwards.
    torch alone refuses such a build ("Ninja is required")."""
    import shutil

    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("c++", "g++", "gcc", "cc", "as", "ld"):
        found = shutil.which(tool)
        assert found is not None, f"this test needs {tool} (CI builds the extension)"
        (tools / tool).symlink_to(found)
    code = textwrap.dedent("""
        import os
        from skseqsleep.nn import gru_backend
        print("BACKEND", gru_backend())
        print("PATH", os.environ["PATH"])
    """)
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": str(tools),
           "SKSEQSLEEP_GRU": "compiled", "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext"),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BACKEND compiled" in proc.stdout
    assert f"PATH {tools}" in proc.stdout.splitlines()


def test_a_stale_build_lock_is_removed(tmp_path):
    """A build killed mid-way leaves torch's 'lock' file; every later load would wait for it
    forever. One older than 30 min is removed (with a warning) and the build goes on."""
    import hashlib

    from skseqsleep.nn import _gru_ext

    tag = hashlib.sha256(_gru_ext._SOURCE.read_bytes()).hexdigest()[:12]
    folder = tmp_path / "ext" / f"skseqsleep_gru_{tag}"
    folder.mkdir(parents=True)
    lock = folder / "lock"
    lock.touch()
    an_hour_ago = lock.stat().st_mtime - 3600
    os.utime(lock, (an_hour_ago, an_hour_ago))
    code = textwrap.dedent("""
        import warnings
        from skseqsleep.nn import gru_backend
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            print("BACKEND", gru_backend())
        for w in caught:
            print("WARNING", str(w.message))
    """)
    env = dict(os.environ, SKSEQSLEEP_GRU="compiled", TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"),
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BACKEND compiled" in proc.stdout
    assert f"WARNING removed the build lock {lock}, 60 min old" in proc.stdout
