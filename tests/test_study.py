"""The study: split table, metrics, result store, tables, argument errors.

End-to-end runs (kill + resume, joblib, Dask) are at the bottom; they use a tiny simulated
configuration so that the whole file stays well under a minute.
"""

import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    recall_score,
)

from skseqsleep.study import (
    STRATEGIES,
    ResultStore,
    StudyArgumentsError,
    StudyInputError,
    StudyResult,
    TableRow,
    parse_data_spec,
    pooled_metrics,
    run_study,
    sleepedf_sc20_folds,
)

# --------------------------------------------------------------------------------------------
# the published Sleep-EDF-SC-20 split
# --------------------------------------------------------------------------------------------


def test_shipped_sc20_split_is_the_published_one(shared_dir):
    text = (shared_dir / "data" / "splits" / "sleepedf_sc20_folds.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    folds = sleepedf_sc20_folds()
    assert len(folds) == 20
    for f in folds:
        mine = {("test", f["test"])} | {("valid", s) for s in f["valid"]} \
            | {("train", s) for s in f["train"]}
        theirs = {(r["role"], int(r["subject_index"]) - 1) for r in rows
                  if int(r["fold"]) == f["fold"]}
        assert mine == theirs


def test_sc20_split_structure():
    folds = sleepedf_sc20_folds()
    assert [f["fold"] for f in folds] == list(range(1, 21))
    # leave-one-subject-out: fold k tests Sleep-EDF subject k-1, each subject once
    assert [f["test"] for f in folds] == list(range(20))
    for f in folds:
        assert len(f["valid"]) == 4 and len(f["train"]) == 15
        assert sorted([f["test"], *f["valid"], *f["train"]]) == list(range(20))
    # first fold by hand from REFERENCE §6's table: subject_index 3, 10, 11, 14 validate
    assert sorted(folds[0]["valid"]) == [2, 9, 10, 13]


# --------------------------------------------------------------------------------------------
# pooled metrics
# --------------------------------------------------------------------------------------------


def test_pooled_metrics_by_hand():
    # 10 epochs; confusion (rows true): W: 3 right 1 as N1; N1: 1 right; N2: 2 right 1 as N3;
    # N3: 1 right; REM: 1 as W
    y_true = [0, 0, 0, 0, 1, 2, 2, 2, 3, 4]
    y_pred = [0, 0, 0, 1, 1, 2, 2, 3, 3, 0]
    m = pooled_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(7 / 10)
    # sensitivities: W 3/4, N1 1/1, N2 2/3, N3 1/1, REM 0/1
    assert m["macro_sensitivity"] == pytest.approx((3 / 4 + 1 + 2 / 3 + 1 + 0) / 5)
    # specificities TN/(TN+FP): W FP=1 (REM) of 6 negatives -> 5/6; N1 FP=1 of 9 -> 8/9;
    # N2 FP=0 of 7 -> 1; N3 FP=1 of 9 -> 8/9; REM FP=0 of 9 -> 1
    assert m["macro_specificity"] == pytest.approx((5 / 6 + 8 / 9 + 1 + 8 / 9 + 1) / 5)
    # F1 = 2TP/(support+predicted): W 6/8, N1 2/3, N2 4/5, N3 2/3, REM 0
    assert m["macro_f1"] == pytest.approx((6 / 8 + 2 / 3 + 4 / 5 + 2 / 3 + 0) / 5)
    # kappa: pe = sum(support*predicted)/n^2 = (4*4 + 1*2 + 3*2 + 1*2 + 1*0)/100 = 0.26
    assert m["kappa"] == pytest.approx((0.7 - 0.26) / (1 - 0.26))


def test_pooled_metrics_match_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 5, 500))
    m = pooled_metrics(y_true, y_pred)
    labels = list(range(5))
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro",
                                                   labels=labels))
    assert m["macro_sensitivity"] == pytest.approx(recall_score(y_true, y_pred,
                                                                average="macro"))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    spec = [(cm.sum() - cm[k].sum() - cm[:, k].sum() + cm[k, k]) / (cm.sum() - cm[k].sum())
            for k in labels]
    assert m["macro_specificity"] == pytest.approx(np.mean(spec))


# --------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "role", "expected"), [
    ("simulated", "source", ("simulated", None)),
    ("mass:/data/mass", "source", ("mass", "/data/mass")),
    ("checkpoint:/x/pretrained_model.ckpt", "source", ("checkpoint",
                                                       "/x/pretrained_model.ckpt")),
    ("model:m.pkl", "source", ("model", "m.pkl")),
    ("sleep-edf:C:/data", "target", ("sleep-edf", "C:/data")),
    ("dreams:/d", "target", ("dreams", "/d")),
])
def test_parse_data_spec(spec, role, expected):
    assert parse_data_spec(spec, role) == expected


@pytest.mark.parametrize(("spec", "role", "match"), [
    ("sleep-edf:/x", "source", "unknown --source"),
    ("mass:/x", "target", "unknown --target"),
    ("mass", "source", "needs a path"),
    ("simulated:/x", "target", "takes no path"),
    ("", "target", "must be one of"),
])
def test_parse_data_spec_errors(spec, role, match):
    with pytest.raises(StudyInputError, match=match):
        parse_data_spec(spec, role)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"strategies": ["softmax", "bogus"]}, "unknown strategies.*bogus"),
    ({"channels": ["EEG C3-A2"]}, "unknown channel 'EEG C3-A2' for the simulated target"),
    ({"target": "sleep-edf:/no/such/folder"}, "/no/such/folder does not exist"),
    ({"source": "mass:/no/such/mass"}, "/no/such/mass does not exist"),
    ({"subjects": [0, 1]}, "only applies to a sleep-edf target"),
    ({"subjects": 5}, "only applies to a sleep-edf target"),    # one subject, as the loader
    ({"subjects": [0, 1.5]}, "subjects must hold whole numbers"),
    ({"subjects": "20"}, "subjects must be an integer or an iterable of integers, got the string"),
    ({"settings": {"max_epochs": 0}}, "max_epochs must be a positive int"),
    ({"settings": {"max_epochs": 2.7}}, (r"max_epochs must be a positive integer; got 2.7 "
                                         r"\(not a whole number\)")),
    ({"settings": {"max_epochs": True}}, "max_epochs must be a positive int; got the boolean"),
    ({"settings": {"lr": float("nan")}}, "lr must be a positive float; got nan"),
    ({"channels": "EEG C3-A2"}, "unknown channel 'EEG C3-A2' for the simulated target"),
    ({"strategies": "bogus"}, r"unknown strategies \['bogus'\]"),
    ({"n_jobs": 0}, "n_jobs=0 runs nothing"),
    ({"n_jobs": "2"}, "n_jobs must be an integer; got '2'"),
    ({"torch_threads": 0}, "torch_threads must be a positive integer; got 0"),
    ({"random_state": True}, "random_state must be an integer; got True"),
    ({"scheduler": "notanaddress"}, ("--scheduler 'notanaddress' is not a Dask "
                                     "scheduler address.*missing port")),
    ({"scheduler": 123}, "scheduler must be a Dask scheduler address"),
    ({"fetch_url": "http://mirror"}, r"fetch_url \(--fetch-url\) is only used with fetch"),
    ({"settings": {"nope": 1}}, "unknown study setting 'nope'"),
    ({"random_state": -1}, r"random_state \(--random-state\) must be an integer >= 0.*got -1"),
])
def test_run_study_argument_errors_leave_no_output(tmp_path, kwargs, match):
    out = tmp_path / "out"
    with pytest.raises(StudyInputError, match=match):
        run_study(out, verbose=0, **kwargs)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# the result store
# --------------------------------------------------------------------------------------------


