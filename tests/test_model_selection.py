"""Tests of skseqsleep.model_selection: metrics (hand-computed), splitters, scorers."""

import csv
import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import cohen_kappa_score, f1_score
from sklearn.model_selection import LeaveOneGroupOut, cross_validate

from skseqsleep.model_selection import (
    SCORERS,
    GroupHoldout,
    PredefinedGroupSplit,
    get_scorer,
    make_recording_scorer,
    sleep_metrics,
)

# y_true / y_pred of 8 epochs; the expected values below are worked out by hand.
Y_TRUE = [0, 0, 1, 1, 2, 2, 3, 4]
Y_PRED = [0, 1, 1, 1, 2, 0, 3, 4]


def test_sleep_metrics_hand_computed():
    m = sleep_metrics(Y_TRUE, Y_PRED)
    expected_cm = np.array([[1, 1, 0, 0, 0],
                            [0, 2, 0, 0, 0],
                            [1, 0, 1, 0, 0],
                            [0, 0, 0, 1, 0],
                            [0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(m["confusion_matrix"], expected_cm)
    assert m["accuracy"] == pytest.approx(6 / 8)
    # sensitivities W 1/2, N1 2/2, N2 1/2, N3 1, REM 1
    assert m["macro_sensitivity"] == pytest.approx((0.5 + 1 + 0.5 + 1 + 1) / 5)
    # specificities W 5/6, N1 5/6, N2 6/6, N3 7/7, REM 7/7
    assert m["macro_specificity"] == pytest.approx((5 / 6 + 5 / 6 + 1 + 1 + 1) / 5)
    # F1 = 2TP / (2TP + FP + FN): W 2/4, N1 4/5, N2 2/3, N3 1, REM 1
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3 + 1 + 1) / 5)
    # kappa: po = 0.75, pe = (2*2 + 2*3 + 2*1 + 1*1 + 1*1) / 64 = 14/64
    assert m["kappa"] == pytest.approx((0.75 - 14 / 64) / (1 - 14 / 64))
    assert m["per_class"]["N1"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["W"]["support"] == 2
    assert m["n_epochs"] == 8


def test_sleep_metrics_agree_with_sklearn_on_random_labels():
    rng = np.random.default_rng(3)
    yt, yp = rng.integers(0, 5, 500), rng.integers(0, 5, 500)
    m = sleep_metrics(yt, yp)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(yt, yp))
    assert m["macro_f1"] == pytest.approx(f1_score(yt, yp, average="macro"))


def test_sleep_metrics_stage_absent_from_both_is_left_out_of_macro():
    m = sleep_metrics([0, 2, 2], [0, 2, 0])
    # only W and N2 occur: F1 W = 2/3, N2 = 2/3; sensitivity W 1, N2 1/2
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["macro_sensitivity"] == pytest.approx(0.75)
    assert np.isnan(m["per_class"]["N1"]["f1"])


def test_kappa_of_one_stage_scored_and_predicted_throughout_is_perfect_agreement():
    # chance agreement is 1 here: sklearn's formula gives 0/0 (NaN); documented as 1.0
    assert sleep_metrics([2, 2, 2], [2, 2, 2])["kappa"] == 1.0
    # one stage scored, another predicted: no agreement beyond chance (0 by hand)
    assert sleep_metrics([2, 2, 2], [0, 0, 0])["kappa"] == 0.0


@pytest.mark.parametrize("y_true,y_pred,msg", [
    ([0, 5], [0, 1], "y_true must hold stage labels 0..4"),
    ([0, 1], [0, -1], "y_pred must hold stage labels"),
    ([0, 1, 2], [0, 1], "y_true has 3 epochs but y_pred has 2"),
    ([], [], "at least one epoch"),
    # a float label is not silently truncated (2.7 used to count as N2), NaN not cast to int
    ([0, 1, 2.7], [0, 1, 2], r"y_true must be a 1-D array .*non-integral .*\[2\.7\]"),
    ([0, 1, 2], [0, np.nan, 2], r"y_pred must be a 1-D array .*non-finite .*\[nan\]"),
    (["W", "N1", "N2"], [0, 1, 2], r"y_true must be a 1-D array .*dtype <U2"),
    ([True, False], [1, 0], r"y_true must be a 1-D array .*dtype bool"),
    ([[0, 1], [2, 3]], [0, 1, 2, 3], r"y_true must be a 1-D array .*shape \(2, 2\)"),
])
def test_sleep_metrics_bad_input(y_true, y_pred, msg):
    with pytest.raises(ValueError, match=msg):
        sleep_metrics(y_true, y_pred)


def test_group_holdout_holds_out_whole_random_subjects():
    groups = np.repeat(np.arange(10), 7)
    X = np.zeros((len(groups), 1))
    chosen = set()
    for seed in range(6):
        train, valid = next(GroupHoldout(n_valid_groups=3, random_state=seed).split(X, None, groups))
        vg = set(groups[valid])
        assert len(vg) == 3
        assert vg.isdisjoint(set(groups[train]))
        assert len(train) + len(valid) == len(groups)
        assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(len(groups)))
        chosen.add(tuple(sorted(vg)))
        # same seed, same subjects
        again = next(GroupHoldout(3, random_state=seed).split(X, None, groups))[1]
        np.testing.assert_array_equal(again, valid)
    assert len(chosen) > 1


