"""In-bed trimming and load_sleep_edf, on the real hypnograms and on EDF files written here."""

import csv
import datetime as dt
import os
import re
import shutil

import numpy as np
import pyedflib
import pytest
from edf_writers import (
    hypnogram_annotations_from_stages,
    write_hypnogram_edf,
    write_psg,
)

from skseqsleep._constants import EXCLUDED
from skseqsleep.datasets import load_sleep_edf, read_hypnogram, trim_in_bed
from skseqsleep.datasets._inbed import resolve_clock_time, sleep_edf_in_bed_times
from skseqsleep.datasets.sleep_edf import find_sleep_edf_files

SLICE = "data/sleep-edf/SC4001E0-PSG-first300s.edf"
HYP = "data/sleep-edf/SC4001EC-Hypnogram.edf"
START = dt.datetime(1989, 4, 24, 16, 13)
PSG_SECONDS = 79500  # SC4001E0: 16:13:00 to 14:18:00 the next day


def _clock(text):
    h, m, s = text.split(":")
    return dt.timedelta(hours=int(h), minutes=int(m), seconds=float(s))


def _shared_rows(shared_dir):
    with open(shared_dir / "data/sleep-edf/inbed_times.csv") as fh:
        return list(csv.DictReader(fh))


def test_shipped_table_matches_the_facts(shared_dir):
    rows = _shared_rows(shared_dir)
    table = sleep_edf_in_bed_times()
    assert sorted(table) == sorted(r["recording"] for r in rows)
    for r in rows:
        for field in ("rec_start", "rec_stop", "hyp_start", "lights_off", "lights_on"):
            t = table[r["recording"]][field]
            got = dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second,
                               microseconds=t.microsecond)
            assert got == _clock(r[field]), (r["recording"], field)


def test_resolve_clock_time_across_midnight():
    # SC4001E0: lights off 00:38 after a 16:13 start -> the next day
    assert resolve_clock_time(dt.time(0, 38), START) == dt.datetime(1989, 4, 25, 0, 38)
    # ST7022J0: lights off at 23:27:00, 30 s before the recording start at 23:27:30
    ref = dt.datetime(1994, 1, 1, 23, 27, 30)
    assert resolve_clock_time(dt.time(23, 27), ref) == dt.datetime(1994, 1, 1, 23, 27)
    # ST7201J0: hypnogram starts at 00:08:30 after a 23:45 start
    assert (resolve_clock_time(dt.time(0, 8, 30), dt.datetime(1994, 1, 1, 23, 45))
            == dt.datetime(1994, 1, 2, 0, 8, 30))