def test_store_round_trip_and_atomic_files(tmp_path):
    store = ResultStore(tmp_path / "s")
    assert store.claim({"a": 1, "b": [1, 2]}) is False
    res = {"y_true": [0, 1, 2], "y_pred": [0, 2, 2], "recordings": ["r1", "r1", "r2"],
           "fold": 3, "test_subject": "s3", "history": [{"step": 5, "valid_acc": 0.5}],
           "seconds": 1.5}
    path = store.save_fold("EEG Fpz-Cz", "softmax+arnn", 3, res)
    assert path.name == "fold_03.npz" and path.parent.name == "softmax_arnn"
    assert [p.name for p in path.parent.iterdir()] == ["fold_03.npz"]  # no temp file left
    back = store.load_fold("EEG Fpz-Cz", "softmax+arnn", 3)
    assert back["y_true"].tolist() == [0, 1, 2] and back["y_pred"].tolist() == [0, 2, 2]
    assert back["recordings"].tolist() == ["r1", "r1", "r2"]
    assert back["history"] == [{"step": 5, "valid_acc": 0.5}]
    assert back["test_subject"] == "s3" and back["seconds"] == 1.5
    assert store.load_fold("EEG Fpz-Cz", "softmax+arnn", 4) is None
    # the same arguments again: a resumed run
    assert ResultStore(tmp_path / "s").claim({"b": [1, 2], "a": 1}) is True


def test_store_refuses_different_arguments_and_names_the_difference(tmp_path):
    store = ResultStore(tmp_path)
    store.claim({"max_epochs": 2, "target": "simulated"})
    store.save_fold("c", "direct", 1, {"y_true": [0], "y_pred": [0], "recordings": ["r"]})
    with pytest.raises(StudyArgumentsError, match=r"max_epochs: 2 there, 3 now.*1 finished"):
        ResultStore(tmp_path).claim({"max_epochs": 3, "target": "simulated"})
    manifest = json.loads((tmp_path / "study.json").read_text())
    assert manifest["arguments"]["max_epochs"] == 2


def test_store_without_a_finished_fold_is_taken_over_by_other_arguments(tmp_path):
    # a run that failed before finishing a fold (and before caching a source) does not block
    # its folder
    ResultStore(tmp_path).claim({"max_epochs": 2})
    messages = []
    assert ResultStore(tmp_path).claim({"max_epochs": 3}, log=messages.append) is False
    manifest = json.loads((tmp_path / "study.json").read_text())
    assert manifest["arguments"] == {"max_epochs": 3}
    assert len(messages) == 1
    assert "max_epochs: 2 there, 3 now" in messages[0] and "taking it over" in messages[0]


def test_store_takeover_keeps_the_cached_source_model_under_another_name(tmp_path):
    # the cache may be hours of pretraining: never deleted
    ResultStore(tmp_path).claim({"max_epochs": 2})
    cache = tmp_path / "source_model.pt"
    cache.write_bytes(b"pretrained with max_epochs=2")
    messages = []
    assert ResultStore(tmp_path).claim({"max_epochs": 3}, log=messages.append) is False
    assert not cache.exists()            # this run must not load the other run's model
    assert (tmp_path / "source_model.previous.pt").read_bytes() == (
        b"pretrained with max_epochs=2")
    assert "kept as" in messages[0] and "source_model.previous.pt" in messages[0]


def test_takeovers_in_a_row_never_overwrite_a_kept_source_model(tmp_path):
    # run X caches its model, Y takes over (X's kept), X takes over again (Y's kept): X's
    # model must still be there, and so must Y's
    messages = []
    for k, args in enumerate([{"random_state": 1}, {"random_state": 2}, {"random_state": 1},
                              {"random_state": 3}]):
        ResultStore(tmp_path).claim(args, log=messages.append)
        (tmp_path / "source_model.pt").write_bytes(f"model of claim {k}".encode())
    kept = {p.name: p.read_bytes().decode() for p in tmp_path.glob("source_model.previous*")}
    assert kept == {"source_model.previous.pt": "model of claim 0",
                    "source_model.previous-2.pt": "model of claim 1",
                    "source_model.previous-3.pt": "model of claim 2"}
    assert (tmp_path / "source_model.pt").read_bytes() == b"model of claim 3"
    assert [m.rsplit("kept as ", 1)[1] for m in messages] == [
        f"{tmp_path / name})" for name in ("source_model.previous.pt",
                                           "source_model.previous-2.pt",
                                           "source_model.previous-3.pt")]


def test_a_dry_run_claim_checks_without_writing_or_moving(tmp_path):
    # run_study asks it before loading or simulating a source to pretrain
    assert ResultStore(tmp_path / "new").claim({"a": 1}, dry_run=True) is False
    assert not (tmp_path / "new").exists()
    ResultStore(tmp_path).claim({"a": 1})
    cache = tmp_path / "source_model.pt"
    cache.write_bytes(b"model of a=1")
    before = (tmp_path / "study.json").read_text()
    assert ResultStore(tmp_path).claim({"a": 1}, dry_run=True) is True
    messages = []
    assert ResultStore(tmp_path).claim({"a": 2}, messages.append, dry_run=True) is False
    assert cache.read_bytes() == b"model of a=1" and not messages
    assert (tmp_path / "study.json").read_text() == before
    ResultStore(tmp_path).save_fold("c", "direct", 1, {"y_true": [0], "y_pred": [0],
                                                       "recordings": ["r"]})
    with pytest.raises(StudyArgumentsError, match=r"a: 1 there, 2 now.*1 finished"):
        ResultStore(tmp_path).claim({"a": 2}, dry_run=True)


def test_store_refuses_a_takeover_whose_cache_is_the_new_source(tmp_path):
    ResultStore(tmp_path).claim({"source": "simulated", "max_epochs": 2})
    cache = tmp_path / "source_model.pt"
    cache.write_bytes(b"a saved model")
    with pytest.raises(StudyArgumentsError, match=r"is this run's --source: copy it elsewhere"):
        ResultStore(tmp_path).claim({"source": f"model:{cache}", "max_epochs": 2})
    assert cache.read_bytes() == b"a saved model"
    assert json.loads((tmp_path / "study.json").read_text())["arguments"]["source"] == (
        "simulated")


def test_store_written_before_source_hashes_says_why_it_cannot_resume(tmp_path):
    old = {"source": "model:/m.pt", "settings": {"max_epochs": 2}}
    store = ResultStore(tmp_path)
    store.claim(old)
    done = store.fold_path("EEG", "direct", 1)       # one finished fold of the old run
    done.parent.mkdir(parents=True)
    done.write_bytes(b"a fold result")
    with pytest.raises(StudyArgumentsError, match=r"written before the source file's SHA-256"):
        ResultStore(tmp_path).claim({**old, "source_sha256": {"m.pt": "ab" * 32}})


def test_store_refuses_a_file_as_output_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StudyArgumentsError, match="is a file"):
        ResultStore(tmp_path / "f").claim({"a": 1})


