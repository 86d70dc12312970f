"""Behaviour of the simulated cohort ``make_sleep_cohort``.

Expectations come from the AASM stage definitions and the real Sleep-EDF-SC-20 hypnograms,
measured on the generated signals with scipy / sklearn, never from the generator's internals.
"""

import itertools
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skseqsleep._constants import STAGES
from skseqsleep.datasets import make_sleep_cohort

W, N1, N2, N3, REM = range(5)
PROFILES = ["C4-A1-like", "Fpz-Cz-like", "EOG-like"]
FS = 100
ROOT = Path(__file__).resolve().parents[1]


def _stats():
    path = resources.files("skseqsleep.datasets") / "data" / "hypnogram_transition_stats.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def cohort():
    """6 subjects x 1 night (480 epochs, thinned from 960) x 3 profiles."""
    return make_sleep_cohort(6, 1, PROFILES, n_epochs=480, random_state=0)


@pytest.fixture(scope="module")
def powers(cohort):
    f, p = welch(cohort.X, fs=FS, nperseg=256, axis=-1)
    return f, p


def _band(powers, lo, hi):
    f, p = powers
    return p[..., (f >= lo) & (f < hi)].sum(-1)


def _median(values, y, stage):
    return float(np.median(values[y == stage]))


def slow_wave_fraction(x, fs=FS):
    """AASM slow-wave criterion, measured per epoch.

    The epoch is band-passed 0.5-2 Hz (2nd-order Butterworth applied forwards and backwards).
    A wave is the stretch between two consecutive negative-to-positive zero crossings of the
    filtered signal; it counts as a slow wave when it lasts 0.5-2 s and its peak-to-peak
    amplitude (filtered) exceeds 75 µV. Returns the fraction of each epoch's samples that lie
    in slow waves.
    """
    sos = butter(2, [0.5, 2.0], btype="band", fs=fs, output="sos")
    xf = sosfiltfilt(sos, np.atleast_2d(x), axis=-1)
    out = np.zeros(len(xf))
    for i, s in enumerate(xf):
        up = np.flatnonzero((s[:-1] < 0) & (s[1:] >= 0))
        covered = 0
        for a, b in itertools.pairwise(up):
            seg = s[a:b + 1]
            if 0.5 <= (b - a) / fs <= 2.0 and seg.max() - seg.min() > 75.0:
                covered += b - a
        out[i] = covered / s.size
    return out


# --- interface ------------------------------------------------------------------------------
def test_bunch_layout_and_labels():
    data = make_sleep_cohort(3, 2, "Fpz-Cz-like", n_epochs=40, random_state=1)
    assert data.X.shape == (3 * 2 * 40, 3000) and data.X.dtype == np.float32
    assert data.y.shape == (240,) and data.y.dtype == np.int64
    assert data.y.min() >= 0 and data.y.max() <= 4
    assert set(data.y.tolist()) == {0, 1, 2, 3, 4}
    assert np.isfinite(data.X).all()
    assert data.fs == 100.0 and isinstance(data.fs, float)
    assert data.ch_names == ["Fpz-Cz-like"]
    assert list(data.target_names) == list(STAGES)
    expected_rec = [f"sim-s{s:02d}-n{k}" for s in range(3) for k in (1, 2)]
    assert list(dict.fromkeys(data.recordings)) == expected_rec
    assert (data.recordings == np.repeat(expected_rec, 40)).all()
    # 40 epochs thinned from a 960-epoch night: epoch k is slot floor((k + 0.5) * 24) =
    # 24 k + 12 of its night (the n_epochs docs), every night from the same clock
    assert data.onsets.dtype == np.float64
    np.testing.assert_array_equal(data.onsets, np.tile(30.0 * (24 * np.arange(40) + 12), 6))
    full = make_sleep_cohort(1, channels="Fpz-Cz-like", n_epochs=960, random_state=1)
    np.testing.assert_array_equal(full.onsets, 30.0 * np.arange(960))
    assert (data.groups == np.repeat(["sim-s00", "sim-s01", "sim-s02"], 80)).all()
    assert list(data.report) == expected_rec
    assert data.report.n_excluded == 0 and data.report.n_kept == 240
    assert all(entry["excluded"] == {} and entry["trimmed"] == {}
               for entry in data.report.values())
    assert "240 epochs kept, 0 excluded" in str(data.report)
    assert data.simulated is True
    assert data.description.startswith("SIMULATED")


