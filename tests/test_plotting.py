"""Plots drawn from hand-made arrays; expectations written out by hand."""

import matplotlib

matplotlib.use("Agg")

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from skseqsleep.plotting import (
    hypnogram_levels,
    mean_curve,
    plot_confusion_matrix,
    plot_finetuning_curves,
    plot_hypnogram,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_hypnogram_levels_put_wake_on_top_and_n3_at_the_bottom():
    # labels 0=W 1=N1 2=N2 3=N3 4=REM; plot order top->bottom W, REM, N1, N2, N3
    assert hypnogram_levels([0, 4, 1, 2, 3]).tolist() == [4, 3, 2, 1, 0]


def test_plot_hypnogram_draws_true_and_predicted_steps_in_hours():
    y_true = [0, 0, 1, 2, 3, 4]
    y_pred = [0, 1, 1, 2, 2, 0]
    ax = plot_hypnogram(y_true, y_pred, title="SC4001E0")
    assert len(ax.lines) == 2
    true_line, pred_line = ax.lines
    # one point per epoch start plus a closing point; levels by hand: W=4 N1=2 N2=1 N3=0 REM=3
    assert true_line.get_ydata().tolist() == [4, 4, 2, 1, 0, 3, 3]
    assert pred_line.get_ydata().tolist() == [4, 2, 2, 1, 1, 4, 4]
    # 6 epochs of 30 s = 0.05 h
    np.testing.assert_allclose(true_line.get_xdata()[-1], 6 * 30 / 3600)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["N3", "N2", "N1", "REM", "W"]
    assert ax.get_title() == "SC4001E0"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true", "predicted"]


def test_plot_hypnogram_places_epochs_at_their_onsets_and_breaks_over_gaps():
    # epochs at 0, 30, 60 s, then two excluded epochs (90, 120 s), then 150 and 180 s
    y_true = [0, 1, 2, 2, 0]
    onsets = [0, 30, 60, 150, 180]
    ax = plot_hypnogram(y_true, y_true, onsets=onsets)
    for line in ax.lines:
        x = np.asarray(line.get_xdata(), dtype=float) * 3600
        y = np.asarray(line.get_ydata(), dtype=float)
        # segment 1: starts 0, 30, 60 and its close at 90; a break; segment 2: 150, 180, 210
        np.testing.assert_allclose(x, [0, 30, 60, 90, np.nan, 150, 180, 210])
        # levels by hand: W=4 N1=2 N2=1
        np.testing.assert_array_equal(y, [4, 2, 1, 1, np.nan, 1, 4, 4])
    # the axis spans the recording from the first epoch's start to the last epoch's end
    np.testing.assert_allclose(np.array(ax.get_xlim()) * 3600, [0, 210])
    # the time axis is the recording's: a night whose first kept epoch starts at 3000 s
    ax = plot_hypnogram([0, 1], onsets=[3000.0, 3030.0])
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata()) * 3600, [3000, 3030, 3060])
    np.testing.assert_allclose(np.array(ax.get_xlim()) * 3600, [3000, 3060])
    assert ax.get_xlabel() == "time from the start of the recording (h)"
    # onsets rounded to whole samples (30 s +- 10 ms at 100 Hz) are consecutive, not gaps
    ax = plot_hypnogram([0, 1, 2, 2], onsets=[0.01, 30.0, 60.01, 90.0])
    assert not np.isnan(np.asarray(ax.lines[0].get_xdata(), dtype=float)).any()
    # MASS 20-s epochs in 30-s windows (onsets 20 s apart): consecutive, no break
    ax = plot_hypnogram([0, 1, 2], onsets=[15.0, 35.0, 55.0])
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata()) * 3600, [15, 35, 55, 85])
    # consecutive onsets draw exactly what onsets=None draws
    a = plot_hypnogram(y_true, onsets=np.arange(5) * 30.0).lines[0]
    b = plot_hypnogram(y_true).lines[0]
    np.testing.assert_array_equal(a.get_xdata(), b.get_xdata())
    np.testing.assert_array_equal(a.get_ydata(), b.get_ydata())


