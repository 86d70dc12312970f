"""Tests of skseqsleep.SeqSleepClassifier through its public API (tiny networks, synthetic data).

Data: spectrogram-like epochs whose stage is visible as a raised band of frequency bins (or,
for the pipeline tests, raw 100-Hz signals with a stage-specific sine), with stages in runs
as in a hypnogram. Every expected value is computed independently (by hand, or by running the
network's own forward pass on each window directly).
"""

import pickle
import re
import warnings

import numpy as np
import pytest
import sklearn
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    LeaveOneGroupOut,
    cross_val_predict,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
from skseqsleep._windows import multiplicative_fusion
from skseqsleep.classifier import load_model, resolve_device
from skseqsleep.model_selection import (
    SCORERS,
    GroupHoldout,
    PredefinedGroupSplit,
    sleep_metrics,
)

TINY = {"seq_len": 4, "module__n_filters": 8, "module__rnn_hidden": 8, "module__attention_size": 8,
            "batch_size": 8, "lr": 1e-2, "max_epochs": 3, "verbose": 0, "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One thread: on a busy 2-core machine two torch threads are many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _stages(rng, n):
    out = []
    while len(out) < n:
        out += [int(rng.integers(0, 5))] * int(rng.integers(2, 6))
    return np.asarray(out[:n])


def spectro_cohort(n_subjects=4, nights=2, n_epochs=24, seed=0, noise=1.0):
    """(X, y, groups, recordings): X (n, 1, 29, 129) float32, stage k raises bins 20k..20k+15."""
    rng = np.random.default_rng(seed)
    X, y, groups, recs = [], [], [], []
    for s in range(n_subjects):
        for night in range(nights):
            st = _stages(rng, n_epochs)
            x = rng.normal(scale=noise, size=(n_epochs, 1, 29, 129)).astype(np.float32)
            for k in range(5):
                x[st == k, :, :, 20 * k + 5:20 * k + 20] += 2.0
            X.append(x)
            y.append(st)
            groups += [s] * n_epochs
            recs += [f"S{s}N{night}"] * n_epochs
    return np.concatenate(X), np.concatenate(y), np.asarray(groups), np.asarray(recs)


def raw_cohort(n_subjects=4, nights=2, n_epochs=20, seed=0):
    """(X, y, groups, recordings): raw 30-s epochs at 100 Hz, stage k = sine of 2+4k Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(3000) / 100
    X, y, groups, recs = [], [], [], []
    for s in range(n_subjects):
        for night in range(nights):
            st = _stages(rng, n_epochs)
            phase = rng.uniform(0, 2 * np.pi, size=(n_epochs, 1))
            x = 3 * np.sin(2 * np.pi * (2 + 4 * st[:, None]) * t + phase)
            X.append((x + rng.normal(size=x.shape)).astype(np.float32))
            y.append(st)
            groups += [s] * n_epochs
            recs += [f"S{s}N{night}"] * n_epochs
    return np.concatenate(X), np.concatenate(y), np.asarray(groups), np.asarray(recs)


@pytest.fixture(scope="module")
def cohort():
    return spectro_cohort()


@pytest.fixture(scope="module")
def fitted(cohort):
    X, y, groups, recs = cohort
    return SeqSleepClassifier(**TINY, random_state=0).fit(X, y, groups=groups, recordings=recs)


def window_log_probas(clf, X, start, length):
    """Direct per-window computation: the network's forward on one window, log-softmax."""
    with torch.no_grad():
        clf.module_.eval()
        x = torch.from_numpy(X[start:start + length][None])
        return torch.log_softmax(clf.module_(x), dim=-1)[0].double().numpy()


def state(clf, part=None):
    module = clf.module_ if part is None else getattr(clf.module_, part)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------- fusion
def test_fusion_rule_hand_computed():
    # a recording of 3 epochs, L = 2: windows [0, 1] and [1, 2]; 2 classes
    w0 = np.log([[0.5, 0.5], [0.9, 0.1]])
    w1 = np.log([[0.2, 0.8], [0.3, 0.7]])
    scores, counts = multiplicative_fusion(np.stack([w0, w1]), np.array([[0, 1], [1, 2]]), 3)
    expected = np.log([[0.5, 0.5], [0.9 * 0.2, 0.1 * 0.8], [0.3, 0.7]])
    np.testing.assert_allclose(scores, expected)
    np.testing.assert_array_equal(counts, [1, 2, 1])
    # epoch 1: 0.18 vs 0.08 -> class 0; epoch 2 -> class 1
    np.testing.assert_array_equal(scores.argmax(1), [0, 0, 1])


def test_predict_is_the_multiplicative_fusion_of_all_windows(fitted, cohort):
    X = cohort[0][:6]                       # one recording of 6 epochs, L = 4: 3 windows
    logp = [window_log_probas(fitted, X, s, 4) for s in range(3)]
    fused = np.zeros((6, 5))
    for s in range(3):
        fused[s:s + 4] += logp[s]
    counts = np.array([1, 2, 3, 3, 2, 1])
    proba = fitted.predict_proba(X, recordings=np.zeros(6))
    expected_proba = np.exp(fused / counts[:, None])
    expected_proba /= expected_proba.sum(1, keepdims=True)
    np.testing.assert_allclose(proba, expected_proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fitted.predict(X, recordings=np.zeros(6)), fused.argmax(1))
    # the plain per-window path gives the same scores
    a = fitted.fused_log_scores(X, np.zeros(6))[0]
    b = fitted.fused_log_scores(X, np.zeros(6), inference="per-window")[0]
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, fused, atol=1e-5)


def test_recording_shorter_than_seq_len_is_one_shorter_window(fitted, cohort):
    X = cohort[0][:3]
    expected = window_log_probas(fitted, X, 0, 3)
    with pytest.warns(UserWarning, match="1 recording"):
        scores, counts = fitted.fused_log_scores(X, recordings=["r"] * 3)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_array_equal(counts, [1, 1, 1])
    # a single epoch is a window of length 1
    with pytest.warns(UserWarning, match="1 recording"):
        assert fitted.predict(cohort[0][:1], recordings=["r"]).shape == (1,)


def test_short_recordings_at_prediction_warn_with_names_and_lengths(fitted, cohort):
    X, y, _, _ = cohort
    recs = np.repeat(["long", "short", "tiny"], [10, 3, 1])
    for method, args in [("predict", ()), ("predict_proba", ()), ("score", (y[:14],))]:
        with pytest.warns(UserWarning, match=r"2 recording\(s\) shorter than seq_len=4 epochs "
                          r"\(recording: epochs short: 3, tiny: 1\) are each classified as one "
                          r"shorter window"):
            getattr(fitted, method)(X[:14], *args, recordings=recs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)     # every recording long enough
        fitted.predict(X[:14], recordings=np.repeat(["a", "b"], [10, 4]))


def test_short_recordings_in_fit_warn_and_all_short_is_an_error(cohort):
    X, y, _, _ = cohort
    recs = np.repeat(["long", "short"], [20, 3])
    with pytest.warns(UserWarning, match=r"1 recording\(s\) shorter than seq_len=4 epochs "
                      r"\(recording: epochs short: 3\) give no training window"):
        SeqSleepClassifier(**{**TINY, "max_epochs": 1}).fit(X[:23], y[:23], recordings=recs)
    with pytest.raises(ValueError, match="no training window"), \
            pytest.warns(UserWarning, match="2 recording"):
        SeqSleepClassifier(**TINY).fit(X[:6], y[:6], recordings=np.repeat(["a", "b"], 3))


@pytest.mark.parametrize("sampler", ["per-window", "shared"])
def test_fewer_training_windows_than_batch_size_is_an_error(cohort, sampler):
    X, y, groups, recs = cohort
    kw = {**TINY, "max_epochs": 1, "train_sampler": sampler}
    # one recording of 12 epochs, L = 4: 12 - 4 + 1 = 9 windows, fewer than a minibatch
    with pytest.raises(ValueError, match=r"only 9 training window\(s\) of seq_len=4 epochs for "
                       r"batch_size=10: .*lower batch_size to at most 9 or add recordings"):
        SeqSleepClassifier(**{**kw, "batch_size": 10}).fit(X[:12], y[:12], recordings=recs[:12])
    # exactly one minibatch: one training step
    clf = SeqSleepClassifier(**{**kw, "batch_size": 9}, random_state=0)
    clf.fit(X[:12], y[:12], recordings=recs[:12])
    assert clf.history[-1]["train_batch_count"] == 1
    # direct transfer trains nothing by design: no error
    direct = SeqSleepClassifier(**{**kw, "batch_size": 10}, trainable_parts=(),
                                warm_start_from=clf).fit(X[:12], y[:12], recordings=recs[:12])
    assert len(direct.train_windows_) == 0
    assert not {"_train_split_", "_in_fit_"} & (set(vars(direct)) | set(vars(clf)))
    # the count is that of the training recordings left after the validation split:
    # subject 0 trains (2 nights x 21 windows = 42), subject 1 validates (42 more windows)
    with pytest.raises(ValueError, match=r"only 42 training window\(s\) .*after train_split "
                       r"held out 2 validation recording\(s\)\) for batch_size=50"):
        SeqSleepClassifier(**{**kw, "batch_size": 50}, train_split=PredefinedGroupSplit([1])).fit(
            X[:96], y[:96], groups=groups[:96], recordings=recs[:96])


