"""load_mass on real EDF files written with pyedflib in the MASS layout and naming.

No MASS recording is available here, so each test writes small PSG/Base files whose content
is known: the expectations come from that content (sines of known frequency and phase, a
derivation whose reference is a large common signal) or from a direct computation with scipy
on the values pyedflib stored (REFERENCE §1).
"""

import numpy as np
import pytest
from mass_files import mass_paths, read_back, stage_annotations, write_base, write_psg
from scipy.signal import filtfilt, firwin, resample_poly

from skseqsleep._constants import EXCLUDED
from skseqsleep.datasets import load_mass

FS = 256


def _t(duration, fs=FS):
    return np.arange(int(duration * fs)) / fs


def _noise(duration, seed, scale=50.0, fs=FS):
    return np.random.default_rng(seed).normal(0.0, scale, int(duration * fs))


def _reference_pipeline(x256):
    """The reference preparation done directly: FIR(100) 0.3-40 Hz, filtfilt, 256 -> 100 Hz."""
    taps = firwin(101, [0.3, 40.0], pass_zero=False, fs=256)
    return resample_poly(filtfilt(taps, [1.0], x256), 25, 64)


def _amplitude(epoch, freq, fs=100):
    """Amplitude of the sine at ``freq`` (an exact bin of the 30-s epoch)."""
    spec = np.abs(np.fft.rfft(epoch)) * 2 / len(epoch)
    return spec[round(freq * len(epoch) / fs)]


def test_ss2_20s_epochs_widened_sample_exact(tmp_path):
    # 166 s recording, eight 20-s epochs starting at 3.25 s: windows [onset-5, onset+25)
    duration, first = 166, 3.25
    stages = ["W", "1", "2", "?", "4", "3", "R", "2"]
    t = _t(duration)
    common = 300 * np.sin(2 * np.pi * 1.7 * t) + _noise(duration, 1, 100)
    brain = 20 * np.sin(2 * np.pi * 10 * t) + 15 * np.sin(2 * np.pi * 7.3 * t) + \
        _noise(duration, 2, 2)
    psg, base = mass_paths(tmp_path, 2, 1)
    write_psg(psg, {"EEG C4-CLE": common + brain, "EEG A1-CLE": common,
                    "EEG A2-CLE": _noise(duration, 3), "EEG C3-CLE": _noise(duration, 4)})
    write_base(base, stage_annotations(stages, 20, first))

    data = load_mass(tmp_path, subsets=["SS2"])

    # epoch 0's window starts at -1.75 s and the last one's ends at 168.25 s > 166 s: dropped;
    # epoch 3 is unscored: dropped; R&K 4 and 3 are both N3
    assert data.y.tolist() == [1, 2, 3, 3, 4]
    assert data.y.dtype == np.int64 and data.X.dtype == np.float32
    assert data.X.shape == (5, 3000) and data.fs == 100.0
    kept = [1, 2, 4, 5, 6]
    expected_onsets = [first + 20 * k - 5 for k in kept]
    np.testing.assert_allclose(data.onsets, expected_onsets)
    assert data.recordings.tolist() == ["01-02-0001"] * 5
    assert data.groups.tolist() == ["01-02-0001"] * 5
    assert data.ch_names == ["C4-A1"]
    assert data.derivations == {"01-02-0001": {"C4-A1": "C4-A1 = EEG C4-CLE - EEG A1-CLE"}}
    rep = data.report["01-02-0001"]
    assert rep["kept"] == 5
    assert rep["excluded"] == {"Sleep stage ?": 1}
    assert rep["trimmed"] == {"20-s epoch widened to 30 s leaves the recording": 2}
    assert rep["notes"][:2] == ["SS2, 8 scored 20-s epochs", "C4-A1 = EEG C4-CLE - EEG A1-CLE"]
    text = str(data.report)
    assert "5 epochs kept, 1 excluded" in text and "leaves the recording: 2" in text
    assert "N1: 1, N2: 1, N3: 2, REM: 1" in data.description

    # sample-exact against a direct computation on the values stored in the file
    c4, a1 = read_back(psg, "EEG C4-CLE"), read_back(psg, "EEG A1-CLE")
    full = _reference_pipeline(c4 - a1)
    for row, k in zip(data.X, kept):
        start = round((first + 20 * k - 5) * 100)
        np.testing.assert_allclose(row, full[start:start + 3000], atol=2e-3)

    # and against the known sines (10 Hz and 7.3 Hz pass the filter with gain ~1): a shift
    # of one sample (0.01 s) changes the 10-Hz phase by 36 degrees
    for row, onset in zip(data.X, expected_onsets):
        tt = onset + np.arange(3000) / 100
        clean = 20 * np.sin(2 * np.pi * 10 * tt) + 15 * np.sin(2 * np.pi * 7.3 * tt)
        assert np.sqrt(np.mean((row - clean) ** 2)) < 2.5  # the 2-uV white noise, band-limited
        shifted = 20 * np.sin(2 * np.pi * 10 * (tt + 0.01)) + \
            15 * np.sin(2 * np.pi * 7.3 * (tt + 0.01))
        assert np.sqrt(np.mean((row - shifted) ** 2)) > 8.0


