"""Shared-epoch training and prediction (skseqsleep._fast, issue 6).

Expectations come from the window-by-window computation written out here (each window
materialised and passed through ``SeqSleepNet.forward``), or are derived by hand.
"""

import tracemalloc

import numpy as np
import pytest
import torch

from skseqsleep._fast import WindowBlockLoader, WindowBlockSampler, shared_forward
from skseqsleep.nn import SeqSleepNet

# a small network: 7 frames x 9 bins, 4 filters, 8 hidden units, L = 6
SMALL = {"n_freq_bins": 9, "n_frames": 7, "n_filters": 4, "rnn_hidden": 8, "attention_size": 8,
         "seq_len": 6}
L = SMALL["seq_len"]


def _net(cell="gru", seed=0, **kw):
    torch.manual_seed(seed)
    return SeqSleepNet(cell=cell, **{**SMALL, **kw})


def _spectrograms(n, seed=0, n_channels=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_channels, SMALL["n_frames"], SMALL["n_freq_bins"])).astype(
        np.float32)


def _windows_by_hand(X, starts):
    """(n_windows, L, C, T, F) tensor: every window copied out, the reference layout."""
    return torch.as_tensor(np.stack([X[s:s + L] for s in starts]))


def _starts_by_hand(bounds, seq_len):
    return [s for a, b in bounds for s in range(a, b - seq_len + 1)]


# ---------------------------------------------------------------------------------------------
# sampler
# ---------------------------------------------------------------------------------------------
def _pass(sampler):
    return [(b.epochs.copy(), b.windows.copy(), b.starts.copy()) for b in sampler]


def test_sampler_uses_every_window_once_per_pass_in_batches_of_exact_size():
    bounds = [[0, 60], [60, 61], [61, 140], [140, 150]]  # 55 + 0 + 74 + 5 = 134 windows
    all_starts = _starts_by_hand(bounds, L)
    assert len(all_starts) == 134
    sampler = WindowBlockSampler(bounds, seq_len=L, batch_size=8, block_size=5, random_state=0)
    assert len(sampler) == 134 // 8
    batches = _pass(sampler)
    assert len(batches) == 16
    used = np.concatenate([s for _, _, s in batches])
    assert all(len(s) == 8 for _, _, s in batches)
    assert len(np.unique(used)) == len(used) == 128           # no window twice
    assert set(used) <= set(all_starts)                        # 6 dropped (last partial batch)
    for epochs, windows, starts in batches:
        # each window's rows point at its own L consecutive epochs, and epochs are distinct
        np.testing.assert_array_equal(epochs[windows], starts[:, None] + np.arange(L))
        assert len(np.unique(epochs)) == len(epochs)
    keep_all = WindowBlockSampler(bounds, seq_len=L, batch_size=8, drop_last=False)
    assert len(keep_all) == 17
    assert sorted(np.concatenate([b.starts for b in keep_all])) == sorted(all_starts)


def test_sampler_blocks_share_epochs_and_move_between_passes():
    bounds = [[0, 2000]]  # one night-like recording, 1981 windows
    n_l, bs = 20, 32
    block = WindowBlockSampler(bounds, seq_len=n_l, batch_size=bs, random_state=0)
    single = WindowBlockSampler(bounds, seq_len=n_l, batch_size=bs, block_size=1, random_state=0)
    e_block = np.mean([len(b.epochs) for b in block])
    e_single = np.mean([len(b.epochs) for b in single])
    # a block of 32 consecutive windows covers 32 + 19 = 51 epochs; a batch holds at most a
    # few block pieces. 32 random windows out of ~2000 rarely overlap: close to 640 epochs.
    assert 51 <= e_block <= 51 + 19 + 1
    assert e_single > 500
    # block boundaries (random offset) and block order differ from one pass to the next,
    # and the same seed gives the same passes
    first = WindowBlockSampler(bounds, seq_len=n_l, batch_size=bs, random_state=7)
    p1, p2 = _pass(first), _pass(first)
    assert not all(np.array_equal(a[2], b[2]) for a, b in zip(p1, p2))
    again = WindowBlockSampler(bounds, seq_len=n_l, batch_size=bs, random_state=7)
    q1, q2 = _pass(again), _pass(again)
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(p1 + p2, q1 + q2))


