"""
The transfer-learning study in one call
=======================================

:func:`skseqsleep.study.run_study` is what ``skseqsleep study`` runs: pretraining, every
finetuning strategy and the from-scratch baseline on every target channel, leave-one-subject-
out, metrics pooled over folds, figures. This example runs the default simulated study
(about 2 minutes on a CPU; not executed when the documentation is built) and shows its
outputs.
"""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

from skseqsleep.study import run_study

result = run_study("study_results", n_jobs=2)  # resumes if study_results already has it
print(result)

# %%
# The structured result: rows in the paper's order, one block per target channel.
row = result.row("EOG-like", "softmax+arnn")
print(row.label, f"acc={row.accuracy:.3f} kappa={row.kappa:.3f} MF1={row.macro_f1:.3f}")

# %%
# The figures written to the output folder: finetuning curves (validation accuracy against
# training step, averaged over folds) and the hypnogram of one recording.
out = result.output_dir
first_recording = result.predictions[("EOG-like", "all")]["recordings"][0]
for name in ("finetuning_curves__EOG-like.png", f"hypnogram__{first_recording}__EOG-like.png"):
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.imshow(mpimg.imread(f"{out}/{name}"))
    ax.set_axis_off()