@pytest.mark.parametrize(("onsets", "match"), [
    ([0, 30], r"onsets has shape \(2,\) but y_true has 3 epochs"),
    ([0, 30, 30], r"onsets must increase .* found 30 s then 30 s at epochs 1 and 2"),
    ([0, 60, 30], "must increase"),
    ([0, np.nan, 60], "finite"),
    (["0", "30", "60"], "numbers of seconds"),
])
def test_plot_hypnogram_rejects_bad_onsets(onsets, match):
    with pytest.raises(ValueError, match=match):
        plot_hypnogram([0, 1, 2], onsets=onsets)


def test_plot_hypnogram_into_given_axes():
    _fig, axes = plt.subplots(2)
    ax = plot_hypnogram(np.array([2, 2, 3]), ax=axes[1])
    assert ax is axes[1] and len(axes[0].lines) == 0 and len(ax.lines) == 1


@pytest.mark.parametrize(("y_true", "y_pred", "match"), [
    ([0, 1, 5], None, r"found \[5\]"),
    ([0, -1, 2], None, r"found \[-1\]"),
    ([[0, 1]], None, "1-D"),
    ([0, 1, 2], [0, 1], "y_pred has 2 epochs but y_true has 3"),
    ([], None, "empty"),
    ([0.5, 1.0], None, "integer stage labels"),
])
def test_plot_hypnogram_rejects_bad_stages(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        plot_hypnogram(y_true, y_pred)


def test_confusion_matrix_annotations_are_the_counts_and_row_percentages():
    cm = np.array([[8, 2, 0, 0, 0],
                   [1, 3, 0, 0, 0],
                   [0, 0, 10, 0, 0],
                   [0, 0, 0, 0, 0],
                   [0, 0, 0, 0, 5]])
    ax = plot_confusion_matrix(cm, title="EEG")
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 25
    assert texts[0] == "8\n80%" and texts[1] == "2\n20%"
    assert texts[5] == "1\n25%" and texts[6] == "3\n75%"
    assert texts[18] == "0\n0%"  # the empty N3 row does not divide by zero
    img = ax.images[0].get_array()
    np.testing.assert_allclose(img[0, :2], [0.8, 0.2])
    assert ax.get_xlabel() == "predicted stage" and ax.get_ylabel() == "scored stage"


def test_confusion_matrix_counts_only():
    ax = plot_confusion_matrix(np.eye(5, dtype=int) * 3, normalize=False)
    assert ax.texts[0].get_text() == "3"
    assert ax.images[0].get_array()[0, 0] == 3


def test_confusion_matrix_rejects_wrong_shape_and_negatives():
    with pytest.raises(ValueError, match=r"\(5, 5\).*got shape \(4, 4\)"):
        plot_confusion_matrix(np.eye(4))
    with pytest.raises(ValueError, match="negative"):
        plot_confusion_matrix(-np.eye(5))


def test_mean_curve_averages_folds_at_each_step():
    h1 = [{"step": 10, "valid_acc": 0.5}, {"step": 20, "valid_acc": 0.7},
          {"step": 30, "valid_acc": 0.9}]
    h2 = [{"step": 10, "valid_acc": 0.3}, {"step": 20, "valid_acc": 0.5}]
    steps, mean, n = mean_curve([h1, h2, []])
    assert steps.tolist() == [10, 20, 30]
    np.testing.assert_allclose(mean, [0.4, 0.6, 0.9])
    assert n.tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match="lacks 'step' or 'valid_acc'"):
        mean_curve([[{"step": 1}]])


def test_finetuning_curves_one_line_per_trained_strategy_in_percent():
    hist = [{"step": 5, "valid_acc": 0.6}, {"step": 10, "valid_acc": 0.8}]
    curves = {"finetune entire network": [hist, hist],
              "direct transfer": [[], []],
              "finetune softmax": [[{"step": 5, "valid_acc": 0.4}]]}
    ax = plot_finetuning_curves(curves, title="EEG Fpz-Cz")
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["finetune entire network", "finetune softmax"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [60.0, 80.0])
    assert ax.lines[0].get_xdata().tolist() == [5, 10]
    assert "accuracy" in ax.get_ylabel()
    with pytest.raises(TypeError, match="mapping"):
        plot_finetuning_curves([hist])