# ------------------------------------------------------------------- no window crossing
def test_prediction_windows_never_cross_recordings(fitted, cohort):
    X = cohort[0]
    a, b = X[:24], X[24:48]
    both = np.concatenate([a, b])
    recs = np.repeat(["A", "B"], 24)
    joint = fitted.predict_proba(both, recordings=recs)
    alone = np.concatenate([fitted.predict_proba(a, recordings=recs[:24]),
                            fitted.predict_proba(b, recordings=recs[24:])])
    np.testing.assert_allclose(joint, alone, rtol=1e-5, atol=1e-6)
    # sensitivity of this check: one recording over both nights changes the boundary epochs
    with pytest.warns(UserWarning, match="treated as one recording"):
        crossing = fitted.predict_proba(both)
    assert np.abs(crossing - alone)[21:27].max() > 1e-4
    np.testing.assert_allclose(crossing[:21], alone[:21], rtol=1e-5, atol=1e-6)
    # groups as fallback: contiguous runs of equal groups are recordings (with a warning)
    with pytest.warns(UserWarning, match=r"the 2 contiguous run\(s\) of equal groups"):
        by_groups = fitted.predict_proba(both, groups=np.repeat([7, 8], 24))
    np.testing.assert_allclose(by_groups, alone, rtol=1e-5, atol=1e-6)


def test_groups_without_recordings_warn_with_the_number_of_recordings_formed(cohort):
    X, y, groups, recs = cohort
    # 2 subjects x 2 nights; each subject's nights are adjacent rows: groups alone give 2
    # recordings (one per subject) instead of 4 nights
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}, random_state=0)
    with pytest.warns(UserWarning, match=r"the 2 contiguous run\(s\) of equal groups in X are "
                      r"treated as 2 recording\(s\).*pass recordings=.*recordings=groups "
                      r"when every subject has exactly one recording"):
        clf.fit(X[:96], y[:96], groups=groups[:96])
    assert len(clf.train_recordings_) == 2
    with pytest.warns(UserWarning, match=r"the 1 contiguous run\(s\) .* as 1 recording"):
        clf.score(X[:48], y[:48], groups=groups[:48])
    # the advice: recordings=groups forms the same recordings as groups alone (one per
    # contiguous run of a subject), so the staging is identical, without the warning
    with pytest.warns(UserWarning, match="contiguous run"):
        by_groups = clf.predict_proba(X[:48], groups=groups[:48])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        as_recordings = clf.predict_proba(X[:48], groups=groups[:48], recordings=groups[:48])
    np.testing.assert_array_equal(by_groups, as_recordings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)     # both given: no warning
        clf.fit(X[:96], y[:96], groups=groups[:96], recordings=recs[:96])
        clf.predict_proba(X[:48], groups=groups[:48], recordings=recs[:48])
    assert len(clf.train_recordings_) == 4


@pytest.mark.filterwarnings("ignore:.*shorter than seq_len:UserWarning")
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_window_coverage_of_every_epoch(fitted, cohort, lengths):
    """Each epoch is covered by every window of its own recording that contains it."""
    n = sum(lengths)
    X = cohort[0][:n]
    recs = np.repeat(np.arange(len(lengths)), lengths)
    _, counts = fitted.fused_log_scores(X, recordings=recs)
    expected = []
    for m in lengths:                      # seq_len L = 4
        for i in range(m):
            expected.append(1 if m < 4 else min(i, m - 4) - max(0, i - 3) + 1)
    np.testing.assert_array_equal(counts, expected)
    proba = fitted.predict_proba(X, recordings=recs)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)


class _BatchRecorder(Callback):
    def initialize(self):
        self.batches_ = []
        self.modes_ = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        self.batches_.append(batch[0][:, :, 0, 0, 0].numpy().copy())

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        self.modes_.append({p: getattr(net.module_, p).training
                            for p in ("arnn", "seqrnn", "softmax")})


def test_training_and_validation_windows_stay_inside_recordings():
    # X[i] is filled with the epoch number i: a gathered window shows which epochs it holds
    lengths = [9, 5, 7, 6, 3, 8]
    n = sum(lengths)
    X = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None],
                        (n, 1, 29, 129)).copy()
    y = np.arange(n) % 5
    recs = np.repeat([f"r{i}" for i in range(6)], lengths)
    groups = np.repeat([0, 0, 1, 1, 2, 2], lengths)
    rec_of_epoch = np.repeat(np.arange(6), lengths)
    recorder = _BatchRecorder()
    clf = SeqSleepClassifier(**{**TINY, "batch_size": 4, "max_epochs": 2},
                             train_split=PredefinedGroupSplit([1]), validate_every=1,
                             callbacks=[("rec", recorder)], random_state=0)
    with pytest.warns(UserWarning, match="shorter than seq_len"):
        clf.fit(X, y, groups=groups, recordings=recs)
    seen = set()
    for batch in recorder.batches_:
        ids = batch.astype(int)
        assert (np.diff(ids, axis=1) == 1).all()
        assert (rec_of_epoch[ids] == rec_of_epoch[ids[:, :1]]).all()
        seen.update(ids[:, 0].tolist())
    # training windows: recordings r0, r1, r4(short: none), r5; validation subject 1: r2, r3
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    expected_train = {int(starts[r] + s) for r in (0, 1, 5) for s in range(lengths[r] - 3)}
    n_batches_per_epoch = len(expected_train) // 4
    assert len(recorder.batches_) == 2 * n_batches_per_epoch     # last partial batch dropped
    assert seen <= expected_train
    pairs = clf.train_windows_
    assert {int(starts[np.flatnonzero(np.isin(recs[starts], clf.train_recordings_))][r] + s)
            for r, s in pairs} == expected_train
    assert list(clf.valid_recordings_) == ["r2", "r3"]
    vl = np.asarray([7, 6])
    assert all(s + 4 <= vl[r] for r, s in clf.valid_windows_)
    assert len(clf.valid_windows_) == (7 - 3) + (6 - 3)


def test_validation_windows_built_once_per_fit_and_rebuilt_on_refit(cohort, monkeypatch):
    import skseqsleep._windows as windows_module
    import skseqsleep.classifier as classifier_module

    built, scored = [], []
    make_windows = windows_module.make_windows

    def counting_make_windows(recs, seq_len, *, short="whole"):
        if short == "whole":
            built.append(tuple(recs.names))
        return make_windows(recs, seq_len, short=short)

    iter_log_probas = SeqSleepClassifier._iter_window_log_probas

    def recording_iter(self, X, recs, windows, inference=None):
        scored.append({(str(recs.names[r]), int(s)) for r, s in windows.as_pairs(recs)})
        return iter_log_probas(self, X, recs, windows, inference)

    monkeypatch.setattr(windows_module, "make_windows", counting_make_windows)
    monkeypatch.setattr(classifier_module, "make_windows", counting_make_windows)
    monkeypatch.setattr(SeqSleepClassifier, "_iter_window_log_probas", recording_iter)
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}, validate_every=2,
                             train_split=GroupHoldout(1, random_state=0), random_state=0)
    for X, y, groups, recs in (cohort, spectro_cohort(n_epochs=30, seed=1)):
        built.clear()
        scored.clear()
        clf.fit(X, y, groups=groups, recordings=recs)
        assert len(clf.validation_history_) == len(scored) > 1
        assert built == [tuple(clf.valid_recordings_)]      # once per fit, not per validation
        expected = {(str(clf.valid_recordings_[r]), int(s)) for r, s in clf.valid_windows_}
        assert all(windows == expected for windows in scored)     # this fit's recordings
        assert max(s for _, s in expected) == len(X) // 8 - 4


# --------------------------------------------------------------------------- learning
def test_learns_well_above_chance_and_same_seed_same_predictions(cohort):
    X, y, groups, recs = cohort
    test = groups == 3
    kw = dict(**{**TINY, "max_epochs": 4}, random_state=1)
    rng_before = torch.get_rng_state()
    clf = SeqSleepClassifier(**kw).fit(X[~test], y[~test], groups=groups[~test],
                                       recordings=recs[~test])
    assert torch.equal(torch.get_rng_state(), rng_before)    # global torch RNG untouched
    pred = clf.predict(X[test], recordings=recs[test])
    assert (pred == y[test]).mean() > 0.7           # chance is about 0.2
    again = SeqSleepClassifier(**kw).fit(X[~test], y[~test], groups=groups[~test],
                                         recordings=recs[~test])
    np.testing.assert_array_equal(again.predict_proba(X[test], recordings=recs[test]),
                                  clf.predict_proba(X[test], recordings=recs[test]))
    other = SeqSleepClassifier(**{**kw, "random_state": 2}).fit(
        X[~test], y[~test], groups=groups[~test], recordings=recs[~test])
    assert not np.array_equal(other.predict_proba(X[test], recordings=recs[test]),
                              clf.predict_proba(X[test], recordings=recs[test]))