def test_in_bed_epochs_of_all_39_sc20_recordings(shared_dir):
    """In-bed epoch counts from the table, computed independently with plain arithmetic."""
    rows = {r["recording"]: r for r in _shared_rows(shared_dir)}
    files = sorted((shared_dir / "data/sleep-edf/hypnograms").glob("SC4*-Hypnogram.edf"))
    assert len(files) == 39
    total = total_scored = 0
    for path in files:
        rec = path.name[:7] + "0"
        r = rows[rec]
        hyp = read_hypnogram(path)
        day = dt.datetime.combine(hyp.start_time.date(), dt.time())
        # SC recordings start in the afternoon: lights-off before noon is after midnight,
        # lights-on and the recording stop are always on the next day
        hyp_start = day + _clock(r["hyp_start"])
        off = day + _clock(r["lights_off"]) + dt.timedelta(days=_clock(r["lights_off"])
                                                          < dt.timedelta(hours=12))
        on = day + dt.timedelta(days=1) + _clock(r["lights_on"])
        stop = day + dt.timedelta(days=1) + _clock(r["rec_stop"])
        assert hyp_start == hyp.start_time
        expected = int((min(on, stop) - max(off, hyp_start)).total_seconds() // 30)
        first = int((max(off, hyp_start) - hyp_start).total_seconds() // 30)
        sel = trim_in_bed(hyp, "table", recording=rec)
        assert int(sel.keep.sum()) == expected, rec
        np.testing.assert_array_equal(np.flatnonzero(sel.keep),
                                      np.arange(first, first + expected))
        total += expected
        total_scored += int((hyp.stages[sel.keep] != EXCLUDED).sum())
    # The reference preparation reports 38 155 in-bed epochs. The table gives 38 211 in-bed
    # epochs, of which 61 are "Movement time" (no '?'), leaving 38 150 scored epochs: 5 fewer
    # than the reference (0.013 %), see the report of this work.
    assert total == 38211
    assert total_scored == 38150
    assert abs(total_scored - 38155) <= 5


def _raw_stage_texts(shared_dir):
    f = pyedflib.EdfReader(str(shared_dir / HYP))
    _, durations, texts = f.readAnnotations()
    f.close()
    return np.concatenate([[t] * int(d // 30) for d, t in zip(durations, texts)])


def test_wake_margin_and_none(shared_dir):
    hyp = read_hypnogram(shared_dir / HYP)
    texts = _raw_stage_texts(shared_dir)
    sleep = np.flatnonzero(np.isin(texts, ["Sleep stage 1", "Sleep stage 2", "Sleep stage 3",
                                           "Sleep stage 4", "Sleep stage R"]))
    assert sleep[0] == 30630 // 30
    sel = trim_in_bed(hyp, "wake-margin")
    np.testing.assert_array_equal(np.flatnonzero(sel.keep),
                                  np.arange(sleep[0] - 60, sleep[-1] + 61))
    sel10 = trim_in_bed(hyp, "wake-margin", wake_margin_minutes=10)
    assert int(sel10.keep.sum()) == sleep[-1] - sleep[0] + 1 + 40
    whole = trim_in_bed(hyp, None)
    assert whole.keep.all()
    # the trailing unscored part beyond the end of the signals is dropped and counted
    cut = trim_in_bed(hyp, None, psg_start=START, psg_duration=PSG_SECONDS)
    assert int(cut.keep.sum()) == PSG_SECONDS // 30
    assert cut.dropped == {"unscored, beyond the end of the signals": (86400 - 79500) // 30}
    with pytest.raises(ValueError, match="in_bed must be one of"):
        trim_in_bed(hyp, "lights")


# --------------------------------------------------------------------------------------------
# end to end, on a full-length PSG with SC4001E0's real header fields
# --------------------------------------------------------------------------------------------

def _slice_headers(shared_dir):
    f = pyedflib.EdfReader(str(shared_dir / SLICE))
    try:
        headers = f.getSignalHeaders()
        digital = [f.readSignal(i, digital=True).astype(np.int32) for i in range(len(headers))]
        start = f.getStartdatetime()
    finally:
        f.close()
    return headers, digital, start


@pytest.fixture(scope="module")
def full_night(shared_dir, tmp_path_factory):
    """SC4001E0-PSG.edf at full length (79 500 s), every channel and header field as in the
    real file; the signal is the real first 300 s repeated. Plus the real hypnogram."""
    headers, digital, start = _slice_headers(shared_dir)
    assert start == START
    reps = PSG_SECONDS // 300
    signals = {}
    for h, d in zip(headers, digital):
        extra = {k: h[k] for k in ("physical_min", "physical_max", "digital_min",
                                   "digital_max", "prefilter", "transducer")}
        signals[h["label"]] = (np.tile(d, reps), h["sample_frequency"], h["dimension"], extra)
    root = tmp_path_factory.mktemp("sleep-edfx")
    cassette = root / "physionet" / "sleep-cassette"
    cassette.mkdir(parents=True)
    write_psg(cassette / "SC4001E0-PSG.edf", signals, start, record_duration=30)
    shutil.copy(shared_dir / HYP, cassette / "SC4001EC-Hypnogram.edf")
    flat = root / "flat"
    flat.mkdir()
    for name in ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf"):
        os.symlink(cassette / name, flat / name)
    gains = {h["label"]: ((h["physical_max"] - h["physical_min"])
                          / (h["digital_max"] - h["digital_min"]), h) for h in headers}
    return {"root": root / "physionet", "flat": flat, "digital": dict(zip(
        [h["label"] for h in headers], digital)), "gains": gains}


def _expected_microvolts(full_night, label, first_second, n_epochs):
    gain, h = full_night["gains"][label]
    d = full_night["digital"][label]
    out = np.empty((n_epochs, 3000))
    for k in range(n_epochs):
        s0 = (first_second + 30 * k) * 100 % 30000  # the real 300 s repeated
        out[k] = (d[s0: s0 + 3000] - h["digital_min"]) * gain + h["physical_min"]
    return out


def test_load_sleep_edf_physionet_layout(shared_dir, full_night):
    data = load_sleep_edf(full_night["root"], subjects=[0], nights=1)
    # in-bed part of SC4001E0: lights off 00:38 (30 300 s after 16:13), lights on 06:56:30
    # (53 010 s): 757 epochs, none of them movement/unscored
    assert data.X.shape == (757, 3000) and data.X.dtype == np.float32
    assert data.y.dtype == np.int64 and data.y.shape == (757,)
    texts = _raw_stage_texts(shared_dir)[1010:1767]
    aasm = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
            "Sleep stage 4": 3, "Sleep stage R": 4}
    np.testing.assert_array_equal(data.y, [aasm[t] for t in texts])
    expected = _expected_microvolts(full_night, "EEG Fpz-Cz", 30300, 757)
    np.testing.assert_allclose(data.X, expected, atol=1e-4)
    assert (data.groups == 0).all() and data.groups.dtype.kind == "i"
    assert (data.recordings == "SC4001E0").all()
    # in-bed epochs from lights off, 30 300 s after the PSG start, every 30 s
    np.testing.assert_allclose(data.onsets, 30300 + 30.0 * np.arange(757))
    assert data.fs == 100.0 and data.ch_names == ["EEG Fpz-Cz"]
    rep = data.report["SC4001E0"]
    assert rep["kept"] == 757 and rep["excluded"] == {}
    assert rep["trimmed"] == {"unscored, beyond the end of the signals": 230,
                              "before the in-bed part": 1010,
                              "after the in-bed part": (79500 - 53010) // 30}
    assert "SC4001E0" in str(data.report) and "757" in data.description
    # the real hypnogram is gapless and covers the whole PSG: nothing to note
    assert rep["notes"] == []


def test_load_sleep_edf_flat_folder_two_channels(full_night):
    data = load_sleep_edf(full_night["flat"], subjects=range(1), nights=[1],
                          channels=["eeg fpz-cz", "EOG horizontal"], in_bed="wake-margin")
    assert data.ch_names == ["EEG Fpz-Cz", "EOG horizontal"]
    # wake-margin: 60 epochs of Wake before the first sleep epoch (30 630 s)
    first_second = 30630 - 1800
    n = data.X.shape[0]
    assert data.X.shape == (n, 2, 3000)
    np.testing.assert_allclose(data.X[:, 1], _expected_microvolts(
        full_night, "EOG horizontal", first_second, n), atol=1e-3)
    assert data.y[:60].tolist() == [0] * 60 and data.y[60] == 1


def test_missing_night_and_empty_selection(full_night):
    with pytest.raises(FileNotFoundError, match=r"SC4002.*found for this subject.*SC4001"):
        load_sleep_edf(full_night["root"], subjects=[0])
    with pytest.raises(ValueError, match="subjects is empty"):
        load_sleep_edf(full_night["root"], subjects=[])
    with pytest.raises(FileNotFoundError, match="SC4011"):
        load_sleep_edf(full_night["root"], subjects=[1], nights=1)


def test_hypnogram_shorter_than_in_bed_part(shared_dir, full_night, tmp_path):
    f = pyedflib.EdfReader(str(shared_dir / HYP))
    onsets, durations, texts = f.readAnnotations()
    f.close()
    ann = [(o, d, t) for o, d, t in zip(onsets, durations, texts) if o + d <= 45000]
    os.symlink(full_night["root"] / "sleep-cassette" / "SC4001E0-PSG.edf",
               tmp_path / "SC4001E0-PSG.edf")
    write_hypnogram_edf(tmp_path / "SC4001EC-Hypnogram.edf", ann, START)
    end = ann[-1][0] + ann[-1][1]
    with pytest.raises(ValueError, match=rf"shorter than the in-bed part.*{end:g} s.*53010 s"):
        load_sleep_edf(tmp_path, subjects=[0], nights=1)


def _short_recording(folder, name, hyp_texts, start, seconds=None, fs=100,
                     hyp_start=None, label="EEG Fpz-Cz", hyp_name=None):
    seconds = seconds if seconds is not None else 30 * len(hyp_texts)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 20, int(seconds * fs))
    write_psg(folder / f"{name}-PSG.edf", {label: (x, fs, "uV")}, start)
    hyp_name = hyp_name or name[:6] + "EC"
    write_hypnogram_edf(folder / f"{hyp_name}-Hypnogram.edf",
                        hypnogram_annotations_from_stages(hyp_texts), hyp_start or start)
    return x


def test_psg_starting_at_a_fraction_of_a_second_is_cut_on_its_own_clock(tmp_path):
    """A PSG whose first sample is at 23:00:00.5 (EDF+ subsecond start) and a hypnogram
    starting at 23:00:10: epoch k starts 9.5 + 30 k s after the first sample. pyedflib's
    getStartdatetime read the fraction as 0.05 s, and every epoch was cut 45 samples off."""
    from edf_writers import set_subsecond_start

    fs, seconds = 100, 600
    t = np.arange(seconds * fs) / fs                  # seconds after the first sample

    def signal(t):
        return 80 * np.sin(2 * np.pi * 0.21 * t) + 30 * np.sin(2 * np.pi * 0.037 * t)

    psg = tmp_path / "SC4991E0-PSG.edf"
    write_psg(psg, {"EEG Fpz-Cz": (signal(t), fs, "uV")}, START, edf_plus=True)
    set_subsecond_start(psg, 0.5)
    write_hypnogram_edf(tmp_path / "SC4991EC-Hypnogram.edf", [(0, 570, "Sleep stage 2")],
                        START + dt.timedelta(seconds=10))
    data = load_sleep_edf(tmp_path, subjects=[99], nights=1, in_bed=None)
    expected = 9.5 + 30.0 * np.arange(19)
    np.testing.assert_allclose(data.onsets, expected)
    true = signal(expected[:, None] + np.arange(3000) / fs)
    # within the 16-bit quantisation of the 220-uV range; 45 samples off gave up to 50 uV
    np.testing.assert_allclose(data.X, true, atol=0.02)


def test_hypnogram_longer_than_psg(tmp_path):
    texts = ["Sleep stage W"] * 40
    _short_recording(tmp_path, "SC4201E0", texts, START, seconds=900)
    with pytest.raises(ValueError, match=r"longer than its recording.*1200 s.*900 s"):
        load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None)


def test_not_in_table_and_exclusions_reported(tmp_path):
    texts = (["Sleep stage W"] * 4 + ["Sleep stage 1", "Movement time", "Sleep stage 2",
             "Sleep stage ?", "Sleep stage 3", "Sleep stage 4", "Sleep stage R"]
             + ["Sleep stage W"] * 3)
    x = _short_recording(tmp_path, "SC4201E0", texts, START)
    with pytest.raises(ValueError, match=r"SC4201E0.*in_bed='wake-margin'.*in_bed=None"):
        load_sleep_edf(tmp_path, subjects=[20], nights=1)
    data = load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None)
    assert data.y.tolist() == [0] * 4 + [1, 2, 3, 3, 4] + [0] * 3
    assert data.report["SC4201E0"]["excluded"] == {"Movement time": 1, "Sleep stage ?": 1}
    assert data.report.n_excluded == 2
    # the epochs of X are the written samples (the movement epoch 5 is skipped)
    kept = [i for i, t in enumerate(texts) if t not in ("Movement time", "Sleep stage ?")]
    expected = np.stack([x[i * 3000:(i + 1) * 3000] for i in kept])
    np.testing.assert_allclose(data.X, expected, atol=4 * np.abs(x).max() / 65535)  # quantisation
    assert "Movement time" in str(data.report)
    # onsets: each kept epoch's start in the PSG (the hypnogram starts with it here), the
    # excluded epochs 5 and 7 are gaps
    np.testing.assert_array_equal(data.onsets, np.array(kept) * 30.0)


def test_known_missing_night_is_skipped_and_reported(tmp_path):
    _short_recording(tmp_path, "SC4131E0", ["Sleep stage W", "Sleep stage 1"] * 3, START)
    data = load_sleep_edf(tmp_path, subjects=[13], in_bed=None)
    assert set(data.recordings) == {"SC4131E0"}
    assert "SC4132" in data.report.skipped
    assert "SC4132" in str(data.report) and "SC4132" in data.description


def test_st_placebo_nights(tmp_path):
    st_start = dt.datetime(1994, 7, 1, 23, 0)
    # ST subject 2: placebo night 2, temazepam night 1 (ST-subjects.xls)
    _short_recording(tmp_path, "ST7021J0", ["Sleep stage W", "Sleep stage 2"] * 2, st_start,
                     hyp_name="ST7021JM")
    _short_recording(tmp_path, "ST7022J0", ["Sleep stage 1", "Sleep stage R"] * 3, st_start,
                     hyp_name="ST7022JM")
    data = load_sleep_edf(tmp_path, subjects=[2], nights="placebo", study="ST", in_bed=None)
    assert set(data.recordings) == {"ST7022J0"} and data.y.tolist() == [1, 4] * 3
    tema = load_sleep_edf(tmp_path, subjects=[2], nights="temazepam", study="ST", in_bed=None)
    assert set(tema.recordings) == {"ST7021J0"}
    with pytest.raises(ValueError, match="only meaningful for the ST study"):
        load_sleep_edf(tmp_path, subjects=[2], nights="placebo")
    # the table's ST7022J0 recording starts at 23:27:30, not 23:00: wrong file -> error
    with pytest.raises(ValueError, match=r"ST7022J0 starts at 23:27:30.*23:00:00"):
        load_sleep_edf(tmp_path, subjects=[2], nights="placebo", study="ST")


def test_channel_below_requested_rate(tmp_path):
    texts = ["Sleep stage W", "Sleep stage 2"] * 2
    _short_recording(tmp_path, "SC4201E0", texts, START, fs=50)
    with pytest.raises(ValueError, match=r"50 Hz.*allow_upsampling"):
        load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None)
    data = load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None,
                          allow_upsampling=True)
    assert data.X.shape == (4, 3000)
    low = load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None, fs=50)
    assert low.X.shape == (4, 1500) and low.fs == 50.0
    # the DESIGN spelling channel= is an alias of channels=
    alias = load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None, fs=50,
                           channel="eeg fpz-cz")
    np.testing.assert_array_equal(alias.X, low.X)
    with pytest.raises(ValueError, match="not both"):
        load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None, fs=50,
                       channel="EEG Fpz-Cz", channels=["EOG horizontal"])
    # channels given as the default label and another channel=: also both (it used to
    # load channel= silently, since the default could not be told apart from an explicit value)
    with pytest.raises(ValueError, match="not both"):
        load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None, fs=50,
                       channels="EEG Fpz-Cz", channel="EOG horizontal")


