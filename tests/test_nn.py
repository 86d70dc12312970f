"""Tests of the SeqSleepNet network (REFERENCE §3).

Expected values come from REFERENCE §3 (worked out by hand below) or from a direct
step-by-step numpy implementation of its equations, written here independently of the package.
"""

import math

import numpy as np
import pytest
import torch

from skseqsleep.nn import BNLSTM, SeqSleepNet, triangular_filterbank
from skseqsleep.nn.cells import BidirectionalRNN, StepBatchNorm

CELLS = ["gru", "lstm", "bnlstm"]


def _spectra(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# --------------------------------------------------------------------------- shapes / API
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("n_channels", [1, 2])
def test_shapes(cell, n_channels):
    torch.manual_seed(0)
    net = SeqSleepNet(n_channels=n_channels, cell=cell)
    x = _spectra(2, 2, n_channels, 29, 129)
    logits = net(x)
    assert logits.shape == (2, 2, 5)
    assert logits.dtype == torch.float32
    feats = net.encode_epochs(x.flatten(0, 1))
    assert feats.shape == (4, 128)
    assert net.classify_sequences(feats.view(2, 2, -1)).shape == (2, 2, 5)
    # the frame RNN takes n_channels * 32 inputs (REFERENCE §3: 64 for the 2-channel model)
    first = net.arnn.rnn.fw
    n_in = first.W_xh.shape[0] if cell == "bnlstm" else first.rnn.input_size
    assert n_in == 32 * n_channels
    assert len(net.arnn.filterbanks) == n_channels


def test_other_sizes():
    net = SeqSleepNet(n_channels=1, n_freq_bins=65, n_frames=10, n_filters=8, rnn_hidden=16,
                      attention_size=12, seq_len=4, n_classes=3, cell="bnlstm").eval()
    out = net(_spectra(2, 4, 1, 10, 65))
    assert out.shape == (2, 4, 3)
    assert net.arnn.rnn.fw.hh.pop_mean.shape == (10, 64)
    assert net.seqrnn.bw.c.pop_var.shape == (4, 16)


def test_bnlstm_checkpoint_names_and_shapes():
    """Names and shapes that map one-to-one to the checkpoint variables of REFERENCE §3."""
    net = SeqSleepNet(n_channels=1, cell="bnlstm")
    sd = net.state_dict()
    expected = {"arnn.filterbanks.0.V": (129, 32), "arnn.attention.W": (128, 64),
                "arnn.attention.b": (64,), "arnn.attention.u": (64,),
                "softmax.weight": (5, 128), "softmax.bias": (5,)}
    for layer, part, n_in, n_steps in [("frame", "arnn.rnn", 32, 29),
                                       ("epoch", "seqrnn", 128, 20)]:
        for d in ("fw", "bw"):
            p = f"{part}.{d}"
            expected.update({f"{p}.W_xh": (n_in, 256), f"{p}.W_hh": (64, 256),
                             f"{p}.xh.scale": (256,),
                             f"{p}.xh.pop_mean": (n_steps, 256),
                             f"{p}.xh.pop_var": (n_steps, 256),
                             f"{p}.hh.scale": (256,), f"{p}.hh.offset": (256,),
                             f"{p}.hh.pop_mean": (n_steps, 256),
                             f"{p}.hh.pop_var": (n_steps, 256),
                             f"{p}.c.scale": (64,), f"{p}.c.offset": (64,),
                             f"{p}.c.pop_mean": (n_steps, 64),
                             f"{p}.c.pop_var": (n_steps, 64)})
    expected["arnn.filterbanks.0.mask"] = (129, 32)
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    two = SeqSleepNet(n_channels=2, cell="bnlstm").state_dict()
    assert tuple(two["arnn.filterbanks.1.V"].shape) == (129, 32)
    assert tuple(two["arnn.rnn.fw.W_xh"].shape) == (64, 256)


def test_bnlstm_initialisation():
    torch.manual_seed(0)
    cell = BNLSTM(32, 64, n_steps=29)
    for bn in (cell.xh, cell.hh, cell.c):
        assert torch.all(bn.scale == 0.1)
        assert torch.all(bn.pop_mean == 0) and torch.all(bn.pop_var == 1)
    assert cell.xh.offset is None
    assert torch.all(cell.hh.offset[:64] == 1) and torch.all(cell.hh.offset[64:] == 0)
    assert torch.all(cell.c.offset == 0)
    # orthogonal: (32, 256) has orthonormal rows, (64, 256) too
    for w in (cell.W_xh, cell.W_hh):
        gram = (w @ w.T).detach()
        torch.testing.assert_close(gram, torch.eye(w.shape[0]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_is_encode_then_classify(cell):
    torch.manual_seed(1)
    net = SeqSleepNet(n_channels=2, cell=cell)
    x = _spectra(2, 3, 2, 29, 129, seed=1)
    net.eval()
    a = net(x)
    b = net.classify_sequences(net.encode_epochs(x.flatten(0, 1)).view(2, 3, -1))
    assert torch.equal(a, b)
    # training mode: same dropout draws (same seed) give the same result too
    net.train()
    torch.manual_seed(5)
    a = net(x)
    torch.manual_seed(5)
    b = net.classify_sequences(net.encode_epochs(x.flatten(0, 1)).view(2, 3, -1))
    assert torch.equal(a, b)


def test_forward_goes_through_overridden_halves():
    # a subclass that changes one half must get the same function from forward() (the
    # per-window sampler) as from the shared-epoch path, which calls the two halves
    from skseqsleep._fast import shared_forward

    class Tempered(SeqSleepNet):
        def encode_epochs(self, x, return_attention=False):
            return 2 * super().encode_epochs(x, return_attention)

        def classify_sequences(self, features):
            return super().classify_sequences(features) / 3

    torch.manual_seed(2)
    net = Tempered(seq_len=3).eval()
    x = _spectra(1, 5, 1, 29, 129, seed=2)
    windows = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    plain = SeqSleepNet.classify_sequences(net, SeqSleepNet.encode_epochs(
        net, x[0][windows].flatten(0, 1)).view(3, 3, -1))
    tempered = net(x[0][windows])
    torch.testing.assert_close(tempered, shared_forward(net, x[0], windows))
    assert not torch.allclose(tempered, plain)


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_only_in_training(cell):
    torch.manual_seed(2)
    net = SeqSleepNet(cell=cell)
    x = _spectra(2, 3, 1, 29, 129, seed=2)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    a, b = net(x), net(x)
    assert not torch.allclose(a, b)
    # with dropout=0 and a cell without batch statistics, training == evaluation
    if cell != "bnlstm":
        net0 = SeqSleepNet(cell=cell, dropout=0.0)
        torch.testing.assert_close(net0.train()(x), net0.eval()(x))


def test_dropout_placement():
    """Dropout acts on the cell inputs and outputs of each direction (REFERENCE §3)."""
    torch.manual_seed(0)
    rnn = BidirectionalRNN(4, 3, "gru", n_steps=5, dropout=0.5).train()
    seen = []
    rnn.fw.register_forward_hook(lambda m, inp, out: seen.append(("fw", inp[0], out)))
    rnn.bw.register_forward_hook(lambda m, inp, out: seen.append(("bw", inp[0], out)))
    x = torch.ones(2, 5, 4)
    y = rnn(x)
    (_, in_fw, out_fw), (_, in_bw, out_bw) = seen
    # inputs: zeros or 1 / (1 - p) = 2, with independent masks per direction
    for inp in (in_fw, in_bw):
        assert set(inp.unique().tolist()) <= {0.0, 2.0}
        assert (inp == 0).any()
    assert not torch.equal(in_fw, in_bw.flip(1))
    # outputs: each concatenated value is 0 or 2 x the cell output
    fw_part, bw_part = y[..., :3], y[..., 3:].flip(1)
    for part, out in ((fw_part, out_fw), (bw_part, out_bw)):
        kept = part != 0
        assert (~kept).any()
        torch.testing.assert_close(part[kept], 2 * out[kept])


def test_dropout_keeps_each_element_independently_with_probability_one_minus_p():
    from skseqsleep.nn.cells import Dropout

    p, n = 0.25, 400_000
    drop = Dropout(p).train()
    x = torch.rand(n) + 0.5                     # no zeros in the input
    torch.manual_seed(3)
    out = drop(x)
    kept = out != 0
    # kept elements are scaled by exactly 1 / (1 - p), the others are zero
    torch.testing.assert_close(out[kept], x[kept] / (1 - p))
    # about p of the elements are zeroed (5 standard deviations of a binomial proportion),
    # and neighbours are zeroed together with probability p ** 2 (independent draws)
    tol = 5 * (p * (1 - p) / n) ** 0.5
    assert abs((~kept).float().mean().item() - p) < tol
    both = (~kept[:-1] & ~kept[1:]).float().mean().item()
    assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / n) ** 0.5
    # the gradient is the mask: 1 / (1 - p) where kept, 0 where dropped
    xg = x.clone().requires_grad_()
    torch.manual_seed(3)
    drop(xg).sum().backward()
    torch.testing.assert_close(xg.grad, kept.float() / (1 - p))
    # the same seed draws the same mask; the next draw is another one
    torch.manual_seed(3)
    assert torch.equal(drop(x), out)
    assert not torch.equal(drop(x), out)
    # evaluation mode and p = 0 return the input itself
    assert drop.eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    # half precision: the uniform is drawn in float32 (bfloat16's grid shifted the keep rate
    # from 0.9 to 0.8986, 13 standard deviations)
    for dtype in (torch.bfloat16, torch.float16):
        kept_half = (Dropout(0.1).train()(torch.ones(n, dtype=dtype)) != 0).float().mean()
        assert abs(kept_half.item() - 0.9) < 5 * (0.09 / n) ** 0.5
    # p outside [0, 1): NaN outputs (p = 1) or wrong scaling (p < 0) before
    for bad in (1.0, -0.2, 1.5, True, "0.2"):
        with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\)"):
            Dropout(bad)


# --------------------------------------------------------------------------- filterbank
def test_triangular_filterbank_against_reference_facts():
    mask = triangular_filterbank(n_filters=32, nfft=256, fs=100, f_min=0, f_max=50)
    assert mask.shape == (129, 32)
    hz = np.linspace(0, 50, 34)
    bins = np.floor(257 * hz / 100).astype(int)
    # by hand: hz[1] = 50/33 = 1.515 Hz -> 257*1.515/100 = 3.89 -> 3; hz[2] -> 7.79 -> 7;
    # hz[3] -> 11.68 -> 11; hz[33] = 50 -> 128.5 -> 128
    assert list(bins[:4]) == [0, 3, 7, 11] and bins[-1] == 128
    # filter 0 rises over bins 0..3 and falls to bin 7
    np.testing.assert_allclose(mask[:8, 0], [0, 1 / 3, 2 / 3, 1, 3 / 4, 2 / 4, 1 / 4, 0],
                               rtol=1e-6)
    assert np.all(mask[8:, 0] == 0)
    # filter 1 rises from bin 3 (0) to bin 7 (1) and falls to bin 11
    np.testing.assert_allclose(mask[3:12, 1], [0, 1 / 4, 2 / 4, 3 / 4, 1, 3 / 4, 2 / 4, 1 / 4, 0],
                               rtol=1e-6)
    assert np.all(mask[:3, 1] == 0) and np.all(mask[12:, 1] == 0)
    # each filter peaks at exactly 1 at bin[j+1]
    for j in range(32):
        assert mask[:, j].max() == 1.0
        assert np.argmax(mask[:, j]) == bins[j + 1]
        assert np.all(mask[:bins[j], j] == 0) and np.all(mask[bins[j + 2]:, j] == 0)
    # overlapping triangles with shared edges sum to 1 between bin[1] and bin[32]
    np.testing.assert_allclose(mask[bins[1]:bins[32]].sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(mask[128] == 0)
    assert np.all(mask >= 0) and np.all(mask <= 1)


def test_filterbank_weight_and_output():
    torch.manual_seed(3)
    net = SeqSleepNet(n_channels=2)
    for fb in net.arnn.filterbanks:
        np.testing.assert_array_equal(fb.mask.numpy(), triangular_filterbank())
        w = torch.sigmoid(fb.V) * fb.mask
        assert torch.equal(fb.weight, w)
    x = _spectra(3, 2, 29, 129, seed=3)
    got = torch.cat([fb(x[:, c]) for c, fb in enumerate(net.arnn.filterbanks)], dim=-1)
    w0 = (torch.sigmoid(net.arnn.filterbanks[0].V) * net.arnn.filterbanks[0].mask).detach()
    w1 = (torch.sigmoid(net.arnn.filterbanks[1].V) * net.arnn.filterbanks[1].mask).detach()
    want = np.concatenate([x[:, 0].numpy() @ w0.numpy(), x[:, 1].numpy() @ w1.numpy()], -1)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-5)


def test_filterbank_init_is_standard_normal():
    torch.manual_seed(0)
    v = SeqSleepNet().arnn.filterbanks[0].V.detach().numpy()
    assert abs(v.mean()) < 0.05 and abs(v.std() - 1) < 0.05


def test_gradient_reaches_v_not_mask():
    torch.manual_seed(4)
    net = SeqSleepNet(cell="gru")
    net(_spectra(2, 3, 1, 29, 129, seed=4)).sum().backward()
    fb = net.arnn.filterbanks[0]
    assert fb.V.grad is not None and fb.V.grad.abs().sum() > 0
    assert not fb.mask.requires_grad and fb.mask.grad is None
    assert "arnn.filterbanks.0.mask" not in dict(net.named_parameters())
    # rows of the mask that are 0 (bin 128) get no gradient on V
    assert torch.all(fb.V.grad[128] == 0)


# --------------------------------------------------------------------------- attention
@pytest.mark.parametrize("cell", ["gru", "bnlstm"])
def test_attention_weights(cell):
    torch.manual_seed(5)
    net = SeqSleepNet(cell=cell).eval()
    x = _spectra(4, 1, 29, 129, seed=5)
    feats, alpha = net.encode_epochs(x, return_attention=True)
    assert alpha.shape == (4, 29)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(4))
    assert torch.all(alpha > 0)
    assert torch.equal(feats, net.encode_epochs(x))
    # the pooled vector is the alpha-weighted sum of the bi-RNN outputs (REFERENCE §3)
    fb = torch.cat([f(x[:, c]) for c, f in enumerate(net.arnn.filterbanks)], -1)
    a = net.arnn.rnn(fb)
    att = net.arnn.attention
    e = torch.tanh(a @ att.W + att.b) @ att.u
    alpha_ref = torch.exp(e) / torch.exp(e).sum(1, keepdim=True)
    torch.testing.assert_close(alpha, alpha_ref)
    torch.testing.assert_close(feats, (alpha_ref[..., None] * a).sum(1))


