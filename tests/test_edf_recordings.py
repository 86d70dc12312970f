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


def _cohort_csv(folder, n_subjects=3, n_epochs=24):
    cycle = ["Sleep stage W", "Sleep stage 1", "Sleep stage 2", "Sleep stage 3",
             "Sleep stage R", "Sleep stage 2"]
    texts = (cycle * n_epochs)[:n_epochs]
    lines = ["recording,subject,psg,hypnogram"]
    for i in range(n_subjects):
        psg, hyp, _ = _night(folder, f"sub{i}_n1", texts, seed=i, fs=100)
        lines.append(f"sub{i}-n1,sub{i},{psg.name},{hyp.name}")   # relative to the CSV
    (folder / "cohort.csv").write_text("\n".join(lines) + "\n")
    return folder / "cohort.csv"


def test_study_on_own_recordings_from_a_csv_list(tmp_path):
    from skseqsleep.study import read_recordings_csv, run_study

    csv_path = _cohort_csv(tmp_path)
    recs, subjects = read_recordings_csv(csv_path)
    assert subjects == {"sub0-n1": "sub0", "sub1-n1": "sub1", "sub2-n1": "sub2"}
    assert recs["sub1-n1"] == (tmp_path / "sub1_n1.edf", tmp_path / "sub1_n1_hypnogram.edf")
    settings = {"sim_source_subjects": 3, "sim_nights": 1, "sim_epochs_per_night": 24,
                "pretrain_max_epochs": 1, "max_epochs": 1, "validate_every": 2,
                "batch_size": 4, "seq_len": 4, "n_filters": 4, "rnn_hidden": 4,
                "attention_size": 4}
    result = run_study(tmp_path / "out", target=f"recordings:{csv_path}",
                       channels=["EEG C4-M1"], strategies=["direct", "softmax"],
                       settings=settings, random_state=0, verbose=0, plots=False)
    direct = result.row("EEG C4-M1", "direct")
    # leave-one-subject-out over the 3 subjects of the list, every epoch tested once
    assert (direct.n_folds, direct.n_epochs) == (3, 72)
    pooled = result.predictions[("EEG C4-M1", "direct")]
    assert sorted(set(pooled["recordings"].tolist())) == sorted(recs)


@pytest.mark.parametrize(("content", "match"), [
    ("recording,psg,hypnogram\na,a.edf,a_h.edf\n", "columns recording, subject, psg, hypnogram"),
    ("recording,subject,psg,hypnogram\n", "0 row"),
    ("recording,subject,psg,hypnogram\na,s,,a_h.edf\n", "line 2: empty psg"),
    ("recording,subject,psg,hypnogram\na,s,a.edf,h.edf\na,t,b.edf,h.edf\n",
     "line 3: recording 'a' is listed twice"),
])
def test_bad_recordings_lists_are_named(tmp_path, content, match):
    from skseqsleep.study import StudyInputError, run_study

    (tmp_path / "list.csv").write_text(content)
    with pytest.raises(StudyInputError, match=match):
        run_study(tmp_path / "out", target=f"recordings:{tmp_path / 'list.csv'}",
                  channels=["EEG C4-M1"], strategies=["direct"], verbose=0)
    assert not (tmp_path / "out").exists()


