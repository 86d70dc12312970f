"""Constants shared by every layer of the package (REFERENCE §1)."""

#: The five AASM sleep stages, in the label order used everywhere (0=W ... 4=REM).
STAGES = ("W", "N1", "N2", "N3", "REM")
#: Number of stage classes.
N_STAGES = len(STAGES)
#: Length of one scoring epoch in seconds.
EPOCH_SECONDS = 30
#: Sampling rate the network expects (Hz).
DEFAULT_FS = 100
#: Label given, in per-epoch hypnograms, to epochs that are not one of the five stages
#: (movement time, unscored '?'): they are excluded from training data and reported.
EXCLUDED = -1