def test_bandpass_and_rate_measured_on_the_spectrum(tmp_path):
    # SS3: AASM 30-s epochs, no widening. C4 - A1 = 10 Hz (kept) + 45 Hz and 50 Hz (removed)
    duration = 240
    t = _t(duration)
    common = _noise(duration, 5, 200)
    diff = 20 * np.sin(2 * np.pi * 10 * t) + 20 * np.sin(2 * np.pi * 45 * t) + \
        20 * np.cos(2 * np.pi * 50 * t)
    psg, base = mass_paths(tmp_path, 3, 7)
    write_psg(psg, {"EEG A1-CLE": common, "EEG C4-CLE": common + diff})
    write_base(base, stage_annotations(["W", "2", "2", "3", "R", "1", "W", "W"], 30))
    data = load_mass(tmp_path, subsets=("SS3",))
    assert data.X.shape == (8, 3000)
    assert data.y.tolist() == [0, 2, 2, 3, 4, 1, 0, 0]
    np.testing.assert_allclose(data.onsets, 30.0 * np.arange(8))
    rep = data.report["01-03-0007"]
    assert rep["kept"] == 8 and rep["excluded"] == {} and rep["trimmed"] == {}
    for epoch in data.X[1:-1]:  # away from the filter's edge effects
        assert _amplitude(epoch, 10) == pytest.approx(20, rel=0.01)
        assert _amplitude(epoch, 45) < 0.05
        assert _amplitude(epoch, 50) < 0.05
    # without the band-pass, most of the 45-Hz component survives the 100-Hz resampling
    raw = resample_poly(read_back(psg, "EEG C4-CLE") - read_back(psg, "EEG A1-CLE"), 25, 64)
    assert _amplitude(raw[3000:6000], 45) > 15