def test_group_holdout_errors():
    X = np.zeros((6, 1))
    with pytest.raises(ValueError, match="needs more than 3 subjects"):
        next(GroupHoldout(3).split(X, None, np.repeat([0, 1, 2], 2)))
    with pytest.raises(ValueError, match="needs the subject of every epoch"):
        next(GroupHoldout(1).split(X, None, None))
    with pytest.raises(ValueError, match="positive integer"):
        next(GroupHoldout(0).split(X, None, np.repeat([0, 1, 2], 2)))
    with pytest.raises(ValueError, match="positive integer, got True"):
        next(GroupHoldout(True).split(X, None, np.repeat([0, 1, 2], 2)))


def test_predefined_group_split_repeats_and_strings():
    groups = np.repeat(["s0", "s1", "s2", "s3"], 2)
    X = np.zeros((len(groups), 1))
    # a subject named twice counts once: 3 of 4 subjects is a valid validation set ...
    _, valid = next(PredefinedGroupSplit(["s1", "s1", "s2", "s3"]).split(X, None, groups))
    assert sorted(set(groups[valid])) == ["s1", "s2", "s3"]
    # ... and naming all 4 (one twice) leaves no training subject
    with pytest.raises(ValueError, match=r"every training subject would be a validation "
                                         r"subject: \['s0', 's1', 's2', 's3'\]"):
        next(PredefinedGroupSplit(["s0", "s1", "s2", "s3", "s3"]).split(X, None, groups))
    # a string is one subject's name, not a list of one-character subjects
    with pytest.raises(TypeError, match=r"valid_groups must be a list of subjects, got 's1' "
                                        r"\(for one subject write \['s1'\]\)"):
        next(PredefinedGroupSplit("s1").split(X, None, groups))
    with pytest.raises(TypeError, match=r"valid_groups\['s9'\] must be a list of subjects"):
        next(PredefinedGroupSplit({"s9": "s1"}).split(X, None, groups))
    with pytest.raises(TypeError, match=r"valid_groups must be a list of subjects, got None$"):
        next(PredefinedGroupSplit(None).split(X, None, groups))


def test_predefined_group_split_list_and_missing():
    groups = np.repeat(["a", "b", "c", "d"], 2)
    X = np.zeros((8, 1))
    _, valid = next(PredefinedGroupSplit(["b", "d"]).split(X, None, groups))
    np.testing.assert_array_equal(valid, [2, 3, 6, 7])
    with pytest.warns(UserWarning, match=r"\['z'\] are not in the training data"):
        _, valid = next(PredefinedGroupSplit(["c", "z"]).split(X, None, groups))
    np.testing.assert_array_equal(valid, [4, 5])
    with pytest.raises(ValueError, match="none of the validation subjects"):
        next(PredefinedGroupSplit(["z"]).split(X, None, groups))