def test_a_night_asked_for_twice_is_an_error(tmp_path):
    _short_recording(tmp_path, "SC4201E0", ["Sleep stage W", "Sleep stage 2"] * 2, START)
    with pytest.raises(ValueError, match=r"nights has duplicates: \[1, 1\]"):
        load_sleep_edf(tmp_path, subjects=[20], nights=(1, 1), in_bed=None)
    assert len(load_sleep_edf(tmp_path, subjects=[20], nights=(1,), in_bed=None).y) == 4


def test_files_in_linked_folders_are_found_once(tmp_path):
    # data kept elsewhere and linked into the Sleep-EDF folder, plus a link back up (a loop)
    elsewhere = tmp_path / "disk2" / "sleep-cassette"
    elsewhere.mkdir(parents=True)
    _short_recording(elsewhere, "SC4201E0", ["Sleep stage W", "Sleep stage 2"] * 2, START)
    root = tmp_path / "sleep-edfx"
    root.mkdir()
    (root / "sleep-cassette").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(root, target_is_directory=True)
    files = find_sleep_edf_files(root)
    assert list(files) == [("SC", 20, 1)]
    assert files[("SC", 20, 1)]["psg"].name == "SC4201E0-PSG.edf"
    data = load_sleep_edf(root, subjects=[20], nights=1, in_bed=None)
    assert data.y.tolist() == [0, 2, 0, 2]