def test_store_refuses_a_foreign_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StudyArgumentsError, match="not empty and holds no study.json"):
        ResultStore(tmp_path).claim({"a": 1})
    # a whole run is refused without writing its lock file into the user's folder
    with pytest.raises(StudyArgumentsError, match="not empty and holds no study.json"):
        run_study(tmp_path, verbose=0, **TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("content", [
    '{"name": "my survey study", "participants": 40}\n',     # the user's own study.json
    '{"fingerprint": "abc", "arguments": {}}\n',              # no store_version
    '[1, 2]\n',
])
def test_a_study_json_this_package_did_not_write_is_not_taken_over(tmp_path, content):
    manifest = tmp_path / "study.json"
    manifest.write_text(content)
    with pytest.raises(StudyArgumentsError, match=r"holds a study.json that skseqsleep study "
                                                  r"did not write \(expected an object with "
                                                  r"the keys fingerprint, store_version, "
                                                  r"arguments; found .*not taken over"):
        ResultStore(tmp_path).claim({"a": 1})
    with pytest.raises(StudyArgumentsError, match="did not write"):
        run_study(tmp_path, verbose=0, **TINY)
    # nothing written, replaced or locked in the user's folder
    assert [p.name for p in tmp_path.iterdir()] == ["study.json"]
    assert manifest.read_text() == content
    # a manifest the study wrote is still a study (resumed by the same arguments)
    ResultStore(tmp_path / "ours").claim({"a": 1})
    assert ResultStore(tmp_path / "ours").claim({"a": 1}) is True


def test_a_file_system_that_cannot_lock_warns_and_runs_unlocked(tmp_path, monkeypatch):
    # fault injection: no lock-less file system (ENOLCK on some NFS, ENOSYS on Lustre
    # mounted noflock) is available here, so flock is made to fail as it does there
    import errno
    import fcntl

    def flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", flock)
    store = ResultStore(tmp_path)
    with pytest.warns(UserWarning, match=r"cannot lock the output folder .*No locks available"
                                         r".*goes on without the one-run-per-folder lock"):
        store.acquire()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.acquire()                     # warned once per run
    assert store.claim({"a": 1}) is False   # the run goes on
    store.release()


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def _row(ch, strat, acc):
    return TableRow(ch, strat, STRATEGIES[strat].label, acc, 0.5, 0.6, 0.7, 0.9,
                    n_epochs=100, n_folds=4)


def test_table_blocks_rows_and_formats(tmp_path):
    res = StudyResult(rows=[_row("EEG Fpz-Cz", "all", 0.855), _row("EEG Fpz-Cz", "direct", 0.8),
                            _row("EOG horizontal", "all", 0.808)])
    assert res.channels == ["EEG Fpz-Cz", "EOG horizontal"]
    md = res.to_markdown()
    assert "### Target channel: EEG Fpz-Cz (4 folds, 100 test epochs)" in md
    assert "| finetune entire network | 85.5 | 0.500 | 60.0 | 70.0 | 90.0 |" in md
    assert md.index("EEG Fpz-Cz") < md.index("direct transfer") < md.index("EOG horizontal")
    text = str(res)
    assert "Target channel: EOG horizontal" in text and "80.8" in text
    res.write_csv(tmp_path / "t.csv")
    rows = list(csv.DictReader((tmp_path / "t.csv").read_text().splitlines()))
    assert [r["strategy"] for r in rows] == ["all", "direct", "all"]
    assert float(rows[0]["accuracy"]) == 0.855
    assert res.row("EOG horizontal", "all").accuracy == 0.808
    with pytest.raises(KeyError):
        res.row("EOG horizontal", "direct")


def test_strategies_follow_the_papers_table_order():
    assert list(STRATEGIES) == ["all", "softmax+arnn", "softmax+seqrnn", "softmax", "direct",
                                "scratch"]
    assert STRATEGIES["direct"].trainable_parts == ()
    assert STRATEGIES["scratch"].pretrained is False


# --------------------------------------------------------------------------------------------
# end-to-end runs on a tiny simulated study
# --------------------------------------------------------------------------------------------

TINY_SETTINGS = {"sim_source_subjects": 3, "sim_target_subjects": 3, "sim_nights": 1,
                 "sim_epochs_per_night": 24, "pretrain_max_epochs": 1, "max_epochs": 1,
                 "validate_every": 2, "batch_size": 4, "seq_len": 4, "n_filters": 4,
                 "rnn_hidden": 4, "attention_size": 4}
TINY = {"settings": TINY_SETTINGS, "channels": ["Fpz-Cz-like"], "random_state": 3}
TINY_CLI = ["--channel", "Fpz-Cz-like", "--random-state", "3", "--sim-source-subjects", "3",
            "--sim-target-subjects", "3", "--sim-nights", "1", "--sim-epochs", "24",
            "--pretrain-max-epochs", "1", "--max-epochs", "1", "--validate-every", "2",
            "--batch-size", "4", "--seq-len", "4", "--n-filters", "4", "--rnn-hidden", "4",
            "--attention-size", "4"]
N_TASKS = 6 * 3  # strategies x folds (3 subjects)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return run_study(out, verbose=0, **TINY), out


def _fold_files(folder):
    return sorted((folder / "folds").rglob("fold_*.npz"))


def _predictions(folder):
    """{(strategy, fold): (y_true, y_pred)} read straight from the stored files."""
    out = {}
    for f in _fold_files(folder):
        with np.load(f) as z:
            out[(f.parent.name, f.stem)] = (z["y_true"].tolist(), z["y_pred"].tolist())
    return out


def test_reference_run_outputs(reference):
    result, out = reference
    assert [r.strategy for r in result.rows] == list(STRATEGIES)
    assert len(_fold_files(out)) == N_TASKS
    for name in ("table.md", "table.csv", "per_fold.csv", "provenance.json", "study.json",
                 "source_model.pt", "finetuning_curves__Fpz-Cz-like.png"):
        assert (out / name).is_file(), name
    assert len(list(out.glob("hypnogram__*__Fpz-Cz-like.png"))) == 1
    assert len(list((out / "confusion").glob("*.png"))) == 6
    per_fold = list(csv.DictReader((out / "per_fold.csv").read_text().splitlines()))
    assert len(per_fold) == N_TASKS
    # every test epoch of the 3 subjects x 24 epochs is predicted once per strategy
    for r in result.rows:
        assert r.n_epochs == 3 * 24 and r.n_folds == 3
    # the table is the pooled metric of the stored predictions, recomputed independently
    preds = _predictions(out)
    table = {r["strategy"]: r for r in csv.DictReader((out / "table.csv").read_text()
                                                      .splitlines())}
    for strat in STRATEGIES:
        parts = [preds[(strat.replace("+", "_"), f"fold_0{k}")] for k in (1, 2, 3)]
        y_true = np.concatenate([p[0] for p in parts])
        y_pred = np.concatenate([p[1] for p in parts])
        assert float(table[strat]["accuracy"]) == pytest.approx(accuracy_score(y_true, y_pred))
        assert float(table[strat]["kappa"]) == pytest.approx(cohen_kappa_score(y_true, y_pred))
    # confusion CSVs: rows = scored stage, they add up to the test epochs
    rows = list(csv.reader((out / "confusion" / "Fpz-Cz-like__all.csv").read_text()
                           .splitlines()))
    assert rows[0] == ["scored\\predicted", "W", "N1", "N2", "N3", "REM"]
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == 72
    # direct transfer trains nothing: no validation history; the others validated
    hist = {r["strategy"]: int(r["n_validations"]) for r in per_fold}
    assert hist["direct"] == 0 and hist["all"] > 0 and hist["scratch"] > 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["simulated"] is True and prov["machine"]["cpu_count"] >= 1


def test_same_arguments_resume_without_recomputing(reference, tmp_path):
    result, out = reference
    before = {f: f.stat().st_mtime_ns for f in _fold_files(out)}
    # execution options (plots, which recording to draw) are not part of the fingerprint
    again = run_study(out, verbose=0, plot_recording="sim-s01-n1", **TINY)
    assert {f: f.stat().st_mtime_ns for f in _fold_files(out)} == before
    assert (out / "hypnogram__sim-s01-n1__Fpz-Cz-like.png").is_file()
    np.testing.assert_array_equal(again.metrics_array(), result.metrics_array())


def test_gru_backend_is_recorded_and_a_switch_is_not_resumed(reference, monkeypatch):
    from skseqsleep.nn import gru_backend

    _, out = reference
    used = gru_backend("cpu")
    assert json.loads((out / "study.json").read_text())["arguments"]["gru_cpu"] == used
    assert json.loads((out / "provenance.json").read_text())["arguments"]["gru_cpu"] == used
    other = "torch" if used == "compiled" else "compiled"
    monkeypatch.setenv("SKSEQSLEEP_GRU", other)
    with pytest.raises(StudyArgumentsError,
                       match=rf"gru_cpu: '{used}' there, '{other}' now"):
        run_study(out, verbose=0, **TINY)


def test_a_worker_with_another_gru_backend_refuses_the_fold(monkeypatch):
    from skseqsleep.study import _run_fold_task

    monkeypatch.setenv("SKSEQSLEEP_GRU", "torch")
    task = {"channel": "c", "strategy": "direct", "fold": 1, "test_subject": "s",
            "valid_subjects": None, "seed": 0, "gru_cpu": "compiled"}
    with pytest.raises(RuntimeError, match=r"runs GRU cells with the 'torch' recurrence, but "
                                           r"the study was started with 'compiled'.*"
                                           r"SKSEQSLEEP_GRU"):
        _run_fold_task(task, None, None, None, None, 100, None, {}, {}, 1)


def test_gru_on_cpu_decides_what_is_recorded_and_checked():
    from skseqsleep.study import _gru_on_cpu

    assert _gru_on_cpu(None, {}) and _gru_on_cpu("gru", {"device": "cpu"})
    assert not _gru_on_cpu("bnlstm", {}) and not _gru_on_cpu("lstm", {"device": "cpu"})
    assert not _gru_on_cpu("gru", {"device": "cuda"})  # cuDNN's GRU on a GPU, whatever is set


def test_a_bnlstm_study_needs_no_gru_build(tmp_path):
    """No compiler and SKSEQSLEEP_GRU=compiled: a study without GRU cells never builds the
    GRU extension, so it finishes (it used to fail after its last fold, in the provenance)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, json, torch\n"
        "torch.set_num_threads(1)\n"
        "from test_study import TINY_SETTINGS\n"
        "from skseqsleep.study import run_study\n"
        "r = run_study(sys.argv[1], verbose=0, settings={**TINY_SETTINGS, 'cell': 'bnlstm'},\n"
        "              channels=['Fpz-Cz-like'], random_state=3, strategies=['direct'])\n"
        "print('ROWS', len(r.rows))\n"
        "print('GRU', 'gru_cpu' in json.load(open(sys.argv[1] + '/study.json'))['arguments'])\n")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, SKSEQSLEEP_GRU="compiled", CXX=str(tmp_path / "no-such-c++"),
               TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"),
               PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ROWS 1" in proc.stdout and "GRU False" in proc.stdout
    assert not (tmp_path / "ext").exists()


def test_different_arguments_in_the_same_folder_are_refused(reference):
    _, out = reference
    with pytest.raises(StudyArgumentsError, match=r"settings\.max_epochs: 1 there, 2 now\)"):
        run_study(out, verbose=0, **{**TINY, "settings": {**TINY_SETTINGS, "max_epochs": 2}})


def test_unknown_plot_recording_is_refused_before_any_work(tmp_path):
    with pytest.raises(StudyInputError, match="--plot-recording 'nope' is not a recording"):
        run_study(tmp_path / "x", verbose=0, plot_recording="nope", **TINY)
    assert not (tmp_path / "x").exists()


def test_a_folder_in_use_by_another_process_is_refused_until_that_process_dies(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from skseqsleep.study import ResultStore; "
         f"store = ResultStore({str(tmp_path)!r}); store.acquire(); print('held', flush=True); "
         "sys.stdin.read()")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StudyArgumentsError, match=rf"is in use by another study run "
                                                      rf"\(pid {holder.pid} on .*, since "):
            ResultStore(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)     # no clean-up code runs
        holder.wait()
    store = ResultStore(tmp_path)
    store.acquire()                            # the killed holder's lock is gone
    assert f"pid {os.getpid()} " in (tmp_path / ResultStore.LOCK_NAME).read_text()
    # the lock file alone does not make the folder "not empty"
    assert store.claim({"a": 1}) is False
    store.release()
    ResultStore(tmp_path).acquire()


def test_a_study_on_a_folder_held_by_another_run_stops_before_writing(tmp_path):
    import os

    other = ResultStore(tmp_path / "out")
    other.acquire()
    try:
        with pytest.raises(StudyArgumentsError, match=rf"in use by another study run \(pid "
                                                      rf"{os.getpid()} "):
            run_study(tmp_path / "out", verbose=0, **TINY)
        assert [p.name for p in (tmp_path / "out").iterdir()] == [ResultStore.LOCK_NAME]
    finally:
        other.release()


def test_an_output_folder_whose_lock_cannot_be_opened_is_named(tmp_path):
    # a lock path that cannot be opened (here a folder in its place; a read-only folder
    # gives the same OSError to a non-root user) is a StudyArgumentsError naming the folder
    (tmp_path / ResultStore.LOCK_NAME).mkdir()
    with pytest.raises(StudyArgumentsError, match=rf"cannot use the output folder "
                                                  rf"{re.escape(str(tmp_path))}: "
                                                  r"IsADirectoryError"):
        ResultStore(tmp_path).acquire()


def test_a_study_folder_in_use_is_refused_before_the_target_is_loaded(tmp_path):
    import os

    out, empty = tmp_path / "out", tmp_path / "no_dreams_here"
    empty.mkdir()
    ResultStore(out).claim({"earlier": "run"})
    kwargs = {"source": "simulated", "target": f"dreams:{empty}", "verbose": 0}
    # free folder: loading the (empty) target fails, so that is what this run meets first
    with pytest.raises(Exception, match="DREAMS|excerpt") as loading:
        run_study(out, **kwargs)
    assert not isinstance(loading.value, StudyArgumentsError)
    other = ResultStore(out)
    other.acquire()
    try:
        with pytest.raises(StudyArgumentsError, match=rf"in use by another study run \(pid "
                                                      rf"{os.getpid()} "):
            run_study(out, **kwargs)
    finally:
        other.release()


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_killed_run_restarted_ends_with_the_same_table(reference, tmp_path, sig):
    """SIGKILL, or Ctrl-C (SIGINT) while a fold trains: before, skorch swallowed the Ctrl-C,
    the cut-short fold was stored as finished and the run went on and exited 0."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    _, ref_out = reference
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "skseqsleep", "study", "--output-dir", str(out), "--no-plots",
           *TINY_CLI]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 240
    try:
        while len(_fold_files(out)) < 4 and time.monotonic() < deadline \
                and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    if sig == "SIGINT":
        assert proc.returncode == 130, err
        assert "interrupted; finished folds are stored" in err
    n_stored = len(_fold_files(out))
    assert 4 <= n_stored < N_TASKS, f"{n_stored} fold results stored when killed"
    stored = {f: f.stat().st_mtime_ns for f in _fold_files(out)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f"{n_stored} of {N_TASKS} fold results already stored: skipped" in done.stderr
    # the folds stored before the kill were not recomputed
    assert all(f.stat().st_mtime_ns == t for f, t in stored.items())
    assert len(_fold_files(out)) == N_TASKS
    assert (out / "table.csv").read_text() == (ref_out / "table.csv").read_text()
    assert _predictions(out) == _predictions(ref_out)
    assert "Target channel: Fpz-Cz-like" in done.stdout


def _workers(folder):
    store = ResultStore(folder)
    return {store.load_fold(f.parent.parent.name, f.parent.name.replace("_", "+"),
                            int(f.stem[5:]))["worker"] for f in _fold_files(folder)}


def test_joblib_parallel_run_gives_the_same_results(reference, tmp_path):
    import os

    _, ref_out = reference
    result = run_study(tmp_path / "par", verbose=0, n_jobs=2, plots=False, **TINY)
    workers = _workers(tmp_path / "par")
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)
    assert _predictions(tmp_path / "par") == _predictions(ref_out)
    assert (tmp_path / "par" / "table.csv").read_text() == \
        (ref_out / "table.csv").read_text()
    assert len(result.rows) == 6