def test_recordings_target_needs_a_channel(tmp_path, capsys):
    from skseqsleep.cli import main

    csv_path = _cohort_csv(tmp_path, n_subjects=1, n_epochs=2)
    assert main(["study", "--target", f"recordings:{csv_path}", "--output-dir",
                 str(tmp_path / "out"), "-q"]) == 2
    assert "needs the channel(s) to read from every PSG file: give --channel" in (
        capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- vocabularies
def test_aasm_texts_are_read_by_default(tmp_path):
    texts = ["Sleep stage W", "Sleep stage N1", "Sleep stage N2", "Sleep stage N3",
             "Sleep stage R", "Sleep stage ?", "Sleep stage N2"]
    psg, hyp, _ = _night(tmp_path, "aasm", texts, seed=3)
    data = load_edf_recordings([(psg, hyp)], "EEG C4-M1")
    # W N1 N2 N3 REM -> 0..4 by the AASM names; '?' excluded and counted
    assert data.y.tolist() == [0, 1, 2, 3, 4, 2]
    assert data.report["aasm"]["excluded"] == {"Sleep stage ?": 1}


def test_another_vocabulary_through_stage_texts(tmp_path):
    texts = ["Wake", "Wake", "Stage 1", "Stage 2", "Stage 3", "REM", "Artefact", "Stage 2"]
    psg, hyp, _ = _night(tmp_path, "other", texts, seed=4)
    # 'REM' is a known (AASM) label; the others are named
    with pytest.raises(ValueError, match=r"unknown annotation text\(s\) \['Artefact', "
                                         r"'Stage 1', 'Stage 2', 'Stage 3', 'Wake'\].*"
                                         r"stage_texts=\{text: stage\}"):
        load_edf_recordings([(psg, hyp)], "EEG C4-M1")
    vocabulary = {"Wake": "W", "Stage 1": "N1", "Stage 2": 2, "Stage 3": "n3", "REM": "R",
                  "Artefact": None}
    data = load_edf_recordings([(psg, hyp)], "EEG C4-M1", stage_texts=vocabulary)
    assert data.y.tolist() == [0, 0, 1, 2, 3, 4, 2]
    assert data.report["other"]["excluded"] == {"Artefact": 1}
    np.testing.assert_allclose(data.onsets, [30 * i for i in (0, 1, 2, 3, 4, 5, 7)])


def test_bad_stage_texts_are_refused_before_any_file_is_read(tmp_path):
    missing = (tmp_path / "none.edf", tmp_path / "none_hyp.edf")
    for bad, expected in [({"Wake": "Awake"}, r"'Wake': 'Awake'"), ({"S5": 5}, r"'S5': 5"),
                          ({"W": True}, r"'W': True"), ({"": 0}, r"'' \(not a non-empty")]:
        with pytest.raises(ValueError, match=r"stage_texts maps each annotation text to a "
                                             r"stage 0\.\.4.*" + expected):
            load_edf_recordings([missing], "EEG C4-M1", stage_texts=bad)
    with pytest.raises(ValueError, match=r"' W ' \(the same text as another key once "
                                         r"surrounding spaces are removed"):
        load_edf_recordings([missing], "EEG C4-M1", stage_texts={"W": "W", " W ": "REM"})
    with pytest.raises(ValueError, match="stage_texts is empty"):
        load_edf_recordings([missing], "EEG C4-M1", stage_texts={})
    with pytest.raises(TypeError, match=r"stage_texts must be a mapping .* got list"):
        load_edf_recordings([missing], "EEG C4-M1", stage_texts=["W", "N1"])


def test_study_command_with_a_hypnogram_vocabulary(tmp_path, capsys):
    """--stage-texts as a JSON file: the study reads hypnograms in another vocabulary, and
    records it; bad values are usage errors before anything is written."""
    import json

    from skseqsleep.cli import main

    texts = (["Wake", "Stage 1", "Stage 2", "Deep", "Paradoxical", "Stage 2"] * 4)
    lines = ["recording,subject,psg,hypnogram"]
    for i in range(3):
        psg, hyp, _ = _night(tmp_path, f"s{i}", texts, seed=i, fs=100)
        lines.append(f"s{i},s{i},{psg.name},{hyp.name}")
    (tmp_path / "cohort.csv").write_text("\n".join(lines) + "\n")
    vocabulary = {"Wake": "W", "Stage 1": "N1", "Stage 2": "N2", "Deep": "N3",
                  "Paradoxical": "REM"}
    (tmp_path / "vocabulary.json").write_text(json.dumps(vocabulary))
    common = ["study", "--target", f"recordings:{tmp_path / 'cohort.csv'}",
              "--channel", "EEG C4-M1", "--strategies", "direct", "--no-plots", "-q",
              "--sim-source-subjects", "3", "--sim-epochs", "24", "--pretrain-max-epochs",
              "1", "--batch-size", "4", "--seq-len", "4", "--n-filters", "4",
              "--rnn-hidden", "4", "--attention-size", "4"]
    # without the vocabulary: the unknown texts are named, nothing is written
    assert main(common + ["--output-dir", str(tmp_path / "no")]) == 2
    assert "unknown annotation text(s) ['Deep', 'Paradoxical'" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    out = tmp_path / "out"
    assert main(common + ["--output-dir", str(out), "--stage-texts",
                          str(tmp_path / "vocabulary.json")]) == 0
    per_fold = (out / "per_fold.csv").read_text().splitlines()
    assert len(per_fold) == 1 + 3           # 3 subjects, leave-one-subject-out
    recorded = json.loads((out / "study.json").read_text())["arguments"]["stage_texts"]
    assert recorded == {"Wake": 0, "Stage 1": 1, "Stage 2": 2, "Deep": 3, "Paradoxical": 4}
    # bad values: usage errors naming what was expected
    for extra, match in [
            (["--stage-texts", "{\"Wake\": \"Awake\"}"], "'Wake': 'Awake'"),
            (["--stage-texts", "Wake=W"], "expected a JSON object such as"),
            (["--stage-texts", "[1, 2]"], "{annotation text: stage}; got list"),
            (["--stage-texts", str(tmp_path / "nowhere.json")],
             f"there is no file {tmp_path / 'nowhere.json'}")]:
        try:      # argparse's type errors exit(2); the study's usage errors return 2
            code = main(common + ["--output-dir", str(tmp_path / "bad")] + extra)
        except SystemExit as exc:
            code = exc.code
        assert code == 2
        assert match in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_stage_texts_only_for_a_recordings_target(tmp_path):
    from skseqsleep.study import StudyInputError, run_study

    with pytest.raises(StudyInputError, match=r"stage_texts \(--stage-texts\) is the hypnogram "
                                              r"vocabulary of a recordings:CSV target"):
        run_study(tmp_path / "out", stage_texts={"W": 0}, verbose=0)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- text hypnograms
def test_text_hypnogram_equals_the_same_scoring_as_edf(tmp_path):
    """One stage label per line from the PSG's first sample: the same epochs, stages and
    signal as the EDF+ hypnogram of the same scoring that starts with the PSG."""
    texts = ["Sleep stage W", "Sleep stage 1", "Sleep stage 2", "Sleep stage 3",
             "Sleep stage R", "Sleep stage ?", "Sleep stage 2", "Sleep stage W"]
    psg, hyp_edf, _ = _night(tmp_path, "n", texts, seed=5)
    labels = ["W", "N1", "N2", "N3", "REM", "?", "N2", "R"]
    expected_y = [0, 1, 2, 3, 4, 2, 4]
    hyp_txt = tmp_path / "n_hypnogram.txt"
    hyp_txt.write_text("# exported by hand\n" + "\n".join(labels) + "\n\n")
    from_edf = load_edf_recordings({"n": (psg, hyp_edf)}, "EEG C4-M1")
    from_txt = load_edf_recordings({"n": (psg, hyp_txt)}, "EEG C4-M1")
    assert from_txt.y.tolist() == expected_y
    assert from_edf.y.tolist()[:6] == expected_y[:6]     # the last EDF text is W, not R
    np.testing.assert_array_equal(from_txt.X, from_edf.X)
    np.testing.assert_allclose(from_txt.onsets, [0, 30, 60, 90, 120, 180, 210])
    assert from_txt.report["n"]["excluded"] == {"?": 1}


def test_text_hypnogram_errors_name_the_line(tmp_path):
    from skseqsleep.datasets import read_hypnogram

    hyp = tmp_path / "h.csv"
    hyp.write_text("W\nN1\n\nN2\n")
    with pytest.raises(ValueError, match=r"h\.csv: line 3 is empty; a text hypnogram has one "
                                         r"stage label per 30-s epoch"):
        read_hypnogram(hyp)
    hyp.write_text("W\n5\nN2\n1\n")     # the first unknown label in the file is on line 2
    with pytest.raises(ValueError, match=r"unknown stage label\(s\) \['1', '5'\] in hypnogram "
                                         r".*h\.csv \(the first at line 2\).*stage_texts="
                                         r"\{label: stage\} for another") as err:
        read_hypnogram(hyp)
    assert "}}" not in str(err.value) and "one column" not in str(err.value)
    hyp.write_text("epoch,stage\n0,W\n1,N1\n")
    with pytest.raises(ValueError, match=r"\(the first at line 1\).*a header or a comment line "
                                         r"must start with '#'; a text hypnogram has one "
                                         r"column, the label"):
        read_hypnogram(hyp)
    digits = {"0": "W", "1": "N1", "2": "N2", "3": "N3", "4": "N3", "5": "REM"}
    hyp.write_text("#epoch stage\n0\n1\n2\n5\n")
    assert read_hypnogram(hyp, stage_texts=digits).stages.tolist() == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="ignore_texts applies to EDF\\+ annotations"):
        read_hypnogram(hyp, stage_texts=digits, ignore_texts=["5"])
    hyp.write_text("# nothing scored\n\n")
    with pytest.raises(ValueError, match="holds no stage label"):
        read_hypnogram(hyp)