def test_multichannel_layout_and_profile_independence():
    both = make_sleep_cohort(2, 1, ["EOG-like", "C4-A1-like"], n_epochs=30, random_state=5)
    assert both.X.shape == (60, 2, 3000)
    assert both.ch_names == ["EOG-like", "C4-A1-like"]
    alone = make_sleep_cohort(2, 1, "C4-A1-like", n_epochs=30, random_state=5)
    listed = make_sleep_cohort(2, 1, ["C4-A1-like"], n_epochs=30, random_state=5)
    assert listed.X.shape == (60, 1, 3000)
    np.testing.assert_array_equal(alone.X, both.X[:, 1])
    np.testing.assert_array_equal(alone.X, listed.X[:, 0])
    assert not np.allclose(both.X[:, 0], both.X[:, 1])


def test_determinism_and_seed_sensitivity():
    a = make_sleep_cohort(2, 2, PROFILES[:2], n_epochs=50, random_state=42)
    b = make_sleep_cohort(2, 2, PROFILES[:2], n_epochs=50, random_state=42)
    assert a.X.tobytes() == b.X.tobytes()
    np.testing.assert_array_equal(a.y, b.y)
    c = make_sleep_cohort(2, 2, PROFILES[:2], n_epochs=50, random_state=43)
    assert not np.array_equal(a.y, c.y)
    assert np.abs(a.X - c.X).mean() > 1.0
    threaded = make_sleep_cohort(2, 2, PROFILES[:2], n_epochs=50, random_state=42, n_jobs=2)
    assert threaded.X.tobytes() == a.X.tobytes()
    gen = make_sleep_cohort(1, 1, n_epochs=20, random_state=np.random.default_rng(3))
    gen2 = make_sleep_cohort(1, 1, n_epochs=20, random_state=np.random.default_rng(3))
    assert gen.X.tobytes() == gen2.X.tobytes()


def test_subjects_are_stable_when_the_cohort_grows():
    small = make_sleep_cohort(2, 1, n_epochs=25, random_state=7)
    large = make_sleep_cohort(3, 2, n_epochs=25, random_state=7)
    for s in ("sim-s00", "sim-s01"):
        np.testing.assert_array_equal(small.X[small.recordings == f"{s}-n1"],
                                      large.X[large.recordings == f"{s}-n1"])


@pytest.mark.parametrize("n_subjects,n_epochs", [(1, 5), (5, 1), (2, 12)])
def test_tiny_cohorts_hold_every_stage(n_subjects, n_epochs):
    data = make_sleep_cohort(n_subjects, 1, n_epochs=n_epochs, random_state=0)
    assert data.X.shape == (n_subjects * n_epochs, 3000)
    assert set(data.y.tolist()) == {0, 1, 2, 3, 4}


def test_fewer_than_five_epochs_still_work():
    data = make_sleep_cohort(1, 1, n_epochs=3, random_state=0)
    assert data.X.shape == (3, 3000) and data.y.shape == (3,)


def test_other_sampling_rates():
    data = make_sleep_cohort(1, 1, "C4-A1-like", n_epochs=20, fs=200, random_state=0)
    assert data.X.shape == (20, 6000) and data.fs == 200.0
    data = make_sleep_cohort(1, 1, "C4-A1-like", n_epochs=20, fs=62.5, random_state=0)
    assert data.X.shape == (20, 1875)


@pytest.mark.parametrize("kwargs,exc,words", [
    ({"n_subjects": 0}, ValueError, ["n_subjects", ">= 1", "0"]),
    ({"n_subjects": 2.5}, TypeError, ["n_subjects"]),
    ({"n_nights": 0}, ValueError, ["n_nights"]),
    ({"n_epochs": 0}, ValueError, ["n_epochs", ">= 1"]),
    ({"channels": "C3-A2-like"}, ValueError,
     ["C3-A2-like", "C4-A1-like", "Fpz-Cz-like", "EOG-like"]),
    ({"channels": ["EOG-like", "EEG Fpz-Cz"]}, ValueError, ["EEG Fpz-Cz", "valid"]),
    ({"channels": []}, ValueError, ["channels"]),
    ({"channels": ["EOG-like", "EOG-like"]}, ValueError, ["more than once"]),
    ({"fs": 0}, ValueError, ["fs", ">= 40"]),
    ({"fs": -100}, ValueError, ["fs"]),
    ({"fs": 20}, ValueError, ["fs", "20"]),
    ({"fs": 100.01}, ValueError, ["whole number"]),
    ({"fs": "100"}, ValueError, ["fs"]),
    ({"fs": float("nan")}, ValueError, ["fs"]),
    ({"subject_variability": 1.5}, ValueError, ["subject_variability", "between 0 and 1"]),
    ({"n_jobs": 0}, ValueError, ["n_jobs"]),
    ({"random_state": "seed"}, TypeError, ["random_state"]),
])
def test_input_validation(kwargs, exc, words):
    args = {"n_subjects": 1, "n_epochs": 5, "random_state": 0, **kwargs}
    with pytest.raises(exc) as info:
        make_sleep_cohort(**args)
    for word in words:
        assert word in str(info.value)