# --------------------------------------------------------------------------- parts / L2
@pytest.mark.parametrize("cell", CELLS)
def test_every_parameter_and_buffer_in_one_part(cell):
    net = SeqSleepNet(n_channels=2, cell=cell)
    parts = ("arnn", "seqrnn", "softmax")
    assert net.PARTS == parts
    for named in (net.named_parameters(), net.named_buffers()):
        names = [n for n, _ in named]
        assert names
        for n in names:
            assert sum(n.startswith(p + ".") for p in parts) == 1, n
    n_total = sum(p.numel() for p in net.parameters())
    n_parts = sum(p.numel() for part in parts for p in getattr(net, part).parameters())
    assert n_total == n_parts
    assert isinstance(net.softmax, torch.nn.Linear)
    assert (net.softmax.in_features, net.softmax.out_features) == (128, 5)


def test_l2_parameters_exclude_only_filterbanks():
    net = SeqSleepNet(n_channels=2, cell="bnlstm")
    l2 = {id(p) for p in net.l2_parameters()}
    names = {n for n, p in net.named_parameters() if id(p) not in l2}
    assert names == {"arnn.filterbanks.0.V", "arnn.filterbanks.1.V"}
    # biases, BN scales/offsets and attention parameters stay in (released code)
    named = dict(net.named_parameters())
    for n in ("softmax.bias", "arnn.rnn.fw.hh.offset", "seqrnn.bw.c.scale", "arnn.attention.b"):
        assert id(named[n]) in l2
    assert len(l2) == len(named) - 2


