"""Tests of read_psg on the real Sleep-EDF slice and on EDF files written with pyedflib."""

import datetime as dt
import os

import numpy as np
import pyedflib
import pytest
from edf_writers import set_subsecond_start, write_psg

from skseqsleep.datasets._edf import edf_start_time, match_label, open_edf, read_psg

SLICE = "data/sleep-edf/SC4001E0-PSG-first300s.edf"


def _raw_header_and_first_record(path):
    """Parse the EDF header and the first data record by hand (independent of pyedflib)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    ns = int(raw[252:256].decode())
    rec_dur = float(raw[244:252].decode())

    def field(offset, width):
        base = 256 + offset * ns
        return [raw[base + i * width: base + (i + 1) * width].decode().strip()
                for i in range(ns)]

    labels = field(0, 16)
    dims = field(16 + 80, 8)
    pmin = [float(v) for v in field(16 + 80 + 8, 8)]
    pmax = [float(v) for v in field(16 + 80 + 16, 8)]
    dmin = [int(v) for v in field(16 + 80 + 24, 8)]
    dmax = [int(v) for v in field(16 + 80 + 32, 8)]
    nsr = [int(v) for v in field(16 + 80 + 40 + 80, 8)]
    header_bytes = int(raw[184:192].decode())
    record = np.frombuffer(raw[header_bytes: header_bytes + 2 * sum(nsr)], dtype="<i2")
    digital, pos = [], 0
    for n in nsr:
        digital.append(record[pos: pos + n].astype(np.int64))
        pos += n
    start = raw[168:176].decode() + " " + raw[176:184].decode()
    return {"labels": labels, "dims": dims, "pmin": pmin, "pmax": pmax, "dmin": dmin,
            "dmax": dmax, "nsr": nsr, "rec_dur": rec_dur, "digital": digital, "start": start}


def test_real_slice_header_and_microvolts(shared_dir):
    path = shared_dir / SLICE
    hdr = _raw_header_and_first_record(path)
    assert hdr["start"] == "24.04.89 16.13.00"
    psg = read_psg(path, ["EEG Fpz-Cz", "EOG horizontal"])
    assert psg.start_time == dt.datetime(1989, 4, 24, 16, 13, 0)
    assert psg.signals.shape == (2, 30000)
    assert psg.signals.dtype == np.float64
    assert psg.fs == 100.0 and psg.duration == 300.0
    assert psg.original_fs == [100.0, 100.0]
    assert psg.file_labels == hdr["labels"]
    assert psg.ch_names == ["EEG Fpz-Cz", "EOG horizontal"]
    for row, label in enumerate(psg.ch_names):
        i = hdr["labels"].index(label)
        assert hdr["dims"][i] == "uV"
        gain = (hdr["pmax"][i] - hdr["pmin"][i]) / (hdr["dmax"][i] - hdr["dmin"][i])
        expected = (hdr["digital"][i] - hdr["dmin"][i]) * gain + hdr["pmin"][i]
        n = hdr["nsr"][i]
        assert n == 3000  # 30-s data records at 100 Hz
        np.testing.assert_allclose(psg.signals[row, :n], expected, rtol=0, atol=1e-9)
    # EEG amplitudes in µV are tens of µV, not fractions (would be mV)
    assert 5 < np.std(psg.signals[0]) < 200


def test_real_slice_rates_of_1hz_channels(shared_dir):
    path = shared_dir / SLICE
    hdr = _raw_header_and_first_record(path)
    assert hdr["nsr"][hdr["labels"].index("EMG submental")] == 30  # 1 Hz
    with pytest.raises(ValueError, match=r"EMG submental.*1 Hz.*allow_upsampling"):
        read_psg(path, "EMG submental")
    psg = read_psg(path, "EMG submental", allow_upsampling=True)
    assert psg.original_fs == [1.0]
    assert psg.signals.shape == (1, 30000)
    psg1 = read_psg(path, "EMG submental", fs=1)
    assert psg1.signals.shape == (1, 300)
    i = hdr["labels"].index("EMG submental")
    gain = (hdr["pmax"][i] - hdr["pmin"][i]) / (hdr["dmax"][i] - hdr["dmin"][i])
    np.testing.assert_allclose(psg1.signals[0, :30],
                               (hdr["digital"][i] - hdr["dmin"][i]) * gain + hdr["pmin"][i],
                               atol=1e-9)


@pytest.mark.parametrize("variant", ["eeg fpz-cz", "EEG  Fpz-Cz", " EEG FPZ-CZ ", "EEG Fpz Cz",
                                     "eeg_fpz_cz", "EEGFpzCz"])
def test_real_slice_label_variants(shared_dir, variant):
    psg = read_psg(shared_dir / SLICE, variant)
    assert psg.ch_names == ["EEG Fpz-Cz"]
    ref = read_psg(shared_dir / SLICE, "EEG Fpz-Cz")
    np.testing.assert_array_equal(psg.signals, ref.signals)


def test_real_slice_missing_channel_lists_labels(shared_dir):
    with pytest.raises(ValueError) as err:
        read_psg(shared_dir / SLICE, "EEG C4-A1")
    msg = str(err.value)
    assert "EEG C4-A1" in msg and "SC4001E0-PSG-first300s.edf" in msg
    for label in ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "Resp oro-nasal",
                  "EMG submental", "Temp rectal", "Event marker"]:
        assert label in msg


def test_real_slice_non_voltage_dimension(shared_dir):
    with pytest.raises(ValueError, match=r"Temp rectal.*DegC.*uV"):
        read_psg(shared_dir / SLICE, "Temp rectal", fs=1)
    with pytest.raises(ValueError, match=r"Resp oro-nasal.*''"):
        read_psg(shared_dir / SLICE, "Resp oro-nasal", fs=1)


def test_match_label_ambiguity():
    assert match_label("EEG C4 CLE", ["EEG C4-CLE", "EEG A1-CLE"]) == "EEG C4-CLE"
    # exact / case-insensitive matches win before the hyphen-blind step
    assert match_label("eeg c4-a1", ["EEG C4-A1", "EEG C4A1"]) == "EEG C4-A1"
    with pytest.raises(ValueError, match="ambiguous"):
        match_label("EEG-C4-A1", ["EEG C4-A1", "EEG C4A1"])


def test_repeated_label_is_ambiguous(tmp_path):
    # EDF labels are space-padded: "EEG Fpz-Cz" and "EEG Fpz-Cz " are the same label
    path = write_psg(tmp_path / "dup.edf", {
        "EEG Fpz-Cz": (np.ones(1000), 100, "uV"), "EOG": (np.ones(1000), 100, "uV"),
        "EEG Fpz-Cz ": (np.zeros(2000), 200, "uV")})
    for wanted in ("EEG Fpz-Cz", "eeg fpz cz", ["EOG", "EEG Fpz-Cz"],
                   [("EOG", "EEG Fpz-Cz")]):
        with pytest.raises(ValueError, match=r"label 'EEG Fpz-Cz' is ambiguous in .*dup\.edf: "
                                             r"signals 0 \(100 Hz\), 2 \(200 Hz\) carry it"):
            read_psg(path, wanted)
    # the other label is read as usual
    assert read_psg(path, "EOG").signals.shape == (1, 1000)


def _sine(f, fs, seconds, amp):
    t = np.arange(int(fs * seconds)) / fs
    return amp * np.sin(2 * np.pi * f * t)


@pytest.mark.parametrize("dim,factor", [("uV", 1.0), ("mV", 1e3), ("V", 1e6),
                                        ("UV", 1.0)])
def test_units_converted_to_microvolts(tmp_path, dim, factor):
    x = _sine(3, 100, 20, 0.5)  # amplitude 0.5 in the file's unit
    path = write_psg(tmp_path / "u.edf", {"EEG": (x, 100, dim)})
    psg = read_psg(path, "EEG")
    np.testing.assert_allclose(psg.signals[0], x * factor, atol=factor * 0.5 / 20000)


def test_non_ascii_micro_sign_is_rejected_by_edf(tmp_path):
    # EDF headers are ASCII: a file with a raw micro sign (0xB5) in the dimension is not
    # EDF-compliant, and the error names the file
    path = write_psg(tmp_path / "mu.edf", {"EEG": (_sine(3, 100, 10, 1), 100, "uV")})
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"uV      ")] = 0xB5
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"mu\.edf.*Physical Dimension"):
        read_psg(path, "EEG")


def test_degenerate_digital_range(tmp_path):
    # digital min == digital max: pyedflib opens the file, but no µV value can be derived;
    # NaN/inf or garbage would follow, so it is an error naming the channel and file
    path = write_psg(tmp_path / "dg.edf", {"EEG": (np.arange(1000) % 7, 100, "uV", {
        "physical_min": -100.0, "physical_max": 100.0, "digital_min": -32768,
        "digital_max": 32767})})
    raw = bytearray(path.read_bytes())
    offset = 256 + (16 + 80 + 8 + 8 + 8)  # digital minimum field of the only signal
    assert raw[offset: offset + 8] == b"-32768  "
    raw[offset: offset + 8] = b"32767   "
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"'EEG' of .*dg\.edf.*digital maximum 32767"):
        read_psg(path, "EEG")


def test_unknown_dimension(tmp_path):
    path = write_psg(tmp_path / "u.edf", {"EEG": (_sine(3, 100, 10, 1), 100, "bar")})
    with pytest.raises(ValueError, match=r"'EEG'.*u\.edf.*'bar'"):
        read_psg(path, "EEG")


def test_resampling_256_to_100_keeps_a_sine(tmp_path):
    x = _sine(7.5, 256, 60, 40.0)
    path = write_psg(tmp_path / "r.edf", {"EEG C4-LER": (x, 256, "uV")})
    psg = read_psg(path, "EEG C4-LER", fs=100)
    assert psg.original_fs == [256.0]
    assert psg.signals.shape == (1, 6000)
    expected = _sine(7.5, 100, 60, 40.0)
    # away from the edges, polyphase filtering reproduces the sine closely
    np.testing.assert_allclose(psg.signals[0, 200:-200], expected[200:-200], atol=0.5)
    # a component above the new Nyquist frequency (50 Hz) is filtered out, not aliased
    y = _sine(80, 256, 60, 40.0)
    path2 = write_psg(tmp_path / "r2.edf", {"EEG": (y, 256, "uV")})
    out = read_psg(path2, "EEG").signals[0, 200:-200]
    assert np.std(out) < 0.05 * np.std(y)


def test_derivation_and_dict_spec(tmp_path):
    c4 = _sine(5, 256, 30, 30.0) + 10
    a1 = _sine(11, 256, 30, 20.0) + 10
    path = write_psg(tmp_path / "m.edf", {"EEG C4-CLE": (c4, 256, "uV"),
                                          "EEG A1-CLE": (a1, 256, "uV"),
                                          "EOG Left Horiz": (a1 / 1000, 256, "mV")})
    psg = read_psg(path, {"C4-A1": ("EEG C4-CLE", "EEG A1-CLE")}, fs=128)
    assert psg.ch_names == ["C4-A1"]
    assert psg.labels == [("EEG C4-CLE", "EEG A1-CLE")]
    direct = read_psg(path, ["EEG C4-CLE", "EEG A1-CLE"], fs=128).signals
    np.testing.assert_allclose(psg.signals[0], direct[0] - direct[1], atol=1e-9)
    ideal = _sine(5, 128, 30, 30.0) - _sine(11, 128, 30, 20.0)
    np.testing.assert_allclose(psg.signals[0, 100:-100], ideal[100:-100], atol=0.5)
    # a bare 2-tuple could be a derivation or two channels: refused, with both spellings
    with pytest.raises(ValueError, match=r"ambiguous.*\[\('EEG C4-CLE', 'EEG A1-CLE'\)\] for "
                                         r"the derivation.*\['EEG C4-CLE', 'EEG A1-CLE'\] for "
                                         r"two channels"):
        read_psg(path, ("EEG C4-CLE", "EEG A1-CLE"), fs=128)
    # tuples of one or three labels are unambiguous and still read as channels
    three = read_psg(path, ("EEG C4-CLE", "EEG A1-CLE", "EOG Left Horiz"), fs=128)
    assert three.ch_names == ["EEG C4-CLE", "EEG A1-CLE", "EOG Left Horiz"]
    np.testing.assert_array_equal(three.signals[:2], direct)
    assert read_psg(path, ("EEG A1-CLE",), fs=128).ch_names == ["EEG A1-CLE"]
    lst = read_psg(path, [("eeg c4 cle", "EOG left horiz")], fs=128)
    assert lst.ch_names == ["eeg c4 cle - EOG left horiz"]
    np.testing.assert_allclose(lst.signals[0], psg.signals[0], atol=0.05)


def test_channel_below_fs(tmp_path):
    path = write_psg(tmp_path / "low.edf", {"EEG": (_sine(2, 50, 20, 30.0), 50, "uV")})
    with pytest.raises(ValueError, match=r"'EEG'.*50 Hz.*fs=100"):
        read_psg(path, "EEG")
    psg = read_psg(path, "EEG", allow_upsampling=True)
    assert psg.signals.shape == (1, 2000)
    np.testing.assert_allclose(psg.signals[0, 100:-100], _sine(2, 100, 20, 30.0)[100:-100],
                               atol=0.5)


def test_truncated_and_corrupt_files(shared_dir, tmp_path):
    raw = (shared_dir / SLICE).read_bytes()
    trunc = tmp_path / "SC4001E0-trunc.edf"
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"SC4001E0-trunc\.edf.*truncated or corrupt"):
        read_psg(trunc)
    garbage = tmp_path / "garbage.edf"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"garbage\.edf.*truncated or corrupt"):
        read_psg(garbage)
    with pytest.raises(FileNotFoundError, match="nothere.edf"):
        read_psg(tmp_path / "nothere.edf")


def test_discontinuous_edf_plus_d_is_refused_with_advice(tmp_path):
    path = write_psg(tmp_path / "disc.edf", {"EEG": (np.ones(6000), 100, "uV")},
                     edf_plus=True)
    raw = bytearray(path.read_bytes())
    assert raw[192:197] == b"EDF+C"
    raw[192:197] = b"EDF+D"   # pyedflib writes no EDF+D: mark the file discontinuous
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"disc\.edf' is an EDF\+D \(discontinuous\) file, "
                                         r"which is not supported.*convert it to EDF\+C") as err:
        read_psg(path, "EEG")
    assert "truncated" not in str(err.value)


def test_record_count_must_match_the_file_size(tmp_path):
    x = np.arange(60000) % 1000 - 500.0
    path = write_psg(tmp_path / "n.edf", {"EEG": (x, 100, "uV")})   # 600 one-second records
    raw = bytearray(path.read_bytes())
    assert raw[236:244] == b"600     " and len(raw) == 512 + 600 * 200
    raw[236:244] = b"500     "
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=r"n\.edf' holds more data than its header declares: "
                                         r"the header says 500 data records of 200 bytes.*"
                                         r"i\.e\. 600 data records; only the 500 declared"):
        psg = read_psg(path, "EEG")
    np.testing.assert_allclose(psg.signals[0], x[:50000], atol=0.1)    # the declared part
    raw[236:244] = b"600     "
    path.write_bytes(bytes(raw[:-150]))
    with pytest.raises(ValueError, match=r"truncated or corrupt.*declares 600 data records.*"
                                         r"i\.e\. 599 data records and 50 bytes"):
        read_psg(path, "EEG")
    # a BDF file (3-byte samples) of the right size is read
    bdf = tmp_path / "b.bdf"
    writer = pyedflib.EdfWriter(str(bdf), 1, file_type=pyedflib.FILETYPE_BDF)
    writer.setSignalHeaders([{"label": "EEG", "dimension": "uV", "sample_frequency": 100,
                              "physical_min": -1000.0, "physical_max": 1000.0,
                              "digital_min": -8388608, "digital_max": 8388607,
                              "prefilter": "", "transducer": ""}])
    writer.writeSamples([x])
    writer.close()
    assert bdf.stat().st_size == 512 + 600 * 300
    np.testing.assert_allclose(read_psg(bdf, "EEG").signals[0], x, atol=1e-3)


def test_bad_channel_specs(shared_dir):
    with pytest.raises(ValueError, match="empty"):
        read_psg(shared_dir / SLICE, [])
    with pytest.raises(ValueError, match="derivation"):
        read_psg(shared_dir / SLICE, [("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal")])
    with pytest.raises(ValueError, match="fs"):
        read_psg(shared_dir / SLICE, fs=0)


def test_path_is_str(shared_dir):
    psg = read_psg(os.fspath(shared_dir / SLICE))
    assert psg.path.endswith("SC4001E0-PSG-first300s.edf")


def test_start_time_keeps_its_fraction_of_a_second(tmp_path):
    # EDFlib gives the fraction in units of 100 ns; pyedflib's getStartdatetime reads it as
    # nanoseconds (+0.5 s came out as +0.05 s). read_psg, read_hypnogram and load_mass use
    # edf_start_time.
    start = dt.datetime(2004, 1, 1, 22, 30, 0)
    path = tmp_path / "sub.edf"
    write_psg(path, {"EEG C4-CLE": (np.zeros(2000), 100, "uV")}, start, edf_plus=True)
    set_subsecond_start(path, 0.25)
    reader = open_edf(path)
    try:
        assert edf_start_time(reader) == start + dt.timedelta(seconds=0.25)
    finally:
        reader.close()
    assert read_psg(path, ["EEG C4-CLE"]).start_time == start + dt.timedelta(seconds=0.25)
