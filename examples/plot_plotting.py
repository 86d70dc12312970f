"""
Hypnograms, confusion matrices and finetuning curves
=====================================================

The three figures of a sleep-staging study, drawn with :mod:`skseqsleep.plotting` from plain
arrays: stage labels are ``0=W, 1=N1, 2=N2, 3=N3, 4=REM``, one per 30-s epoch.
"""

import matplotlib.pyplot as plt
import numpy as np

from skseqsleep.model_selection import sleep_metrics
from skseqsleep.plotting import (
    plot_confusion_matrix,
    plot_finetuning_curves,
    plot_hypnogram,
)

# %%
# A made-up night of 8 hours: wake, then four NREM-REM cycles. The "prediction" confuses
# N1 with wake and N2 now and then.
rng = np.random.default_rng(0)
cycle = [0] * 10 + [1] * 8 + [2] * 40 + [3] * 30 + [2] * 10 + [4] * 22
y_true = np.array(cycle * 4)[:960]
y_pred = y_true.copy()
noise = rng.random(y_true.size)
y_pred[(y_true == 1) & (noise < 0.5)] = 0
y_pred[(y_true == 2) & (noise < 0.1)] = 3

plot_hypnogram(y_true, y_pred, title="a made-up night: scored vs predicted")
plt.tight_layout()

# %%
# The confusion matrix of those epochs (rows: scored stage, columns: predicted stage),
# coloured by row so that the diagonal is each stage's sensitivity.
plot_confusion_matrix(sleep_metrics(y_true, y_pred)["confusion_matrix"], title="made-up night")
plt.tight_layout()

# %%
# Finetuning curves: validation accuracy against training step, averaged over folds, one line
# per strategy, as in Fig. 3 of Phan et al. (TBME 2020). Here the histories are hand-made;
# the study fills them from each fold's ``validation_history_``.
steps = np.arange(10, 510, 10)


def history(start, end, rate):
    acc = end - (end - start) * np.exp(-steps / rate)
    return [{"step": int(s), "valid_acc": float(a)} for s, a in zip(steps, acc)]


curves = {
    "finetune entire network": [history(0.70, 0.86, 80), history(0.72, 0.85, 90)],
    "finetune softmax": [history(0.70, 0.79, 40), history(0.72, 0.80, 50)],
    "SeqSleepNet from scratch": [history(0.30, 0.82, 200), history(0.25, 0.81, 180)],
}
plot_finetuning_curves(curves, title="finetuning curves (illustration)")
plt.tight_layout()