def test_unseeded_group_holdout_draws_from_the_classifier_random_state(cohort):
    X, y, groups, recs = (a[:144] for a in cohort)          # 3 subjects x 2 nights
    split = GroupHoldout(n_valid_groups=1)                 # random_state=None
    kw = {**TINY, "max_epochs": 1, "validate_every": 100}

    def fit(seed, global_seed, splitter=split):
        np.random.seed(global_seed)        # the global numpy RNG must not matter
        return SeqSleepClassifier(**kw, train_split=splitter, random_state=seed).fit(
            X, y, groups=groups, recordings=recs)

    saved = np.random.get_state()
    try:
        same_seed = [fit(0, g) for g in range(4)]
        picks = {tuple(fit(s, 0).valid_recordings_) for s in range(1, 7)}
        own = [fit(s, s, GroupHoldout(n_valid_groups=1, random_state=5)) for s in (0, 1)]
    finally:
        np.random.set_state(saved)
    assert {tuple(c.valid_recordings_) for c in same_seed} == {tuple(same_seed[0].valid_recordings_)}
    np.testing.assert_array_equal(same_seed[0].predict_proba(X, recordings=recs),
                                  same_seed[3].predict_proba(X, recordings=recs))
    picks.add(tuple(same_seed[0].valid_recordings_))
    assert len(picks) > 1                  # different classifier seeds, different subjects
    assert split.random_state is None      # the user's splitter is not modified
    # a splitter with its own random_state keeps it, whatever the classifier's seed
    _, valid = next(GroupHoldout(n_valid_groups=1, random_state=5).split(X, groups=groups))
    expected = tuple(np.unique(recs[valid]))
    assert [tuple(c.valid_recordings_) for c in own] == [expected, expected]


def test_step_validation_history_early_stopping_and_best_weights(cohort):
    X, y, groups, recs = cohort
    rng = np.random.default_rng(0)
    y_noise = rng.integers(0, 5, len(y))        # unlearnable labels: accuracy fluctuates
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 30, "lr": 3e-2},
                             train_split=GroupHoldout(1, random_state=0), validate_every=2,
                             patience=3, random_state=0)
    clf.fit(X, y_noise, groups=groups, recordings=recs)
    hist = clf.validation_history_
    steps_per_epoch = (len(clf.train_windows_)) // 8
    assert [h["step"] for h in hist] == list(range(2, 2 * len(hist) + 1, 2))
    assert hist[-1]["step"] < 30 * steps_per_epoch            # stopped early
    assert [h["best"] for h in hist[-3:]] == [False] * 3      # after 3 misses
    best = max(h["valid_acc"] for h in hist)
    last_best = [h["step"] for h in hist if h["valid_acc"] == best][-1]   # ties: later
    assert clf.best_step_ == last_best
    for h in hist:
        assert {"step", "epoch", "valid_acc", "valid_loss", "train_loss"} <= set(h)
    # the restored weights have the best validation accuracy (averaged over positions,
    # recomputed here window by window)
    valid = np.isin(recs, clf.valid_recordings_)
    correct = total = 0
    for r, s in clf.valid_windows_:
        start = np.flatnonzero(recs == clf.valid_recordings_[r])[0] + s
        lp = window_log_probas(clf, X, start, 4)
        correct += (lp.argmax(1) == y_noise[start:start + 4]).sum()
        total += 4
    assert valid.sum() == 48
    assert correct / total == pytest.approx(best)


def test_early_stopping_closes_the_epoch_it_stops_in(cohort, capsys):
    X, y, groups, recs = cohort
    y_noise = np.random.default_rng(0).integers(0, 5, len(y))
    # patience runs out at step 8, in the middle of the first epoch (18 steps)
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 30, "lr": 3e-2, "verbose": 1},
                             train_split=GroupHoldout(1, random_state=0), validate_every=2,
                             patience=3, random_state=0)
    clf.fit(X, y_noise, groups=groups, recordings=recs)
    steps_per_epoch = len(clf.train_windows_) // 8
    last = clf.validation_history_[-1]["step"]
    assert len(clf.history) == last // steps_per_epoch + 1 and last % steps_per_epoch
    # the cut-short epoch is recorded like a finished one (it had no train_loss or dur)
    losses = clf.history[:, "train_loss"]
    assert len(losses) == len(clf.history) and np.all(np.isfinite(losses))
    assert all(row["dur"] > 0 for row in clf.history)
    out = capsys.readouterr().out.splitlines()
    stop = [i for i, line in enumerate(out) if line.startswith("Stopping after 3 validations")]
    rows = [i for i, line in enumerate(out) if line.strip().startswith(f"{len(clf.history)} ")]
    assert stop and rows and rows[0] < stop[0]      # the epoch's row, then why it stopped


def test_ctrl_c_during_fit_propagates_and_leaves_it_unfitted(cohort):
    import os
    import signal

    from sklearn.exceptions import NotFittedError
    from skorch.callbacks import Callback

    class CtrlC(Callback):      # a real SIGINT, delivered as a user's Ctrl-C is
        def on_batch_end(self, net, training=False, **kwargs):
            if training and net.history[-1, "epoch"] == 2:
                os.kill(os.getpid(), signal.SIGINT)

    X, y, groups, recs = cohort
    for split in (None, GroupHoldout(1, random_state=0)):
        clf = SeqSleepClassifier(**TINY, train_split=split, callbacks=[("ctrl_c", CtrlC())],
                                 random_state=0)
        # skorch swallowed it: fit returned the network of one and a bit epochs as trained
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y, groups=groups, recordings=recs)
        with pytest.raises(NotFittedError):
            clf.predict(X, recordings=recs)


def test_a_ctrl_c_that_failed_a_fit_does_not_interrupt_the_next_one(cohort):
    import os
    import signal

    from skorch.callbacks import Callback

    class CtrlCOnce(Callback):      # a real SIGINT while skorch initialises, the first time
        fired = False

        def on_train_begin(self, net, **kwargs):
            if not CtrlCOnce.fired:
                CtrlCOnce.fired = True
                os.kill(os.getpid(), signal.SIGINT)

    X, y, _, recs = (a[:48] for a in cohort)
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}, callbacks=[("c", CtrlCOnce())],
                             random_state=0)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y, recordings=recs)
    # the next fit runs to its end (it raised "fit interrupted" for the stale Ctrl-C before;
    # caught here, as a KeyboardInterrupt would stop the whole test run)
    try:
        clf.fit(X, y, recordings=recs)
    except KeyboardInterrupt as exc:
        pytest.fail(f"the second fit was interrupted by the first fit's Ctrl-C: {exc!r}")
    assert clf.predict(X, recordings=recs).shape == y.shape


def test_a_callback_may_still_stop_training_with_keyboardinterrupt(cohort):
    from skorch.callbacks import Callback

    class StopAtEpoch2(Callback):     # skorch's idiom (its EarlyStopping does this)
        def on_epoch_begin(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    X, y, groups, recs = cohort
    clf = SeqSleepClassifier(**TINY, callbacks=[("stop", StopAtEpoch2())], random_state=0)
    clf.fit(X, y, groups=groups, recordings=recs)
    assert len(clf.history) == 2 and clf.predict(X, recordings=recs).shape == y.shape


def test_l2_term_is_lambda_over_two_batch_size(fitted, cohort):
    X, y = cohort[0][:8].reshape(2, 4, 1, 29, 129), cohort[1][:8].reshape(2, 4)
    with torch.no_grad():
        logits = fitted.module_(torch.from_numpy(X))
        plain = fitted.get_loss(logits, torch.from_numpy(y), training=False)
        train = fitted.get_loss(logits, torch.from_numpy(y), training=True)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), torch.from_numpy(y).reshape(-1))
    squares = sum(float((p.detach().double() ** 2).sum()) for n, p in fitted.module_.named_parameters()
                  if not n.startswith("arnn.filterbanks"))
    assert float(plain) == pytest.approx(float(ce), rel=1e-6)
    assert float(train - plain) == pytest.approx(1e-3 / (2 * 8) * squares, rel=1e-4)


# --------------------------------------------------------------- transfer strategies
STRATEGIES = [("softmax",), ("softmax", "arnn"), ("softmax", "seqrnn"), "all"]


@pytest.mark.parametrize("parts", STRATEGIES)
def test_frozen_parts_bitwise_unchanged_trainable_parts_trained(fitted, cohort, parts):
    X, y, _groups, recs = cohort
    recorder = _BatchRecorder()
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}, warm_start_from=fitted,
                             trainable_parts=parts, callbacks=[("rec", recorder)],
                             random_state=3)
    clf.fit(X[:48], y[:48], recordings=recs[:48])
    trainable = ("arnn", "seqrnn", "softmax") if parts == "all" else parts
    for part in ("arnn", "seqrnn", "softmax"):
        before, after = state(fitted, part), state(clf, part)
        same = all(torch.equal(before[k], after[k]) for k in before)
        assert same == (part not in trainable), part
        for p in getattr(clf.module_, part).parameters():
            assert p.requires_grad == (part in trainable)
        # frozen parts ran in eval mode (no dropout, no batch statistics) during training
        assert all(m[part] == (part in trainable) for m in recorder.modes_)
    n_opt = sum(p.numel() for g in clf.optimizer_.param_groups for p in g["params"])
    n_train = sum(p.numel() for part in trainable
                  for p in getattr(clf.module_, part).parameters())
    assert n_opt == n_train


