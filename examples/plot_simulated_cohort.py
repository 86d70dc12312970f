"""
A simulated cohort: hypnogram, signals and spectrograms
=======================================================

:func:`skseqsleep.datasets.make_sleep_cohort` simulates polysomnography with documented stage
signatures (the data are **simulated**, never evidence about real sleep). The default
``skseqsleep study`` pretrains on a ``C4-A1-like`` cohort and finetunes on a small cohort
with an ``Fpz-Cz-like`` EEG and an ``EOG-like`` channel. Here we look at one such night and
at what :class:`~skseqsleep.SpectrogramTransformer` feeds the network.
"""

import matplotlib.pyplot as plt
import numpy as np

from skseqsleep import STAGES, SpectrogramTransformer
from skseqsleep.datasets import make_sleep_cohort
from skseqsleep.plotting import plot_hypnogram

data = make_sleep_cohort(2, channels=["Fpz-Cz-like", "EOG-like"], n_epochs=960,
                         random_state=0)
print(data.X.shape, data.ch_names)
print(data.description.splitlines()[0])

# %%
# The hypnogram of the first night (960 epochs of 30 s = 8 hours).
night = data.recordings == data.recordings[0]
plot_hypnogram(data.y[night], title=f"{data.recordings[0]} (simulated)")
plt.tight_layout()

# %%
# Ten seconds of both channels in one epoch of each stage.
fig, axes = plt.subplots(len(STAGES), 1, figsize=(9, 8), sharex=True)
t = np.arange(1000) / data.fs
for stage, ax in enumerate(axes):
    epoch = np.flatnonzero(night & (data.y == stage))[0]
    for ch, name in enumerate(data.ch_names):
        ax.plot(t, data.X[epoch, ch, :1000] + 150 * ch, lw=0.6, label=name)
    ax.set_ylabel(STAGES[stage])
    ax.set_yticks([])
axes[0].legend(loc="upper right", fontsize="small")
axes[-1].set_xlabel("time (s)")
fig.tight_layout()

# %%
# The network's input: per epoch and channel a 29 x 129 log-magnitude spectrogram (2-s
# Hamming window, 50 % overlap, 256-point FFT), each frequency bin standardised with
# statistics learned in ``fit``. Averaged over the epochs of each stage, the EEG-like
# channel shows the stage signatures (alpha in W, slow waves in N3...).
Xt = SpectrogramTransformer(fs=data.fs).fit_transform(data.X)
print(Xt.shape)  # (n_epochs, n_channels, n_frames, n_freq_bins)
freqs = np.fft.rfftfreq(256, d=1 / data.fs)
fig, ax = plt.subplots(figsize=(7, 4))
for stage, name in enumerate(STAGES):
    ax.plot(freqs, Xt[data.y == stage, 0].mean(axis=(0, 1)), label=name)
ax.set_xlabel("frequency (Hz)")
ax.set_ylabel("standardised log magnitude")
ax.set_title("Fpz-Cz-like channel: mean spectrum per stage")
ax.legend()
fig.tight_layout()
