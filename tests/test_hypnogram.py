"""Tests of read_hypnogram on the 39 official Sleep-EDF-SC-20 hypnograms and on written files."""

import datetime as dt
import itertools
import re
from collections import Counter

import numpy as np
import pytest
from edf_writers import write_hypnogram_edf

from skseqsleep._constants import EXCLUDED
from skseqsleep.datasets._hypnogram import read_hypnogram


def _raw_tals(path):
    """Parse the EDF+ annotation records by hand (independent of pyedflib).

    Returns the start datetime and [(onset, duration, text)] of every annotation that has
    a duration (the per-record time-keeping TALs have none).
    """
    raw = path.read_bytes()
    header_bytes = int(raw[184:192].decode())
    start = dt.datetime.strptime(raw[168:184].decode(), "%d.%m.%y%H.%M.%S")
    if start.year < 1985:  # EDF's two-digit years: 85-99 -> 19xx, 00-84 -> 20xx
        start = start.replace(year=start.year + 100)
    body = raw[header_bytes:].decode("latin-1")
    out = []
    for tal in body.split("\x14\x00"):
        tal = tal.strip("\x00")
        m = re.match(r"([+-][0-9.]+)\x15([0-9.]+)\x14(.*)", tal, re.DOTALL)
        if m:
            for text in m.group(3).split("\x14"):
                if text:
                    out.append((float(m.group(1)), float(m.group(2)), text))
    return start, out