def test_filterbank_refuses_empty_filters_and_bad_ranges():
    # 32 filters over the 5 bins of SeqSleepNet(n_freq_bins=5): 28 would be all zero
    with pytest.raises(ValueError, match=r"28 of the 32 triangular filters would be all zero"):
        SeqSleepNet(n_freq_bins=5)
    mask = triangular_filterbank(n_filters=4, nfft=8, fs=100)      # 4 filters do fit
    assert mask.shape == (5, 4) and (mask.sum(axis=0) > 0).all()
    with pytest.raises(ValueError, match=r"0 <= f_min < f_max, got f_min=40, f_max=10"):
        triangular_filterbank(4, 256, 100, f_min=40, f_max=10)
    with pytest.raises(ValueError, match="fs must be positive, got 0"):
        triangular_filterbank(fs=0)
    with pytest.raises(ValueError, match="fs must be a finite number"):
        triangular_filterbank(fs=float("nan"))


def test_bnlstm_checks_its_arguments_and_input():
    for kw, name in (({"n_steps": 0}, "n_steps"), ({"hidden_size": 0}, "hidden_size"),
                     ({"input_size": 4.5}, "input_size")):
        args = {"input_size": 4, "hidden_size": 8, "n_steps": 5, **kw}
        with pytest.raises(ValueError, match=rf"BNLSTM: {name} must be a positive integer"):
            BNLSTM(**args)
    cell = BNLSTM(4, 8, n_steps=5).eval()
    with pytest.raises(ValueError, match=r"shape \(N, T, 4\) with T >= 1, got \(3, 4\)"):
        cell(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"got \(3, 0, 4\)"):
        cell(torch.zeros(3, 0, 4))
    assert cell(torch.zeros(3, 2, 4)).shape == (3, 2, 8)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="cell must be one of"):
        SeqSleepNet(cell="rnn")
    with pytest.raises(ValueError, match="dropout"):
        SeqSleepNet(dropout=1.0)
    with pytest.raises(ValueError, match="dropout"):
        SeqSleepNet(dropout=True)
    assert SeqSleepNet(dropout=np.float32(0.25)).dropout == 0.25      # numpy floats are floats
    with pytest.raises(ValueError, match="n_classes must be at least 2, got 1"):
        SeqSleepNet(n_classes=1)
    with pytest.raises(ValueError, match="n_channels"):
        SeqSleepNet(n_channels=0)
    net = SeqSleepNet(n_channels=2)
    with pytest.raises(ValueError, match=r"n_channels=2.*got shape \(2, 3, 1, 29, 129\)"):
        net(torch.zeros(2, 3, 1, 29, 129))
    with pytest.raises(ValueError, match=r"got shape \(3, 2, 129, 29\)"):
        net.encode_epochs(torch.zeros(3, 2, 129, 29))
    with pytest.raises(ValueError, match=r"\(batch, L, 128\)"):
        net.classify_sequences(torch.zeros(2, 3, 64))


