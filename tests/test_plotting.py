"""Plots drawn from hand-made arrays; expectations written out by hand."""

import matplotlib

matplotlib.use("Agg")

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