# --- stage signatures (AASM) -------------------------------------------------------------------
def test_alpha_is_a_wake_rhythm_on_c4(cohort, powers):
    total = _band(powers, 0.5, 30)[:, 0]
    rel_alpha = _band(powers, 8, 12)[:, 0] / total
    w = _median(rel_alpha, cohort.y, W)
    assert w > 5 * _median(rel_alpha, cohort.y, N3)
    assert w == max(_median(rel_alpha, cohort.y, s) for s in range(5))


def test_spindle_band_is_highest_in_n2(cohort, powers):
    sigma = _band(powers, 11, 16)
    c4, fpz = sigma[:, 0], sigma[:, 1]
    assert _median(c4, cohort.y, N2) > 1.5 * _median(c4, cohort.y, N1)
    assert _median(c4, cohort.y, N2) > 2 * _median(c4, cohort.y, REM)
    assert _median(fpz, cohort.y, N2) > _median(fpz, cohort.y, N1)
    assert _median(fpz, cohort.y, N2) > _median(fpz, cohort.y, REM)
    # spindles are weaker on the frontal bipolar profile than on C4-A1
    assert _median(fpz, cohort.y, N2) < 0.7 * _median(c4, cohort.y, N2)


def test_theta_dominates_n1_and_rem_relative_to_wake(cohort, powers):
    theta = _band(powers, 4, 7)[:, 0] / _band(powers, 0.5, 30)[:, 0]
    assert _median(theta, cohort.y, N1) > 2 * _median(theta, cohort.y, W)
    assert _median(theta, cohort.y, REM) > 2 * _median(theta, cohort.y, W)


def test_delta_power_and_amplitude_peak_in_n3(cohort, powers):
    delta = _band(powers, 0.5, 2)
    std = cohort.X.std(-1)
    for c in (0, 1):
        n3 = _median(delta[:, c], cohort.y, N3)
        assert all(n3 > 3 * _median(delta[:, c], cohort.y, s) for s in (W, N1, N2, REM))
        n3_std = _median(std[:, c], cohort.y, N3)
        assert all(n3_std > _median(std[:, c], cohort.y, s) for s in (W, N1, N2, REM))
        # REM: low-amplitude mixed frequency
        assert _median(std[:, c], cohort.y, REM) < 0.4 * n3_std


def test_n3_epochs_meet_the_aasm_slow_wave_rule(cohort):
    for c in (0, 1):  # C4-A1-like and Fpz-Cz-like
        n3 = slow_wave_fraction(cohort.X[cohort.y == N3, c])
        assert n3.min() >= 0.2, (PROFILES[c], n3.min())
        n2 = slow_wave_fraction(cohort.X[cohort.y == N2, c])
        assert np.mean(n2 >= 0.2) < 0.05, (PROFILES[c], np.mean(n2 >= 0.2))


def test_slow_wave_detector_on_a_hand_made_signal():
    t = np.arange(3000) / FS
    wave = np.where(t < 9.0, 50.0 * np.sin(2 * np.pi * t), 0.0)  # 9 cycles of 1 Hz, 100 µV p-p
    assert 0.2 <= slow_wave_fraction(wave)[0] <= 0.35
    assert slow_wave_fraction(0.3 * wave)[0] == 0.0


def test_eog_profile_is_dominated_by_eye_movements(cohort, powers):
    low = _band(powers, 0.3, 4)
    ratio = low[:, 2] / low[:, 0]  # EOG-like over C4-A1-like, same epochs
    for stage in (W, N1, REM):
        assert _median(ratio, cohort.y, stage) > 2.0, STAGES[stage]
    assert _median(ratio, cohort.y, N3) < 0.5  # there the EOG sees only leaking EEG delta
    assert _median(ratio, cohort.y, N2) < 0.5
    # within the EOG channel, eye-movement stages carry far more low-frequency power than N2
    for stage in (W, REM):
        assert _median(low[:, 2], cohort.y, stage) > 3 * _median(low[:, 2], cohort.y, N2)
    # the EEG that leaks in is weak: wake alpha far below C4-A1's
    alpha = _band(powers, 8, 12)
    assert _median(alpha[:, 2], cohort.y, W) < 0.1 * _median(alpha[:, 0], cohort.y, W)