def test_dask_cluster_run_gives_the_same_results(reference, tmp_path):
    import os

    distributed = pytest.importorskip("distributed")
    _, ref_out = reference
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        run_study(tmp_path / "dask", verbose=0, scheduler=cluster.scheduler_address,
                  plots=False, **TINY)
        with distributed.Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
    # the folds ran in the two worker processes of the cluster (not in this process)
    used = {int(w.rsplit(":", 1)[1]) for w in _workers(tmp_path / "dask")}
    assert used <= worker_pids and len(used) == 2
    assert _predictions(tmp_path / "dask") == _predictions(ref_out)
    assert (tmp_path / "dask" / "table.csv").read_text() == \
        (ref_out / "table.csv").read_text()


def test_saved_source_model_gives_the_same_direct_transfer(reference, tmp_path):
    # the source model cached by the reference run, loaded back as --source model:PATH,
    # must predict exactly as the in-memory source did (direct transfer: no training)
    _, ref_out = reference
    out = tmp_path / "model_source"
    result = run_study(out, source=f"model:{ref_out / 'source_model.pt'}",
                       strategies=["direct"], verbose=0, plots=False, **TINY)
    assert [r.strategy for r in result.rows] == ["direct"]
    ref = {k: v for k, v in _predictions(ref_out).items() if k[0] == "direct"}
    assert _predictions(out) == ref
    assert not (out / "source_model.pt").exists()  # nothing pretrained here