def _one_channel_file(tmp_path, labels, subset=1, subject=1, duration=90, rates=None):
    """Write a PSG whose channels are distinct sines; return (psg path, {label: signal})."""
    t = _t(duration)
    signals = {lab: 10 * (i + 1) * np.sin(2 * np.pi * (5 + 2 * i) * t)
               for i, lab in enumerate(labels)}
    psg, base = mass_paths(tmp_path, subset, subject)
    if rates is not None:
        signals = {lab: 10 * np.sin(2 * np.pi * 5 * _t(duration, rates[lab]))
                   for lab in labels}
    write_psg(psg, signals, fs=rates if rates is not None else FS)
    epoch = 30 if subset in (1, 3) else 20
    n = int(duration // epoch)
    write_base(base, stage_annotations(["2"] * n, epoch))
    return psg, signals


def _expected(psg, plus, minus=None):
    x = read_back(psg, plus) - (read_back(psg, minus) if minus else 0.0)
    return _reference_pipeline(x)[:9000].reshape(3, 3000)


def test_c3_a2_fallback_when_c4_is_missing(tmp_path):
    psg, _ = _one_channel_file(tmp_path, ["EEG C3-CLE", "EEG A1-CLE", "EEG A2-CLE"])
    data = load_mass(tmp_path, subsets=["SS1"])
    assert data.derivations["01-01-0001"]["C4-A1"] == "C3-A2 = EEG C3-CLE - EEG A2-CLE"
    np.testing.assert_allclose(data.X, _expected(psg, "EEG C3-CLE", "EEG A2-CLE"), atol=2e-3)
    assert data.ch_names == ["C4-A1"]


def test_c4_ler_minus_a1_and_labels_matched_without_spaces_or_hyphens(tmp_path):
    psg, _ = _one_channel_file(tmp_path, ["EEG C4 LER", "EEGA1CLE", "EEG C3-CLE",
                                          "EEG A2-CLE"])
    data = load_mass(tmp_path, subsets=["SS1"])
    assert data.derivations["01-01-0001"]["C4-A1"] == "C4-A1 = EEG C4 LER - EEGA1CLE"
    np.testing.assert_allclose(data.X, _expected(psg, "EEG C4 LER", "EEGA1CLE"), atol=2e-3)


def test_linked_ears_files_use_ler_channels_as_they_are(tmp_path):
    psg, _ = _one_channel_file(tmp_path, ["EEG C3-LER", "EEG C4-LER", "EEG O1-LER"])
    data = load_mass(tmp_path, subsets=["SS1"])
    assert data.derivations["01-01-0001"]["C4-A1"] == "C4-LER = EEG C4-LER"
    np.testing.assert_allclose(data.X, _expected(psg, "EEG C4-LER"), atol=2e-3)

    other = tmp_path / "other"
    psg, _ = _one_channel_file(other, ["EEG C3-LER", "EEG O1-LER"], subject=2)
    data = load_mass(other, subsets=["SS1"])
    assert data.derivations["01-01-0002"]["C4-A1"] == "C3-LER = EEG C3-LER"
    np.testing.assert_allclose(data.X, _expected(psg, "EEG C3-LER"), atol=2e-3)


def test_eog_and_two_channels(tmp_path):
    labels = ["EEG C4-CLE", "EEG A1-CLE", "EOG Left Horiz", "EOG Right Horiz"]
    psg, _ = _one_channel_file(tmp_path, labels)
    data = load_mass(tmp_path, subsets=["SS1"], channel=["C4-A1", "EOG"])
    assert data.X.shape == (3, 2, 3000) and data.ch_names == ["C4-A1", "EOG"]
    np.testing.assert_allclose(data.X[:, 0], _expected(psg, "EEG C4-CLE", "EEG A1-CLE"),
                               atol=2e-3)
    np.testing.assert_allclose(data.X[:, 1],
                               _expected(psg, "EOG Right Horiz", "EOG Left Horiz"), atol=2e-3)
    assert data.derivations["01-01-0001"]["EOG"] == \
        "EOG horizontal = EOG Right Horiz - EOG Left Horiz"
    eog = load_mass(tmp_path, subsets=["SS1"], channel="EOG")
    assert eog.X.shape == (3, 3000)
    np.testing.assert_array_equal(eog.X, data.X[:, 1])


def test_rate_below_100_hz_is_an_error(tmp_path):
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"],
                      rates={"EEG C4-CLE": 64, "EEG A1-CLE": 64})
    with pytest.raises(ValueError, match=r"'EEG C4-CLE' of .*01-01-0001 PSG\.edf.* 64 Hz, "
                                         r"below 100 Hz"):
        load_mass(tmp_path, subsets=["SS1"])


def test_200_hz_recording_is_resampled_to_100(tmp_path):
    duration = 90
    t = _t(duration, 200)
    psg, base = mass_paths(tmp_path, 1, 3)
    write_psg(psg, {"EEG C4-CLE": 20 * np.sin(2 * np.pi * 10 * t),
                    "EEG A1-CLE": np.zeros_like(t)}, fs=200)
    write_base(base, stage_annotations(["W", "W", "W"], 30))
    data = load_mass(tmp_path, subsets=["SS1"])
    assert data.X.shape == (3, 3000)
    tt = 30 + np.arange(3000) / 100
    np.testing.assert_allclose(data.X[1], 20 * np.sin(2 * np.pi * 10 * tt), atol=0.2)