def test_text_hypnogram_longer_than_its_recording(tmp_path):
    texts = ["Sleep stage W"] * 4
    psg, _, _ = _night(tmp_path, "short", texts, seed=6)      # 4 epochs + 60 s of signal
    hyp = tmp_path / "short.txt"
    hyp.write_text("\n".join(["W"] * 6 + ["N2"] * 2 + ["?"] * 3) + "\n")
    with pytest.raises(ValueError, match=r"is longer than its recording: it scores up to "
                                         r"240 s from the recording start, but the PSG lasts "
                                         r"180 s"):
        load_edf_recordings({"short": (psg, hyp)}, "EEG C4-M1")
    hyp.write_text("\n".join(["W"] * 6 + ["?"] * 3) + "\n")   # unscored beyond the end: dropped
    data = load_edf_recordings({"short": (psg, hyp)}, "EEG C4-M1")
    assert data.y.tolist() == [0] * 6
    assert data.report["short"]["trimmed"] == {"unscored, beyond the end of the signals": 3}
    # so is an epoch without a usable stage in another vocabulary
    hyp.write_text("\n".join(["0"] * 6 + ["9"] * 3) + "\n")
    data = load_edf_recordings({"short": (psg, hyp)}, "EEG C4-M1",
                               stage_texts={"0": "W", "9": None})
    assert data.y.tolist() == [0] * 6
    assert data.report["short"]["trimmed"] == {"unscored, beyond the end of the signals": 3}


def test_a_long_inline_vocabulary_is_json_not_a_file_name():
    """A JSON value longer than a file name may be (255 bytes) is still read as JSON."""
    import json

    from skseqsleep.cli import build_parser

    vocabulary = {f"Sleep stage label number {i}": "N2" for i in range(12)}
    value = json.dumps(vocabulary)
    assert len(value) > 255
    args = build_parser().parse_args(["study", "--target", "recordings:x.csv",
                                      "--stage-texts", value])
    assert args.stage_texts == vocabulary