def _log_band_powers(x):
    f, p = welch(x, fs=FS, nperseg=200, axis=-1)
    bands = [(0.5, 2), (2, 4), (4, 7), (8, 12), (11, 16), (16, 30)]
    return np.log(np.stack([p[..., (f >= a) & (f < b)].sum(-1) for a, b in bands], -1))


def test_channel_mismatch_hurts_transfer_most_for_eog():
    data = make_sleep_cohort(6, 1, PROFILES, n_epochs=300, random_state=11)
    feats = _log_band_powers(data.X)
    train = np.isin(data.groups, ["sim-s00", "sim-s01", "sim-s02", "sim-s03"])
    test = ~train
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(feats[train, 0], data.y[train])
    same = clf.score(feats[test, 0], data.y[test])
    to_eog = clf.score(feats[test, 2], data.y[test])
    assert same > 0.6
    assert to_eog < same - 0.15
    # EOG is informative in itself: the drop is the mismatch, not missing information
    clf.fit(feats[train, 2], data.y[train])
    assert clf.score(feats[test, 2], data.y[test]) > 0.6


# --- hypnograms ---------------------------------------------------------------------------------
def test_time_of_night_structure():
    data = make_sleep_cohort(12, 1, "C4-A1-like", n_epochs=960, fs=40, random_state=2)
    nights = data.y.reshape(12, 960)
    first, last = nights[:, :320], nights[:, 640:]
    assert np.mean(first == N3) > 2 * np.mean(last == N3)
    assert np.mean(last == REM) > 1.5 * np.mean(first == REM)
    # per third of the night, the nominal chain's stage proportions follow the real SC-20
    # in-bed nights (without between-subject tilts)
    real = np.array(_stats()["stage_proportions_by_third"])
    nominal = make_sleep_cohort(30, 1, "C4-A1-like", n_epochs=960, fs=40, random_state=3,
                                subject_variability=0.0).y.reshape(30, 960)
    for third in range(3):
        part = nominal[:, 320 * third:320 * (third + 1)]
        np.testing.assert_allclose(np.bincount(part.ravel(), minlength=5) / part.size,
                                   real[third], atol=0.06)
    assert np.mean(nights[:, :10] == W) > 0.6  # lights-off: mostly awake (real: 0.88)
    # NREM and REM alternate: every night enters REM more than once
    entries = ((nights[:, 1:] == REM) & (nights[:, :-1] != REM)).sum(1)
    assert np.median(entries) >= 3


def rem_episode_onsets(night):
    """Onsets (epoch indices) of REM episodes: REM runs merged across gaps < 15 min."""
    idx = np.flatnonzero(np.asarray(night) == REM)
    if idx.size == 0:
        return []
    onsets = [idx[0]]
    for prev, cur in itertools.pairwise(idx):
        if cur - prev > 30:
            onsets.append(cur)
    return onsets


def rem_cycle_summary(nights):
    """Mean REM episodes per night, median minutes between consecutive episode onsets."""
    counts, gaps = [], []
    for night in nights:
        onsets = rem_episode_onsets(night)
        counts.append(len(onsets))
        gaps += [(b - a) / 2 for a, b in itertools.pairwise(onsets)]
    return float(np.mean(counts)), float(np.median(gaps))


def test_rem_episode_helper_on_a_hand_made_hypnogram():
    night = [N2] * 150 + [REM] * 20 + [N2] * 10 + [REM] * 5 + [N2] * 170 + [REM] * 30
    assert rem_episode_onsets(night) == [150, 355]
    assert rem_cycle_summary([night]) == (2.0, 102.5)


def test_nrem_rem_cycles_last_about_90_minutes():
    data = make_sleep_cohort(30, 1, "C4-A1-like", n_epochs=960, fs=40, random_state=6)
    episodes, minutes = rem_cycle_summary(data.y.reshape(30, 960))
    assert 3.0 <= episodes <= 5.5
    assert 75 <= minutes <= 110


def test_stage_proportions_close_to_sleep_edf_sc20():
    real = np.array(_stats()["stage_proportions"])
    data = make_sleep_cohort(20, 2, "C4-A1-like", n_epochs=960, fs=40, random_state=4)
    sim = np.bincount(data.y, minlength=5) / data.y.size
    np.testing.assert_allclose(sim, real, atol=0.06)
    flat = make_sleep_cohort(20, 1, "C4-A1-like", n_epochs=960, fs=40, random_state=4,
                             subject_variability=0.0)
    np.testing.assert_allclose(np.bincount(flat.y, minlength=5) / flat.y.size, real, atol=0.04)