def test_refit_after_set_params_trainable_parts_uses_the_new_parts(fitted, cohort, monkeypatch):
    import skseqsleep.classifier as classifier_module

    X, y, _groups, recs = cohort
    recorder = _BatchRecorder()
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}, warm_start_from=fitted,
                             trainable_parts=("softmax",), callbacks=[("rec", recorder)],
                             random_state=3)
    calls = []
    normalise_parts = classifier_module._normalise_parts
    monkeypatch.setattr(classifier_module, "_normalise_parts",
                        lambda parts: calls.append(parts) or normalise_parts(parts))
    clf.fit(X[:48], y[:48], recordings=recs[:48])
    one_epoch = len(calls)
    clf.set_params(trainable_parts=("softmax", "seqrnn"), max_epochs=3)
    calls.clear()
    clf.fit(X[:48], y[:48], recordings=recs[:48])
    assert len(calls) == one_epoch          # once per fit, not once per training step
    assert len(recorder.modes_) == 3 * (2 * 21 // 8)
    assert all(m == {"arnn": False, "seqrnn": True, "softmax": True} for m in recorder.modes_)
    assert not torch.equal(state(fitted, "seqrnn")["fw.rnn.weight_hh_l0"],
                           state(clf, "seqrnn")["fw.rnn.weight_hh_l0"])
    # the L2 term covers the new trainable parts only
    xb, yb = X[:8].reshape(2, 4, 1, 29, 129), y[:8].reshape(2, 4)
    with torch.no_grad():
        logits = clf.module_(torch.from_numpy(xb))
        extra = (clf.get_loss(logits, torch.from_numpy(yb), training=True)
                 - clf.get_loss(logits, torch.from_numpy(yb), training=False))
    squares = sum(float((p.detach().double() ** 2).sum())
                  for part in ("softmax", "seqrnn") for p in getattr(clf.module_, part).parameters())
    assert float(extra) == pytest.approx(1e-3 / (2 * 8) * squares, rel=1e-4)


def test_warm_start_sets_starting_weights_and_direct_transfer(fitted, cohort, tmp_path):
    X, y, _groups, recs = cohort

    class StartState(Callback):
        def on_train_begin(self, net, **kwargs):
            self.state_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    pipe = make_pipeline(SeqSleepClassifier(**TINY)).fit(X[:24], y[:24], seqsleepclassifier__recordings=recs[:24])
    path = tmp_path / "source.pt"
    fitted.save_model(path)
    for source, ref in ((fitted, fitted), (path, fitted), (pipe, pipe[-1])):
        cb = StartState()
        SeqSleepClassifier(**{**TINY, "max_epochs": 1}, warm_start_from=source,
                           callbacks=[("start", cb)]).fit(X[:30], y[:30], recordings=recs[:30])
        ref_state = state(ref)
        assert all(torch.equal(cb.state_[k], ref_state[k]) for k in ref_state)
    # direct transfer: no training; predicts exactly what the source predicts
    direct = SeqSleepClassifier(**TINY, warm_start_from=path, trainable_parts=())
    direct.fit(X[:30], y[:30], recordings=recs[:30])
    assert len(direct.history) == 0
    np.testing.assert_array_equal(direct.predict_proba(X, recordings=recs),
                                  fitted.predict_proba(X, recordings=recs))
    # clone keeps the very same source object (not an unfitted copy)
    clf = SeqSleepClassifier(warm_start_from=fitted)
    assert clone(clf).warm_start_from is fitted
    assert clone(make_pipeline(clf))[-1].warm_start_from is fitted


@pytest.mark.parametrize("change,match", [
    ({"module__rnn_hidden": 6}, "rnn_hidden: source 8, this classifier 6"),
    ({"cell": "lstm"}, r"cell: source 'gru', this classifier 'lstm' \(set cell='gru'\)"),
])
def test_warm_start_incompatible_architecture(fitted, cohort, change, match):
    X, y, _, recs = cohort
    with pytest.raises(ValueError, match=match):
        SeqSleepClassifier(**{**TINY, **change}, warm_start_from=fitted).fit(X, y, recordings=recs)
    X2 = np.concatenate([X, X], axis=1)
    with pytest.raises(ValueError, match="n_channels: source 1, this classifier 2"):
        SeqSleepClassifier(**TINY, warm_start_from=fitted).fit(X2, y, recordings=recs)


def test_warm_start_bad_sources(tmp_path, cohort):
    X, y, _, recs = cohort
    with pytest.raises(FileNotFoundError, match="no model file"):
        SeqSleepClassifier(**TINY, warm_start_from=tmp_path / "nope.pt").fit(X, y, recordings=recs)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model saved by"):
        SeqSleepClassifier(**TINY, warm_start_from=tmp_path / "junk.pt").fit(X, y, recordings=recs)
    with pytest.raises(ValueError, match="is not fitted"):
        SeqSleepClassifier(**TINY, warm_start_from=SeqSleepClassifier()).fit(X, y, recordings=recs)
    # a folder of two checkpoints: the reader's count, not "no model file"
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.ckpt", "b.ckpt"):
        (two / f"{name}.index").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"exactly one .*found 2: \['a\.ckpt\.index', "
                                                r"'b\.ckpt\.index'\]"):
        SeqSleepClassifier(**TINY, warm_start_from=two).fit(X, y, recordings=recs)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"exactly one .*found 0"):
        SeqSleepClassifier(**TINY, warm_start_from=empty).fit(X, y, recordings=recs)


def test_warm_start_from_a_dict_is_checked_like_a_model_file(fitted, cohort, tmp_path):
    X, y, _, recs = cohort
    path = tmp_path / "source.pt"
    fitted.save_model(path)
    content = torch.load(path, weights_only=True)
    # the dict torch.load gives starts from the same weights as the file
    direct = SeqSleepClassifier(**TINY, warm_start_from=content, trainable_parts=())
    direct.fit(X[:30], y[:30], recordings=recs[:30])
    np.testing.assert_array_equal(direct.predict_proba(X, recordings=recs),
                                  fitted.predict_proba(X, recordings=recs))
    weights = content["state_dict"]
    for bad, error, match in [
        ({"config": [1]}, TypeError, (r"warm_start_from \(a dict\): 'config' must be a dict, "
                                     r"found list")),
        ({"state_dict": 5}, TypeError, r"'state_dict' must be a dict, found int"),
        ({"state_dict": {k: "x" for k in weights}}, TypeError,
         (r"must map parameter names to real-valued tensors or arrays; found '[^']+' "
          rf"\(str\), .*\({len(weights) - 3} more\)")),
        ({"state_dict": {k: np.full(tuple(v.shape), "x") for k, v in weights.items()}},
         TypeError, r"found '[^']+' \(ndarray of dtype <U1\)"),
        ({"format_version": 99}, ValueError, (r"format_version 99; this skseqsleep reads model "
                                             r"format version 1 or older")),
        ({"format_version": 1.0}, ValueError, r"format_version must be an integer, found 1\.0"),
    ]:
        with pytest.raises(error, match=match):
            SeqSleepClassifier(**TINY, warm_start_from={**content, **bad}).fit(
                X[:30], y[:30], recordings=recs[:30])
    # weights that do not fit are named, as load_model names them
    partial = {k: v for k, v in weights.items() if "softmax" not in k}
    with pytest.raises(ValueError, match=r"warm_start_from: the saved weights do not match "
                                         r"this classifier's network: missing softmax\.weight"):
        SeqSleepClassifier(**TINY, warm_start_from={**content, "state_dict": partial}).fit(
            X[:30], y[:30], recordings=recs[:30])
    # numpy integers are integers
    SeqSleepClassifier(**TINY, warm_start_from={**content, "format_version": np.int64(1)},
                       trainable_parts=()).fit(X[:30], y[:30], recordings=recs[:30])
    with pytest.raises(TypeError, match="or a dict with 'config' and 'state_dict'"):
        SeqSleepClassifier(**TINY, warm_start_from={"weights": weights}).fit(
            X[:30], y[:30], recordings=recs[:30])


# ------------------------------------------------------------------- sklearn integration
def test_routed_cross_validate_pipeline_with_inner_subject_split():
    X, y, groups, recs = raw_cohort(n_subjects=4, nights=2, n_epochs=16)
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 2}, train_split=GroupHoldout(1, random_state=0),
                             validate_every=3, random_state=0)
    pipe = make_pipeline(SpectrogramTransformer(fs=100), clf)
    scoring = {k: SCORERS[k] for k in ("accuracy", "kappa", "macro_f1")}
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(pipe, X, y, cv=LeaveOneGroupOut(), scoring=scoring,
                             params={"groups": groups, "recordings": recs},
                             return_estimator=True, return_indices=True)
    assert len(res["estimator"]) == 4
    for k, (est, test) in enumerate(zip(res["estimator"], res["indices"]["test"])):
        model = est[-1]
        assert model.validation_history_, "the inner subject split validated"
        assert len(model.valid_recordings_) == 2                     # one subject, two nights
        test_subject = np.unique(groups[test])
        assert not set(model.valid_recordings_) & set(recs[test])
        assert not set(model.train_recordings_) & set(model.valid_recordings_)
        assert len(test_subject) == 1
        # the scorer predicted each test recording on its own
        pred = est.predict(X[test], recordings=recs[test])
        m = sleep_metrics(y[test], pred)
        assert res["test_accuracy"][k] == pytest.approx(m["accuracy"])
        assert res["test_kappa"][k] == pytest.approx(m["kappa"])