def test_nothing_kept_is_an_error_and_an_empty_recording_a_warning(tmp_path):
    # SC4201E0 is all unscored; SC4211E0 is scored
    _short_recording(tmp_path, "SC4201E0", ["Sleep stage ?"] * 6, START)
    _short_recording(tmp_path, "SC4211E0", ["Sleep stage W", "Sleep stage 2"] * 2, START)
    with pytest.raises(ValueError, match=r"no epoch kept.*SC4201E0: 0 kept, excluded "
                                         r"\{'Sleep stage \?': 6\}"):
        load_sleep_edf(tmp_path, subjects=[20], nights=1, in_bed=None)
    with pytest.warns(UserWarning, match=r"SC4201E0 .*kept 0 epochs.*'Sleep stage \?': 6"):
        data = load_sleep_edf(tmp_path, subjects=[20, 21], nights=1, in_bed=None)
    assert data.y.tolist() == [0, 2, 0, 2] and set(data.recordings) == {"SC4211E0"}


def test_gaps_and_unscored_signal_are_noted(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "gap").mkdir()
    x = rng.normal(0, 20, 600 * 100)
    write_psg(tmp_path / "gap" / "SC4201E0-PSG.edf", {"EEG Fpz-Cz": (x, 100, "uV")}, START)
    # 210 s unscored between 90 s and 300 s, then 210 s unscored after 390 s
    write_hypnogram_edf(tmp_path / "gap" / "SC4201EC-Hypnogram.edf",
                        [(0, 90, "Sleep stage W"), (300, 90, "Sleep stage 2")], START)
    data = load_sleep_edf(tmp_path / "gap", subjects=[20], nights=1, in_bed=None)
    # the data are kept as they are: epochs 0-2 then 10-12, adjacent in X
    expected = np.stack([x[i * 3000:(i + 1) * 3000] for i in (0, 1, 2, 10, 11, 12)])
    np.testing.assert_allclose(data.X, expected, atol=4 * np.abs(x).max() / 65535)
    notes = data.report["SC4201E0"]["notes"]
    assert len(notes) == 2
    assert re.search(r"^1 gap\(s\) .* 210 s in all \(at 90-300 s\).*adjacent in X", notes[0])
    assert notes[1] == ("210 s of signal after the end of the hypnogram (at 390 s) are "
                        "unscored and not loaded")
    assert "note: 1 gap(s)" in str(data.report)

    # a hypnogram of 180 s on a 3600-s PSG; less than one epoch before it is not noted
    (tmp_path / "short").mkdir()
    _short_recording(tmp_path / "short", "SC4201E0", ["Sleep stage W"] * 6, START,
                     seconds=3600, hyp_start=START + dt.timedelta(seconds=20))
    short = load_sleep_edf(tmp_path / "short", subjects=[20], nights=1, in_bed=None)
    assert short.report["SC4201E0"]["notes"] == [
        ("3400 s of signal after the end of the hypnogram (at 200 s) are unscored and not "
         "loaded")]
    # and 60 s before it is noted
    (tmp_path / "late").mkdir()
    _short_recording(tmp_path / "late", "SC4201E0", ["Sleep stage W"] * 6, START,
                     seconds=240, hyp_start=START + dt.timedelta(seconds=60))
    late = load_sleep_edf(tmp_path / "late", subjects=[20], nights=1, in_bed=None)
    assert late.report["SC4201E0"]["notes"] == [
        "60 s of signal before the start of the hypnogram are unscored and not loaded"]