def test_sc20_target_uses_the_published_inner_split_and_others_loso():
    from skseqsleep.study import _outer_folds

    groups = np.repeat(np.arange(20), 3)
    folds = _outer_folds(groups, "sleep-edf", n_valid=4)
    assert [f[1] for f in folds] == list(range(20))
    assert sorted(folds[0][2]) == [2, 9, 10, 13]  # subject_index 3, 10, 11, 14 of fold 1
    # another subject set, or another dataset: leave-one-subject-out, validation drawn later
    folds = _outer_folds(np.repeat(np.arange(1, 21), 2), "sleep-edf", n_valid=4)
    assert [f[1] for f in folds] == list(range(1, 21)) and folds[0][2] is None
    folds = _outer_folds(np.array(["b", "a", "c", "a"]), "simulated", n_valid=1)
    assert folds == [(1, "a", None), (2, "b", None), (3, "c", None)]
    with pytest.raises(StudyInputError, match="at least 3 subjects"):
        _outer_folds(np.array(["a", "b"]), "simulated", n_valid=1)
    with pytest.raises(StudyInputError, match="n_valid_subjects=2 leaves no training"):
        _outer_folds(np.array(["a", "b", "c"]), "simulated", n_valid=2)


def test_n_valid_subjects_is_refused_for_sc20_and_defaults_elsewhere():
    from skseqsleep.study import _n_valid_subjects

    sc20 = np.repeat(np.arange(20), 3)
    # given for SC-20: refused (the published split has 4 per fold), not silently dropped
    with pytest.raises(StudyInputError, match=r"n_valid_subjects=2 cannot apply to "
                                              r"Sleep-EDF-SC-20: .*published split"):
        _n_valid_subjects("sleep-edf", sc20, 2)
    assert _n_valid_subjects("sleep-edf", sc20, None) == 4     # round(19 * 4 / 19)
    # other subjects, or another dataset: as given, or 4/19 of the non-test subjects
    assert _n_valid_subjects("sleep-edf", np.arange(1, 21), 2) == 2
    assert _n_valid_subjects("dreams", np.arange(7), None) == 1    # round(6 * 4 / 19)
    assert _n_valid_subjects("mass", np.arange(62), None) == 13    # round(61 * 4 / 19)


def test_in_process_run_leaves_the_callers_torch_threads_and_plot_backend(tmp_path):
    import matplotlib
    import torch

    before_threads, before_backend = torch.get_num_threads(), matplotlib.get_backend()
    torch.set_num_threads(2)
    try:
        run_study(tmp_path / "out", verbose=0, n_jobs=1, torch_threads=1,
                  strategies=["direct"], **TINY)
        assert torch.get_num_threads() == 2       # the folds ran with 1, then it was restored
        assert matplotlib.get_backend() == before_backend
        assert len(list((tmp_path / "out" / "confusion").glob("*.png"))) == 1
    finally:
        torch.set_num_threads(before_threads)


# --------------------------------------------------------------------------------------------
# bad input is refused before the output folder is claimed, and never blocks it
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"source": "checkpoint:/no/such/x.ckpt"}, ("cannot read the TensorFlow checkpoint "
                                                "/no/such/x.ckpt: no TensorBundle checkpoint")),
    ({"settings": {**TINY_SETTINGS, "cell": "foo"}}, "cell must be one of"),
    ({"classifier_params": {"foo": 1}}, "unknown classifier parameter.*foo"),
    ({"classifier_params": {"module__foo": 1}}, "unexpected keyword argument 'foo'"),
    ({"classifier_params": {"module__n_filters": 8}},
     "n_filters is given twice with different values: 4 .* and 8"),
])
def test_bad_source_or_parameter_leaves_no_output_folder(tmp_path, kwargs, match):
    out = tmp_path / "out"
    with pytest.raises(StudyInputError, match=match):
        run_study(out, verbose=0, plots=False, **{**TINY, **kwargs})
    assert not out.exists()


@pytest.mark.parametrize(("param", "value", "option"), [
    ("max_epochs", 1, "--max-epochs (finetuning) and --pretrain-max-epochs"),
    ("lr", 0.1, "--lr"),
    ("optimizer__lr", 0.1, "--lr"),
    ("batch_size", 0, "--batch-size"),
    ("seq_len", 5, "--seq-len"),
    ("validate_every", 3, "--validate-every"),
    ("patience", 3, "--patience"),
    ("cell", "lstm", "--cell"),
    ("random_state", 5, "--random-state"),
    ("verbose", 1, "--quiet"),
    ("train_split", None, "--n-valid-subjects"),
    ("warm_start_from", None, "--source"),
    ("trainable_parts", "all", "--strategies"),
])
def test_set_of_a_parameter_the_study_sets_is_refused_naming_the_option(tmp_path, param,
                                                                        value, option):
    # --set max_epochs=1 pretrained 1 epoch while study.json said pretrain_max_epochs=20
    out = tmp_path / "out"
    with pytest.raises(StudyArgumentsError, match=f"--set {param}: use {re.escape(option)}"):
        run_study(out, verbose=0, classifier_params={param: value}, **TINY)
    assert not out.exists()


def test_every_parameter_the_study_sets_on_its_classifiers_is_refused_in_set():
    # derived from what _classifier really sets: a parameter added there without a refusal
    # (and an option to name) fails here
    from skseqsleep import SeqSleepClassifier
    from skseqsleep.model_selection import GroupHoldout
    from skseqsleep.study import _ARCH_PARAMS, _classifier, _refused_classifier_params

    settings = {"validate_every": 3, "patience": 4, "batch_size": 5, "lr": 0.5,
                "seq_len": 6, "cell": "lstm", "n_filters": 7, "rnn_hidden": 8,
                "attention_size": 9}
    clf = _classifier(settings, 11, warm_start_from="src.pt", trainable_parts=(),
                      train_split=GroupHoldout(1, random_state=0), max_epochs=12)
    default = SeqSleepClassifier().get_params(deep=False)
    changed = {k for k, v in clf.get_params(deep=False).items()     # every value given
               if not k.startswith("_") and (k not in default or default[k] != v)}  # differs
    assert changed - set(_ARCH_PARAMS.values()) == set(_refused_classifier_params()) - {
        "optimizer__lr"}


def test_extra_classifier_parameters_still_pass_through_set(tmp_path):
    out = tmp_path / "out"
    run_study(out, verbose=0, plots=False, strategies=["direct"],
              classifier_params={"train_sampler": "shared", "train_block_size": 2}, **TINY)
    recorded = json.loads((out / "study.json").read_text())["arguments"]
    assert recorded["classifier_params"] == {"train_sampler": "shared", "train_block_size": 2}


def test_optimizer_and_criterion_parameters_pass_through_set(tmp_path):
    # skorch's name check knows the optimizer__/criterion__ prefixes only on an initialised
    # net: they were refused as "unknown classifier parameter" before the study ran
    params = {"criterion__label_smoothing": 0.3, "optimizer__weight_decay": 0.1}
    runs = {}
    for name, extra in (("plain", {}), ("set", params)):
        res = run_study(tmp_path / name, verbose=0, plots=False, strategies=["softmax"],
                        classifier_params=extra, **TINY)
        runs[name] = [h["valid_loss"] for fold in res.curves[("Fpz-Cz-like", "softmax")]
                      for h in fold]
    recorded = json.loads((tmp_path / "set" / "study.json").read_text())["arguments"]
    assert recorded["classifier_params"] == params
    # the same seeds and data: the smoothed loss is another validation loss at every step
    assert len(runs["plain"]) == len(runs["set"]) > 0
    assert all(a != b for a, b in zip(runs["plain"], runs["set"]))


