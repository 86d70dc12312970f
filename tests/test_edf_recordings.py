"""load_edf_recordings: a researcher's own PSG + EDF+ hypnogram pairs, written with pyedflib,
with expectations derived from the written samples and stage texts."""

import datetime as dt

import numpy as np
import pytest
from edf_writers import (
    hypnogram_annotations_from_stages,
    write_hypnogram_edf,
    write_psg,
)
from sklearn.pipeline import make_pipeline

from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
from skseqsleep.datasets import load_edf_recordings

START = dt.datetime(2021, 3, 4, 22, 15, 0)
AASM = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
        "Sleep stage 4": 3, "Sleep stage R": 4}


def _night(folder, name, texts, *, seed, hyp_delay=0, fs=200, label="EEG C4-M1"):
    """A PSG at ``fs`` Hz starting at START (sample k = its own index, to find epochs) and a
    hypnogram starting ``hyp_delay`` s later; returns (psg, hypnogram, signal in µV)."""
    seconds = 30 * len(texts) + hyp_delay + 60
    x = np.random.default_rng(seed).normal(0, 30, seconds * fs)
    psg = folder / f"{name}.edf"
    write_psg(psg, {label: (x, fs, "uV"), "EMG chin": (x[::-1].copy(), fs, "uV")}, START)
    hyp = folder / f"{name}_hypnogram.edf"
    write_hypnogram_edf(hyp, hypnogram_annotations_from_stages(texts),
                        START + dt.timedelta(seconds=hyp_delay))
    return psg, hyp, x


def test_own_recordings_are_cut_at_their_scored_epochs(tmp_path):
    texts_a = (["Sleep stage W"] * 3 + ["Sleep stage 1", "Movement time", "Sleep stage 2",
               "Sleep stage 3", "Sleep stage 4", "Sleep stage R", "Sleep stage ?"]
               + ["Sleep stage 2"] * 2)
    texts_b = ["Sleep stage W", "Sleep stage 2", "Sleep stage R"] * 3
    psg_a, hyp_a, xa = _night(tmp_path, "p07_night1", texts_a, seed=0, hyp_delay=20)
    psg_b, hyp_b, _ = _night(tmp_path, "p07_night2", texts_b, seed=1)
    data = load_edf_recordings({"n1": (psg_a, hyp_a), "n2": (psg_b, hyp_b)}, "EEG C4-M1",
                               subjects={"n1": "p07", "n2": "p07"})
    kept_a = [i for i, t in enumerate(texts_a) if t in AASM]
    kept_b = list(range(len(texts_b)))
    # stages from the texts by hand (S3 and S4 -> N3); movement and '?' left out, counted
    assert data.y.tolist() == [AASM[texts_a[i]] for i in kept_a] + [AASM[t] for t in texts_b]
    assert data.report["n1"]["excluded"] == {"Movement time": 1, "Sleep stage ?": 1}
    assert data.report["n1"]["kept"] == len(kept_a) and data.report["n2"]["kept"] == 9
    # onsets on each PSG's clock: the first hypnogram starts 20 s after its PSG
    np.testing.assert_allclose(data.onsets, [20 + 30 * i for i in kept_a]
                               + [30 * i for i in kept_b])
    # X: the written samples at those onsets, resampled 200 -> 100 Hz (the stream is white
    # noise, so compare with the decimated signal's low-passed copy through correlation)
    assert data.X.shape == (len(kept_a) + 9, 3000) and data.X.dtype == np.float32
    from scipy.signal import resample_poly

    ya = resample_poly(xa, 1, 2)
    expected = np.stack([ya[int(t * 100):int(t * 100) + 3000] for t in data.onsets[:len(kept_a)]])
    np.testing.assert_allclose(data.X[:len(kept_a)], expected, atol=0.05)
    assert data.recordings.tolist() == ["n1"] * len(kept_a) + ["n2"] * 9
    assert set(data.groups.tolist()) == {"p07"} and data.groups.dtype.kind == "U"
    assert data.fs == 100.0 and data.ch_names == ["EEG C4-M1"]
    assert "2 EDF recording(s) of 1 subject(s)" in data.description