def test_a_repeated_label_is_an_error_naming_its_signals(tmp_path):
    # EDF labels are space-padded: "EEG C4-CLE" and "EEG C4-CLE " are the same label, here
    # first at 200 Hz, then again at 64 Hz. Taking the first one (as load_mass did, keeping
    # its rate check consistent with the samples read) guessed; which one is meant cannot be
    # told, as in read_psg
    duration = 90
    t = _t(duration, 200)
    psg, base = mass_paths(tmp_path, 1, 4)
    write_psg(psg, {"EEG C4-CLE": 20 * np.sin(2 * np.pi * 10 * t),
                    "EEG A1-CLE": np.zeros_like(t), "EEG C4-CLE ": np.zeros(duration * 64)},
              fs={"EEG C4-CLE": 200, "EEG A1-CLE": 200, "EEG C4-CLE ": 64})
    write_base(base, stage_annotations(["W", "W", "W"], 30))
    with pytest.raises(ValueError, match=r"'EEG C4-CLE' is ambiguous in .*01-01-0004 PSG\.edf: "
                                         r"signals 0 \(200 Hz\), 2 \(64 Hz\)"):
        load_mass(tmp_path, subsets=["SS1"])
    # a repeated label that is not needed does not matter
    write_psg(psg, {"EEG C4-CLE": 20 * np.sin(2 * np.pi * 10 * t),
                    "EEG A1-CLE": np.zeros_like(t), "EMG Chin": np.zeros_like(t),
                    "EMG Chin ": np.zeros_like(t)}, fs=200)
    data = load_mass(tmp_path, subsets=["SS1"])
    tt = 30 + np.arange(3000) / 100
    np.testing.assert_allclose(data.X[1], 20 * np.sin(2 * np.pi * 10 * tt), atol=0.2)


def test_missing_channels_are_errors_listing_the_labels(tmp_path):
    _one_channel_file(tmp_path, ["EEG Fpz-CLE", "EEG A1-CLE", "EOG Left Horiz"])
    with pytest.raises(ValueError, match=r"cannot build the C4-A1 channel from .*01-01-0001 "
                                         r"PSG\.edf.*EEG C3-CLE - EEG A2-CLE.*'EEG Fpz-CLE'"):
        load_mass(tmp_path, subsets=["SS1"])
    with pytest.raises(ValueError, match=r"cannot build the EOG channel.*EOG Right Horiz"):
        load_mass(tmp_path, subsets=["SS1"], channel="EOG")


def test_missing_files_and_bad_arguments(tmp_path):
    _, base = mass_paths(tmp_path, 1, 1)
    with pytest.raises(FileNotFoundError, match="SS1"):
        load_mass(tmp_path, subsets=["SS1"])
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"])
    base.unlink()
    with pytest.raises(FileNotFoundError, match=r"01-01-0001 Base\.edf"):
        load_mass(tmp_path, subsets=["SS1"])
    with pytest.raises(ValueError, match="unknown MASS subset 'SS6'"):
        load_mass(tmp_path, subsets=["SS6"])
    with pytest.raises(ValueError, match="unknown MASS channel 'Fpz-Cz'"):
        load_mass(tmp_path, subsets=["SS1"], channel="Fpz-Cz")
    with pytest.raises(FileNotFoundError, match="MASS folder"):
        load_mass(tmp_path / "nope")
    with pytest.raises(ValueError, match="fs must be a positive rate in Hz, got inf"):
        load_mass(tmp_path, subsets=["SS1"], fs=float("inf"))
    with pytest.raises(ValueError, match=r"fs=33\.33 Hz does not give a whole number of "
                                         r"samples per 30-s epoch \(30 s x 33\.33 Hz = 999\.9\)"):
        load_mass(tmp_path, subsets=["SS1"], fs=33.33)


def test_annotation_length_must_match_the_subset(tmp_path):
    # an SS2 file scored in 30-s epochs is not a whole number of 20-s epochs... 30/20 = 1.5
    psg, base = mass_paths(tmp_path, 2, 1)
    write_psg(psg, {"EEG C4-CLE": _noise(120, 0), "EEG A1-CLE": _noise(120, 1)})
    write_base(base, stage_annotations(["W", "2", "2", "W"], 30))
    with pytest.raises(ValueError, match=r"30 s, which is not a whole number of 20-s epochs"):
        load_mass(tmp_path, subsets=["SS2"])