def test_cross_validate_without_routing_and_cross_val_predict():
    X, y, groups, recs = raw_cohort(n_subjects=3, nights=1, n_epochs=16)
    pipe = make_pipeline(SpectrogramTransformer(fs=100),
                         SeqSleepClassifier(**{**TINY, "max_epochs": 1}, random_state=0))
    params = {"seqsleepclassifier__groups": groups, "seqsleepclassifier__recordings": recs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # one-recording warning of the metadata-less scorer
        res = cross_validate(pipe, X, y, groups=groups, cv=LeaveOneGroupOut(),
                             params=params, scoring=SCORERS["accuracy"])
        assert res["test_score"].shape == (3,)
        assert np.all((res["test_score"] >= 0) & (res["test_score"] <= 1))
        pred = cross_val_predict(pipe, X, y, groups=groups, cv=LeaveOneGroupOut(),
                                 params=params)
    assert pred.shape == y.shape and set(np.unique(pred)) <= set(range(5))


def test_grid_search_over_trainable_parts(fitted, cohort):
    X, y, groups, recs = cohort
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}, warm_start_from=fitted, random_state=0)
    grid = GridSearchCV(clf, {"trainable_parts": [(), "softmax", ("softmax", "arnn")]},
                        cv=GroupKFold(2), scoring=SCORERS["kappa"])
    with sklearn.config_context(enable_metadata_routing=True):
        grid.fit(X, y, groups=groups, recordings=recs)
    assert len(grid.cv_results_["params"]) == 3
    assert grid.best_params_["trainable_parts"] in [(), "softmax", ("softmax", "arnn")]
    assert grid.best_estimator_.warm_start_from is fitted


def test_sklearn_conventions(fitted):
    clf = SeqSleepClassifier(seq_len=7, cell="lstm", trainable_parts=("softmax",),
                             module__rnn_hidden=16)
    params = clf.get_params()
    assert params["seq_len"] == 7 and params["trainable_parts"] == ("softmax",)
    assert params["module__rnn_hidden"] == 16 and params["device"] == "auto"
    assert params["lr"] == 1e-4 and params["batch_size"] == 32 and params["max_epochs"] == 10
    assert params["validate_every"] == 10 and params["patience"] == 50
    c = clone(clf)
    assert c.get_params()["module__rnn_hidden"] == 16 and c.cell == "lstm"
    c.set_params(cell="gru", trainable_parts="all")
    assert c.cell == "gru" and clf.cell == "lstm"
    assert not hasattr(clone(fitted), "module_")


@pytest.mark.parametrize("bad,match", [
    (np.zeros((5, 29, 129), np.float32), r"shape \(n_epochs, n_channels, n_frames"),
    (np.zeros((0, 1, 29, 129), np.float32), "0 epochs"),
])
def test_bad_X(bad, match):
    with pytest.raises(ValueError, match=match):
        SeqSleepClassifier(**TINY).fit(bad, np.zeros(len(bad), int))


def test_spectrograms_with_frames_and_bins_swapped_warn(cohort):
    X, y, _, recs = (a[:48] for a in cohort)
    kw = {**TINY, "max_epochs": 1}
    with pytest.warns(UserWarning, match=r"X has epochs of shape \(1, 129, 29\) .* "
                      r"n_frames=129 is a number of frequency bins .*n_freq_bins=29 is not.*"
                      r"swapped"):
        SeqSleepClassifier(**kw).fit(np.swapaxes(X, 2, 3), y, recordings=recs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)     # the transformer's layout: no warning
        SeqSleepClassifier(**kw).fit(X, y, recordings=recs)
        # valid transformer settings with more frames than bins (overlap=0.9: 141 x 129)
        raw = np.random.default_rng(0).normal(size=(48, 3000))
        X141 = SpectrogramTransformer(overlap=0.9).fit_transform(raw)
        assert X141.shape[2:] == (141, 129)
        SeqSleepClassifier(**kw).fit(X141, y, recordings=recs)


def test_bad_labels_params_and_metadata(cohort):
    X, y, _groups, recs = cohort
    with pytest.raises(ValueError, match=r"stage labels 0..4; found \[7\]"):
        SeqSleepClassifier(**TINY).fit(X[:10], np.r_[y[:9], 7], recordings=recs[:10])
    with pytest.raises(ValueError, match="unknown part"):
        SeqSleepClassifier(**TINY, trainable_parts=("softmax", "attention")).fit(X, y)
    with pytest.raises(ValueError, match="recordings has 3 entries but X has"):
        SeqSleepClassifier(**TINY).fit(X, y, recordings=recs[:3])
    with pytest.raises(ValueError, match="recording 'S0N0' is not contiguous"):
        SeqSleepClassifier(**TINY).fit(X[:72], y[:72], recordings=np.r_[recs[:48], recs[:24]])
    with pytest.raises(ValueError, match="module__seq_len is set by the classifier"):
        SeqSleepClassifier(**TINY, module__seq_len=5).fit(X, y, recordings=recs)
    with pytest.raises(ValueError, match="needs the subject of every epoch"):
        SeqSleepClassifier(**TINY, train_split=GroupHoldout(1)).fit(X, y, recordings=recs)
    for lam in ("1e-3", float("nan"), float("inf"), -1e-3, None, True):
        with pytest.raises(ValueError, match=rf"l2_lambda must be a finite number >= 0, got "
                           rf"{re.escape(repr(lam))}$"):
            SeqSleepClassifier(**TINY, l2_lambda=lam).fit(X[:48], y[:48], recordings=recs[:48])


def test_partial_fit_is_not_supported_and_says_what_to_use(fitted, cohort):
    X, y, _, recs = cohort
    for clf in (SeqSleepClassifier(**TINY), fitted):
        with pytest.raises(NotImplementedError, match=r"does not support partial_fit; use fit.*"
                           r"warm_start_from=<fitted classifier or file written by save_model>"):
            clf.partial_fit(X[:48], y[:48], recordings=recs[:48])
    assert "_in_fit_" not in vars(fitted)


@pytest.mark.filterwarnings("ignore:trainable_parts=\\(\\) \\(direct transfer\\) without")
def test_a_failed_fit_leaves_the_classifier_unfitted(cohort):
    from sklearn.exceptions import NotFittedError

    X, y, _, recs = (a[:48] for a in cohort)
    bad_labels = np.where(y == 0, 7, y)
    # fails before training (labels), inside skorch's fit (fewer windows than batch_size),
    # and for direct transfer (labels checked after the source is loaded)
    failures = [
        ({}, (X, bad_labels), {"recordings": recs}),
        ({}, (X[:8], y[:8]), {"recordings": recs[:8]}),
        ({"trainable_parts": ()}, (X, bad_labels), {"recordings": recs}),
    ]
    for extra, args, kw in failures:
        for refit in (False, True):
            clf = SeqSleepClassifier(**TINY, **extra, random_state=0)
            if refit:
                clf.fit(X, y, recordings=recs)
            with pytest.raises(ValueError):
                clf.fit(*args, **kw)
            # it used to predict with the freshly initialised random network, or fail with
            # an AttributeError on module_config_
            with pytest.raises(NotFittedError):
                clf.predict(X, recordings=recs)
            assert not clf.initialized_ and "module_config_" not in vars(clf)
            clf.fit(X, y, recordings=recs)          # and it can be fitted again
            assert clf.predict(X, recordings=recs).shape == (48,)


def test_fit_refuses_keywords_it_would_ignore_and_skorch_warm_start(cohort):
    X, y, _, recs = (a[:48] for a in cohort)
    plain = SeqSleepClassifier(**TINY, random_state=0)
    for kw in ({"sample_weight": np.ones(48)}, {"class_weight": "balanced"}):
        with pytest.raises(TypeError, match=rf"unexpected keyword argument\(s\) "
                                            rf"\['{next(iter(kw))}'\].*REFERENCE"):
            plain.fit(X, y, recordings=recs, **kw)
    # skorch's warm_start=True skipped re-initialisation and then lost module_config_
    with pytest.raises(ValueError, match=r"warm_start=True .* not supported.*warm_start_from="):
        SeqSleepClassifier(**TINY, warm_start=True).fit(X, y, recordings=recs)


def test_inference_set_after_fit_is_checked_at_prediction(cohort):
    X, y, _, recs = (a[:48] for a in cohort)
    clf = SeqSleepClassifier(**TINY, random_state=0).fit(X, y, recordings=recs)
    clf.set_params(inference="per-windw")
    with pytest.raises(ValueError, match=r"inference must be one of .*'per-windw'"):
        clf.predict(X, recordings=recs)


