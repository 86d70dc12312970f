"""
Staging real EEG with the authors' pretrained checkpoint
========================================================

The authors of SeqSleepNet released networks pretrained on the 200 subjects of MASS
(TensorFlow checkpoints). :class:`~skseqsleep.SeqSleepClassifier` loads them without
TensorFlow (``warm_start_from``, with the released BN-LSTM cells) and, with
``trainable_parts=()``, uses them as they are ("direct transfer"). Here one DREAMS excerpt
(30 min of C3-A1 EEG with an expert hypnogram) is staged. The checkpoint and the DREAMS
files must be downloaded from their authors (they are not shipped with the package); this
example is not executed when the documentation is built. It looks for the checkpoint at
``~/models/1chan_eeg/pretrained_model.ckpt`` (where the quickstart puts it) or
``~/models/phan2019-mass/1chan_eeg/...``, and for the excerpts in ``~/data/dreams``, or, when
the ``SKSEQSLEEP_SHARED`` environment variable names a folder, in its
``pretrained/phan2019-mass/`` and ``data/dreams/`` (the layout the DREAMS study example also
reads).
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt

from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
from skseqsleep.datasets import load_dreams
from skseqsleep.model_selection import sleep_metrics
from skseqsleep.plotting import plot_hypnogram

shared = os.environ.get("SKSEQSLEEP_SHARED")
models = Path(shared, "pretrained") if shared else Path("~/models").expanduser()
dreams = Path(shared, "data") if shared else Path("~/data").expanduser()
candidates = [models / "phan2019-mass" / "1chan_eeg" / "pretrained_model.ckpt",
              models / "1chan_eeg" / "pretrained_model.ckpt"]
checkpoint = next((c for c in candidates if Path(f"{c}.index").is_file()), candidates[0])
data = load_dreams(dreams / "dreams")

# %%
# Standardise the spectrograms with all excerpts but the first, then stage the first.
test = data.recordings == data.recordings[0]
transformer = SpectrogramTransformer(fs=data.fs).fit(data.X[~test])
clf = SeqSleepClassifier(warm_start_from=checkpoint, cell="bnlstm", trainable_parts=(),
                         verbose=0)
clf.fit(transformer.transform(data.X[~test]), data.y[~test], recordings=data.recordings[~test])
y_pred = clf.predict(transformer.transform(data.X[test]), recordings=data.recordings[test])
print({k: round(v, 3) for k, v in sleep_metrics(data.y[test], y_pred).items()
       if k in ("accuracy", "kappa", "macro_f1")})
# each epoch at its time in the excerpt: the epochs with mixed 5-s scores are gaps
plot_hypnogram(data.y[test], y_pred, onsets=data.onsets[test],
               title=f"{data.recordings[0]}: expert vs checkpoint")
plt.tight_layout()