def test_several_subsets_bunch_and_recording_filter(tmp_path, capsys):
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"], subset=1, subject=2)
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"], subset=1, subject=1)
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"], subset=5, subject=4,
                      duration=100)
    data = load_mass(tmp_path, subsets=["SS1", "SS5"])
    # SS1: 3 epochs each; SS5: five 20-s epochs from 0 s in 100 s: first and last dropped
    assert data.recordings.tolist() == ["01-01-0001"] * 3 + ["01-01-0002"] * 3 + \
        ["01-05-0004"] * 3
    np.testing.assert_array_equal(data.groups, data.recordings)
    np.testing.assert_allclose(data.onsets[-3:], [15, 35, 55])
    assert set(data.y.tolist()) == {2} and EXCLUDED not in data.y
    assert list(data.report) == ["01-01-0001", "01-01-0002", "01-05-0004"]
    assert [r["trimmed"] for r in data.report.values()] == [
        {}, {}, {"20-s epoch widened to 30 s leaves the recording": 2}]
    assert data.report.n_kept == 9 and data.report.n_excluded == 0
    assert "SS1, SS5" in data.description and "3 recordings, 9" in data.description
    only = load_mass(tmp_path, subsets=["SS1", "SS5"], recordings=["01-05-0004"],
                     verbose=True)
    assert capsys.readouterr().err == "MASS SS5 01-05-0004 (1/1)\n"
    np.testing.assert_array_equal(only.X, data.X[-3:])
    with pytest.raises(FileNotFoundError, match="01-05-0009"):
        load_mass(tmp_path, subsets=["SS5"], recordings=["01-05-0009"])
    # one id as a string (it was split into characters), empty and repeated selections
    np.testing.assert_array_equal(
        load_mass(tmp_path, subsets="SS5", recordings="01-05-0004").X, data.X[-3:])
    for kw, msg in [({"subsets": []}, "subsets is empty"),
                    ({"recordings": []}, "recordings is empty"),
                    ({"subsets": ["SS1", "SS1"]}, r"subsets has duplicates: \['SS1', 'SS1'\]"),
                    ({"recordings": ["01-01-0001"] * 2}, "recordings has duplicates")]:
        with pytest.raises(ValueError, match=msg):
            load_mass(tmp_path, **{"subsets": ["SS1"], **kw})
    with pytest.raises(TypeError, match="subsets must be a name or a list of names, got None"):
        load_mass(tmp_path, subsets=None)