def test_subject_variability_controls_between_subject_spread():
    def alpha_peaks(data):
        f, p = welch(data.X, fs=FS, nperseg=512, axis=-1)
        band = (f >= 7) & (f <= 13)
        peaks = []
        for s in np.unique(data.groups):
            spectrum = p[(data.groups == s) & (data.y == W)][:, band].mean(0)
            peaks.append(f[band][np.argmax(spectrum)])
        return np.array(peaks)

    same = make_sleep_cohort(8, 1, n_epochs=240, subject_variability=0.0, random_state=8)
    spread = make_sleep_cohort(8, 1, n_epochs=240, subject_variability=1.0, random_state=8)
    # nominal alpha frequency for everybody (up to spectral resolution and noise) ...
    assert np.ptp(alpha_peaks(same)) <= 0.6
    # ... versus individual alpha frequencies
    assert np.ptp(alpha_peaks(spread)) >= 1.0
    # amplitude differs between subjects (median epoch SD per subject)
    sd = [np.median(spread.X[spread.groups == s].std(-1)) for s in np.unique(spread.groups)]
    sd0 = [np.median(same.X[same.groups == s].std(-1)) for s in np.unique(same.groups)]
    assert np.ptp(np.log(sd)) > 1.5 * np.ptp(np.log(sd0))
    # nights of one subject differ too, but less than subjects do
    assert same.subject_params["sim-s00"] == same.subject_params["sim-s01"]
    assert spread.subject_params["sim-s00"] != spread.subject_params["sim-s01"]


# --- the shipped statistics are the real ones -------------------------------------------------
def test_transition_stats_are_consistent():
    stats = _stats()
    p = np.array(stats["transition_probabilities"])
    assert p.shape == (stats["n_bins"], 5, 5)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    counts = np.array(stats["transition_counts"])
    assert counts.sum() + stats["n_recordings"] <= stats["n_in_bed_epochs"]
    assert stats["n_recordings"] == 39


def test_transition_stats_match_the_real_hypnograms(shared_dir, tmp_path):
    pyedflib = pytest.importorskip("pyedflib")
    stats = _stats()
    folder = shared_dir / "data" / "sleep-edf" / "hypnograms"
    whole = dict.fromkeys(STAGES, 0)
    names = {"Sleep stage W": "W", "Sleep stage 1": "N1", "Sleep stage 2": "N2",
             "Sleep stage 3": "N3", "Sleep stage 4": "N3", "Sleep stage R": "REM"}
    files = [f for f in sorted(folder.glob("SC4*-Hypnogram.edf")) if int(f.name[3:5]) < 20]
    assert len(files) == 39
    for path in files:
        with pyedflib.EdfReader(str(path)) as reader:
            _, durations, texts = reader.readAnnotations()
        for duration, text in zip(durations, texts):
            if text in names:
                whole[names[text]] += round(duration / 30)
    in_bed = dict(zip(STAGES, stats["stage_counts"]))
    for stage in ("N1", "N2", "N3", "REM"):  # sleep happens in bed
        assert 0.95 * whole[stage] <= in_bed[stage] <= whole[stage], stage
    assert in_bed["W"] < 0.1 * whole["W"]  # most recorded wake is outside lights-off..on
    # REFERENCE §1: 38 155 in-bed epochs in the reference preparation
    n_valid = stats["n_in_bed_epochs"] - stats["n_excluded_epochs"]
    assert abs(n_valid - 38155) <= 0.001 * 38155
    # the simulated NREM-REM cycles match those of the real hypnograms (whole recordings:
    # REM only occurs in bed), measured the same way
    real_nights = []
    for path in files:
        with pyedflib.EdfReader(str(path)) as reader:
            _, durations, texts = reader.readAnnotations()
        night = []  # the annotations tile the recording in time order
        for duration, text in zip(durations, texts):
            night += [REM if text == "Sleep stage R" else N2] * round(duration / 30)
        real_nights.append(night)
    real_episodes, real_minutes = rem_cycle_summary(real_nights)
    sim = make_sleep_cohort(39, 1, "C4-A1-like", n_epochs=980, fs=40, random_state=9)
    sim_episodes, sim_minutes = rem_cycle_summary(sim.y.reshape(39, 980))
    assert abs(sim_episodes - real_episodes) < 0.8
    assert abs(sim_minutes - real_minutes) < 12
    # the shipped file is exactly what the derivation script produces from the real files
    out = tmp_path / "stats.json"
    subprocess.run([sys.executable, str(ROOT / "tools" / "derive_hypnogram_stats.py"),
                    "--shared", str(shared_dir), "--out", str(out)], check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert json.loads(out.read_text()) == stats