def test_recording_of_two_subjects_is_an_error_whenever_groups_are_given(fitted, cohort):
    X, y, groups, recs = cohort
    g = groups[:48].copy()
    g[30] = 9                              # night S0N1 (rows 24..47) gets a second subject
    msg = (r"recording 'S0N1' holds epochs of several subjects \[0, 9\]; a recording belongs "
           "to one subject")
    for split in (None, GroupHoldout(1, random_state=0)):
        with pytest.raises(ValueError, match=msg):
            SeqSleepClassifier(**TINY, train_split=split).fit(X[:48], y[:48], groups=g,
                                                              recordings=recs[:48])
    with pytest.raises(ValueError, match=msg):
        fitted.predict(X[:48], groups=g, recordings=recs[:48])


@pytest.mark.parametrize("name", ["recordings", "groups"])
def test_malformed_recordings_or_groups_are_a_clear_error(fitted, cohort, name):
    X, y, groups, recs = (a[:48] for a in cohort)
    good = {"recordings": recs, "groups": groups}
    with_none = good[name].astype(object)
    with_none[[5, 30]] = None
    with_nan = with_none.copy()
    with_nan[[5, 30]] = np.nan
    float_nan = np.where(np.isin(np.arange(48), [5, 30]), np.nan,
                         np.repeat([1.0, 2.0], 24))
    for bad, match in [
        (np.stack([good[name]] * 2, axis=1),
         (rf"{name} must be a 1-D array of 48 labels \(one per epoch of X\); found an array "
          r"of shape \(48, 2\)")),
        (with_none, rf"{name} has missing labels \(None or NaN\) at rows \[5, 30\] \(2 in all\)"),
        (with_nan, rf"{name} has missing labels \(None or NaN\) at rows \[5, 30\]"),
        (float_nan, rf"{name} has missing labels \(None or NaN\) at rows \[5, 30\]"),
    ]:
        with pytest.raises(ValueError, match=match):
            SeqSleepClassifier(**TINY).fit(X, y, **{**good, name: bad})
        with pytest.raises(ValueError, match=match):
            fitted.predict(X, **{**good, name: bad})
    mixed = recs.astype(object)
    mixed[24:] = 7
    with pytest.raises(ValueError, match=r"recordings must hold labels of one type .*found "
                       r"\['int', 'str'\]"):
        SeqSleepClassifier(**TINY).fit(X, y, recordings=mixed)
    # the same as a plain list, where numpy made 1 and "1" one recording (silently)
    as_list = [1] * 24 + ["1"] * (len(X) - 24)
    with pytest.raises(ValueError, match=rf"{name} must hold labels of one type .*found "
                                         r"\['int', 'str'\]"):
        SeqSleepClassifier(**TINY).fit(X, y, **{**good, name: as_list})


def test_out_of_range_labels_are_quoted_as_given():
    from skseqsleep._labels import check_stage_labels

    # cast first, uint64 2**64-1 read as -1 (the "excluded" marker) and 1e30 as an int64 limit
    with pytest.raises(ValueError, match=r"found \[18446744073709551615\] \(e.g. at epoch 1\)"):
        check_stage_labels(np.array([0, 2**64 - 1], dtype=np.uint64), "y")
    with pytest.raises(ValueError, match=r"found \[1e\+30\] \(e.g. at epoch 2\)"):
        check_stage_labels(np.array([0.0, 4.0, 1e30]), "y")
    got = check_stage_labels(np.array([0, 4], dtype=np.uint64), "y")
    assert got.dtype == np.int64 and got.tolist() == [0, 4]


def test_score_checks_the_labels_like_fit(fitted, cohort):
    X, y, _, recs = (a[:48] for a in cohort)
    pred = fitted.predict(X, recordings=recs)
    assert fitted.score(X, y, recordings=recs) == pytest.approx(np.mean(pred == y))
    with pytest.raises(ValueError, match=r"y must hold stage labels 0..4; found \[10, 11"):
        fitted.score(X, y + 10, recordings=recs)
    with pytest.raises(ValueError, match=r"one stage label per epoch: expected shape \(48,\)"):
        fitted.score(X, y[:40], recordings=recs)


# ----------------------------------------------------------------- persistence & device
def test_pickle_round_trip_identical_predictions(fitted, cohort):
    X, _, _, recs = cohort
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X, recordings=recs),
                                  fitted.predict_proba(X, recordings=recs))


def test_save_and_load_model(fitted, cohort, tmp_path):
    X, _, _, recs = cohort
    path = tmp_path / "model.pt"
    fitted.save_model(path)
    raw = torch.load(path, weights_only=True)      # plain data only: no pickled objects
    assert raw["config"]["cell"] == "gru" and raw["config"]["rnn_hidden"] == 8
    assert raw["config"]["n_channels"] == 1 and raw["config"]["seq_len"] == 4
    assert raw["classes"] == [0, 1, 2, 3, 4] and raw["skseqsleep_version"]
    loaded = load_model(path, verbose=0)
    np.testing.assert_array_equal(loaded.predict_proba(X, recordings=recs),
                                  fitted.predict_proba(X, recordings=recs))
    assert loaded.seq_len == 4 and loaded.get_params()["module__rnn_hidden"] == 8


def test_load_model_with_architecture_settings_of_its_own(fitted, cohort, tmp_path):
    X, _, _, recs = cohort
    path = tmp_path / "model.pt"
    fitted.save_model(path)
    # a different value was a raw "got multiple values for keyword argument" TypeError
    for kw, shown in [({"seq_len": 6}, "seq_len=6 (the file has 4)"),
                      ({"module__rnn_hidden": 16}, "module__rnn_hidden=16 (the file has 8)")]:
        with pytest.raises(ValueError, match=rf"architecture comes from the model file; "
                                             rf"cannot load it with {re.escape(shown)}"):
            load_model(path, **kw)
    same = load_model(path, seq_len=4, cell="gru", verbose=0)
    np.testing.assert_array_equal(same.predict_proba(X, recordings=recs),
                                  fitted.predict_proba(X, recordings=recs))


def test_set_params_changing_a_fitted_network_unfits_it(cohort, tmp_path):
    from sklearn.exceptions import NotFittedError

    X, y, _, recs = (a[:48] for a in cohort)
    clf = SeqSleepClassifier(**TINY, random_state=0).fit(X, y, recordings=recs)
    proba = clf.predict_proba(X, recordings=recs)
    # the fitted network's own value: nothing changes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.set_params(module__rnn_hidden=8, verbose=0)
    np.testing.assert_array_equal(clf.predict_proba(X, recordings=recs), proba)
    assert clf.get_params()["module__rnn_hidden"] == 8
    # another value: skorch silently put a random network in place of the trained one
    clf.save_model(tmp_path / "m.pt")
    for model in (clf, load_model(tmp_path / "m.pt", verbose=0)):
        with pytest.warns(UserWarning, match=r"set_params\(module__dropout\) changes the "
                                             r"network .* trained weights are discarded"):
            model.set_params(module__dropout=0.0)
        with pytest.raises(NotFittedError):
            model.predict(X, recordings=recs)
        assert model.get_params()["module__dropout"] == 0.0
    clf.fit(X, y, recordings=recs)
    assert clf.module_.dropout == 0.0


def test_set_params_of_seq_len_or_cell_on_a_fitted_network_unfits_it(cohort, tmp_path):
    from sklearn.exceptions import NotFittedError

    X, y, _, recs = (a[:48] for a in cohort)
    clf = SeqSleepClassifier(**TINY, random_state=0).fit(X, y, recordings=recs)
    proba = clf.predict_proba(X, recordings=recs)
    with warnings.catch_warnings():       # the fitted values, and cell=None: nothing changes
        warnings.simplefilter("error")
        clf.set_params(seq_len=4, cell="gru")
        clf.set_params(cell=None)
    np.testing.assert_array_equal(clf.predict_proba(X, recordings=recs), proba)
    # another L predicted windows of 8 with a network trained on 4 (and save_model wrote L=4)
    for change in ({"seq_len": 8}, {"cell": "bnlstm"}):
        model = SeqSleepClassifier(**TINY, random_state=0).fit(X, y, recordings=recs)
        key = next(iter(change))
        with pytest.warns(UserWarning, match=rf"set_params\({key}\) changes the network"):
            model.set_params(**change)
        with pytest.raises(NotFittedError):
            model.predict(X, recordings=recs)
        model.fit(X, y, recordings=recs)
        assert model.module_config_[key] == change[key]


def test_numpy_integer_network_settings_fit_and_save(cohort, tmp_path):
    from sklearn.model_selection import ParameterGrid

    X, y, _, recs = (a[:48] for a in cohort)
    (params,) = ParameterGrid({"module__rnn_hidden": np.array([6]),
                               "module__attention_size": np.array([5])})
    assert isinstance(params["module__rnn_hidden"], np.integer)   # what a grid gives
    clf = SeqSleepClassifier(**{**TINY, **params}, random_state=0).fit(X, y, recordings=recs)
    assert type(clf.module_config_["rnn_hidden"]) is int
    assert clf.module_.seqrnn.fw.rnn.hidden_size == 6
    clf.save_model(tmp_path / "m.pt")             # "not JSON-able" before
    np.testing.assert_array_equal(load_model(tmp_path / "m.pt", verbose=0).predict(
        X, recordings=recs), clf.predict(X, recordings=recs))