def test_all_39_sc20_hypnograms(shared_dir):
    files = sorted((shared_dir / "data/sleep-edf/hypnograms").glob("SC4*-Hypnogram.edf"))
    assert len(files) == 39
    subjects = Counter(int(f.name[3:5]) for f in files)
    assert sorted(subjects) == list(range(20)) and subjects[13] == 1
    expected_label = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2,
                      "Sleep stage 3": 3, "Sleep stage 4": 3, "Sleep stage R": 4,
                      "Sleep stage ?": EXCLUDED, "Movement time": EXCLUDED}
    for path in files:
        start, tals = _raw_tals(path)
        hyp = read_hypnogram(path)
        assert hyp.start_time == start, path.name
        # independent count: epochs per text = sum of durations / 30
        seconds = Counter()
        for _, duration, text in tals:
            seconds[text] += duration
        assert hyp.counts == {t: s / 30 for t, s in seconds.items()}, path.name
        assert hyp.n_annotations == dict(Counter(t for _, _, t in tals)), path.name
        # per-epoch labels follow the R&K -> AASM map, epoch by epoch
        expected = np.concatenate([[expected_label[t]] * int(d // 30) for _, d, t in tals])
        np.testing.assert_array_equal(hyp.stages, expected)
        assert hyp.stages.dtype == np.int64
        np.testing.assert_array_equal(hyp.onsets, 30.0 * np.arange(len(expected)))
        assert hyp.duration == tals[-1][0] + tals[-1][1]
        # every annotation starts where the previous one ends: no gap in the official files
        assert all(b[0] == a[0] + a[1] for a, b in itertools.pairwise(tals)), path.name
        assert hyp.gaps.shape == (0, 2), path.name
        excluded_texts = set(hyp.texts[hyp.stages == EXCLUDED])
        assert excluded_texts <= {"Sleep stage ?", "Movement time"}


def test_sc4001ec_known_facts(shared_dir):
    hyp = read_hypnogram(shared_dir / "data/sleep-edf/SC4001EC-Hypnogram.edf")
    assert hyp.start_time == dt.datetime(1989, 4, 24, 16, 13)
    assert sum(hyp.n_annotations.values()) == 154
    assert hyp.duration == 86400.0
    assert len(hyp.stages) == 2880
    # the first annotation is 30 630 s of Wake, then 120 s of stage 1
    assert (hyp.stages[:1021] == 0).all() and (hyp.stages[1021:1025] == 1).all()
    assert hyp.texts[-1] == "Sleep stage ?" and hyp.stages[-1] == EXCLUDED


def test_20_second_epochs_and_gaps(tmp_path):
    path = write_hypnogram_edf(tmp_path / "base.edf", [
        (10, 40, "Sleep stage W"), (50, 20, "Sleep stage 4"), (110, 20, "Movement time"),
    ])
    hyp = read_hypnogram(path, epoch_seconds=20)
    np.testing.assert_array_equal(hyp.stages, [0, 0, 3, EXCLUDED])
    np.testing.assert_array_equal(hyp.onsets, [10, 30, 50, 110])
    assert list(hyp.texts) == ["Sleep stage W"] * 2 + ["Sleep stage 4", "Movement time"]
    np.testing.assert_array_equal(hyp.gaps, [[70, 40]])   # from 70 s (50 + 20) to 110 s
    with pytest.raises(ValueError, match=r"base\.edf.*40 s.*whole number of 30-s epochs"):
        read_hypnogram(path)


def test_unknown_annotation_text(tmp_path):
    path = write_hypnogram_edf(tmp_path / "h.edf", [(0, 30, "Sleep stage W"),
                                                    (30, 30, "Lights off")])
    with pytest.raises(ValueError) as err:
        read_hypnogram(path)
    msg = str(err.value)
    assert "Lights off" in msg and "h.edf" in msg
    assert "Sleep stage R" in msg and "Movement time" in msg
    hyp = read_hypnogram(path, ignore_texts=["Lights off"])
    assert hyp.ignored == {"Lights off": 1}
    np.testing.assert_array_equal(hyp.stages, [0])
    # one string is one text, not a set of characters
    one = read_hypnogram(path, ignore_texts="Lights off")
    assert one.ignored == {"Lights off": 1}
    np.testing.assert_array_equal(one.stages, [0])
    with pytest.raises(TypeError, match=r"ignore_texts must be a string or an iterable of "
                                        r"strings, got \[1\]"):
        read_hypnogram(path, ignore_texts=[1])


def test_not_whole_epochs_and_overlap(tmp_path):
    path = write_hypnogram_edf(tmp_path / "h.edf", [(0, 45, "Sleep stage W")])
    with pytest.raises(ValueError, match=r"45 s.*whole number of 30-s"):
        read_hypnogram(path)
    path = write_hypnogram_edf(tmp_path / "o.edf", [(0, 60, "Sleep stage W"),
                                                    (30, 30, "Sleep stage 1")])
    with pytest.raises(ValueError, match="overlaps"):
        read_hypnogram(path)


def test_corrupt_hypnogram(tmp_path):
    path = tmp_path / "SC4001EC-Hypnogram.edf"
    path.write_bytes(b"0       " + b"x" * 300)
    with pytest.raises(ValueError, match=r"SC4001EC-Hypnogram\.edf.*truncated or corrupt"):
        read_hypnogram(path)


def test_discontinuous_hypnogram_is_refused_with_advice(tmp_path):
    path = write_hypnogram_edf(tmp_path / "h.edf", [(0, 60, "Sleep stage W")])
    raw = bytearray(path.read_bytes())
    assert raw[192:197] == b"EDF+C"   # as the 39 official SC-20 hypnograms
    raw[192:197] = b"EDF+D"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"h\.edf' is an EDF\+D \(discontinuous\).*EDF\+C"):
        read_hypnogram(path)


def test_annotation_without_duration(tmp_path):
    path = write_hypnogram_edf(tmp_path / "h.edf", [(0, -1, "Sleep stage W"),
                                                    (30, 30, "Sleep stage 2")])
    with pytest.raises(ValueError, match=r"'Sleep stage W' at 0 s in hypnogram .*h\.edf has no "
                                         r"duration") as err:
        read_hypnogram(path)
    assert "-1" not in str(err.value)


def test_epochs_finer_than_the_scoring_are_refused(shared_dir, tmp_path):
    real = shared_dir / "data/sleep-edf/SC4001EC-Hypnogram.edf"
    with pytest.raises(ValueError, match=r"epoch_seconds=15 is shorter than the scoring "
                                         r"resolution of hypnogram .*SC4001EC-Hypnogram\.edf.*"
                                         r"multiple of 30 s.*into 2.*epoch_seconds=30"):
        read_hypnogram(real, epoch_seconds=15)
    # a MASS-like hypnogram of 20-s epochs read in 10-s epochs
    mass = write_hypnogram_edf(tmp_path / "base.edf", [(10, 20, "Sleep stage W"),
                                                       (30, 40, "Sleep stage 2")])
    with pytest.raises(ValueError, match=r"epoch_seconds=10 .*multiple of 20 s.*into 2"):
        read_hypnogram(mass, epoch_seconds=10)
    assert len(read_hypnogram(mass, epoch_seconds=20).stages) == 3
    # 15-s epochs are accepted where the annotations need them (an onset at 45 s)
    fine = write_hypnogram_edf(tmp_path / "fine.edf", [(0, 30, "Sleep stage W"),
                                                       (45, 30, "Sleep stage 2")])
    hyp = read_hypnogram(fine, epoch_seconds=15)
    np.testing.assert_array_equal(hyp.onsets, [0, 15, 45, 60])
