"""The authors' MASS-pretrained checkpoints loaded into ``SeqSleepNet(cell="bnlstm")``.

Expectations come from ``reference_variables.npz`` (read out with TensorFlow) and from a
direct numpy implementation of the equations of REFERENCE §3, written here independently of
``skseqsleep.nn`` and run in float64 on the checkpoints' real weights and statistics.
"""

import numpy as np
import pytest
import torch

from skseqsleep.pretrained import (
    CheckpointFormatError,
    is_tf_checkpoint,
    load_phan2019_model,
    load_tf_checkpoint_state,
)

CHECKPOINTS = {"1chan_eeg": 1, "1chan_eog": 1, "2chan_eegeog": 2}



def _dir(shared_dir, name):
    return shared_dir / "pretrained" / "phan2019-mass" / name


def _ref(shared_dir, name):
    z = np.load(_dir(shared_dir, name) / "reference_variables.npz")
    return {k: z[k].astype(np.float64) for k in z.files}


# ------------------------------------------------------------------------------------------
# numpy reference implementation of REFERENCE §2-§3 (float64)
# ------------------------------------------------------------------------------------------
def np_filterbank_mask(n_filters=32, nfft=256, fs=100.0):
    hz = np.linspace(0.0, fs / 2, n_filters + 2)
    b = np.floor((nfft + 1) * hz / fs).astype(int)
    mask = np.zeros((nfft // 2 + 1, n_filters))
    for j in range(n_filters):
        for i in range(b[j], b[j + 1]):
            mask[i, j] = (i - b[j]) / (b[j + 1] - b[j])
        for i in range(b[j + 1], b[j + 2]):
            mask[i, j] = (b[j + 2] - i) / (b[j + 2] - b[j + 1])
    return mask


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_bnlstm(x, w, base, n_steps):
    """One direction of the released BN-LSTM, inference mode; x: (N, T, D) -> (N, T, H)."""
    def bn(z, kind, s):
        k = min(s, n_steps - 1)
        mean = w[f"{base}/{kind}/pop_mean"][k]
        var = w[f"{base}/{kind}/pop_var"][k]
        out = w[f"{base}/{kind}/scale"] * (z - mean) / np.sqrt(var + 1e-5)
        if kind != "xh":  # the xh normalisation has no offset
            out = out + w[f"{base}/{kind}/offset"]
        return out

    n, t_len, _ = x.shape
    hid = w[f"{base}/W_hh"].shape[0]
    h = np.zeros((n, hid))
    c = np.zeros((n, hid))
    out = np.zeros((n, t_len, hid))
    for s in range(t_len):
        z = bn(x[:, s] @ w[f"{base}/W_xh"], "xh", s) + bn(h @ w[f"{base}/W_hh"], "hh", s)
        f, i, o, j = (z[:, k * hid:(k + 1) * hid] for k in range(4))
        c = c * _sigmoid(f) + _sigmoid(i) * np.tanh(j)
        h = np.tanh(bn(c, "c", s)) * _sigmoid(o)
        out[:, s] = h
    return out


def np_birnn(x, w, scope, n_steps):
    fw = np_bnlstm(x, w, f"{scope}/fw/BNLSTMCell", n_steps)
    bw = np_bnlstm(x[:, ::-1], w, f"{scope}/bw/BNLSTMCell", n_steps)[:, ::-1]
    return np.concatenate([fw, bw], axis=-1)


def np_seqsleepnet(x, w, channels):
    """Logits of spectrogram sequences x: (B, L, C, 29, 129); channels: filterbank scopes."""
    b, n_l, _, n_t, _ = x.shape
    # the network stores its fixed mask as float32: round it the same way
    mask = np_filterbank_mask().astype(np.float32).astype(np.float64)
    feats = [x[:, :, c] @ (_sigmoid(w[f"filterbank-layer-{name}/Variable"]) * mask)
             for c, name in enumerate(channels)]
    frames = np.concatenate(feats, axis=-1).reshape(b * n_l, n_t, -1)
    a = np_birnn(frames, w, "frame_rnn_layer", 29)                   # (B*L, T, 128)
    v = np.tanh(a @ w["frame_attention_layer/Variable"] + w["frame_attention_layer/Variable_1"])
    e = v @ w["frame_attention_layer/Variable_2"]                     # (B*L, T)
    alpha = np.exp(e - e.max(axis=1, keepdims=True))
    alpha /= alpha.sum(axis=1, keepdims=True)
    epochs = (alpha[..., None] * a).sum(axis=1).reshape(b, n_l, -1)  # (B, L, 128)
    seq = np_birnn(epochs, w, "epoch_rnn_layer", 20)
    return seq @ w["output_layer/output/weights"] + w["output_layer/output/biases"]


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_state_is_a_plain_copy_of_the_checkpoint(shared_dir, name):
    state = load_tf_checkpoint_state(_dir(shared_dir, name) / "pretrained_model.ckpt")
    assert set(state) == {"config", "state_dict"}
    # REFERENCE §3: L = 20, 32 filters, 64 hidden units, attention 64, BN-LSTM cells
    assert state["config"] == {
        "n_channels": CHECKPOINTS[name], "n_freq_bins": 129, "n_frames": 29, "n_filters": 32,
        "rnn_hidden": 64, "attention_size": 64, "seq_len": 20, "n_classes": 5,
        "cell": "bnlstm", "dropout": 0.25}
    net = load_phan2019_model(_dir(shared_dir, name))
    assert not net.training
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    z = np.load(_dir(shared_dir, name) / "reference_variables.npz")
    ref = {k: z[k] for k in z.files}
    expected = {
        "arnn.filterbanks.0.V": ref["filterbank-layer-eeg/Variable"],
        "arnn.attention.W": ref["frame_attention_layer/Variable"],
        "arnn.attention.b": ref["frame_attention_layer/Variable_1"],
        "arnn.attention.u": ref["frame_attention_layer/Variable_2"],
        "softmax.weight": ref["output_layer/output/weights"].T,   # nn.Linear is (out, in)
        "softmax.bias": ref["output_layer/output/biases"],
        "arnn.filterbanks.0.mask": np_filterbank_mask(),
    }
    if CHECKPOINTS[name] == 2:  # channel 1 is EOG
        expected["arnn.filterbanks.1.V"] = ref["filterbank-layer-eog/Variable"]
        expected["arnn.filterbanks.1.mask"] = np_filterbank_mask()
    for scope, mod in (("frame_rnn_layer", "arnn.rnn"), ("epoch_rnn_layer", "seqrnn")):
        for d in ("fw", "bw"):
            base = f"{scope}/{d}/BNLSTMCell"
            for k, v in ref.items():
                if k.startswith(base + "/"):
                    expected[f"{mod}.{d}." + k[len(base) + 1:].replace("/", ".")] = v
    assert set(expected) == set(sd)
    for k, v in expected.items():
        assert sd[k].dtype == np.float32, k
        assert sd[k].shape == v.shape, k
        assert np.array_equal(sd[k], v.astype(np.float32)), k
    # every checkpoint variable except global_step was used
    used = len(expected) - CHECKPOINTS[name]  # masks are not in the checkpoint
    assert used == len(ref) - 1


@pytest.fixture(scope="module")
def eeg_net_and_weights(shared_dir):
    return load_phan2019_model(_dir(shared_dir, "1chan_eeg")), _ref(shared_dir, "1chan_eeg")


@pytest.mark.parametrize(("scope", "n_steps", "t_len", "dim"),
                         [("frame_rnn_layer", 29, 33, 32), ("epoch_rnn_layer", 20, 24, 128)])
def test_bnlstm_inference_equals_numpy_equations(eeg_net_and_weights, scope, n_steps, t_len,
                                                 dim):
    """Both directions, including steps beyond S (statistics of step S-1)."""
    net, w = eeg_net_and_weights
    rnn = net.arnn.rnn if scope == "frame_rnn_layer" else net.seqrnn
    x = np.random.default_rng(1).normal(size=(3, t_len, dim))
    expected = np_birnn(x, w, scope, n_steps)
    with torch.no_grad():
        got64 = rnn.double()(torch.from_numpy(x)).numpy()
        got32 = rnn.float()(torch.from_numpy(x).float()).numpy()
    assert got64.shape == (3, t_len, 128)
    np.testing.assert_allclose(got64, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got32, expected, rtol=0, atol=2e-5)
    # the statistics beyond S matter: with step S-1 replaced, the late outputs change
    assert np.abs(expected[:, n_steps:] - expected[:, n_steps - 1:n_steps]).max() > 1e-3


@pytest.mark.parametrize(("name", "seq_len"),
                         [("1chan_eeg", 20), ("1chan_eog", 20), ("2chan_eegeog", 20),
                          ("1chan_eeg", 23)])
def test_full_forward_equals_numpy_network(shared_dir, name, seq_len):
    net = load_phan2019_model(_dir(shared_dir, name))
    w = _ref(shared_dir, name)
    channels = ["eeg", "eog"][:CHECKPOINTS[name]]
    batch = 2 if seq_len == 20 else 1
    x = np.random.default_rng(seq_len).normal(size=(batch, seq_len, len(channels), 29, 129))
    expected = np_seqsleepnet(x, w, channels)
    with torch.no_grad():
        got32 = net(torch.from_numpy(x).float()).numpy()
        got64 = net.double()(torch.from_numpy(x)).numpy()
    assert got32.shape == (batch, seq_len, 5)
    np.testing.assert_allclose(got64, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got32, expected, rtol=0, atol=1e-4)
    # a non-degenerate comparison: the predictions differ between positions and inputs
    assert np.ptp(expected, axis=(0, 1)).max() > 0.1
    if len(channels) == 2:  # the EEG/EOG order matters: swapping the channels changes logits
        swapped = np_seqsleepnet(x[:, :, ::-1], w, channels)
        assert np.abs(swapped - expected).max() > 1e-2


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
def _write_variant(tmp_path, shared_dir, drop=(), add=None, rename=None):
    from test_tensorbundle import write_bundle

    z = np.load(_dir(shared_dir, "1chan_eeg") / "reference_variables.npz")
    tensors = {k: z[k] for k in z.files if k not in drop}
    for old, new in (rename or {}).items():
        tensors[new] = tensors.pop(old)
    tensors.update(add or {})
    return write_bundle(tmp_path / "variant.ckpt", tensors)


def test_missing_and_unexpected_variables_are_listed(shared_dir, tmp_path):
    prefix = _write_variant(
        tmp_path, shared_dir, drop=("epoch_rnn_layer/bw/BNLSTMCell/c/pop_var",),
        add={"extra_layer/kernel": np.zeros((2, 2), "f4"),
             "epoch_rnn_layer/bw/BNLSTMCell/W_xh/Adam": np.zeros(1, "f4")})
    with pytest.raises(ValueError, match=r"missing variables \['epoch_rnn_layer/bw/BNLSTMCell/"
                                         r"c/pop_var'\], unexpected variables "
                                         r"\['extra_layer/kernel'\]"):
        load_tf_checkpoint_state(prefix)


def test_unknown_filterbank_scope_and_bad_shapes(shared_dir, tmp_path):
    (tmp_path / "a").mkdir()
    prefix = _write_variant(tmp_path / "a", shared_dir,
                            rename={"filterbank-layer-eeg/Variable": "filterbank-layer-x/Variable"})
    with pytest.raises(ValueError, match="filterbank-layer-x/Variable"):
        load_tf_checkpoint_state(prefix)
    (tmp_path / "b").mkdir()
    prefix = _write_variant(
        tmp_path / "b", shared_dir,
        add={"frame_attention_layer/Variable_1": np.zeros(65, "f4")})
    with pytest.raises(ValueError, match="frame_attention_layer/Variable_1"):
        load_tf_checkpoint_state(prefix)


def test_paths(shared_dir, tmp_path):
    prefix = _dir(shared_dir, "1chan_eeg") / "pretrained_model.ckpt"
    assert is_tf_checkpoint(prefix)
    assert is_tf_checkpoint(prefix.parent)
    assert is_tf_checkpoint(f"{prefix}.index")
    assert not is_tf_checkpoint(tmp_path)
    assert not is_tf_checkpoint(tmp_path / "model.pt")
    with pytest.raises(FileNotFoundError, match="model.ckpt"):
        load_tf_checkpoint_state(tmp_path / "model.ckpt")
    (tmp_path / "x.index").write_bytes(b"not a table")
    with pytest.raises(CheckpointFormatError, match=r"x\.index"):
        load_tf_checkpoint_state(tmp_path)