def test_sampler_rejects_bad_parameters():
    with pytest.raises(ValueError, match="block_size"):
        WindowBlockSampler([[0, 50]], seq_len=L, block_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        WindowBlockSampler([[0, 50]], seq_len=L, batch_size=0)
    with pytest.raises(ValueError, match="stop is before its start"):
        WindowBlockSampler([[10, 5]], seq_len=L)


def test_loader_copies_only_distinct_epochs_and_window_labels():
    X = _spectrograms(40)
    y = np.arange(40) % 5
    loader = WindowBlockLoader(X, y, WindowBlockSampler([[0, 40]], seq_len=L, batch_size=4,
                                                        block_size=4, random_state=1))
    assert len(loader) == 35 // 4
    for batch, yb in loader:
        idx = batch.starts[:, None] + np.arange(L)
        assert yb.dtype == torch.int64
        np.testing.assert_array_equal(yb.numpy(), y[idx])
        np.testing.assert_array_equal(batch.epochs[batch.windows].numpy(), X[idx])
        assert len(batch) == 4 and len(batch.epochs) <= 4 + 2 * (L - 1)


def test_a_pass_over_40000_epochs_never_materialises_windows():
    # one 3741-float spectrogram broadcast to 40 000 epochs: X itself takes no memory, so the
    # traced peak is what the sampler and loader allocate. Materialised windows would be
    # 40 000 x 20 x 3741 x 4 bytes ~ 12 GB; one minibatch of 32 windows copied out is 9.6 MB.
    X = np.broadcast_to(np.ones((1, 1, 29, 129), np.float32), (40_000, 1, 29, 129))
    y = np.zeros(40_000, np.int64)
    bounds = np.column_stack([np.arange(0, 40_000, 1000), np.arange(1000, 40_001, 1000)])
    tracemalloc.start()
    try:
        sampler = WindowBlockSampler(bounds, seq_len=20, batch_size=32, random_state=0)
        n = sum(len(b) for b in sampler)                     # a whole pass, indices only
        loader = WindowBlockLoader(X, y, sampler)
        for i, (batch, _) in enumerate(loader):
            if i == 50:
                break
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == (40 * 981) // 32 * 32
    assert peak < 8e6, f"peak traced memory {peak / 1e6:.1f} MB"


# ---------------------------------------------------------------------------------------------
# shared forward == window by window forward (evaluation mode)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["gru", "bnlstm"])
def test_shared_loss_and_gradients_equal_the_per_window_ones(cell):
    net = _net(cell).eval()
    X = _spectrograms(30, seed=1)
    y = torch.as_tensor(np.random.default_rng(2).integers(0, 5, 30))
    sampler = WindowBlockSampler([[0, 18], [18, 30]], seq_len=L, batch_size=8, block_size=3,
                                 random_state=0)
    batch, yb = next(iter(WindowBlockLoader(X, y.numpy(), sampler)))
    idx = torch.as_tensor(batch.starts[:, None] + np.arange(L))

    def loss_of(logits, target):
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten())

    ref = loss_of(net(_windows_by_hand(X, batch.starts)), y[idx])
    ref_grads = torch.autograd.grad(ref, list(net.parameters()))
    shared = loss_of(shared_forward(net, batch.epochs, batch.windows), yb)
    grads = torch.autograd.grad(shared, list(net.parameters()))
    torch.testing.assert_close(shared, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def test_training_mode_encodes_each_distinct_epoch_once():
    net = _net(dropout=0.25).train()
    X = _spectrograms(40)
    rows = []
    net.arnn.register_forward_hook(lambda m, inp, out: rows.append(len(inp[0])))
    # one block of 8 consecutive windows: 8 + L - 1 = 13 epochs, not 8 x 6 = 48
    win = torch.arange(8)[:, None] + torch.arange(L)
    out = shared_forward(net, torch.as_tensor(X[:13]), win)
    out.sum().backward()
    assert rows == [13]
    assert out.shape == (8, L, 5)
    # dropout is active (two training-mode passes differ), and the SeqRNN's masks are drawn
    # per window: two windows with the same epochs get different outputs in training mode
    same = torch.zeros(2, L, dtype=torch.long) + torch.arange(L)
    a = shared_forward(net, torch.as_tensor(X[:L]), same)
    assert not torch.allclose(a[0], a[1])


# ---------------------------------------------------------------------------------------------
# prediction: the classifier's encode-once inference
# ---------------------------------------------------------------------------------------------
def _fitted_classifier(cell, seed=0):
    from skseqsleep import SeqSleepClassifier

    X = _spectrograms(30, seed=seed)
    y = np.arange(30) % 5
    clf = SeqSleepClassifier(
        seq_len=L, cell=cell, max_epochs=1, batch_size=4, verbose=0, random_state=seed,
        device="cpu", **{f"module__{k}": v for k, v in SMALL.items()
                         if k not in ("seq_len", "n_frames", "n_freq_bins")})
    return clf.fit(X, y, recordings=np.repeat(["a", "b"], 15))


@pytest.mark.parametrize("cell", ["gru", "bnlstm"])
def test_encode_once_prediction_sums_the_log_softmax_of_every_covering_window(cell):
    clf = _fitted_classifier(cell)
    net = clf.module_.eval()
    # two recordings of 15 and 9 epochs, and one of 4 (< L): a single window of 4 epochs
    X = _spectrograms(28, seed=6)
    rec = np.repeat(["r1", "r2", "r3"], [15, 9, 4])
    bounds = [[0, 15], [15, 24], [24, 28]]
    expected = np.zeros((28, 5))
    counts = np.zeros(28, int)
    with torch.no_grad():
        for s in _starts_by_hand(bounds, L):
            logp = torch.log_softmax(net(torch.as_tensor(X[None, s:s + L])), -1)[0].numpy()
            expected[s:s + L] += logp
            counts[s:s + L] += 1
        expected[24:28] = torch.log_softmax(net(torch.as_tensor(X[None, 24:28])), -1)[0].numpy()
        counts[24:28] = 1
    # hand count of terms: the first epoch of a recording has 1 window, the middle ones L
    assert counts[0] == 1 and counts[7] == L and counts[14] == 1 and counts[15 + 5] == 4
    for inference in ("encode-once", "per-window"):
        with pytest.warns(UserWarning, match=r"recording: epochs r3: 4"):    # r3 < L
            scores, n = clf.fused_log_scores(X, rec, inference=inference)
        np.testing.assert_array_equal(n, counts)
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# SeqSleepClassifier(train_sampler="shared")
# ---------------------------------------------------------------------------------------------
def _classifier(sampler, **kw):
    from skseqsleep import SeqSleepClassifier

    return SeqSleepClassifier(
        seq_len=L, train_sampler=sampler, batch_size=4, verbose=0, device="cpu",
        **{f"module__{k}": v for k, v in SMALL.items()
           if k not in ("seq_len", "n_frames", "n_freq_bins")}, **kw)


def _encoded_rows_per_step(X, y, rec, **kw) -> list[int]:
    """Rows through the ARNN in every training step of a shared-sampler fit (a real forward
    hook on the network's ARNN)."""
    from skorch.callbacks import Callback

    class CountEncodedEpochs(Callback):
        def on_train_begin(self, net, **kwargs):
            self.rows = []
            net.module_.arnn.register_forward_hook(
                lambda m, inp, out: self.rows.append(len(inp[0])) if m.training else None)

    counter = CountEncodedEpochs()
    _classifier("shared", max_epochs=1, random_state=0, callbacks=[("count", counter)],
                **kw).fit(X, y, recordings=rec)
    return counter.rows


def test_classifier_shared_sampler_encodes_distinct_epochs_once_and_is_reproducible():
    X = _spectrograms(60, seed=8)
    y = np.arange(60) // 3 % 5
    rec = np.repeat(["a", "b"], 30)
    rows = _encoded_rows_per_step(X, y, rec)
    # 25 + 25 windows, 4 per minibatch -> 12 steps; each minibatch holds at most two block
    # pieces of consecutive windows: at most 4 + 2 * (L - 1) = 14 distinct epochs, not 4 x 6
    assert len(rows) == 12 and max(rows) <= 4 + 2 * (L - 1)
    again = _classifier("shared", max_epochs=2, random_state=0).fit(X, y, recordings=rec)
    first = _classifier("shared", max_epochs=2, random_state=0).fit(X, y, recordings=rec)
    np.testing.assert_array_equal(first.predict_proba(X, rec), again.predict_proba(X, rec))
    with pytest.raises(ValueError, match="train_sampler must be one of"):
        _classifier("blocks").fit(X, y, recordings=rec)


def test_classifier_train_block_size_sets_the_shared_blocks():
    X = _spectrograms(60, seed=8)
    y = np.arange(60) // 3 % 5
    rec = np.repeat(["a", "b"], 30)
    counts = {block: _encoded_rows_per_step(X, y, rec, train_block_size=block)
              for block in (None, 1)}
    # blocks of 4 (the batch size): at most 4 + 2 * (L - 1) distinct epochs per minibatch;
    # blocks of 1 are 4 independent windows, which overlap far less
    assert max(counts[None]) <= 4 + 2 * (L - 1) < max(counts[1]) <= 4 * L
    assert np.mean(counts[1]) > np.mean(counts[None])
    for bad in (0, -2, 2.5, True, "8"):
        with pytest.raises(ValueError, match=f"train_block_size must be a positive integer "
                                             f"or None, got {bad!r}"):
            _classifier("shared", train_block_size=bad).fit(X, y, recordings=rec)
    with pytest.warns(UserWarning, match="train_block_size=8 is used only with "
                                         "train_sampler='shared'"):
        _classifier("per-window", max_epochs=1, train_block_size=8).fit(X, y, recordings=rec)


def test_classifier_shared_sampler_keeps_a_frozen_arnn_frozen():
    X = _spectrograms(40, seed=9)
    y = np.arange(40) // 4 % 5
    rec = np.repeat(["a", "b"], 20)
    clf = _classifier("shared", max_epochs=1, random_state=1,
                      trainable_parts=("softmax", "seqrnn")).fit(X, y, recordings=rec)
    ref = _classifier("shared", max_epochs=1, random_state=1, trainable_parts=())
    with pytest.warns(UserWarning, match="direct transfer"):
        ref.fit(X, y, recordings=rec)  # same seed, no training: the initial weights
    for name, p in clf.module_.arnn.state_dict().items():
        torch.testing.assert_close(p, ref.module_.arnn.state_dict()[name], msg=name)
    moved = any(not torch.equal(p, ref.module_.softmax.state_dict()[n])
                for n, p in clf.module_.softmax.state_dict().items())
    assert moved