# --------------------------------------------------------------------------- BN-LSTM
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_bnlstm(x, prm, n_steps, training, decay=0.95, eps=1e-5):
    """REFERENCE §3 step by step. Returns (h sequence, updated population statistics)."""
    n, n_t, _ = x.shape
    hsz = prm["W_hh"].shape[0]
    pops = {k: v.copy() for k, v in prm.items() if "pop" in k}
    h = np.zeros((n, hsz))
    c = np.zeros((n, hsz))

    def bn(z, name, s, has_offset):
        k = min(s, n_steps - 1)
        if training:
            mu, var = z.mean(axis=0), ((z - z.mean(axis=0)) ** 2).mean(axis=0)
            pops[f"{name}.pop_mean"][k] = decay * pops[f"{name}.pop_mean"][k] + (1 - decay) * mu
            pops[f"{name}.pop_var"][k] = decay * pops[f"{name}.pop_var"][k] + (1 - decay) * var
        else:
            mu, var = pops[f"{name}.pop_mean"][k], pops[f"{name}.pop_var"][k]
        out = prm[f"{name}.scale"] * (z - mu) / np.sqrt(var + eps)
        return out + prm[f"{name}.offset"] if has_offset else out

    outs = []
    for s in range(n_t):
        xh = bn(x[:, s] @ prm["W_xh"], "xh", s, False)
        hh = bn(h @ prm["W_hh"], "hh", s, True)
        g = xh + hh
        f, i, o, j = g[:, :hsz], g[:, hsz:2 * hsz], g[:, 2 * hsz:3 * hsz], g[:, 3 * hsz:]
        c = c * _sigmoid(f) + _sigmoid(i) * np.tanh(j)
        h = np.tanh(bn(c, "c", s, True)) * _sigmoid(o)
        outs.append(h)
    return np.stack(outs, axis=1), pops


