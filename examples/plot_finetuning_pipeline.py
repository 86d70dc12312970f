"""
Finetuning a pretrained network in a scikit-learn pipeline
==========================================================

The building blocks of the study, by hand: pretrain :class:`~skseqsleep.SeqSleepClassifier`
on a source cohort, then evaluate transfer strategies on a small target cohort with
leave-one-subject-out cross-validation. Everything is simulated and small, so that it runs
in a few minutes on a CPU (this example is not executed when the documentation is built).
"""

import numpy as np
import sklearn
from sklearn.model_selection import LeaveOneGroupOut, cross_validate
from sklearn.pipeline import make_pipeline

from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
from skseqsleep.datasets import make_sleep_cohort
from skseqsleep.model_selection import GroupHoldout, make_recording_scorer

sklearn.set_config(enable_metadata_routing=True)
small_net = {"seq_len": 10, "module__n_filters": 16, "module__rnn_hidden": 32,
             "module__attention_size": 32, "lr": 1e-3, "verbose": 0, "random_state": 0}

# %%
# Pretraining on the source cohort (the paper: MASS, C4-A1 EEG).
source = make_sleep_cohort(8, channels="C4-A1-like", n_epochs=120, random_state=0)
pretrained = make_pipeline(
    SpectrogramTransformer(fs=source.fs),
    SeqSleepClassifier(max_epochs=4, train_split=GroupHoldout(1, random_state=0),
                       **small_net))
pretrained.fit(source.X, source.y, groups=source.groups, recordings=source.recordings)

# %%
# The target: a few subjects with an EOG-like channel (the paper: Sleep-EDF EOG). Each
# strategy is one value of ``trainable_parts``; ``warm_start_from`` takes the fitted
# pipeline (only the network weights are used; the spectrogram standardisation is refitted
# on each fold's training subjects).
target = make_sleep_cohort(5, channels="EOG-like", n_epochs=120, random_state=1)
metrics = ("accuracy", "kappa", "macro_f1")
scoring = make_recording_scorer(metrics)     # one prediction per fold for the three metrics
for parts in ["all", ("softmax", "arnn"), ("softmax",), ()]:
    pipe = make_pipeline(
        SpectrogramTransformer(fs=target.fs),
        SeqSleepClassifier(warm_start_from=pretrained, trainable_parts=parts, max_epochs=3,
                           train_split=GroupHoldout(1, random_state=0), **small_net))
    res = cross_validate(pipe, target.X, target.y, cv=LeaveOneGroupOut(), scoring=scoring,
                         params={"groups": target.groups, "recordings": target.recordings})
    print(f"{parts!s:22}", "  ".join(f"{m} {np.mean(res['test_' + m]):.3f}"
                                      for m in metrics))

# %%
# Note that ``cross_validate`` averages per-fold scores, whereas the paper (and
# :func:`skseqsleep.study.run_study`) pools the predictions of all folds before computing the
# metrics; ``skseqsleep study`` does the latter, stores every fold and draws the figures.