def test_training_can_continue_from_the_classifier_itself(cohort):
    X, y, _, recs = (a[:48] for a in cohort)
    clf = SeqSleepClassifier(**TINY, random_state=0).fit(X, y, recordings=recs)
    before = state(clf)
    clf.set_params(warm_start_from=clf, trainable_parts="softmax", max_epochs=1)
    clf.fit(X, y, recordings=recs)   # "not fitted (scikit-learn clones ...)" before, weights lost
    after = state(clf)
    # started from its own weights: the frozen parts are exactly the trained ones
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("softmax"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("softmax"))
    assert "_pending_source" not in vars(clf)


def test_direct_transfer_from_the_classifier_itself(cohort):
    """warm_start_from=self with nothing trainable: the same network, predicting the same."""
    X, y, _, recs = (a[:48] for a in cohort)
    clf = SeqSleepClassifier(**TINY, random_state=0).fit(X, y, recordings=recs)
    before, predicted = state(clf), clf.predict_proba(X, recordings=recs)
    clf.set_params(warm_start_from=clf, trainable_parts=())
    clf.fit(X, y, recordings=recs)   # AttributeError "no classes_" before
    after = state(clf)
    assert all(torch.equal(before[k], after[k]) for k in before)
    np.testing.assert_array_equal(clf.predict_proba(X, recordings=recs), predicted)


@pytest.mark.filterwarnings("ignore:neither recordings nor groups")  # the grid's default score
def test_grid_over_fitted_sources_says_to_give_files(fitted, cohort, tmp_path):
    X, y, groups, recs = cohort
    grid = GridSearchCV(SeqSleepClassifier(**TINY), {"warm_start_from": [fitted]},
                        cv=GroupKFold(2), error_score="raise")
    # scikit-learn clones grid values, so the fitted source arrives unfitted
    with pytest.raises(ValueError, match=r"not fitted \(scikit-learn clones .*GridSearchCV "
                                         r"param_grid.*file written by save_model"):
        grid.fit(X, y, groups=groups, recordings=recs)
    fitted.save_model(tmp_path / "source.pt")       # what the message says works
    grid.set_params(param_grid={"warm_start_from": [str(tmp_path / "source.pt")]})
    grid.fit(X, y, groups=groups, recordings=recs)
    assert grid.best_estimator_.predict(X, recordings=recs).shape == y.shape


def test_save_model_bad_destinations_name_the_path(fitted, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=re.escape(str(folder)) + ".*is a directory"):
        fitted.save_model(folder)
    assert list(folder.iterdir()) == []
    missing = tmp_path / "nope" / "sub" / "m.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope" / "sub"))
                       + ".*does not exist"):
        fitted.save_model(missing)
    assert not (tmp_path / "nope").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    for target in (afile / "m.pt", afile / "deeper" / "m.pt"):
        with pytest.raises(NotADirectoryError, match=re.escape(str(afile)) + ".*not a folder"):
            fitted.save_model(target)
    assert afile.read_text() == "x"


def test_failed_save_keeps_the_previous_file_and_leaves_no_partial_file(fitted, tmp_path,
                                                                         monkeypatch):
    import errno
    import io

    path = tmp_path / "model.pt"
    fitted.save_model(path)
    before = path.read_bytes()
    real_save = torch.save

    def disk_full_half_way(obj, f, *args, **kwargs):
        # torch.save's real output, of which only the first half reaches the disk
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()[: len(buf.getvalue()) // 2]
        if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
            with open(f, "wb") as fh:
                fh.write(data)
        else:
            f.write(data)
            f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full_half_way)
    with pytest.raises(OSError, match="No space left"):
        fitted.save_model(path)
    with pytest.raises(OSError, match="No space left"):
        fitted.save_model(tmp_path / "new.pt")
    monkeypatch.undo()
    assert path.read_bytes() == before                 # the previous model is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # nothing else left
    assert load_model(path, verbose=0).module_config_ == fitted.module_config_


def _edited_model(fitted, tmp_path, name, edit):
    """Save ``fitted``, apply ``edit`` to the saved dict and write it back; return the path."""
    path = tmp_path / name
    fitted.save_model(path)
    content = torch.load(path, weights_only=True)
    edit(content)
    torch.save(content, path)
    return path


def test_load_model_refuses_a_newer_format_version(fitted, tmp_path):
    path = _edited_model(fitted, tmp_path, "v99.pt",
                         lambda c: c.update(format_version=99))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": format_version 99; "
                       r"this skseqsleep reads model format version 1 or older \(it was "
                       r"written by skseqsleep .*\): upgrade"):
        load_model(path, verbose=0)
    with pytest.raises(ValueError, match="format_version 99"):  # warm start reads it too
        SeqSleepClassifier(**TINY, warm_start_from=path).initialize()
    path = _edited_model(fitted, tmp_path, "vstr.pt", lambda c: c.update(format_version="1"))
    with pytest.raises(ValueError, match=r"format_version must be an integer, found '1'"):
        load_model(path, verbose=0)


def test_load_model_refuses_classes_inconsistent_with_n_classes(fitted, tmp_path):
    path = _edited_model(fitted, tmp_path, "cls.pt", lambda c: c.update(classes=[0, 1, 2]))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*classes \[0, 1, 2\].*"
                       r"n_classes=5.*\[0, 1, 2, 3, 4\]"):
        load_model(path, verbose=0)


def test_load_model_config_without_required_keys_names_them(fitted, tmp_path):
    def drop(c):
        del c["config"]["seq_len"], c["config"]["cell"]

    path = _edited_model(fitted, tmp_path, "nocfg.pt", drop)
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*config lacks .*'seq_len'"
                       r".*'cell'|" + re.escape(str(path)) + r".*config lacks .*'cell'.*'seq_len'"):
        load_model(path, verbose=0)
    path = _edited_model(fitted, tmp_path, "nostate.pt", lambda c: c.pop("state_dict"))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*lacks.*'state_dict'"):
        load_model(path, verbose=0)


def test_load_model_weights_not_matching_config_name_file_keys_and_shapes(fitted, tmp_path):
    path = _edited_model(fitted, tmp_path, "arch.pt",
                         lambda c: c["config"].update(n_filters=16))
    with pytest.raises(ValueError) as info:
        load_model(path, verbose=0)
    msg = str(info.value)
    # saved for 8 filters, the edited config asks for 16: e.g. the filterbank is (129, 8) in
    # the file and (129, 16) in the network
    assert str(path) in msg
    assert "arnn.filterbanks.0.V" in msg and "(129, 8)" in msg and "(129, 16)" in msg
    assert "size mismatch" not in msg  # torch's own wording (one line per tensor) is not shown

    def drop_softmax(c):
        c["state_dict"] = {k: v for k, v in c["state_dict"].items() if "softmax" not in k}
        c["state_dict"]["extra.weight"] = torch.zeros(2)

    path = _edited_model(fitted, tmp_path, "keys.pt", drop_softmax)
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*missing.*softmax\.weight"
                       r".*unexpected.*extra\.weight"):
        load_model(path, verbose=0)


def test_device_auto_resolution_and_cpu_loading_simulated(cohort, monkeypatch):
    """Simulated: CUDA availability (torch.cuda.is_available patched) and a model whose
    resolved device was CUDA (``device_ = "cuda"`` set before pickling, tensors on CPU)."""
    X, y, _, recs = cohort
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"
    clf = SeqSleepClassifier(**{**TINY, "device": "auto", "max_epochs": 1}, random_state=0)
    clf.fit(X[:48], y[:48], recordings=recs[:48])
    assert clf.device == "auto" and clf.device_ == "cpu"
    expected = clf.predict_proba(X[:48], recordings=recs[:48])
    clf.device_ = "cuda"                     # as if fitted on a CUDA machine
    blob = pickle.dumps(clf)
    restored = pickle.loads(blob)            # loaded where CUDA is absent
    assert restored.device == "auto" and restored.device_ == "cpu"
    np.testing.assert_array_equal(restored.predict_proba(X[:48], recordings=recs[:48]), expected)
    assert clone(restored).get_params()["device"] == "auto"


def test_device_auto_in_skorch_reinitialisation_and_load_params(cohort, tmp_path):
    X, y, _, recs = cohort
    clf = SeqSleepClassifier(**{**TINY, "device": "auto", "max_epochs": 1}, random_state=0)
    clf.fit(X[:48], y[:48], recordings=recs[:48])
    expected = clf.predict_proba(X[:48], recordings=recs[:48])
    clf.save_params(f_params=tmp_path / "params.pt")
    # a new network setting unfits the classifier (see test_set_params_changing_a_fitted_
    # network_unfits_it); skorch's way back is initialize, then load_params
    with pytest.warns(UserWarning, match="trained weights are discarded"):
        clf.set_params(module__dropout=0.3)
    clf.initialize()
    assert clf.module_config_["dropout"] == 0.3
    assert next(clf.module_.parameters()).device.type == resolve_device("auto")
    clf.set_params(criterion__label_smoothing=0.1)
    assert clf.criterion_.label_smoothing == 0.1
    clf.load_params(f_params=tmp_path / "params.pt")
    # dropout is inactive in prediction: the loaded weights give the saved predictions
    np.testing.assert_array_equal(clf.predict_proba(X[:48], recordings=recs[:48]), expected)
    assert clf.device == "auto" and clf.get_params()["device"] == "auto"