@pytest.mark.parametrize("shift_minutes, before, after", [(0, 0, 110), (-10, 20, 0)])
def test_hypnogram_outside_its_psg_is_an_error(tmp_path, shift_minutes, before, after):
    import datetime as dt

    from mass_files import START

    # a 5-minute PSG: a 60-minute hypnogram, or one starting 10 minutes before the PSG
    psg, base = mass_paths(tmp_path, 3, 1)
    write_psg(psg, {"EEG C4-CLE": _noise(300, 0), "EEG A1-CLE": _noise(300, 1)})
    n_epochs = 120 if shift_minutes == 0 else 30
    write_base(base, stage_annotations(["W", "2"] * (n_epochs // 2), 30),
               start=START + dt.timedelta(minutes=shift_minutes))
    with pytest.raises(ValueError, match=rf"01-03-0001 Base\.edf scores {before} epoch\(s\) "
                                         rf"before the start and {after} after the end of "
                                         r"01-03-0001 PSG\.edf .*0-300 s"):
        load_mass(tmp_path, subsets=["SS3"])


def test_epochs_overlapping_an_end_of_the_psg_are_trimmed_by_side(tmp_path):
    import datetime as dt

    from mass_files import START

    # hypnogram from 15 s before the PSG to 15 s after its end (5 x 30 s over 120 s):
    # the first and last epochs overlap an edge, the three between are kept
    psg, base = mass_paths(tmp_path, 3, 1)
    write_psg(psg, {"EEG C4-CLE": _noise(120, 0), "EEG A1-CLE": _noise(120, 1)})
    write_base(base, stage_annotations(["W", "2", "3", "R", "2"], 30),
               start=START - dt.timedelta(seconds=15))
    data = load_mass(tmp_path, subsets=["SS3"])
    assert data.y.tolist() == [2, 3, 4]
    assert data.report["01-03-0001"]["trimmed"] == {
        "epoch starts before the signals": 1, "epoch extends past the end of the signals": 1}


def test_hypnogram_starting_later_than_the_psg_is_aligned_on_the_clock(tmp_path):
    import datetime as dt

    from mass_files import START

    duration = 120
    t = _t(duration)
    psg, base = mass_paths(tmp_path, 3, 2)
    write_psg(psg, {"EEG C4-CLE": 20 * np.sin(2 * np.pi * 0.1 * t) * np.sin(2 * np.pi * 10 * t),
                    "EEG A1-CLE": np.zeros_like(t)})
    write_base(base, stage_annotations(["W", "2", "R"], 30),
               start=START + dt.timedelta(seconds=10))
    data = load_mass(tmp_path, subsets=["SS3"])
    # annotation onsets 0, 30, 60 s after the hypnogram start = 10, 40, 70 s into the PSG
    np.testing.assert_allclose(data.onsets, [10, 40, 70])
    tt = 40 + np.arange(3000) / 100
    expected = 20 * np.sin(2 * np.pi * 0.1 * tt) * np.sin(2 * np.pi * 10 * tt)
    np.testing.assert_allclose(data.X[1], expected, atol=0.5)
    assert "hypnogram starts 10 s after the PSG" in data.report["01-03-0002"]["notes"]


def test_each_psg_file_is_opened_once(tmp_path, monkeypatch):
    # two derived channels (four labels) from one file: one reader serves them all
    import pyedflib

    labels = ["EEG C4-CLE", "EEG A1-CLE", "EOG Left Horiz", "EOG Right Horiz"]
    psg, _ = _one_channel_file(tmp_path, labels)
    base = mass_paths(tmp_path, 1, 1)[1]
    opened = []
    real_reader = pyedflib.EdfReader

    def counting_reader(path, *args, **kwargs):
        opened.append(str(path))
        return real_reader(path, *args, **kwargs)

    monkeypatch.setattr(pyedflib, "EdfReader", counting_reader)
    data = load_mass(tmp_path, subsets=["SS1"], channel=["C4-A1", "EOG"])
    assert sorted(opened) == sorted([str(psg), str(base)])
    np.testing.assert_allclose(data.X[:, 1],
                               _expected(psg, "EOG Right Horiz", "EOG Left Horiz"), atol=2e-3)


def test_nothing_kept_is_an_error_and_an_empty_recording_a_warning(tmp_path):
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"], subject=1)
    _, base = mass_paths(tmp_path, 1, 1)
    write_base(base, stage_annotations(["?", "?", "?"], 30))
    with pytest.raises(ValueError, match=r"no epoch kept.*01-01-0001: 0 kept, excluded "
                                         r"\{'Sleep stage \?': 3\}"):
        load_mass(tmp_path, subsets=["SS1"])
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"], subject=2)
    with pytest.warns(UserWarning, match=r"01-01-0001 .*kept 0 epochs"):
        data = load_mass(tmp_path, subsets=["SS1"])
    assert data.y.tolist() == [2, 2, 2] and set(data.recordings) == {"01-01-0002"}


def test_gaps_and_unscored_signal_are_noted(tmp_path):
    # 180 s of signal; scored 0-60 s and 90-120 s: a 30-s gap, then 60 s unscored
    _one_channel_file(tmp_path, ["EEG C4-CLE", "EEG A1-CLE"], duration=180)
    _, base = mass_paths(tmp_path, 1, 1)
    write_base(base, [(0, 30, "Sleep stage W"), (30, 30, "Sleep stage 2"),
                      (90, 30, "Sleep stage 2")])
    data = load_mass(tmp_path, subsets=["SS1"])
    np.testing.assert_array_equal(data.onsets, [0, 30, 90])
    notes = data.report["01-01-0001"]["notes"]
    assert any(n.startswith("1 gap(s) of unscored time between hypnogram annotations, 30 s "
                            "in all (at 60-90 s)") for n in notes), notes
    assert ("60 s of signal after the end of the hypnogram (at 120 s) are unscored and not "
            "loaded") in notes