def _randomise(cell, seed):
    """Random parameters and population statistics (float64) for a BNLSTM."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, t in list(cell.named_parameters()) + list(cell.named_buffers()):
            if name.endswith("pop_var"):
                vals = rng.uniform(0.2, 3.0, size=t.shape)
            elif name.startswith("W_"):
                vals = rng.normal(0, 0.5, size=t.shape)
            else:
                vals = rng.normal(0, 1.0, size=t.shape)
            t.copy_(torch.from_numpy(vals))
    return {n: t.detach().numpy().copy() for n, t in
            list(cell.named_parameters()) + list(cell.named_buffers())}


@pytest.mark.parametrize("n_t", [3, 6])  # 6 > S = 4: the last steps reuse step S-1's statistics
def test_bnlstm_inference_matches_numpy(n_t):
    torch.manual_seed(0)
    cell = BNLSTM(5, 3, n_steps=4).double().eval()
    prm = _randomise(cell, seed=n_t)
    x = np.random.default_rng(10 + n_t).normal(size=(7, n_t, 5))
    got = cell(torch.from_numpy(x)).detach().numpy()
    want, pops = _numpy_bnlstm(x, prm, n_steps=4, training=False)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # inference leaves the statistics untouched
    for k, v in pops.items():
        np.testing.assert_array_equal(dict(cell.named_buffers())[k].numpy(), v)


def test_bnlstm_bidirectional_inference_matches_numpy():
    torch.manual_seed(0)
    rnn = BidirectionalRNN(5, 3, "bnlstm", n_steps=4, dropout=0.25).double().eval()
    p_fw = _randomise(rnn.fw, seed=1)
    p_bw = _randomise(rnn.bw, seed=2)
    x = np.random.default_rng(3).normal(size=(6, 5, 5))
    got = rnn(torch.from_numpy(x)).detach().numpy()
    fw, _ = _numpy_bnlstm(x, p_fw, 4, training=False)
    # backward: reverse the sequence, run the cell (its step 0 is the last frame), reverse back
    bw, _ = _numpy_bnlstm(x[:, ::-1], p_bw, 4, training=False)
    want = np.concatenate([fw, bw[:, ::-1]], axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the backward half is not simply the forward cell's: direction matters
    assert not np.allclose(got[..., 3:], bw)


@pytest.mark.parametrize("n_t", [3, 6])
def test_bnlstm_training_batch_statistics_and_update(n_t):
    torch.manual_seed(0)
    cell = BNLSTM(5, 3, n_steps=4).double().train()
    prm = _randomise(cell, seed=20 + n_t)
    x = np.random.default_rng(30 + n_t).normal(size=(8, n_t, 5))
    got = cell(torch.from_numpy(x)).detach().numpy()
    want, pops = _numpy_bnlstm(x, prm, n_steps=4, training=True)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    buffers = dict(cell.named_buffers())
    for k, v in pops.items():
        np.testing.assert_allclose(buffers[k].numpy(), v, rtol=1e-12, atol=1e-14)


def test_bnlstm_training_one_step_by_hand():
    """Step 0 in training: batch statistics, and pop = 0.95 pop + 0.05 batch."""
    torch.manual_seed(0)
    cell = BNLSTM(2, 1, n_steps=3).double().train()
    with torch.no_grad():
        cell.W_xh.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 2.0, -1.0]]))
        cell.xh.pop_mean.fill_(0.5)
        cell.xh.pop_var.fill_(2.0)
    x = torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]], dtype=torch.float64)  # (N=2, T=1, D=2)
    h = cell(x)
    # x @ W_xh = [[1, 2, 4, -2], [3, 0, 0, 0]]: mean [2, 1, 2, -1], biased var [1, 1, 4, 1]
    mean = np.array([2.0, 1.0, 2.0, -1.0])
    var = np.array([1.0, 1.0, 4.0, 1.0])
    np.testing.assert_allclose(cell.xh.pop_mean[0].numpy(), 0.95 * 0.5 + 0.05 * mean)
    np.testing.assert_allclose(cell.xh.pop_var[0].numpy(), 0.95 * 2.0 + 0.05 * var)
    np.testing.assert_array_equal(cell.xh.pop_mean[1:].numpy(), 0.5)  # other steps untouched
    # h_{-1} = 0: hh batch mean 0, var 0 -> pop_hh = 0.95 * (0, 1) + 0.05 * (0, 0)
    np.testing.assert_allclose(cell.hh.pop_mean[0].numpy(), 0.0)
    np.testing.assert_allclose(cell.hh.pop_var[0].numpy(), 0.95)
    # normalised xh with batch statistics: scale 0.1 * (z - mean) / sqrt(var + 1e-5);
    # hh = offset = (1, 0, 0, 0) (forget block 1)
    z = np.array([[1, 2, 4, -2], [3, 0, 0, 0]], dtype=float)
    g = 0.1 * (z - mean) / np.sqrt(var + 1e-5) + np.array([1.0, 0, 0, 0])
    _f, i, o, j = g.T
    c = _sigmoid(i) * np.tanh(j)
    c_bn = 0.1 * (c - c.mean()) / math.sqrt(c.var() + 1e-5)
    np.testing.assert_allclose(h[:, 0, 0].detach().numpy(), np.tanh(c_bn) * _sigmoid(o))


def test_bnlstm_backward_work_is_linear_in_the_steps():
    """The backward pass of a BN-LSTM over T steps writes O(N T 4H) elements, not O(N T^2 4H)
    (indexing the all-steps input projection per step made every step's backward build a
    zero-filled (N, T, 4H) gradient, two thirds of a training step at the reference sizes)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    views = {"view", "expand", "t", "unsqueeze", "squeeze", "detach", "select", "slice",
             "as_strided", "split", "unbind", "alias", "permute", "transpose"}

    class CountWrites(TorchDispatchMode):
        written = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket.__name__ not in views:
                for o in out if isinstance(out, (tuple, list)) else [out]:
                    if isinstance(o, torch.Tensor):
                        self.written += o.numel()
            return out

    def written_per_step(n_t):
        torch.manual_seed(0)
        cell = BNLSTM(8, 16, n_steps=n_t).train()
        out = cell(torch.randn(32, n_t, 8, requires_grad=True))
        with CountWrites() as mode:
            out.sum().backward()
        return mode.written / n_t

    short, long = written_per_step(4), written_per_step(32)
    # the same work per step (within a factor 1.5), where the quadratic version grows ~8-fold
    assert long < 1.5 * short, (short, long)