def _adam_with_bad_betas(params, **kwargs):
    import torch

    return torch.optim.Adam(params, betas=(2.0, 0.9), **kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    # classifier parameters that failed in the first fit, after study.json was written
    ({"classifier_params": {"optimizer": "sgd"}},
     (r"--set optimizer / classifier_params\['optimizer'\] must be a class such as "
      r"torch.optim.SGD; got 'sgd'")),
    ({"classifier_params": {"optimizer": _adam_with_bad_betas}},
     "loss or optimiser parameters .* not valid: ValueError: Invalid beta parameter"),
    ({"classifier_params": {"device": "cuda:99"}},
     "classifier parameter .* not valid: device='cuda:99' asks for CUDA"),
    ({"classifier_params": {"train_sampler": "fast"}}, "train_sampler must be one of"),
    ({"classifier_params": {"l2_lambda": -1}}, "l2_lambda must be a finite number >= 0"),
    ({"classifier_params": {"optimizer__weigth_decay": 0.1}},
     "loss or optimiser parameters .* unexpected keyword argument 'weigth_decay'"),
    # data that leave a fit without training windows or subjects
    ({"settings": {**TINY_SETTINGS, "sim_epochs_per_night": 3}},
     (r"fold 1 \(test subject sim-s00\) cannot be trained: no training window: every "
      r"training recording is shorter than seq_len=4 .*--sim-epochs")),
    ({"settings": {**TINY_SETTINGS, "batch_size": 64}},
     (r"fold 1 \(test subject sim-s00\) cannot be trained: only 21 training window\(s\) .*"
      r"batch_size=64")),
    ({"settings": {**TINY_SETTINGS, "sim_target_subjects": 2}},
     "needs at least 3 subjects; the target has 2"),
    ({"settings": {**TINY_SETTINGS, "sim_source_subjects": 1}, "strategies": ["direct"]},
     ("the source model cannot be pretrained on the simulated source cohort: "
      r"GroupHoldout\(n_valid_groups=1\) needs more than 1 subjects")),
])
def test_arguments_that_would_fail_a_fit_leave_no_output_folder(tmp_path, kwargs, match):
    out = tmp_path / "out"
    with pytest.raises(StudyInputError, match=match):
        run_study(out, verbose=0, plots=False, **{**TINY, **kwargs})
    assert not out.exists()


def test_a_direct_transfer_needs_no_training_window_in_the_folds(reference, tmp_path):
    # direct transfer trains nothing: target recordings shorter than L are not refused
    _, ref_out = reference
    out = tmp_path / "out"
    short = {**TINY_SETTINGS, "sim_epochs_per_night": 3}
    with pytest.warns(UserWarning, match="shorter than seq_len=4 epochs"):  # the prediction's
        result = run_study(out, source=f"model:{ref_out / 'source_model.pt'}",
                           strategies=["direct"], verbose=0, plots=False,
                           **{**TINY, "settings": short})
    assert result.row("Fpz-Cz-like", "direct").n_epochs == 3 * 3