def test_subjects_and_nights_must_be_integers(tmp_path):
    _short_recording(tmp_path, "SC4201E0", ["Sleep stage W"] * 4, START)
    _short_recording(tmp_path, "SC4021E0", ["Sleep stage W"] * 4, START)
    _short_recording(tmp_path, "SC4001E0", ["Sleep stage W"] * 4, START)
    with pytest.raises(TypeError, match=r"subjects must be an integer .* the string '20'"):
        load_sleep_edf(tmp_path, subjects="20", nights=1, in_bed=None)
    with pytest.raises(ValueError, match=r"subjects must hold whole numbers, got 20\.7"):
        load_sleep_edf(tmp_path, subjects=[20.7], nights=1, in_bed=None)
    with pytest.raises(TypeError, match=r"subjects .* the bool True"):
        load_sleep_edf(tmp_path, subjects=[True], nights=1, in_bed=None)
    with pytest.raises(ValueError, match=r"nights must hold whole numbers, got 1\.5"):
        load_sleep_edf(tmp_path, subjects=[20], nights=[1.5], in_bed=None)
    with pytest.raises(TypeError, match=r"nights .* the bool True"):
        load_sleep_edf(tmp_path, subjects=[20], nights=True, in_bed=None)
    # integers, numpy integers and whole floats keep working
    for subjects in (20, [20], np.array([20]), [20.0]):
        data = load_sleep_edf(tmp_path, subjects=subjects, nights=1, in_bed=None)
        assert set(data.recordings) == {"SC4201E0"}