def test_pairs_take_the_file_names_as_ids_and_each_is_its_own_subject(tmp_path):
    texts = ["Sleep stage W", "Sleep stage 2", "Sleep stage 2"]
    psg_a, hyp_a, x = _night(tmp_path, "s1", texts, seed=0)
    b = _night(tmp_path, "s2", texts, seed=1)[:2]
    data = load_edf_recordings([(psg_a, hyp_a), b], ["EEG C4-M1", "EMG chin"], fs=200)
    assert data.X.shape == (6, 2, 6000)
    assert list(dict.fromkeys(data.recordings)) == ["s1", "s2"]
    np.testing.assert_array_equal(data.groups, data.recordings)
    # at the file's own rate: the written samples of each channel (EMG = the EEG reversed),
    # within the 16-bit quantisation of the written range
    step = 2 * 2 * np.abs(x).max() * 1.02 / 65535   # two steps: the header rounds the range
    for k in range(3):
        np.testing.assert_allclose(data.X[k, 0], x[6000 * k:6000 * (k + 1)], atol=step)
        np.testing.assert_allclose(data.X[k, 1], x[::-1][6000 * k:6000 * (k + 1)], atol=step)


def test_own_recordings_train_a_pipeline(tmp_path):
    texts = (["Sleep stage W"] * 4 + ["Sleep stage 1", "Sleep stage 2", "Sleep stage 3",
             "Sleep stage R"] * 3)
    recs = {f"r{i}": _night(tmp_path, f"r{i}", texts, seed=i)[:2] for i in range(3)}
    data = load_edf_recordings(recs, "EEG C4-M1")
    pipe = make_pipeline(SpectrogramTransformer(fs=data.fs), SeqSleepClassifier(
        seq_len=4, max_epochs=1, batch_size=4, verbose=0, random_state=0, device="cpu",
        module__n_filters=4, module__rnn_hidden=4, module__attention_size=4))
    pipe.fit(data.X, data.y, seqsleepclassifier__groups=data.groups,
             seqsleepclassifier__recordings=data.recordings)
    assert pipe.predict(data.X, recordings=data.recordings).shape == data.y.shape


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"recordings": {}}, ValueError, "recordings is empty"),
    ({"recordings": "night.edf"}, TypeError, "mapping .* or a sequence of"),
    ({"recordings": [("a.edf",)]}, ValueError, r"\(psg, hypnogram\) pair"),
    ({"recordings": {"x": ("nowhere.edf", "nohyp.edf")}}, FileNotFoundError,
     "recording 'x': the PSG file nowhere.edf does not exist"),
    ({"in_bed": "table"}, ValueError, "'table' of lights-off times is Sleep-EDF's"),
    ({"subjects": {"a": 1}}, ValueError, r"missing \['b'\]"),
    ({"subjects": {"a": 1, "b": 2, "c": 3}}, ValueError, r"unknown \['c'\]"),
    ({"subjects": {"a": 1, "b": "1"}}, ValueError, "all str or all int"),
    ({"channels": "EEG Fpz-Cz"}, ValueError, "EEG Fpz-Cz"),
])
def test_bad_input_is_named(tmp_path, kwargs, error, match):
    texts = ["Sleep stage W", "Sleep stage 2"]
    recs = {"a": _night(tmp_path, "a", texts, seed=0)[:2],
            "b": _night(tmp_path, "b", texts, seed=1)[:2]}
    args = {"recordings": recs, "channels": "EEG C4-M1", **kwargs}
    with pytest.raises(error, match=match):
        load_edf_recordings(args.pop("recordings"), args.pop("channels"), **args)


def test_repeated_file_names_need_a_mapping(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    texts = ["Sleep stage W", "Sleep stage 2"]
    a = _night(tmp_path / "x", "night", texts, seed=0)[:2]
    b = _night(tmp_path / "y", "night", texts, seed=1)[:2]
    with pytest.raises(ValueError, match=r"\['night'\] name several recordings"):
        load_edf_recordings([a, b], "EEG C4-M1")