def test_predefined_group_split_reproduces_published_folds(shared_dir):
    folds = {}
    with open(shared_dir / "data" / "splits" / "sleepedf_sc20_folds.csv") as f:
        for row in csv.DictReader(f):
            fold = folds.setdefault(int(row["fold"]), {"test": [], "valid": [], "train": []})
            fold[row["role"]].append(int(row["subject_index"]) - 1)   # Sleep-EDF subject
    assert len(folds) == 20
    mapping = {f["test"][0]: f["valid"] for f in folds.values()}
    splitter = PredefinedGroupSplit(mapping)
    logo_groups = np.repeat(np.arange(20), 3)
    for fold in folds.values():
        in_fold = logo_groups != fold["test"][0]          # what LeaveOneGroupOut keeps
        g = logo_groups[in_fold]
        train, valid = next(splitter.split(g, None, g))
        assert sorted(set(g[valid])) == sorted(fold["valid"])
        assert sorted(set(g[train])) == sorted(fold["train"])
    with pytest.raises(ValueError, match="absent keys"):
        next(splitter.split(logo_groups, None, logo_groups))


class _PositionClassifier(ClassifierMixin, BaseEstimator):
    """Predicts, for each epoch, its position inside its recording modulo 5.

    Its predictions depend on where recordings start, so a scorer that does not pass the test
    fold's recordings gets a different score."""

    def fit(self, X, y, recordings=None):
        self.classes_ = np.arange(5)
        return self

    def predict(self, X, recordings=None, groups=None):
        if recordings is None:
            return np.arange(len(X)) % 5
        recordings = np.asarray(recordings)
        starts = np.r_[0, np.flatnonzero(recordings[1:] != recordings[:-1]) + 1]
        pos = np.arange(len(X)) - np.repeat(starts, np.diff(np.r_[starts, len(X)]))
        return pos % 5


def _position_data():
    # 3 subjects x 2 recordings of 7 epochs; y = position in recording mod 5
    recordings = np.repeat([f"s{s}n{n}" for s in range(3) for n in range(2)], 7)
    groups = np.repeat(np.arange(3), 14)
    y = np.tile(np.arange(7) % 5, 6)
    X = np.zeros((len(y), 2))
    return X, y, groups, recordings


def test_recording_scorer_with_metadata_routing():
    X, y, groups, recordings = _position_data()
    est = _PositionClassifier()
    with sklearn.config_context(enable_metadata_routing=True):
        est.set_fit_request(recordings=True).set_predict_request(recordings=True)
        res = cross_validate(est, X, y, cv=LeaveOneGroupOut(),
                             scoring={"acc": make_recording_scorer("accuracy"),
                                      "kappa": SCORERS["kappa"]},
                             params={"groups": groups, "recordings": recordings})
    # each test recording predicted on its own: perfectly right
    np.testing.assert_allclose(res["test_acc"], 1.0)
    np.testing.assert_allclose(res["test_kappa"], 1.0)


def test_recording_scorer_without_routing_predicts_the_fold_as_one_recording():
    X, y, groups, _ = _position_data()
    res = cross_validate(_PositionClassifier(), X, y, groups=groups, cv=LeaveOneGroupOut(),
                         scoring=get_scorer("accuracy"))
    # second recording of every fold is seen shifted by 7: positions 7..13 mod 5 -> 2,3,4,0,1,2,3
    # against 0,1,2,3,4,0,1: no match; first recording all right -> 7/14
    np.testing.assert_allclose(res["test_score"], 0.5)