def test_step_batchnorm_eval_uses_clamped_step():
    bn = StepBatchNorm(2, n_steps=2, offset=True).eval()
    with torch.no_grad():
        bn.pop_mean.copy_(torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
        bn.pop_var.copy_(torch.tensor([[1.0, 1.0], [4.0, 4.0]]))
        bn.scale.fill_(1.0)
        bn.offset.fill_(0.5)
    z = torch.ones(1, 4, 2)
    out = bn(z)[0]
    s = math.sqrt(4 + 1e-5)
    expected = torch.tensor([[1 / math.sqrt(1 + 1e-5) + 0.5] * 2,
                             [0 / s + 0.5, -1 / s + 0.5],
                             [0 / s + 0.5, -1 / s + 0.5],
                             [0 / s + 0.5, -1 / s + 0.5]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("cell", ["gru", "bnlstm"])
def test_input_type_dtype_and_emptiness_are_checked(cell):
    net = SeqSleepNet(cell=cell).eval()
    x = torch.zeros(2, 3, 1, 29, 129)
    with pytest.raises(TypeError, match=r"the input must be a torch\.Tensor, got ndarray"):
        net(x.numpy())
    with pytest.raises(TypeError, match=r"the input has dtype torch\.float64 but the "
                                        r"network's parameters are torch\.float32"):
        net(x.double())
    with pytest.raises(TypeError, match=r"the input has dtype torch\.int64"):
        net.encode_epochs(x[0].long())
    with pytest.raises(ValueError, match=r"the input is empty \(shape \(0, 3, 1, 29, 129\)\)"):
        net(x[:0])
    with pytest.raises(TypeError, match=r"features has dtype torch\.float64"):
        net.classify_sequences(torch.zeros(2, 3, 128, dtype=torch.float64))
    assert net(x).shape == (2, 3, 5)                        # the right input still works


def test_step_batchnorm_refuses_a_batch_of_one_in_training():
    # batch statistics of one sample make z - mean = 0: the output would ignore the input
    net = SeqSleepNet(cell="bnlstm", dropout=0.0).train()
    x = torch.randn(1, 3, 1, 29, 129)
    with pytest.raises(ValueError, match=r"needs more than one sample per step .*batch of 1 .*"
                                         r"batch_size >= 2"):
        net(x)
    bn = StepBatchNorm(4, n_steps=3).train()
    with pytest.raises(ValueError, match="batch of 1"):
        bn.step(torch.randn(1, 4), 0)
    assert torch.equal(bn.pop_mean, torch.zeros(3, 4))        # nothing was updated
    # two samples are fine, and evaluation mode normalises a single sample
    net(torch.randn(2, 3, 1, 29, 129))
    net.eval()(x)


def test_bnlstm_network_train_updates_stats_eval_does_not():
    torch.manual_seed(6)
    net = SeqSleepNet(cell="bnlstm")
    x = _spectra(2, 3, 1, 29, 129, seed=6)
    before = {k: v.clone() for k, v in net.state_dict().items() if "pop_" in k}
    net.eval()(x)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items() if "pop_" in k)
    net.train()(x)
    after = net.state_dict()
    # ARNN: the 29 frame steps all move; SeqRNN (S = 20): only the first 3 steps move
    assert not torch.equal(after["arnn.rnn.fw.xh.pop_mean"][28], before["arnn.rnn.fw.xh.pop_mean"][28])
    assert not torch.equal(after["seqrnn.bw.xh.pop_mean"][:3], before["seqrnn.bw.xh.pop_mean"][:3])
    assert torch.equal(after["seqrnn.bw.xh.pop_mean"][3:], before["seqrnn.bw.xh.pop_mean"][3:])


# --------------------------------------------------------------------------- real checkpoints
def _checkpoint_name_to_parameter(name):
    """REFERENCE §3 table -> SeqSleepNet(cell="bnlstm") state_dict key (written from the table)."""
    prefixes = {"filterbank-layer-eeg/Variable": "arnn.filterbanks.0.V",
                "filterbank-layer-eog/Variable": "arnn.filterbanks.1.V",
                "frame_attention_layer/Variable": "arnn.attention.W",
                "frame_attention_layer/Variable_1": "arnn.attention.b",
                "frame_attention_layer/Variable_2": "arnn.attention.u",
                "output_layer/output/weights": "softmax.weight",
                "output_layer/output/biases": "softmax.bias"}
    if name in prefixes:
        return prefixes[name]
    layer, direction, _, *rest = name.split("/")
    part = {"frame_rnn_layer": "arnn.rnn", "epoch_rnn_layer": "seqrnn"}[layer]
    return ".".join([part, direction, *rest])


@pytest.mark.shared
@pytest.mark.parametrize("model, n_channels", [("1chan_eeg", 1), ("1chan_eog", 1),
                                               ("2chan_eegeog", 2)])
def test_reference_variables_map_one_to_one(shared_dir, model, n_channels):
    """Every model variable of the authors' checkpoints is one parameter/buffer of the same
    shape (the softmax weights transposed), and nothing but the masks is left over."""
    ref = np.load(shared_dir / "pretrained" / "phan2019-mass" / model / "reference_variables.npz")
    net = SeqSleepNet(n_channels=n_channels, cell="bnlstm")
    sd = net.state_dict()
    state = {}
    for name in ref.files:
        if name == "global_step" or "Adam" in name or name.endswith("_power"):
            continue
        key = _checkpoint_name_to_parameter(name)
        value = ref[name].T if key == "softmax.weight" else ref[name]
        assert key in sd, (name, key)
        assert tuple(sd[key].shape) == value.shape, (name, key)
        state[key] = torch.from_numpy(np.ascontiguousarray(value))
    assert set(sd) - set(state) == {f"arnn.filterbanks.{c}.mask" for c in range(n_channels)}
    state.update({k: v for k, v in sd.items() if k.endswith(".mask")})
    net.load_state_dict(state)
    net.eval()
    out = net(torch.randn(1, 20, n_channels, 29, 129))
    assert torch.all(torch.isfinite(out))
    # the released BN on h_{-1} = 0: its step-0 batch variance is 0, so pop_var[0] decayed to 0
    assert torch.all(net.arnn.rnn.fw.hh.pop_var[0] < 1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_same_seed_same_network(cell):
    torch.manual_seed(7)
    a = SeqSleepNet(cell=cell).state_dict()
    torch.manual_seed(7)
    b = SeqSleepNet(cell=cell).state_dict()
    torch.manual_seed(8)
    c = SeqSleepNet(cell=cell).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["arnn.filterbanks.0.V"], c["arnn.filterbanks.0.V"])


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_backward_direction_matches_torch_bidirectional(kind):
    """Reversing the sequence, running the cell and reversing back is torch's reverse pass."""
    torch.manual_seed(9)
    rnn = BidirectionalRNN(6, 4, kind, n_steps=5, dropout=0.25).eval()
    ref = (torch.nn.GRU if kind == "gru" else torch.nn.LSTM)(
        6, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(getattr(rnn.fw.rnn, f"{name}_l0"))
            getattr(ref, f"{name}_l0_reverse").copy_(getattr(rnn.bw.rnn, f"{name}_l0"))
    x = torch.randn(3, 7, 6)
    torch.testing.assert_close(rnn(x), ref(x)[0])
