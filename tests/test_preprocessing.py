"""Tests of SpectrogramTransformer (REFERENCE §2).

Expected values come from a direct per-frame computation written here (explicit loop over the
frames, ``np.hamming(200)`` which is symmetric, ``np.fft.rfft(frame, 256)``) or from the
REFERENCE facts (29 frames x 129 bins, bin spacing 100/256 Hz).
"""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import skseqsleep.preprocessing as prep
from skseqsleep import SpectrogramTransformer


def _direct_log_spectrogram(epoch, eps=1e-10):
    """(3000,) -> (29, 129): explicit loop over the 2-s frames with 1-s hop."""
    window = np.hamming(200)
    rows = []
    for t in range(29):
        frame = epoch[t * 100:t * 100 + 200].astype(np.float64) * window
        rows.append(20 * np.log10(np.abs(np.fft.rfft(frame, 256)) + eps))
    return np.array(rows)


def _direct(X):
    """(n, C, 3000) -> (n, C, 29, 129) float64."""
    return np.array([[_direct_log_spectrogram(ch) for ch in ep] for ep in X])


@pytest.fixture(scope="module")
def epochs():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(6, 2, 3000)) * 20).astype(np.float32)


def test_one_epoch_equals_direct_computation(epochs):
    x = epochs[:1, 0]                                        # (1, 3000): 2-D input
    out = SpectrogramTransformer(standardize=False).fit_transform(x)
    assert out.shape == (1, 1, 29, 129) and out.dtype == np.float32
    want = _direct_log_spectrogram(x[0])
    np.testing.assert_allclose(out[0, 0], want, rtol=1e-5, atol=1e-4)


def test_window_is_symmetric_hamming():
    tf = SpectrogramTransformer(standardize=False).fit(np.ones((1, 3000)))
    np.testing.assert_allclose(tf.window_, np.hamming(200), rtol=1e-12)
    assert tf.window_[0] == tf.window_[-1] == pytest.approx(0.08)
    assert tf.n_frames_ == 29 and tf.frequencies_.shape == (129,)
    assert tf.frequencies_[1] == pytest.approx(100 / 256) and tf.frequencies_[-1] == 50


def test_sine_peaks_at_expected_bin():
    t = np.arange(3000) / 100
    x = np.sin(2 * np.pi * 10 * t)[None]
    out = SpectrogramTransformer(standardize=False).fit_transform(x)[0, 0]
    # 10 Hz * 256 / 100 Hz = 25.6 -> nearest bin 26 in every frame
    assert np.all(out.argmax(axis=1) == 26)
    assert np.all(out[:, 26] > out[:, 40] + 40)                # far from the peak: > 40 dB lower


def test_shapes_channels(epochs):
    out = SpectrogramTransformer().fit_transform(epochs)
    assert out.shape == (6, 2, 29, 129) and out.dtype == np.float32
    tf = SpectrogramTransformer().fit(epochs[:, 0])
    assert tf.n_channels_ == 1 and tf.n_features_in_ == 3000 and tf.n_samples_ == 3000
    assert tf.transform(epochs[:, 0]).shape == (6, 1, 29, 129)
    # a 3-D single-channel array is the same data as the 2-D one
    np.testing.assert_array_equal(tf.transform(epochs[:, :1]), tf.transform(epochs[:, 0]))
    assert SpectrogramTransformer().fit(epochs).n_features_in_ == 6000


def test_standardisation_statistics_by_hand(epochs):
    tf = SpectrogramTransformer().fit(epochs)
    spec = _direct(epochs)                                   # (6, 2, 29, 129)
    mean = spec.mean(axis=(0, 2))                            # over epochs and frames
    std = spec.std(axis=(0, 2))
    assert tf.mean_.shape == tf.scale_.shape == (2, 129)
    np.testing.assert_allclose(tf.mean_, mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tf.scale_, std, rtol=1e-5)
    want = (spec - mean[None, :, None]) / std[None, :, None]
    np.testing.assert_allclose(tf.transform(epochs), want, rtol=1e-4, atol=1e-4)
    # the two channels really have their own statistics
    assert not np.allclose(tf.mean_[0], tf.mean_[1])


def test_test_data_uses_training_statistics(epochs):
    train, test = epochs[:4], epochs[4:] * 3.0               # test signals ~ +9.5 dB louder
    tf = SpectrogramTransformer().fit(train)
    spec_train, spec_test = _direct(train), _direct(test)
    mean, std = spec_train.mean(axis=(0, 2)), spec_train.std(axis=(0, 2))
    want = (spec_test - mean[None, :, None]) / std[None, :, None]
    got = tf.transform(test)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert got.mean() > 1                                    # not re-standardised on test data