def test_one_scorer_for_several_metrics_predicts_each_fold_once():
    X, y, groups, recordings = _position_data()
    calls = []

    class Counting(_PositionClassifier):
        def predict(self, X, recordings=None, groups=None):
            calls.append(len(X))
            return super().predict(X, recordings=recordings)

    names = ["accuracy", "kappa", "macro_f1"]
    with sklearn.config_context(enable_metadata_routing=True):
        est = Counting().set_fit_request(recordings=True).set_predict_request(recordings=True)
        params = {"groups": groups, "recordings": recordings}
        one = cross_validate(est, X, y, cv=LeaveOneGroupOut(), params=params,
                             scoring=make_recording_scorer(names))
        n_one = len(calls)
        calls.clear()
        several = cross_validate(est, X, y, cv=LeaveOneGroupOut(), params=params,
                                 scoring={m: SCORERS[m] for m in names})
        n_several = len(calls)
    # 3 folds: one prediction per fold, against one per fold and metric
    assert n_one == 3 and n_several == 9
    for m in names:
        np.testing.assert_allclose(one[f"test_{m}"], several[f"test_{m}"])
        np.testing.assert_allclose(one[f"test_{m}"], 1.0)
    # without routing the folds are predicted as one recording: accuracy 7/14 (see below),
    # with kappa and macro F1 from sklearn's own functions on the same predictions
    res = cross_validate(_PositionClassifier(), X, y, groups=groups, cv=LeaveOneGroupOut(),
                         scoring=make_recording_scorer(names))
    pred = np.arange(14) % 5
    truth = y[:14]
    np.testing.assert_allclose(res["test_accuracy"], 0.5)
    np.testing.assert_allclose(res["test_kappa"], cohen_kappa_score(truth, pred))
    np.testing.assert_allclose(res["test_macro_f1"], f1_score(truth, pred, average="macro"))
    # GridSearchCV picks its refit metric from the dict
    from sklearn.model_selection import GridSearchCV

    class Shifted(_PositionClassifier):
        def __init__(self, shift=0):
            self.shift = shift

        def predict(self, X, recordings=None, groups=None):
            return (super().predict(X, recordings=recordings) + self.shift) % 5

    search = GridSearchCV(Shifted(), {"shift": [0, 1, 2]}, cv=LeaveOneGroupOut(),
                          scoring=make_recording_scorer(names), refit="kappa")
    search.fit(X, y, groups=groups)
    kappas = [cohen_kappa_score(truth, (pred + s) % 5) for s in range(3)]
    assert search.best_params_ == {"shift": int(np.argmax(kappas))}
    np.testing.assert_allclose(search.best_score_, max(kappas))
    with pytest.raises(ValueError, match=r"unknown sleep metric\(s\) \['auc'\]"):
        make_recording_scorer(["kappa", "auc"])
    with pytest.raises(ValueError, match="each metric once"):
        make_recording_scorer(["kappa", "kappa"])
    with pytest.raises(TypeError, match="sequence"):
        make_recording_scorer({"kappa"})


def test_splitters_as_cv_with_metadata_routing():
    """GroupHoldout / PredefinedGroupSplit request groups for split, like sklearn's group
    splitters, so cross_validate routes them when routing is enabled."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.arange(60) % 2
    groups = np.repeat(np.arange(6), 10)
    with sklearn.config_context(enable_metadata_routing=True):
        for cv, n_test in ((GroupHoldout(2, random_state=0), 2), (PredefinedGroupSplit([1, 4]), 2)):
            res = cross_validate(LogisticRegression(), X, y, cv=cv, params={"groups": groups},
                                 return_indices=True)
            test = res["indices"]["test"][0]
            train = res["indices"]["train"][0]
            # whole subjects: every epoch of a test subject is in the test set, none in train
            test_subjects = np.unique(groups[test])
            assert len(test_subjects) == n_test
            assert len(test) == 10 * n_test
            assert not np.isin(groups[train], test_subjects).any()
        np.testing.assert_array_equal(test_subjects, [1, 4])


def test_splitters_refuse_missing_or_nan_subjects():
    X = np.zeros((30, 2))
    groups = np.repeat(np.arange(3.0), 10)
    groups[[3, 17]] = np.nan
    for cv in (GroupHoldout(1, random_state=0), PredefinedGroupSplit([1.0])):
        # a NaN subject would never be drawn for validation: refused, naming the rows
        with pytest.raises(ValueError, match=r"groups has missing labels .* rows \[3, 17\]"):
            next(cv.split(X, groups=groups))
        with pytest.raises(ValueError, match=r"split needs the subject of every epoch.*"
                                             r"cross_validate"):
            next(cv.split(X))
        with pytest.raises(ValueError, match="groups has 29 entries but X has 30 epochs"):
            next(cv.split(X, groups=np.arange(29)))
        # as skorch train_split of a plain dataset: the same check
        from torch.utils.data import TensorDataset

        with pytest.raises(ValueError, match=r"groups has missing labels .* rows \[3, 17\]"):
            cv(TensorDataset(torch.zeros(30, 2)), groups=groups)


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown sleep metric 'auc'"):
        make_recording_scorer("auc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(get_scorer("kappa")) == "make_recording_scorer('kappa')"