def test_not_a_model_file_and_an_empty_mass_folder_leave_no_output_folder(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(StudyInputError, match=f"cannot load the model {junk}.*not a model saved"):
        run_study(tmp_path / "a", source=f"model:{junk}", verbose=0, **TINY)
    (tmp_path / "mass").mkdir()
    with pytest.raises(StudyInputError, match="cannot load MASS from .*mass"):
        run_study(tmp_path / "b", source=f"mass:{tmp_path / 'mass'}", verbose=0, **TINY)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_run_fixed_after_a_late_failure_can_reuse_its_folder(tmp_path, monkeypatch):
    # a failure after the folder was claimed (here: inside the first fold) leaves study.json
    # but no fold result; the corrected run, with other arguments, takes the folder over
    from skseqsleep import study

    def broken(*args, **kwargs):
        raise RuntimeError("fold failed")

    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(study, "_fit_fold", broken)
        with pytest.raises(RuntimeError, match="fold failed"):
            run_study(out, strategies=["direct"], verbose=0, plots=False, **TINY)
    assert (out / "study.json").is_file() and not _fold_files(out)
    fixed = {**TINY, "settings": {**TINY_SETTINGS, "max_epochs": 2}}
    result = run_study(out, strategies=["direct"], verbose=0, plots=False, **fixed)
    assert [r.strategy for r in result.rows] == ["direct"] and len(_fold_files(out)) == 3
    assert json.loads((out / "study.json").read_text())["arguments"]["settings"][
        "max_epochs"] == 2


# --------------------------------------------------------------------------------------------
# the source's architecture, its file contents, and the authors' checkpoints
# --------------------------------------------------------------------------------------------


def test_explicit_network_settings_that_differ_from_the_source_are_refused(reference,
                                                                           tmp_path):
    _, ref_out = reference
    src = f"model:{ref_out / 'source_model.pt'}"       # n_filters = rnn_hidden = 4
    with pytest.raises(StudyInputError, match=r"n_filters: the study sets 8 \(--n-filters\), "
                                              r"the source has 4"):
        run_study(tmp_path / "a", source=src, verbose=0,
                  **{**TINY, "settings": {**TINY_SETTINGS, "n_filters": 8}})
    with pytest.raises(StudyInputError, match=r"rnn_hidden: the study sets 16 \(--set "
                                              r"module__rnn_hidden\), the source has 4"):
        run_study(tmp_path / "b", source=src, verbose=0, strategies=["scratch"],
                  classifier_params={"module__rnn_hidden": 16},
                  **{**TINY, "settings": {k: v for k, v in TINY_SETTINGS.items()
                                          if k != "rnn_hidden"}})
    with pytest.raises(StudyInputError, match=r"cell: the study sets 'lstm' \(--cell\), the "
                                              r"source has 'gru'"):
        run_study(tmp_path / "c", source=src, verbose=0,
                  **{**TINY, "settings": {**TINY_SETTINGS, "cell": "lstm"}})
    assert not any((tmp_path / d).exists() for d in "abc")


def test_settings_left_to_the_source_are_recorded_as_used(reference, tmp_path):
    _, ref_out = reference
    sizes = ("n_filters", "rnn_hidden", "attention_size")
    settings = {k: v for k, v in TINY_SETTINGS.items() if k not in sizes}
    out = tmp_path / "out"
    run_study(out, source=f"model:{ref_out / 'source_model.pt'}", strategies=["direct"],
              verbose=0, plots=False, **{**TINY, "settings": settings})
    recorded = json.loads((out / "study.json").read_text())["arguments"]["settings"]
    # the simulated defaults are 16/32/32; the source (and so every fold) has 4/4/4
    assert [recorded[k] for k in sizes] == [4, 4, 4] and recorded["cell"] == "gru"
    # the direct transfer predicted exactly as with the same model given explicit sizes
    ref = {k: v for k, v in _predictions(ref_out).items() if k[0] == "direct"}
    assert _predictions(out) == ref


def test_a_changed_source_file_at_the_same_path_is_refused(reference, tmp_path):
    import hashlib
    import shutil

    import torch

    _, ref_out = reference
    model = tmp_path / "model.pt"
    shutil.copyfile(ref_out / "source_model.pt", model)
    out = tmp_path / "out"
    kw = {**TINY, "source": f"model:{model}", "strategies": ["direct"], "plots": False}
    run_study(out, verbose=0, **kw)
    recorded = json.loads((out / "study.json").read_text())["arguments"]["source_sha256"]
    assert recorded == {"model.pt": hashlib.sha256(model.read_bytes()).hexdigest()}
    content = torch.load(model, weights_only=True)
    key = next(iter(content["state_dict"]))
    content["state_dict"][key] = content["state_dict"][key] + 1.0
    torch.save(content, model)
    with pytest.raises(StudyArgumentsError, match=r"source_sha256\.model\.pt: '[0-9a-f]{64}' "
                                                  r"there, '[0-9a-f]{64}' now"):
        run_study(out, verbose=0, **kw)


def test_authors_checkpoints_that_do_not_fit_the_study_are_refused_up_front(shared_dir,
                                                                          tmp_path):
    ckpts = shared_dir / "pretrained" / "phan2019-mass"
    small = {k: v for k, v in TINY_SETTINGS.items()
             if k not in ("n_filters", "rnn_hidden", "attention_size", "seq_len")}
    with pytest.raises(StudyInputError, match=r"n_channels \(input channels\): the source "
                                              r"checkpoint .*2chan_eegeog needs 2, the study "
                                              r"has 1"):
        run_study(tmp_path / "a", source=f"checkpoint:{ckpts / '2chan_eegeog'}",
                  strategies=["direct"], verbose=0, **{**TINY, "settings": small})
    with pytest.raises(StudyInputError, match=r"seq_len: the study sets 5 \(--seq-len\), the "
                                              r"source needs L=20"):
        run_study(tmp_path / "b", source=f"checkpoint:{ckpts / '1chan_eeg'}",
                  strategies=["direct"], verbose=0,
                  **{**TINY, "settings": {**small, "seq_len": 5}})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_source_kinds_are_enforced_and_checkpoint_errors_surface(shared_dir, reference,
                                                                 tmp_path):
    import shutil

    _, ref_out = reference
    one = shared_dir / "pretrained" / "phan2019-mass" / "1chan_eeg"
    two = tmp_path / "two"
    two.mkdir()
    for f in one.glob("pretrained_model.ckpt.*"):
        shutil.copyfile(f, two / f.name)
        shutil.copyfile(f, two / f.name.replace("pretrained_model", "other"))
    with pytest.raises(StudyInputError, match=r"expected exactly one TensorBundle '\*\.index' "
                                              r"file in folder .*two.*found 2"):
        run_study(tmp_path / "a", source=f"checkpoint:{two}", verbose=0, **TINY)
    pt = ref_out / "source_model.pt"
    with pytest.raises(StudyInputError, match=f"checkpoint:{pt} is a model saved by "
                                              f".*use --source model:{pt}"):
        run_study(tmp_path / "b", source=f"checkpoint:{pt}", verbose=0, **TINY)
    with pytest.raises(StudyInputError, match=f"model:{one} is a TensorFlow checkpoint.*use "
                                              f"--source checkpoint:{one}"):
        run_study(tmp_path / "c", source=f"model:{one}", verbose=0, **TINY)
    prefix = one / "pretrained_model.ckpt"    # the prefix form: "does not exist" before
    with pytest.raises(StudyInputError, match=f"model:{prefix} is a TensorFlow checkpoint.*"
                                              f"use --source checkpoint:{prefix}"):
        run_study(tmp_path / "c", source=f"model:{prefix}", verbose=0, **TINY)
    assert not any((tmp_path / d).exists() for d in "abc")


def _copy_of_reference(reference, out):
    """A copy of the reference study's finished folder at ``out``; returns (out, reference)."""
    import shutil

    _, ref_out = reference
    shutil.copytree(ref_out, out)
    return out, ref_out


def _write_dreams_excerpt(folder, k, codes):
    """A DREAMS-format excerpt k (100 Hz, 1800 s of noise) scored with one 5-s code per
    30-s epoch (``codes``: 60 values; negative = unscored)."""
    rng = np.random.default_rng(k)
    signal = rng.normal(0, 20, 180000)
    (folder / f"excerpt{k}.txt").write_text(
        "[C3-A1]\n" + "\n".join(f"{v:.2f}" for v in signal) + "\n")
    (folder / f"Hypnogram_excerpt{k}.txt").write_text(
        "[Hypnogram]\n" + "\n".join(str(c) for c in np.repeat(codes, 6)) + "\n")


def test_stored_folds_of_a_target_folder_that_changed_are_refused(reference, tmp_path):
    # a DREAMS folder gains excerpt 4: with the same command, fold 3 (excerpt5's result)
    # was reused as the fold of excerpt4, excerpt6's twice, and excerpt4 never tested
    _, ref_out = reference
    dreams = tmp_path / "dreams"
    dreams.mkdir()
    codes = {k: np.random.default_rng(10 + k).choice([5, 4, 3, 2, 1], 60) for k in range(7)}
    for k in (1, 2, 5, 6):
        _write_dreams_excerpt(dreams, k, codes[k])
    out = tmp_path / "out"
    settings = {k: v for k, v in TINY_SETTINGS.items()
                if k not in ("n_filters", "rnn_hidden", "attention_size")}
    kw = {"source": f"model:{ref_out / 'source_model.pt'}", "target": f"dreams:{dreams}",
          "strategies": ["direct"], "settings": settings, "random_state": 3, "plots": False,
          "verbose": 0}
    first = run_study(out, **kw)
    assert [f["test_subject"] for f in first.per_fold] == [
        "excerpt1", "excerpt2", "excerpt5", "excerpt6"]
    stored = {f: f.read_bytes() for f in _fold_files(out)}
    table = (out / "table.csv").read_text()

    changed_target = (r"holds a study run with different arguments \(target_sha256: '[0-9a-f]{64}' "
                      r"there, '[0-9a-f]{64}' now\) and 4 finished fold result\(s\)\. The target "
                      r"data changed since that folder was written \(a recording added, removed "
                      r"or changed\), so its fold results were trained and tested on other "
                      r"data: use another --output-dir")
    # an excerpt added in the middle (renumbers the folds) or at the end (fold numbers and
    # test subjects stay: only the training data of every fold changed)
    for k in (4, 9):
        _write_dreams_excerpt(dreams, k, codes[k % 7])
        with pytest.raises(StudyArgumentsError, match=changed_target):
            run_study(out, **kw)
        (dreams / f"excerpt{k}.txt").unlink()
        (dreams / f"Hypnogram_excerpt{k}.txt").unlink()
    # an excerpt removed, or rescored: fewer epochs kept, or other stages
    moved = tmp_path / "excerpt6.txt"
    (dreams / "excerpt6.txt").rename(moved)
    (dreams / "Hypnogram_excerpt6.txt").rename(tmp_path / "Hypnogram_excerpt6.txt")
    with pytest.raises(StudyArgumentsError, match=changed_target):
        run_study(out, **kw)
    moved.rename(dreams / "excerpt6.txt")
    (tmp_path / "Hypnogram_excerpt6.txt").rename(dreams / "Hypnogram_excerpt6.txt")
    for n_changed, new_code in ((2, lambda c: -1), (3, lambda c: np.where(c == 5, 4, 5))):
        changed = codes[6].copy()
        changed[:n_changed] = new_code(changed[:n_changed])
        _write_dreams_excerpt(dreams, 6, changed)
        with pytest.raises(StudyArgumentsError, match=changed_target):
            run_study(out, **kw)
    assert {f: f.read_bytes() for f in _fold_files(out)} == stored
    assert (out / "table.csv").read_text() == table
    # the data as they were: resumed from the stored folds, the same table
    _write_dreams_excerpt(dreams, 6, codes[6])
    again = run_study(out, **kw)
    np.testing.assert_array_equal(again.metrics_array(), first.metrics_array())
    assert {f: f.read_bytes() for f in _fold_files(out)} == stored


def test_a_fold_file_moved_to_another_fold_is_refused(reference, tmp_path):
    # the fingerprint covers the arguments and the target's content; a fold file copied over
    # another fold's (by hand) is caught by what the file records of its fold
    import shutil

    out, _ = _copy_of_reference(reference, tmp_path / "copy")
    folder = out / "folds" / "Fpz-Cz-like" / "direct"
    shutil.copyfile(folder / "fold_01.npz", folder / "fold_02.npz")
    with pytest.raises(StudyInputError, match=r"the stored result of fold 2 \(.*fold_02\.npz\) "
                                              r"tested subject 'sim-s00' .*but fold 2 of the "
                                              r"target now tests subject 'sim-s01'"):
        run_study(out, verbose=0, plots=False, **TINY)


def test_a_folder_of_an_older_store_version_says_it_cannot_be_resumed(reference, tmp_path):
    # "repeat the earlier arguments to resume" cannot work when only the version differs

    from skseqsleep.study import STORE_VERSION, fingerprint

    out, _ = _copy_of_reference(reference, tmp_path / "old")
    manifest = json.loads((out / "study.json").read_text())
    old_args = {**manifest["arguments"], "store_version": STORE_VERSION - 1}
    old_args.pop("target_sha256")                  # as version 1 wrote it
    manifest.update(arguments=old_args, fingerprint=fingerprint(old_args),
                    store_version=STORE_VERSION - 1)
    (out / "study.json").write_text(json.dumps(manifest))
    with pytest.raises(StudyArgumentsError, match=(
            rf"written by another version of skseqsleep \(results store version "
            rf"{STORE_VERSION - 1}, this one writes {STORE_VERSION}\) and cannot be resumed: "
            r"use another --output-dir \(or delete that folder\)")):
        run_study(out, verbose=0, plots=False, **TINY)


def test_a_stored_fold_without_its_test_subject_is_named(reference, tmp_path):
    import io

    out, _ = _copy_of_reference(reference, tmp_path / "copy")
    fold = out / "folds" / "Fpz-Cz-like" / "direct" / "fold_02.npz"
    with np.load(fold) as z:
        content = dict(z)
    meta = json.loads(str(content["meta"]))
    del meta["test_subject"]
    content["meta"] = np.asarray(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **content)
    fold.write_bytes(buf.getvalue())
    with pytest.raises(StudyInputError, match=f"the stored fold result {fold} does not record "
                                              "its test subject.*delete it"):
        run_study(out, verbose=0, plots=False, **TINY)


# --------------------------------------------------------------------------------------------
# corrupt files in the output folder; single strings; Dask scheduler addresses
# --------------------------------------------------------------------------------------------


def test_a_corrupt_fold_file_or_cached_source_is_named(reference, tmp_path):

    out, ref_out = _copy_of_reference(reference, tmp_path / "copy")
    fold = out / "folds" / "Fpz-Cz-like" / "softmax" / "fold_02.npz"
    fold.write_bytes(b"")
    with pytest.raises(StudyInputError, match=f"the stored fold result {fold} cannot be read.*"
                                              "delete it and run the same command again"):
        run_study(out, verbose=0, plots=False, **TINY)
    fold.unlink()  # as the message says: it is recomputed, with the same result
    run_study(out, verbose=0, plots=False, **TINY)
    assert _predictions(out) == _predictions(ref_out)
    cache = out / "source_model.pt"
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.raises(StudyInputError, match=f"the cached source model {cache} cannot be read"
                                              ".*delete it"):
        run_study(out, verbose=0, plots=False, **TINY)


def test_a_single_string_is_one_channel_and_one_strategy(tmp_path):
    result = run_study(tmp_path / "out", verbose=0, plots=False,
                       **{**TINY, "channels": "Fpz-Cz-like", "strategies": "scratch"})
    assert [(r.channel, r.strategy) for r in result.rows] == [("Fpz-Cz-like", "scratch")]


def test_a_scheduler_that_never_answers_or_is_closed_is_refused_before_any_work(tmp_path,
                                                                                monkeypatch):
    import socket
    import threading
    import time

    from skseqsleep import study

    pytest.importorskip("distributed")
    monkeypatch.setattr(study, "SCHEDULER_TIMEOUT", 1.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    accepted = []

    def accept():  # accepts TCP connections and never writes a byte
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    t0 = time.monotonic()
    try:
        with pytest.raises(StudyInputError, match=f"the Dask scheduler {address} did not "
                                                  "answer within 2 s"):
            run_study(tmp_path / "silent", scheduler=address, verbose=0, **TINY)
    finally:
        server.close()
        for c in accepted:
            c.close()
    assert time.monotonic() - t0 < 30 and accepted
    # nothing listens there any more: refused (within the deadline), naming the address
    with pytest.raises(StudyInputError, match=f"Dask scheduler {address}"):
        run_study(tmp_path / "closed", scheduler=address, verbose=0, **TINY)
    assert not (tmp_path / "silent").exists() and not (tmp_path / "closed").exists()


# --------------------------------------------------------------------------------------------
# the spectrogram standardisation of a fold (REFERENCE §2)
# --------------------------------------------------------------------------------------------


def test_fold_standardisation_uses_the_training_subjects_only():
    """REFERENCE §2: validation and test data use the training statistics. The study fitted
    the transformer on every non-test subject, the inner-validation ones included."""
    from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
    from skseqsleep.datasets import make_sleep_cohort
    from skseqsleep.study import _standardised, _train_split

    data = make_sleep_cohort(5, n_epochs=40, random_state=3)
    X, y, groups = data.X, data.y, np.asarray(data.groups)
    recordings = np.asarray(data.recordings).astype(str)
    split = _train_split(None, 2, seed=11)               # as the study builds it
    Xt = _standardised(SpectrogramTransformer(), X, groups, split)
    clf = SeqSleepClassifier(seq_len=4, batch_size=8, max_epochs=1, verbose=0,
                             module__n_filters=8, module__rnn_hidden=8,
                             module__attention_size=8, train_split=split, random_state=0)
    clf.fit(Xt, y, groups=groups, recordings=recordings)
    valid = np.isin(recordings, clf.valid_recordings_)   # what the classifier validated on
    assert len(np.unique(groups[valid])) == 2
    expected = SpectrogramTransformer().fit(X[~valid]).transform(X)
    np.testing.assert_allclose(Xt, expected, rtol=0, atol=1e-6)
    everyone = SpectrogramTransformer().fit_transform(X)
    assert np.abs(everyone - expected).max() > 1e-3      # the difference is not negligible


def test_a_fold_is_trained_on_training_only_statistics():
    """_fit_fold (what every fold of the study runs) gives the predictions of a classifier
    trained on spectrograms standardised with the training subjects' statistics."""
    from skseqsleep import SpectrogramTransformer
    from skseqsleep.datasets import make_sleep_cohort
    from skseqsleep.study import _fit_fold, _fold_classifier

    data = make_sleep_cohort(5, n_epochs=40, random_state=3)
    X, y, groups = data.X, data.y, np.asarray(data.groups)
    recordings = np.asarray(data.recordings).astype(str)
    settings = {**TINY_SETTINGS, "max_epochs": 2, "n_valid_subjects": 1}
    task = {"strategy": "scratch", "valid_subjects": None, "seed": 5, "test_subject": "sim-s00",
            "fold": 1, "channel": "Fpz-Cz-like"}
    got = _fit_fold(task, X, y, groups, recordings, 100.0, None, settings, None)["y_pred"]

    def predictions(fit_on_validation_subjects):
        test = groups == "sim-s00"
        clf = _fold_classifier(task, settings, None)
        _, valid = next(clf.train_split.split(X[~test], groups=groups[~test]))
        fit_rows = np.ones((~test).sum(), bool)
        if not fit_on_validation_subjects:
            fit_rows[valid] = False
        transformer = SpectrogramTransformer().fit(X[~test][fit_rows])
        clf.fit(transformer.transform(X[~test]), y[~test], groups=groups[~test],
                recordings=recordings[~test])
        return clf.predict(transformer.transform(X[test]), recordings=recordings[test])

    np.testing.assert_array_equal(got, predictions(fit_on_validation_subjects=False))
    # the former statistics (every non-test subject) give other predictions here
    assert not np.array_equal(got, predictions(fit_on_validation_subjects=True))


def test_outputs_get_the_permissions_of_the_umask(reference, tmp_path):
    """mkstemp made every output owner-only (0600): a lab's shared results folder could not be
    read by colleagues. Files now get 0666 less the umask, as open() gives them."""
    import os
    import stat

    from skseqsleep.study import _atomic_write_bytes

    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            _atomic_write_bytes(tmp_path / f"t{mask:o}.csv", b"x")
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / f"t{mask:o}.csv").stat().st_mode) == mode
    _, ref_out = reference          # written by the study under this process's umask
    expected = 0o666 & ~_umask()
    written = [ref_out / "table.csv", ref_out / "study.json", ref_out / "provenance.json",
               *_fold_files(ref_out), *ref_out.glob("*.png")]
    assert len(written) > 5
    assert {str(p): stat.S_IMODE(p.stat().st_mode) for p in written} == \
        {str(p): expected for p in written}


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