@pytest.mark.parametrize("cm, found", [
    (np.full((5, 5), 0.2), r"non-integral.*e\.g\. \[0\.2, 0\.2"),        # normalize='true'
    (np.eye(5) * 2.6, r"non-integral.*e\.g\. \[2\.6, 2\.6"),
    (np.where(np.eye(5) > 0, np.nan, 1.0), r"non-finite.*nan"),
    (np.full((5, 5), np.inf), r"non-finite.*inf"),
])
def test_confusion_matrix_rejects_values_that_are_not_counts(cm, found):
    with pytest.raises(ValueError, match=r"cm must hold raw counts.*" + found) as info:
        plot_confusion_matrix(cm)
    msg = str(info.value)
    # says how to get counts and which option normalises here
    assert "normalize=True" in msg and "confusion_matrix" in msg


@pytest.mark.parametrize("cm, found", [
    (np.full((5, 5), "a"), "dtype <U1"),
    (np.eye(5, dtype=bool), "dtype bool"),
    (np.full((5, 5), None), "dtype object"),
])
def test_confusion_matrix_rejects_non_numeric(cm, found):
    with pytest.raises(ValueError, match=r"cm must hold raw counts.*" + found):
        plot_confusion_matrix(cm)


def test_confusion_matrix_accepts_whole_floats_as_counts():
    ax = plot_confusion_matrix(np.eye(5) * 3.0 + 1.0)  # e.g. counts read back from a CSV
    assert ax.texts[0].get_text() == "4\n50%"
    assert ax.texts[1].get_text() == "1\n12%"


def test_finetuning_curves_single_history_is_one_fold():
    hist = [{"step": 5, "valid_acc": 0.6}, {"step": 10, "valid_acc": 0.8}]
    ax = plot_finetuning_curves({"softmax": hist})  # a classifier's validation_history_
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [60.0, 80.0])
    assert ax.lines[0].get_xdata().tolist() == [5, 10]
    steps, mean, n = mean_curve(hist)
    assert steps.tolist() == [5, 10] and n.tolist() == [1, 1]
    np.testing.assert_allclose(mean, [0.6, 0.8])


@pytest.mark.parametrize("histories, match", [
    (None, r"curves\['s'\] must be a list of validation histories.*found NoneType"),
    ("abc", r"curves\['s'\] must be a list of validation histories.*found str"),
    ([[{"step": 1, "valid_acc": 0.5}], {"step": 2, "valid_acc": 0.5}],
     r"curves\['s'\] mixes.*fold 1 is a dict"),
    ([[{"step": 1, "valid_acc": 0.5}], None],
     r"curves\['s'\]\[1\] must be a validation history.*found NoneType"),
    ([[{"step": 1, "valid_acc": 0.5}, 3]],
     r"curves\['s'\]\[0\]\[1\] must be a dict.*found int"),
    ([[{"step": "x", "valid_acc": 0.5}]],
     r"curves\['s'\]\[0\]\[0\]: 'step' must be a whole number.*'x'"),
    ([[{"step": 1, "valid_acc": "high"}]],
     r"curves\['s'\]\[0\]\[0\]: 'valid_acc' must be a finite number.*'high'"),
    ([[{"step": 1, "valid_acc": float("nan")}]],
     r"curves\['s'\]\[0\]\[0\]: 'valid_acc' must be a finite number.*nan"),
])
def test_finetuning_curves_bad_structure_says_what_is_expected(histories, match):
    with pytest.raises((TypeError, ValueError), match=match):
        plot_finetuning_curves({"s": histories})


@pytest.mark.parametrize("labels", [("only",), "ab", ("a", 2), ("a", "b", "c")])
def test_plot_hypnogram_rejects_bad_labels(labels):
    with pytest.raises(ValueError, match=r"labels must be a pair of str.*found " +
                       re.escape(repr(labels))):
        plot_hypnogram([0, 1, 2], [0, 1, 2], labels=labels)


@pytest.mark.parametrize("value", ["30", True, None, float("inf"), float("nan"), 0, -30,
                                   np.complex128(30)])
def test_plot_hypnogram_rejects_bad_epoch_seconds(value):
    with pytest.raises(ValueError, match=r"epoch_seconds must be a finite number of seconds "
                       r"> 0.*found " + re.escape(repr(value))):
        plot_hypnogram([0, 1], epoch_seconds=value)


def test_plot_hypnogram_whole_epoch_seconds_of_numpy_type():
    ax = plot_hypnogram([0, 1], epoch_seconds=np.int64(1800))
    assert ax.lines[0].get_xdata().tolist() == [0.0, 0.5, 1.0]