def test_fit_transform_equals_fit_then_transform(epochs):
    a = SpectrogramTransformer().fit_transform(epochs)
    b = SpectrogramTransformer().fit(epochs).transform(epochs)
    np.testing.assert_array_equal(a, b)


def test_chunking_gives_the_same_result(epochs, monkeypatch):
    ref = SpectrogramTransformer().fit(epochs)
    out_ref = ref.transform(epochs)
    monkeypatch.setattr(prep, "_CHUNK_VALUES", 1)            # one epoch per chunk
    tf = SpectrogramTransformer().fit(epochs)
    np.testing.assert_allclose(tf.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(tf.scale_, ref.scale_, rtol=1e-10)
    np.testing.assert_allclose(tf.transform(epochs), out_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(SpectrogramTransformer().fit_transform(epochs), out_ref,
                               rtol=1e-6, atol=1e-6)


def test_no_log_no_standardisation(epochs):
    x = epochs[:2, 0]
    out = SpectrogramTransformer(log_scale=False, standardize=False).fit_transform(x)
    frame = x[1, 300:500].astype(np.float64) * np.hamming(200)
    np.testing.assert_allclose(out[1, 0, 3], np.abs(np.fft.rfft(frame, 256)), rtol=1e-5)
    tf = SpectrogramTransformer(standardize=False).fit(x)
    assert tf.mean_ is None and tf.scale_ is None


def test_flat_epochs_are_finite():
    X = np.zeros((3, 3000))
    with pytest.warns(UserWarning, match=r"flat \(constant\) signal .*channel 0: 3 of 3"):
        out = SpectrogramTransformer().fit_transform(X)
    assert np.all(np.isfinite(out)) and np.all(out == 0)     # zero std replaced by 1
    raw = SpectrogramTransformer(standardize=False).fit_transform(X)
    np.testing.assert_allclose(raw, 20 * np.log10(1e-10))


def test_any_length_when_epoch_seconds_is_none():
    X = np.random.default_rng(1).normal(size=(3, 1000))
    tf = SpectrogramTransformer(epoch_seconds=None).fit(X)
    assert tf.n_frames_ == 1 + (1000 - 200) // 100 == 9
    assert tf.transform(X).shape == (3, 1, 9, 129)
    # other rates: 30 s at 200 Hz with a 2-s window = 400 samples, hop 200
    X200 = np.random.default_rng(2).normal(size=(2, 6000))
    out = SpectrogramTransformer(fs=200, nfft=512).fit_transform(X200)
    assert out.shape == (2, 1, 29, 257)


# --------------------------------------------------------------------------- errors
def test_wrong_number_of_samples():
    with pytest.raises(ValueError, match=r"2999 samples per epoch.*expects 3000"):
        SpectrogramTransformer().fit(np.zeros((2, 2999)))
    tf = SpectrogramTransformer(standardize=False).fit(np.zeros((2, 3000)))
    with pytest.raises(ValueError, match=r"2999 samples per epoch found, 3000 expected"):
        tf.transform(np.zeros((2, 2999)))
    with pytest.raises(ValueError, match="fewer than the 200-sample window"):
        SpectrogramTransformer(epoch_seconds=None).fit(np.zeros((2, 150)))
    # 30-s epochs at 200 Hz (DREAMS) given to the 100-Hz default: the sampling rate is named
    # first, before the reading of X as continuous signal (which would make 15-s epochs)
    with pytest.raises(ValueError, match=r"6000 samples per epoch.*if X holds 30-s epochs "
                                         r"sampled at 200 Hz, resample them to 100 Hz.*"
                                         r"continuous signal"):
        SpectrogramTransformer().fit(np.zeros((2, 6000)))
    # another fs: setting fs to the data's rate is named too (not "resample to 50 Hz" alone)
    with pytest.raises(ValueError, match=r"sampled at 100 Hz, set fs=100 or resample them to "
                                         r"50 Hz"):
        SpectrogramTransformer(fs=50, window_seconds=2, nfft=256).fit(np.zeros((2, 3000)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(bad):
    X = np.zeros((2, 3000))
    X[1, 17] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        SpectrogramTransformer().fit(X)
    tf = SpectrogramTransformer(standardize=False).fit(np.zeros((2, 3000)))
    with pytest.raises(ValueError, match="NaN|infinity"):
        tf.transform(X)


def test_channel_count_must_match(epochs):
    tf = SpectrogramTransformer().fit(epochs)
    with pytest.raises(ValueError, match=r"1 channel\(s\), but .* fitted on 2 channel"):
        tf.transform(epochs[:, 0])


def test_wrong_dimensions():
    with pytest.raises(ValueError, match="shape"):
        SpectrogramTransformer().fit(np.zeros((2, 1, 1, 3000)))
    # a 1-D array is most likely a continuous signal, not one epoch of one feature
    with pytest.raises(ValueError, match=r"X is 1-D.*Cut a continuous signal"):
        SpectrogramTransformer().fit(np.zeros(3000))
    tf = SpectrogramTransformer().fit(np.random.default_rng(0).normal(size=(2, 3000)))
    with pytest.raises(ValueError, match=r"X is 1-D"):
        tf.transform(np.zeros(3000))


def test_continuous_signal_is_told_to_be_cut_into_epochs():
    night = np.random.default_rng(0).normal(size=(1, 120 * 3000))   # 1 h as one 'epoch'
    with pytest.raises(ValueError, match=r"360000 = 120 x 3000: if X holds continuous signal"):
        SpectrogramTransformer().fit(night)
    # a length that is no multiple of an epoch gets only the resampling advice
    with pytest.raises(ValueError, match=r"expects 3000 .*; resample the signals"):
        SpectrogramTransformer().fit(night[:, :4500])


def test_flat_epochs_in_training_data_warn_with_their_count():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2, 3000))
    X[[2, 5, 11], 1] = 0.0                       # disconnected electrode on channel 1
    X[7, 1] = 35.0                               # saturated: constant, not zero
    with pytest.warns(UserWarning, match=r"flat \(constant\) signal.*\(channel 1: 4 of 20\)"):
        tf = SpectrogramTransformer().fit(X)
    # the warning is about real damage: the flat epochs pull the statistics of channel 1
    clean = SpectrogramTransformer().fit(np.delete(X, [2, 5, 7, 11], axis=0))
    assert np.abs(tf.mean_[1] - clean.mean_[1]).max() > 10            # dB
    np.testing.assert_allclose(tf.mean_[0], clean.mean_[0], atol=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no flat epoch: no warning
        SpectrogramTransformer().fit(X[[0, 1, 3]])
        tf.transform(X)                          # transform never warns
        SpectrogramTransformer(standardize=False).fit(X)    # nothing learnt from them


def test_not_fitted():
    with pytest.raises(NotFittedError):
        SpectrogramTransformer().transform(np.zeros((1, 3000)))


@pytest.mark.parametrize("params, match", [
    ({"fs": 0}, "fs must be"),
    ({"fs": "100"}, "fs must be"),
    ({"window_seconds": -1}, "window_seconds must be"),
    ({"window_seconds": 2.005}, "whole number of samples"),
    ({"overlap": 1.0}, r"overlap must be in \[0, 1\)"),
    ({"nfft": 128}, "at least the window length"),
    ({"nfft": 256.0}, "nfft must be an integer"),
    ({"eps": 0}, "eps must be"),
    ({"epoch_seconds": 0}, "epoch_seconds must be"),
    # infinite values: all-NaN spectrograms or an OverflowError before
    ({"eps": np.inf}, "eps must be a positive finite number"),
    ({"window_seconds": np.inf}, "window_seconds must be a positive number"),
    ({"epoch_seconds": np.inf}, "epoch_seconds must be a positive number or None"),
])
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        SpectrogramTransformer(**params).fit(np.zeros((1, 3000)))


def test_invalid_flag_type():
    with pytest.raises(TypeError, match="standardize must be True or False"):
        SpectrogramTransformer(standardize="yes").fit(np.zeros((1, 3000)))


# --------------------------------------------------------------------------- sklearn
def test_clone_params_pickle(epochs):
    tf = SpectrogramTransformer(fs=100, overlap=0.5, nfft=256)
    assert clone(tf).get_params() == tf.get_params()
    tf.set_params(nfft=512)
    assert tf.get_params()["nfft"] == 512
    tf.fit(epochs)
    assert tf.transform(epochs).shape == (6, 2, 29, 257)
    again = pickle.loads(pickle.dumps(tf))
    np.testing.assert_array_equal(again.transform(epochs), tf.transform(epochs))


class _GroupsRecorder(ClassifierMixin, BaseEstimator):
    """Minimal classifier that consumes groups/recordings, like SeqSleepClassifier."""

    def fit(self, X, y, groups=None, recordings=None):
        self.X_shape_ = X.shape
        self.groups_ = groups
        self.recordings_ = recordings
        self.classes_ = np.unique(y)
        return self

    def predict(self, X, recordings=None):
        return np.full(X.shape[0], self.classes_[0])


def test_pipeline_with_metadata_routing(epochs):
    y = np.array([0, 1, 2, 0, 1, 2])
    groups = np.array([1, 1, 1, 2, 2, 2])
    recordings = np.array(["a", "a", "a", "b", "b", "b"])
    with sklearn.config_context(enable_metadata_routing=True):
        clf = _GroupsRecorder().set_fit_request(groups=True, recordings=True)
        pipe = make_pipeline(SpectrogramTransformer(), clf)
        pipe.fit(epochs, y, groups=groups, recordings=recordings)
        assert clf.X_shape_ == (6, 2, 29, 129)
        np.testing.assert_array_equal(clf.groups_, groups)
        np.testing.assert_array_equal(clf.recordings_, recordings)
        assert pipe.predict(epochs).shape == (6,)
    # without routing: fit params addressed to the step
    clf = _GroupsRecorder()
    make_pipeline(SpectrogramTransformer(), clf).fit(epochs, y, _groupsrecorder__groups=groups)
    np.testing.assert_array_equal(clf.groups_, groups)


# The common checks feed tiny 2-D arrays (a few "features"): they run on a small
# configuration (1 Hz, 2-sample window, hop 1, 2-point FFT, any epoch length), which exercises
# exactly the same code paths as the 30-s / 100 Hz default. No check is expected to fail.
@parametrize_with_checks(
    [SpectrogramTransformer(fs=1.0, window_seconds=2.0, nfft=2, epoch_seconds=None)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.shared
def test_real_sleep_edf_epochs(shared_dir):
    """The first 300 s of SC4001E0 (real Fpz-Cz and EOG, 100 Hz): 10 epochs x 2 channels."""
    import pyedflib

    path = shared_dir / "data" / "sleep-edf" / "SC4001E0-PSG-first300s.edf"
    with pyedflib.EdfReader(str(path)) as edf:
        labels = edf.getSignalLabels()
        sig = np.stack([edf.readSignal(labels.index(ch))
                        for ch in ("EEG Fpz-Cz", "EOG horizontal")])
    X = sig.reshape(2, 10, 3000).transpose(1, 0, 2).astype(np.float32)   # (10, 2, 3000)
    out = SpectrogramTransformer().fit_transform(X)
    assert out.shape == (10, 2, 29, 129) and np.all(np.isfinite(out))
    eog = _direct(X)[:, 1]                                    # (10, 29, 129)
    want = (eog[4] - eog.mean(axis=(0, 1))) / eog.std(axis=(0, 1))
    np.testing.assert_allclose(out[4, 1], want, rtol=1e-4, atol=1e-4)
    # REFERENCE §1: a constant factor (uV vs mV) is irrelevant after the standardisation
    np.testing.assert_allclose(SpectrogramTransformer().fit_transform(X / 1000), out,
                               rtol=1e-4, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(n_epochs=st.integers(1, 5), n_channels=st.integers(1, 3), n_samples=st.integers(20, 60),
       scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2**32 - 1))
def test_training_output_is_standardised(n_epochs, n_channels, n_samples, scale, seed):
    """On the training epochs, every (channel, bin) has mean 0 and std 1."""
    X = np.random.default_rng(seed).normal(size=(n_epochs, n_channels, n_samples)) * scale
    tf = SpectrogramTransformer(fs=10, window_seconds=2.0, nfft=32, epoch_seconds=None)
    out = tf.fit_transform(X).astype(np.float64)
    assert out.shape == (n_epochs, n_channels, 1 + (n_samples - 20) // 10, 17)
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-3)
    std = out.std(axis=(0, 2))
    # a bin is constant only when there is a single frame in all (e.g. the 0 Hz bin is not)
    assert np.all((np.abs(std - 1) < 1e-3) | (std == 0))


@pytest.mark.parametrize("fs", [50, 128])
def test_other_rates_with_the_network_shape_warn(fs):
    # 29 x 129 like at 100 Hz, but bins over 0..fs/2: SeqSleepNet would take them silently
    X = np.random.default_rng(0).standard_normal((3, 30 * fs))
    with pytest.warns(UserWarning, match=rf"fs={fs}\) gives spectrograms of the shape "
                                         rf"SeqSleepNet expects \(29 x 129\) but with bins "
                                         rf"from 0 to {fs // 2} Hz.*resample"):
        out = SpectrogramTransformer(fs=fs).fit_transform(X)
    assert out.shape == (3, 1, 29, 129)


def test_a_rate_too_high_for_the_default_fft_says_to_resample():
    X = np.zeros((2, 6000))
    with pytest.raises(ValueError, match=r"window length \(400 samples\), got 256; for "
                                         r"SeqSleepNet, resample the signals to 100 Hz"):
        SpectrogramTransformer(fs=200).fit(X)
    with warnings.catch_warnings():          # 100 Hz, and other shapes, do not warn
        warnings.simplefilter("error")
        SpectrogramTransformer().fit(np.ones((2, 3000)) + np.arange(3000))
        SpectrogramTransformer(fs=200, nfft=512).fit(np.ones((2, 6000)) + np.arange(6000))