def test_unavailable_device_is_a_clear_error_before_any_work(cohort, monkeypatch, tmp_path):
    X, y, _, recs = cohort
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=rf"device='{device}' asks for CUDA, but .* "
                           r"\(available: cpu\); use device='cpu', or device='auto'"):
            SeqSleepClassifier(**{**TINY, "device": device}).fit(X[:48], y[:48],
                                                                recordings=recs[:48])
        with pytest.raises(ValueError, match=rf"device='{device}' asks for CUDA"):
            SeqSleepClassifier(**{**TINY, "device": device}).fit(np.zeros(3), [0, 0, 0])
    with pytest.raises(ValueError, match="device='gpu' is not a torch device"):
        SeqSleepClassifier(**{**TINY, "device": "gpu"}).fit(X[:48], y[:48], recordings=recs[:48])
    # other device types this CPU build lacks: torch's RuntimeError / AssertionError before
    for device in ("mps", "xpu"):
        with pytest.raises(ValueError, match=rf"device='{device}' cannot be used on this "
                                             r"machine .*use device='cpu'"):
            SeqSleepClassifier(**{**TINY, "device": device}).fit(X[:48], y[:48],
                                                                recordings=recs[:48])
    clf = SeqSleepClassifier(**{**TINY, "device": "auto", "max_epochs": 1}, random_state=0)
    clf.fit(X[:48], y[:48], recordings=recs[:48])
    assert clf.device_ == "cpu"
    clf.save_model(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="device='cuda' asks for CUDA"):
        load_model(tmp_path / "model.pt", device="cuda")


def test_frozen_bnlstm_parts_keep_their_batch_norm_statistics(cohort):
    X, y, _, recs = cohort
    kw = {**TINY, "cell": "bnlstm", "max_epochs": 1}
    source = SeqSleepClassifier(**kw, random_state=0).fit(X[:48], y[:48], recordings=recs[:48])
    pop = [k for k in state(source) if "pop_mean" in k or "pop_var" in k]
    assert any(k.startswith("arnn") for k in pop) and any(k.startswith("seqrnn") for k in pop)
    frozen = SeqSleepClassifier(**kw, warm_start_from=source, trainable_parts="softmax",
                                random_state=1).fit(X[48:], y[48:], recordings=recs[48:])
    trained = SeqSleepClassifier(**kw, warm_start_from=source, random_state=1).fit(
        X[48:], y[48:], recordings=recs[48:])
    before, after_frozen, after_trained = state(source), state(frozen), state(trained)
    for k in pop:
        assert torch.equal(before[k], after_frozen[k]), k          # no statistic update
    assert any(not torch.equal(before[k], after_trained[k]) for k in pop)


@pytest.mark.parametrize("sampler", ["per-window", "shared"])
def test_frozen_mode_train_runs_frozen_parts_as_the_released_code(cohort, sampler):
    """REFERENCE §4: the released code runs frozen parts in training mode: their weights stay,
    their batch-norm population statistics move; frozen_mode="eval" (the default) keeps both."""
    X, y, _, recs = cohort
    kw = {**TINY, "cell": "bnlstm", "max_epochs": 1, "train_sampler": sampler}
    source = SeqSleepClassifier(**kw, random_state=0).fit(X[:48], y[:48], recordings=recs[:48])
    before = state(source)
    released = SeqSleepClassifier(**kw, warm_start_from=source, trainable_parts="softmax",
                                  frozen_mode="train", random_state=1)
    released.fit(X[48:], y[48:], recordings=recs[48:])
    after = state(released)
    pop = [k for k in before if "pop_mean" in k or "pop_var" in k]
    weights = [k for k in before if not k.startswith("softmax") and k not in pop]
    assert all(torch.equal(before[k], after[k]) for k in weights)      # no gradient step
    assert all(not torch.equal(before[k], after[k]) for k in pop if k.startswith("arnn"))
    assert not any(p.requires_grad for p in released.module_.arnn.parameters())
    with pytest.raises(ValueError, match=r"frozen_mode must be one of \('eval', 'train'\), "
                                         r"got 'training'"):
        SeqSleepClassifier(**kw, frozen_mode="training").fit(X[:48], y[:48],
                                                              recordings=recs[:48])


def test_warm_start_from_the_authors_tensorflow_checkpoint(shared_dir):
    from skseqsleep import pretrained

    ckpt = shared_dir / "pretrained" / "phan2019-mass" / "1chan_eeg" / "pretrained_model.ckpt"
    expected = pretrained.load_tf_checkpoint_state(ckpt)["state_dict"]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 1, 29, 129)).astype(np.float32)
    y = rng.integers(0, 5, 24)
    for source in (ckpt, ckpt.parent):                  # prefix and folder
        clf = SeqSleepClassifier(cell="bnlstm", warm_start_from=source, trainable_parts=(),
                                 verbose=0, device="cpu")
        clf.fit(X, y, recordings=np.zeros(24))
        got = state(clf)
        assert set(got) == set(expected)
        assert all(torch.equal(got[k], torch.as_tensor(expected[k])) for k in got)
    assert clf.predict(X, recordings=np.zeros(24)).shape == (24,)
    # the default cell=None takes the source's cell (DESIGN's example names no cell) ...
    default = SeqSleepClassifier(warm_start_from=ckpt, trainable_parts=(), verbose=0,
                                 device="cpu").fit(X, y, recordings=np.zeros(24))
    assert default.module_config_["cell"] == "bnlstm"
    np.testing.assert_array_equal(default.predict(X, recordings=np.zeros(24)),
                                  clf.predict(X, recordings=np.zeros(24)))
    # ... while an explicit, different cell is a clear error
    with pytest.raises(ValueError, match="cell: source 'bnlstm', this classifier 'gru'"):
        SeqSleepClassifier(cell="gru", warm_start_from=ckpt, verbose=0).fit(
            X, y, recordings=np.zeros(24))


def test_train_split_must_split_whole_recordings(cohort):
    from skorch.dataset import ValidSplit

    X, y, groups, recs = cohort
    with pytest.raises(TypeError, match="use skseqsleep.model_selection.GroupHoldout"):
        SeqSleepClassifier(**TINY, train_split=ValidSplit(4)).fit(X, y, groups=groups,
                                                                   recordings=recs)


def test_default_cell_without_warm_start_is_the_papers_gru():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 1, 29, 129)).astype(np.float32)
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}).fit(X, rng.integers(0, 5, 12),
                                                              recordings=np.zeros(12))
    assert clf.cell is None and clf.module_config_["cell"] == "gru"
    assert isinstance(clf.module_.arnn.rnn.fw.rnn, torch.nn.GRU)
    assert isinstance(clf.module_.seqrnn.fw.rnn, torch.nn.GRU)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_spectrograms_are_a_clear_error_in_fit_and_predict(bad):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, 1, 29, 129)).astype(np.float32)
    y = rng.integers(0, 5, 12)
    Xbad = X.copy()
    Xbad[7, 0, 3, 4] = bad
    with pytest.raises(ValueError, match=r"1 epoch\(s\) hold NaN or inf values \(first at epoch 7\)"):
        SeqSleepClassifier(**{**TINY, "max_epochs": 1}).fit(Xbad, y, recordings=np.zeros(12))
    clf = SeqSleepClassifier(**{**TINY, "max_epochs": 1}).fit(X, y, recordings=np.zeros(12))
    with pytest.raises(ValueError, match="must be finite"):
        clf.predict(Xbad, recordings=np.zeros(12))


def test_pipeline_learns_simulated_psg_well_above_chance():
    """Raw simulated PSG -> SpectrogramTransformer -> SeqSleepClassifier, held-out subject."""
    from sklearn.metrics import cohen_kappa_score
    from sklearn.pipeline import make_pipeline

    from skseqsleep import SpectrogramTransformer
    from skseqsleep.datasets import make_sleep_cohort

    data = make_sleep_cohort(n_subjects=4, n_epochs=120, channels="C4-A1-like", random_state=3)
    test = data.groups == data.groups[-1]
    pipe = make_pipeline(SpectrogramTransformer(), SeqSleepClassifier(
        seq_len=10, module__n_filters=16, module__rnn_hidden=16, module__attention_size=16,
        lr=3e-3, max_epochs=6, verbose=0, device="cpu", random_state=0))
    pipe.fit(data.X[~test], data.y[~test], seqsleepclassifier__recordings=data.recordings[~test])
    pred = pipe.predict(data.X[test], recordings=data.recordings[test])
    y = data.y[test]
    majority = np.bincount(y, minlength=5).max() / len(y)   # best constant guess
    acc = (pred == y).mean()
    kappa = cohen_kappa_score(y, pred)
    print(f"held-out accuracy {acc:.3f} (majority class {majority:.3f}), kappa {kappa:.3f}")
    assert acc > majority + 0.2, (acc, majority)
    assert kappa > 0.5
