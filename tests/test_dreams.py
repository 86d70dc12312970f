"""Tests of the DREAMS Sleep Spindles reader on the 8 real excerpts (test use only, CC BY-NC-ND)."""

import numpy as np
import pytest

from skseqsleep._constants import EXCLUDED
from skseqsleep.datasets.dreams import load_dreams, read_dreams_excerpt

# README facts: samples / 1800 s
RATES = {1: 100, 2: 200, 3: 50, 4: 200, 5: 200, 6: 200, 7: 200, 8: 200}
# R&K code -> AASM label, written out by hand: 5=W, 4=REM, 3=S1, 2=S2, 1=S3, 0=S4
AASM = {5: 0, 4: 4, 3: 1, 2: 2, 1: 3, 0: 3}


def _expected_epochs(folder, e):
    lines = (folder / f"Hypnogram_excerpt{e}.txt").read_text().split()
    assert lines[0] == "[Hypnogram]"
    codes = [int(v) for v in lines[1:]]
    labels, excluded, kept = [], 0, []
    for k in range(0, len(codes), 6):
        six = codes[k:k + 6]
        mapped = {AASM.get(c, "unscored") for c in six}
        if len(mapped) == 1 and "unscored" not in mapped:
            labels.append(mapped.pop())
            kept.append(k // 6)
        else:
            excluded += 1
    return labels, excluded, kept


def _samples(folder, e):
    lines = (folder / f"excerpt{e}.txt").read_text().split()
    return lines[0], np.array(lines[1:], dtype=float)


@pytest.fixture(scope="module")
def dreams(shared_dir):
    return shared_dir / "data/dreams"


@pytest.fixture(scope="module")
def loaded(dreams):
    return load_dreams(dreams)


def test_default_skips_50hz_excerpt_and_reports_it(loaded):
    assert "excerpt3" in loaded.report.skipped
    assert "50 Hz" in loaded.report.skipped["excerpt3"]
    assert "excerpt3" in str(loaded.report) and "excerpt3" in loaded.description
    assert sorted(set(loaded.recordings)) == [f"excerpt{e}" for e in (1, 2, 4, 5, 6, 7, 8)]


def test_epoch_counts_and_exclusions(dreams, loaded):
    total = 0
    for e in (1, 2, 4, 5, 6, 7, 8):
        labels, n_excluded, kept = _expected_epochs(dreams, e)
        name = f"excerpt{e}"
        rows = loaded.recordings == name
        np.testing.assert_array_equal(loaded.y[rows], labels)
        # each kept epoch's start in the excerpt: its 30-s slot, with gaps where excluded
        np.testing.assert_array_equal(loaded.onsets[rows], np.array(kept) * 30.0)
        assert loaded.report[name]["kept"] == len(labels)
        assert sum(loaded.report[name]["excluded"].values()) == n_excluded
        assert len(labels) + n_excluded == 60
        total += len(labels)
    assert loaded.X.shape == (total, 3000) and loaded.X.dtype == np.float32
    assert loaded.y.dtype == np.int64 and loaded.onsets.dtype == np.float64
    np.testing.assert_array_equal(loaded.groups, loaded.recordings)
    assert loaded.ch_names == ["C3-A1/CZ-A1"]
    assert loaded.derivations["excerpt1"] == "C3-A1"
    assert loaded.derivations["excerpt2"] == "CZ-A1"


def test_100hz_excerpt_values_unchanged(dreams, loaded):
    header, x = _samples(dreams, 1)
    assert header == "[C3-A1]" and len(x) == 180000
    ex = read_dreams_excerpt(dreams / "excerpt1.txt", dreams / "Hypnogram_excerpt1.txt")
    assert ex.original_fs == 100.0 and ex.ch_names == ["C3-A1"]
    np.testing.assert_array_equal(ex.signals[0], x)
    keep = np.flatnonzero(ex.stages != EXCLUDED)
    epochs = x.reshape(60, 3000)[keep].astype(np.float32)
    np.testing.assert_array_equal(loaded.X[loaded.recordings == "excerpt1"], epochs)


def test_200hz_excerpt_with_extra_samples(dreams):
    _, x = _samples(dreams, 6)
    assert len(x) == 360140
    ex = read_dreams_excerpt(dreams / "excerpt6.txt", dreams / "Hypnogram_excerpt6.txt")
    assert ex.original_fs == 200.0 and ex.n_extra_samples == 140
    assert any("140 trailing samples" in n for n in ex.notes)
    assert ex.signals.shape == (1, 180000)
    # resampled to 100 Hz: close to a plain 2-sample average of the original (EEG power is
    # far below 50 Hz), yet not identical (a proper anti-aliasing filter)
    pairs = x[:360000].reshape(-1, 2).mean(axis=1)
    r = np.corrcoef(ex.signals[0, 100:-100], pairs[100:-100])[0, 1]
    assert r > 0.98
    at200 = read_dreams_excerpt(dreams / "excerpt6.txt", dreams / "Hypnogram_excerpt6.txt",
                                fs=200)
    np.testing.assert_array_equal(at200.signals[0], x[:360000])


def test_50hz_excerpt_error_unless_upsampling(dreams):
    with pytest.raises(ValueError, match=r"excerpt3\.txt.*50 Hz.*allow_upsampling"):
        read_dreams_excerpt(dreams / "excerpt3.txt", dreams / "Hypnogram_excerpt3.txt")
    with pytest.raises(ValueError, match=r"excerpt3\.txt.*50 Hz"):
        load_dreams(dreams, excerpts=[3])
    data = load_dreams(dreams, excerpts=[3], allow_upsampling=True)
    labels, n_excluded, keep = _expected_epochs(dreams, 3)
    assert data.X.shape == (len(labels), 3000)
    assert data.report["excerpt3"]["excluded"] == {"mixed stages within the 30-s epoch":
                                                   n_excluded}
    at50 = load_dreams(dreams, excerpts=3, fs=50)
    assert at50.X.shape == (len(labels), 1500) and at50.fs == 50.0
    _, x = _samples(dreams, 3)
    np.testing.assert_array_equal(at50.X, x.reshape(60, 1500)[keep].astype(np.float32))


def _write(tmp_path, signal_lines, hyp_values, header="[C3-A1]"):
    sig = tmp_path / "excerpt1.txt"
    sig.write_text(header + "\n" + "\n".join(signal_lines) + "\n")
    hyp = tmp_path / "Hypnogram_excerpt1.txt"
    hyp.write_text("[Hypnogram]\n" + "\n".join(str(v) for v in hyp_values) + "\n")
    return sig, hyp


def test_unscored_and_mixed_epochs(tmp_path):
    values = [5] * 6 + [1, 0, 1, 0, 0, 0] + [2] * 5 + [-1] + [3] * 5 + [2] + [4] * 6
    values += [2] * (360 - len(values))
    sig, hyp = _write(tmp_path, ["1.5"] * 180000, values)
    ex = read_dreams_excerpt(sig, hyp)
    assert ex.stages[:5].tolist() == [0, 3, EXCLUDED, EXCLUDED, 4]
    assert ex.reasons[2] == "unscored/movement 5-s value"
    assert ex.reasons[3] == "mixed stages within the 30-s epoch"
    data = load_dreams(tmp_path)
    assert data.report["excerpt1"]["excluded"] == {"unscored/movement 5-s value": 1,
                                                   "mixed stages within the 30-s epoch": 1}
    assert data.X.shape == (58, 3000) and np.all(data.X == 1.5)


def test_bad_inputs(tmp_path):
    sig, hyp = _write(tmp_path, ["1.0"] * 179999 + ["nan"], [5] * 360)
    with pytest.raises(ValueError, match=r"excerpt1\.txt.*non-finite.*180000"):
        read_dreams_excerpt(sig, hyp)
    sig, hyp = _write(tmp_path, ["1.0"] * 170000, [5] * 360)
    with pytest.raises(ValueError, match=r"excerpt1\.txt.*94\.4444 Hz"):
        read_dreams_excerpt(sig, hyp)
    sig, hyp = _write(tmp_path, ["1.0"] * 179900, [5] * 360)
    with pytest.raises(ValueError, match="truncated"):
        read_dreams_excerpt(sig, hyp)
    sig, hyp = _write(tmp_path, ["1.0"] * 180000, [5] * 359)
    with pytest.raises(ValueError, match=r"Hypnogram_excerpt1\.txt.*360.*359"):
        read_dreams_excerpt(sig, hyp)
    sig, hyp = _write(tmp_path, ["1.0"] * 180000, [5] * 359 + [7])
    with pytest.raises(ValueError, match=r"unknown stage code.*7"):
        read_dreams_excerpt(sig, hyp)
    sig, hyp = _write(tmp_path, ["1.0", "x"] * 90000, [5] * 360)
    with pytest.raises(ValueError, match="non-numeric"):
        read_dreams_excerpt(sig, hyp)
    with pytest.raises(FileNotFoundError, match=r"excerpt\(s\) \[9\]"):
        load_dreams(tmp_path, excerpts=[9])
    with pytest.raises(ValueError, match="excerpts is empty"):
        load_dreams(tmp_path, excerpts=[])
    with pytest.raises(ValueError, match=r"excerpts has duplicates: \[1, 1\]"):
        load_dreams(tmp_path, excerpts=[1, 1])
    sig, hyp = _write(tmp_path, ["1.0"] * 180000, [5] * 360)
    with pytest.raises(ValueError, match=r"fs=33\.33 Hz does not give a whole number of "
                                         r"samples per 30-s epoch"):
        load_dreams(tmp_path, fs=33.33, allow_upsampling=True)


def test_nothing_kept_is_an_error_and_an_empty_excerpt_a_warning(tmp_path):
    _write(tmp_path, ["1.0"] * 180000, [-1] * 360)
    with pytest.raises(ValueError, match=r"no epoch kept.*excerpt1: 0 kept, excluded "
                                         r"\{'unscored/movement 5-s value': 60\}"):
        load_dreams(tmp_path)
    (tmp_path / "excerpt2.txt").write_text("[C3-A1]\n" + "\n".join(["2.0"] * 180000) + "\n")
    (tmp_path / "Hypnogram_excerpt2.txt").write_text("[Hypnogram]\n" + "\n".join(["2"] * 360))
    with pytest.warns(UserWarning, match=r"excerpt1 .*kept 0 epochs"):
        data = load_dreams(tmp_path)
    assert data.X.shape == (60, 3000) and set(data.recordings) == {"excerpt2"}


def test_excerpts_must_be_integers(tmp_path):
    _write(tmp_path, ["1.0"] * 180000, [5] * 360)
    with pytest.raises(TypeError, match=r"excerpts must be an integer .* the string '1'"):
        load_dreams(tmp_path, excerpts="1")
    with pytest.raises(ValueError, match=r"excerpts must hold whole numbers, got 1\.5"):
        load_dreams(tmp_path, excerpts=[1.5])
    with pytest.raises(TypeError, match=r"excerpts .* the bool True"):
        load_dreams(tmp_path, excerpts=True)
    assert load_dreams(tmp_path, excerpts=1).X.shape == (60, 3000)
