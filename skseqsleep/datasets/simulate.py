"""A documented simulator of multi-night polysomnography cohorts (SIMULATED data).

``make_sleep_cohort`` builds a cohort of subjects x nights of 30-s epochs whose EEG / EOG
signals carry the stage signatures that the AASM scoring manual describes, on hypnograms
drawn from a time-inhomogeneous Markov chain fitted to the 39 real Sleep-EDF-SC-20 in-bed
hypnograms (``data/hypnogram_transition_stats.json``, derived by
``tools/derive_hypnogram_stats.py``). It is meant for tests, examples and tutorials: it is
not a substitute for real recordings.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import numpy as np
import scipy.fft
from sklearn.utils import Bunch

from skseqsleep._constants import EPOCH_SECONDS, N_STAGES, STAGES
from skseqsleep.datasets._hypnogram import ExclusionReport

__all__ = ["CHANNEL_PROFILES", "make_sleep_cohort"]

#: The channel profiles the simulator knows, in the order of ``_GAINS`` rows.
CHANNEL_PROFILES = ("C4-A1-like", "Fpz-Cz-like", "EOG-like")

#: Length of the nominal simulated night in epochs (8 h of 30-s epochs).
NIGHT_EPOCHS = 960

_W, _N1, _N2, _N3, _REM = range(N_STAGES)

# --- spectral (ongoing) activity --------------------------------------------------------
# Root-mean-square amplitude (µV) of each ongoing rhythm per stage, before the channel gain,
# the subject/night amplitude scale and a per-epoch log-normal jitter. Columns W, N1, N2, N3,
# REM. Alpha in W is set per epoch from the eyes-closed state (see _ALPHA_EYES_CLOSED).
_SPECTRAL = ("background", "beta", "alpha", "theta", "delta")
_RMS = np.array([
    [9.0, 10.0, 10.0, 10.0, 8.0],   # 1/f background
    [5.0, 2.0, 1.5, 1.0, 2.0],      # beta 15-30 Hz (waking fast activity, muscle)
    [4.0, 3.0, 2.0, 1.5, 3.0],      # alpha at the subject's alpha frequency (eyes open in W)
    [3.0, 12.0, 8.0, 6.0, 8.0],     # theta 4-7 Hz
    [3.0, 6.0, 5.0, 10.0, 4.0],     # background delta (the N2/N3 slow waves are events)
])
#: sd (per stage W, N1, N2, N3, REM) of a subject's log-multiplier of the probability of
#: moving into that stage: gives per-night stage-proportion spreads close to SC-20's
_STAGE_TILT_SD = np.array([0.4, 0.5, 0.2, 0.5, 0.1])
_ALPHA_EYES_CLOSED = 20.0  # alpha RMS (µV) of a relaxed eyes-closed W epoch

# --- channel profiles -------------------------------------------------------------------
# Gain of every source on every profile (rows: CHANNEL_PROFILES). Sources: the five spectral
# rhythms above, then spindles, K-complexes, slow waves, sawtooth waves, eye movements.
_SOURCES = _SPECTRAL + ("spindles", "k_complexes", "slow_waves", "sawtooth", "eye")
_GAINS = np.array([
    # bg   beta  alpha theta delta spin  KC    SW    saw   eye
    [1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 0.04],  # C4-A1: central referential
    [0.60, 0.90, 0.30, 0.70, 0.90, 0.50, 0.85, 0.95, 0.50, 0.30],  # Fpz-Cz: frontal bipolar
    [0.20, 0.50, 0.10, 0.15, 0.40, 0.08, 0.35, 0.45, 0.10, 1.00],  # EOG: eyes + EEG leak
])
_NOISE_UV = np.array([1.5, 2.0, 3.0])  # white measurement noise (µV RMS) per profile
_EEG_PROFILES = (0, 1)  # profiles on which N3 slow waves must exceed 75 µV peak to peak
_SLOW_WAVE_MIN_PTP = 110.0  # µV: smallest peak-to-peak of a "large" slow wave on EEG
# The stored REM-refractoriness factors are relative to the overall REM entry rate, but the
# time-of-night matrices already carry part of that modulation, so applying both inflates
# REM (23.5 % instead of 20.2 %). This factor, found by simulating 100 nominal nights
# (subject_variability=0), restores the real REM proportion and per-third proportions.
_REM_FACTOR_CALIBRATION = 0.85


def _load_stats() -> dict:
    path = resources.files("skseqsleep.datasets") / "data" / "hypnogram_transition_stats.json"
    return json.loads(path.read_text())


# --- input validation -------------------------------------------------------------------
def _check_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_channels(channels) -> tuple[list[int], bool]:
    if isinstance(channels, str):
        names, single = [channels], True
    elif isinstance(channels, (Sequence, np.ndarray)) and len(channels) > 0 and all(
            isinstance(c, str) for c in channels):
        names, single = [str(c) for c in channels], False
    else:
        raise ValueError("channels must be a profile name or a non-empty sequence of profile "
                         f"names from {list(CHANNEL_PROFILES)}, got {channels!r}")
    unknown = [c for c in names if c not in CHANNEL_PROFILES]
    if unknown:
        raise ValueError(f"unknown channel profile(s) {unknown}; valid profiles are "
                         f"{list(CHANNEL_PROFILES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"channels contains a profile more than once: {names}")
    return [CHANNEL_PROFILES.index(c) for c in names], single


def _check_fs(fs) -> float:
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real) or not np.isfinite(fs):
        raise ValueError(f"fs must be a finite number of Hz, got {fs!r}")
    fs = float(fs)
    if fs < 40:
        raise ValueError(f"fs must be >= 40 Hz (the simulated rhythms reach 30 Hz and the "
                         f"spindles 16 Hz), got {fs:g}")
    n = fs * EPOCH_SECONDS
    if abs(n - round(n)) > 1e-6:
        raise ValueError(f"fs * {EPOCH_SECONDS} s must be a whole number of samples per epoch, "
                         f"got fs={fs:g} ({n:g} samples)")
    return fs


def _seed_entropy(random_state) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, bool):
        raise TypeError("random_state must be None, an int, a numpy Generator or RandomState")
    if isinstance(random_state, numbers.Integral):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    raise TypeError("random_state must be None, an int, a numpy Generator or RandomState, "
                    f"got {type(random_state).__name__}")


def _rng(entropy: int, *key: int) -> np.random.Generator:
    """An independent stream for one purpose (subject, night, ...): stable under n_subjects."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))


# --- subjects, nights and hypnograms ----------------------------------------------------
def _subject_params(rng: np.random.Generator, sv: float) -> dict:
    """Between-subject parameters; ``sv`` = 0 makes every subject the nominal one."""
    z = rng.standard_normal(12)
    return {
        "amplitude": float(np.exp(0.25 * sv * z[0])),
        "alpha_frequency": float(np.clip(10.0 + 0.9 * sv * z[1], 8.3, 11.7)),
        "alpha_gain": float(np.exp(0.4 * sv * z[2])),
        "eyes_closed_w": float(np.clip(0.6 + 0.2 * sv * z[3], 0.2, 0.95)),
        "spindle_density": float(np.clip(4.0 * np.exp(0.35 * sv * z[4]), 1.0, 10.0)),
        "spindle_frequency": float(np.clip(13.0 + 0.7 * sv * z[5], 11.8, 14.8)),
        "spindle_gain": float(np.exp(0.25 * sv * z[6])),
        "noise": float(np.clip(np.exp(0.5 * sv * z[7]), 0.4, 2.5)),
        "slow_wave_coverage": float(np.exp(0.2 * sv * z[8])),
        "rem_density": float(np.exp(0.3 * sv * z[9])),
        "stage_tilt": (sv * _STAGE_TILT_SD * rng.standard_normal(N_STAGES)).tolist(),
        "channel_gain": np.exp(0.1 * sv * rng.standard_normal(len(CHANNEL_PROFILES))).tolist(),
    }


def _night_params(rng: np.random.Generator, sv: float) -> dict:
    z = rng.standard_normal(2)
    return {
        "amplitude": float(np.exp(0.07 * sv * z[0])),
        "noise": float(np.exp(0.15 * sv * z[1])),
        "stage_tilt": (0.12 * sv * rng.standard_normal(N_STAGES)).tolist(),
    }


def _simulate_hypnograms(stats: dict, tilts: np.ndarray, uniforms: np.ndarray,
                         initial_u: np.ndarray) -> np.ndarray:
    """Run the time-inhomogeneous chain for every night at once.

    ``tilts`` (n_nights, 5) multiply the probability of moving into each stage from another
    by ``exp(tilt)``; the exits of each row are renormalised to their original total, so
    the probability of staying (the dwell time) is unchanged; ``uniforms`` (n_nights, length) drive the steps.
    The transition matrix at fraction ``t / length`` of the night is the linear interpolation
    between the two nearest bin centres of the stored matrices. From a non-REM stage, the
    probability of entering REM is then multiplied by the stored REM-refractoriness factor
    of the time since the last REM epoch (since sleep onset before the first REM epoch), and
    the row renormalised: this is what makes NREM-REM cycles of realistic length.
    """
    probs = np.asarray(stats["transition_probabilities"], dtype=float)  # (bins, 5, 5)
    n_bins = probs.shape[0]
    refractory = stats["rem_refractoriness"]
    edges = np.asarray(refractory["bin_edges_epochs"])
    factor = _REM_FACTOR_CALIBRATION * np.asarray(refractory["factor"], dtype=float)
    # tilt which stage follows a stage change; the self-transitions (dwell times) stay
    eye = np.eye(N_STAGES, dtype=bool)
    off = np.where(eye, 0.0, probs[None] * np.exp(tilts)[:, None, None, :])
    off *= (1.0 - np.diagonal(probs, axis1=1, axis2=2))[None, :, :, None] / off.sum(
        -1, keepdims=True)
    p = np.where(eye, probs[None], off)
    init = np.asarray(stats["initial_stage_counts"], dtype=float)
    init_cum = np.cumsum(init / init.sum())
    n_nights, length = uniforms.shape
    stages = np.empty((n_nights, length), dtype=np.int64)
    state = np.minimum(np.searchsorted(init_cum, initial_u, side="right"), N_STAGES - 1)
    stages[:, 0] = state
    rows = np.arange(n_nights)
    last_rem = np.where(state == _REM, 0, -1)
    onset = np.where(state != _W, 0, -1)
    for t in range(1, length):
        x = min(max((t - 1) / length * n_bins - 0.5, 0.0), n_bins - 1.0)
        b0 = int(x)
        b1 = min(b0 + 1, n_bins - 1)
        w = x - b0
        row = (1 - w) * p[rows, b0, state] + w * p[rows, b1, state]
        prev = t - 1
        tau = np.where(last_rem >= 0, prev - last_rem, np.where(onset >= 0, prev - onset, 0))
        scale = np.where(state == _REM, 1.0,
                         factor[np.searchsorted(edges, tau, side="right") - 1])
        row[:, _REM] *= scale
        cum = np.cumsum(row, axis=1)
        cum /= cum[:, -1:]
        state = np.minimum((uniforms[:, t, None] >= cum).sum(1), N_STAGES - 1)
        stages[:, t] = state
        last_rem = np.where(state == _REM, t, last_rem)
        onset = np.where((onset < 0) & (state != _W), t, onset)
    return stages


def _force_all_stages(y: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Relabel single epochs so that a cohort of >= 5 epochs holds every stage (tiny cohorts)."""
    forced = []
    if y.size < N_STAGES:
        return forced
    for stage in range(N_STAGES):
        counts = np.bincount(y, minlength=N_STAGES)
        if counts[stage] == 0:
            donor = int(np.argmax(counts))
            where = np.flatnonzero(y == donor)
            y[where[rng.integers(where.size)]] = stage
            forced.append(STAGES[stage])
    return forced


# --- waveforms ----------------------------------------------------------------------------
def _unit_shapes(freqs: np.ndarray, n: int, alpha_frequency: float) -> np.ndarray:
    """Amplitude spectra of the five rhythms, each scaled so that ``irfft`` of unit complex
    Gaussian noise times the spectrum has unit variance."""
    f = freqs
    highpass = f**2 / (f**2 + 0.3**2)
    shapes = np.stack([
        highpass * (1.0 + f**2) ** -0.4,
        np.exp(-0.5 * ((f - 22.0) / 6.0) ** 2),
        np.exp(-0.5 * ((f - alpha_frequency) / 0.6) ** 2),
        np.exp(-0.5 * ((f - 5.5) / 1.0) ** 2),
        highpass * np.exp(-0.5 * ((f - 1.1) / 0.6) ** 2),
    ])
    shapes[shapes < 1e-6 * shapes.max(1, keepdims=True)] = 0.0  # no float32 denormals (slow)
    shapes[:, 0] = 0.0
    if n % 2 == 0:
        shapes[:, -1] = 0.0
    # var(irfft(Z * S)) = 4 / n**2 * sum(S**2) for Z with unit-variance real and imaginary parts
    shapes *= n / (2.0 * np.sqrt((shapes**2).sum(1, keepdims=True)))
    return shapes


def _slot_events(rng, epoch_idx, prob, n_samples, n_slots, fs, make):
    """Place at most one event per slot (slots tile the epoch) without scatter-adds.

    ``prob`` is the per-slot event probability of each epoch of ``epoch_idx``. Returns
    ``(idx, block)``: the epochs that received at least one event and their waveforms,
    ``block`` of shape (len(idx), n_samples). ``make(rng, t, n, slot_s)`` gets ``t``
    (n, slot_len), the seconds since the slot start, and returns the n waveforms.
    """
    slot_len = n_samples // n_slots
    present = rng.random((epoch_idx.size, n_slots)) < np.asarray(prob, float).reshape(-1, 1)
    hit = present.any(1)
    present = present[hit]
    m = present.shape[0]
    block = np.zeros((m, n_samples), dtype=np.float32)
    rows, slots = np.nonzero(present)
    if rows.size:
        t = np.broadcast_to(np.arange(slot_len) / fs, (rows.size, slot_len))
        waves = make(rng, t, rows.size, slot_len / fs).astype(np.float32)
        view = block[:, :n_slots * slot_len].reshape(m, n_slots, slot_len)
        view[rows, slots] = waves
    return epoch_idx[hit], block


def _spindle_maker(frequency, gain):
    def make(rng, t, n, slot_s):
        dur = rng.uniform(0.5, 2.0, (n, 1))           # AASM: spindle >= 0.5 s
        onset = rng.uniform(0, 1, (n, 1)) * (slot_s - dur)
        f = np.clip(frequency + 0.4 * rng.standard_normal((n, 1)), 11.2, 15.8)  # 11-16 Hz
        amp = rng.uniform(15.0, 40.0, (n, 1)) * gain
        tau = (t - onset) / dur
        env = np.where((tau >= 0) & (tau < 1), np.sin(np.pi * np.clip(tau, 0, 1)) ** 2, 0.0)
        return amp * env * np.sin(2 * np.pi * f * (t - onset) + rng.uniform(0, 2 * np.pi, (n, 1)))
    return make


def _k_complex(rng, t, n, slot_s):
    # negative sharp wave followed by a positive component, total >= 0.5 s (AASM)
    amp = rng.uniform(70.0, 140.0, (n, 1))
    t0 = rng.uniform(0.3, slot_s - 1.2, (n, 1))
    return amp * (-np.exp(-0.5 * ((t - t0) / 0.1) ** 2)
                  + 0.55 * np.exp(-0.5 * ((t - t0 - 0.4) / 0.2) ** 2))


def _sawtooth(rng, t, n, slot_s):
    # trains of triangular, sharply contoured 2-6 Hz waves (AASM REM)
    f = rng.uniform(2.0, 5.0, (n, 1))
    dur = np.minimum(rng.integers(3, 8, (n, 1)) / f, slot_s - 0.1)
    onset = rng.uniform(0, 1, (n, 1)) * (slot_s - dur)
    ptp = rng.uniform(25.0, 60.0, (n, 1))
    cycle = np.mod(f * (t - onset), 1.0)
    saw = np.where(cycle < 0.8, cycle / 0.8, (1.0 - cycle) / 0.2) - 0.5
    inside = (t >= onset) & (t < onset + dur)
    return np.where(inside, ptp * saw, 0.0)


def _blink(rng, t, n, slot_s):
    t0 = rng.uniform(0.4, slot_s - 0.4, (n, 1))
    return rng.uniform(80.0, 200.0, (n, 1)) * np.exp(
        -0.5 * ((t - t0) / rng.uniform(0.06, 0.1, (n, 1))) ** 2)


def _eye_movement_maker(low, high):
    def make(rng, t, n, slot_s):
        # sharp deflection (rise 50-120 ms) then decay back: a rapid eye movement / saccade
        amp = rng.uniform(low, high, (n, 1)) * rng.choice([-1.0, 1.0], (n, 1))
        rise = rng.uniform(0.05, 0.12, (n, 1))
        decay = rng.uniform(0.2, 0.4, (n, 1))
        t0 = rng.uniform(0.0, 0.15 * slot_s, (n, 1))
        s = t - t0
        up = np.clip(s / rise, 0.0, 1.0)
        return amp * up * np.exp(-np.clip(s - rise, 0.0, None) / decay)
    return make


def _slow_wave_trains(rng, epoch_idx, coverage, small_ptp, large_ptp, n_samples, fs):
    """Continuous trains of 0.6-1.7 s (0.59-1.67 Hz) single-cycle waves.

    In every epoch, randomly chosen complete cycles whose durations add up to at least
    ``coverage * 30 s`` get a peak-to-peak amplitude drawn in ``large_ptp``; the others get
    ``small_ptp``. The part of the epoch after its last complete cycle stays flat.
    """
    m = epoch_idx.size
    if m == 0:
        return epoch_idx, np.zeros((0, n_samples), dtype=np.float32)
    max_cycles = int(np.ceil(n_samples / np.floor(0.6 * fs))) + 1
    length = np.floor(rng.uniform(0.6, 1.7, (m, max_cycles)) * fs).astype(np.int64)
    ends = np.cumsum(length, axis=1)
    complete = ends <= n_samples
    key = np.where(complete, rng.random((m, max_cycles)), 2.0)
    order = np.argsort(key, axis=1)
    dur_sorted = np.take_along_axis(np.where(complete, length, 0), order, axis=1)
    before = np.cumsum(dur_sorted, axis=1) - dur_sorted
    large_sorted = (before < coverage.reshape(-1, 1) * n_samples) & (dur_sorted > 0)
    large = np.zeros_like(large_sorted)
    np.put_along_axis(large, order, large_sorted, axis=1)
    ptp = np.where(large, rng.uniform(*large_ptp, (m, max_cycles)),
                   rng.uniform(*small_ptp, (m, max_cycles)))
    # flatten: the complete cycles of each epoch, then one flat filler cycle up to n_samples
    length = np.where(complete, length, 0)
    filler = n_samples - length.sum(1)
    length = np.concatenate([length, filler[:, None]], axis=1).ravel()
    ptp = np.concatenate([np.where(complete, ptp, 0.0), np.zeros((m, 1))], axis=1).ravel()
    keep = length > 0
    length, ptp = length[keep], ptp[keep]
    starts = np.cumsum(length) - length
    within = np.arange(m * n_samples) - np.repeat(starts, length)
    phase = within / np.repeat(length, length).astype(np.float32)
    block = np.sin(np.float32(2 * np.pi) * phase.astype(np.float32))
    block *= np.repeat((-0.5 * ptp).astype(np.float32), length)  # surface-negative half first
    return epoch_idx, block.reshape(m, n_samples)


def _single_slow_wave_maker(low, high):
    def make(rng, t, n, slot_s):
        period = rng.uniform(0.6, 1.7, (n, 1))
        onset = rng.uniform(0, 1, (n, 1)) * (slot_s - period)
        phase = (t - onset) / period
        ptp = rng.uniform(low, high, (n, 1))
        return np.where((phase >= 0) & (phase < 1), -0.5 * ptp * np.sin(2 * np.pi * phase), 0.0)
    return make


def _synthesise_night(entropy, key, stages, subject, night, profiles, fs, n_samples, out):
    """Write one night's signals for the requested profiles into ``out`` (n, C, n_samples).

    All random draws come from streams keyed by (subject, night, purpose) and are made for
    every profile, so a profile's signal does not depend on which other profiles are asked for.
    """
    rng = _rng(entropy, *key, 0)
    n = stages.size
    scale = subject["amplitude"] * night["amplitude"]
    chan = np.asarray(subject["channel_gain"])

    # ongoing rhythms: random-phase spectral synthesis, one irfft per channel
    freqs = np.fft.rfftfreq(n_samples, 1.0 / fs)
    shapes = _unit_shapes(freqs, n_samples, subject["alpha_frequency"])
    rms = _RMS[:, stages].T.copy()  # (n, 5)
    is_w = stages == _W
    eyes_closed = is_w & (rng.random(n) < subject["eyes_closed_w"])
    rms[:, 2] *= subject["alpha_gain"] ** 0.5
    rms[eyes_closed, 2] = _ALPHA_EYES_CLOSED * subject["alpha_gain"]
    rms *= scale * np.exp(0.2 * rng.standard_normal(rms.shape))
    # larger-than-nominal subjects do not get larger background delta: N2 must stay N2
    # (< 20 % of the epoch in > 75 µV slow waves) whatever the amplitude scale
    rms[:, 4] *= min(scale, 1.0) / scale
    # complex Gaussian (unit-variance real and imaginary parts) by Box-Muller in float32:
    # exact, and about 2.5x faster than two standard_normal draws
    u = rng.random((2, n, freqs.size), dtype=np.float32)
    radius = np.sqrt(np.float32(-2.0) * np.log1p(-u[0]))
    angle = np.float32(2 * np.pi) * u[1]
    z = np.empty((n, freqs.size), dtype=np.complex64)
    z.real = radius * np.cos(angle)
    z.imag = radius * np.sin(angle)
    del u, radius, angle
    shapes2 = (shapes**2).astype(np.float32)

    # transient events: (epoch indices, block) pairs shared by all profiles, in µV
    n2 = np.flatnonzero(stages == _N2)
    n3 = np.flatnonzero(stages == _N3)
    n23 = np.flatnonzero((stages == _N2) | (stages == _N3))
    rem = np.flatnonzero(stages == _REM)
    is_n2 = stages[n23] == _N2
    dens = subject["spindle_density"] * np.where(is_n2, 1.0, 0.4)  # per minute
    events = {
        "spindles": _slot_events(_rng(entropy, *key, 1), n23, dens / 2 / 12, n_samples, 12, fs,
                                 _spindle_maker(subject["spindle_frequency"],
                                                subject["spindle_gain"] * scale)),
        "k_complexes": _slot_events(_rng(entropy, *key, 2), n23, np.where(is_n2, 0.05, 0.02),
                                    n_samples, 10, fs, _k_complex),
        "sawtooth": _slot_events(_rng(entropy, *key, 3), rem,
                                 np.full(rem.size, 0.1 * subject["rem_density"]), n_samples,
                                 10, fs, _sawtooth),
    }
    for name in ("k_complexes", "sawtooth"):
        events[name][1][:] *= scale

    # slow waves: in N3 large waves (>= _SLOW_WAVE_MIN_PTP on every EEG profile) cover
    # 30-95 % of the epoch; in N2 a few isolated ones (< 10 % of the epoch)
    rng_sw = _rng(entropy, *key, 4)
    eeg_gain = min(_GAINS[p, _SOURCES.index("slow_waves")] * chan[p] for p in _EEG_PROFILES)
    low = _SLOW_WAVE_MIN_PTP / eeg_gain * max(scale, 1.0)
    cov = np.clip(rng_sw.uniform(0.3, 0.85, n3.size) * subject["slow_wave_coverage"], 0.3, 0.95)
    events["slow_waves"] = _slow_wave_trains(rng_sw, n3, cov, (15.0 * scale, 60.0 * scale),
                                             (low, 2.1 * low), n_samples, fs)
    events["n2_slow_waves"] = _slot_events(rng_sw, n2, np.full(n2.size, 0.04), n_samples, 10,
                                           fs, _single_slow_wave_maker(0.6 * low, 1.5 * low))

    # eye movements (one source, seen mostly by the EOG profile)
    rng_eye = _rng(entropy, *key, 5)
    w = np.flatnonzero(is_w)
    open_w = w[~eyes_closed[w]]
    phasic = rng_eye.random(rem.size) < 0.6
    lam = np.where(phasic, rng_eye.uniform(0.2, 0.5, rem.size),
                   rng_eye.uniform(0.02, 0.1, rem.size)) * subject["rem_density"]
    eye_parts = [
        _slot_events(rng_eye, idx, prob, n_samples, slots, fs, make)
        for idx, prob, slots, make in (
            (w, np.where(eyes_closed[w], 0.1, 0.3), 10, _blink),
            (open_w, np.full(open_w.size, 0.3), 15, _eye_movement_maker(50.0, 200.0)),
            (rem, np.minimum(lam, 0.9), 20, _eye_movement_maker(80.0, 250.0)))]
    # slow rolling eye movements: N1, drowsy eyes-closed W, some N2 (sleep onset)
    p_sem = np.select([stages == _N1, eyes_closed, stages == _N2], [0.85, 0.15, 0.05], 0.0)
    sem = np.flatnonzero(rng_eye.random(n) < p_sem)
    t = (np.arange(n_samples) / fs).astype(np.float32)
    f = rng_eye.uniform(0.2, 0.5, (sem.size, 1)).astype(np.float32)
    amp = rng_eye.uniform(40.0, 110.0, (sem.size, 1)).astype(np.float32)
    ph = rng_eye.uniform(0, 2 * np.pi, (sem.size, 1)).astype(np.float32)
    eye_parts.append((sem, amp * np.sin(np.float32(2 * np.pi) * f * t + ph)))
    eye_idx = np.unique(np.concatenate([i for i, _ in eye_parts]))
    eye = np.zeros((eye_idx.size, n_samples), dtype=np.float32)
    for i, block in eye_parts:
        eye[np.searchsorted(eye_idx, i)] += block
    eye *= np.float32(scale)
    events["eye"] = (eye_idx, eye)
    del eye_parts

    # white measurement noise joins the spectral synthesis as a flat component (an irfft of
    # complex Gaussian noise with a flat spectrum is white Gaussian noise)
    noise_rms = _NOISE_UV * subject["noise"] * night["noise"]
    flat = np.ones(freqs.size, np.float32)
    flat[0] = 0.0
    if n_samples % 2 == 0:
        flat[-1] = 0.0
    flat *= np.float32(n_samples / (2.0 * np.sqrt(flat.sum())))
    for c, p in enumerate(profiles):
        g = _GAINS[p] * chan[p]
        # power of independent rhythms adds; einsum avoids multithreaded BLAS on tiny K=5
        power = np.einsum("ek,kf->ef", ((rms * g[:5]) ** 2).astype(np.float32), shapes2)
        power += np.float32(noise_rms[p] ** 2) * flat**2
        x = out[:, c]
        x[:] = scipy.fft.irfft(z * np.sqrt(power), n=n_samples, axis=1)
        for name, (idx, block) in events.items():
            gain = g[_SOURCES.index(name.replace("n2_", ""))]
            x[idx] += np.float32(gain) * block


def make_sleep_cohort(
    n_subjects: int,
    n_nights: int = 1,
    channels: str | Sequence[str] = "C4-A1-like",
    *,
    n_epochs: int = NIGHT_EPOCHS,
    fs: float = 100.0,
    subject_variability: float = 1.0,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
    n_jobs: int | None = None,
) -> Bunch:
    """Simulate a multi-night polysomnography cohort with AASM stage signatures.

    **The data are SIMULATED.** Every epoch is synthesised from a documented generative model
    (below); nothing comes from a real recording. Only the hypnogram statistics (stage
    transition probabilities per fraction of the night, stage proportions) are numbers
    derived from the 39 real Sleep-EDF-SC-20 in-bed hypnograms (REFERENCE §1) by
    ``tools/derive_hypnogram_stats.py`` and shipped in
    ``skseqsleep/datasets/data/hypnogram_transition_stats.json``. Use the cohort for tests,
    tutorials and pipeline checks, never as evidence about real sleep.

    Parameters
    ----------
    n_subjects : int
        Number of simulated subjects (>= 1).
    n_nights : int, default=1
        Nights per subject (>= 1); each night is one recording.
    channels : str or sequence of str, default="C4-A1-like"
        Channel profile(s) among ``"C4-A1-like"``, ``"Fpz-Cz-like"`` and ``"EOG-like"``
        (see *Channel profiles*). A string gives a 2-D ``X``, a sequence (even of one
        profile) a 3-D ``X`` with channels in the given order. A profile's signal does not
        depend on which other profiles are requested.
    n_epochs : int, default=960
        30-s epochs per night (>= 1); 960 = an 8-h night. With fewer than 960 epochs a full
        960-epoch hypnogram is simulated and thinned evenly (epoch ``k`` of the night is
        epoch ``floor((k + 0.5) * 960 / n_epochs)`` of the full night), so short nights keep
        the time-of-night structure and all stages, but neighbouring epochs are then minutes
        apart. If the whole cohort has at least 5 epochs but misses a stage (only plausible
        for tiny cohorts), single epochs of the most frequent stage are relabelled so that
        all five stages occur; ``description`` says so when it happens.
    fs : float, default=100.0
        Sampling rate in Hz (>= 40, with ``30 * fs`` a whole number); epochs have
        ``30 * fs`` samples (3000 at the default, REFERENCE §1).
    subject_variability : float, default=1.0
        Between 0 and 1: scale of the between-subject (and between-night) spread. 0 makes
        every subject and night the nominal one (only the random realisation differs); 1 is
        the realistic spread described under *Variability*.
    random_state : int, numpy Generator, RandomState or None, default=None
        Seed. The same int gives a bitwise identical cohort; subject ``s``, night ``k`` is
        drawn from its own stream, so adding subjects or nights does not change the others
        (except in cohorts so small that some stage would be missing: the relabelling
        described under ``n_epochs`` looks at the whole cohort).
    n_jobs : int or None, default=None
        Threads synthesising nights in parallel (None = 1, -1 = all cores, -2 = all but one,
        as in joblib). The result does not depend on ``n_jobs``.

    Returns
    -------
    sklearn.utils.Bunch
        The dataset Bunch of ``CONTRIBUTING.rst``:

        - ``X`` : float32 ``(n_subjects * n_nights * n_epochs, 30 * fs)`` for one profile
          given as a string, else ``(..., n_channels, 30 * fs)``; µV. Epochs in time order,
          recordings contiguous (subject-major, then night).
        - ``y`` : int64 stage labels 0..4 (``W, N1, N2, N3, REM``).
        - ``groups`` : str subject ids ``"sim-s00"``, ``"sim-s01"``, ... (zero-padded to at
          least two digits).
        - ``recordings`` : str recording ids ``"sim-s00-n1"``, ``"sim-s00-n2"``, ...
        - ``onsets`` : float64 start of each epoch in seconds from the start of its
          simulated night: ``0, 30, 60, ...`` for nights of 960 epochs or more; for shorter
          nights the epoch's place in the thinned 8-h night (see ``n_epochs``), so
          neighbouring epochs are minutes apart.
        - ``fs`` (float), ``ch_names`` (list of profile names), ``target_names`` (stages).
        - ``report`` : :class:`~skseqsleep.datasets._hypnogram.ExclusionReport`, as for the
          real-data loaders: every recording with all ``n_epochs`` kept and nothing
          excluded or trimmed (there is nothing to exclude in simulated nights).
        - ``description`` : text that starts with ``"SIMULATED"``.
        - ``simulated`` : ``True``.
        - ``subject_params`` : dict subject id -> the drawn subject parameters, and
          ``night_params`` : dict recording id -> the drawn night parameters.

    See Also
    --------
    skseqsleep.datasets.load_sleep_edf : The real Sleep-EDF recordings, same Bunch.
    skseqsleep.datasets.load_mass : The real MASS recordings, same Bunch.

    Notes
    -----
    **Hypnograms.** A first-order Markov chain over 30-s epochs whose transition matrix
    depends on the fraction of the night elapsed: the in-bed part of the 39 SC-20 nights was
    split into 10 equal fraction-of-night bins, transitions counted per bin and smoothed
    towards the whole-night matrix (pseudo-count 20); the matrix at fraction ``u`` is
    interpolated linearly between bin centres. From a non-REM stage, the probability of
    entering REM is further multiplied by a REM-refractoriness factor of the time since the
    last REM epoch (since sleep onset before the first one), also derived from the 39 nights
    (entry into REM is suppressed for 20-80 epochs after a REM episode and recovers after
    about 100; the factors are scaled by 0.85, calibrated by simulation so that the REM
    proportion stays the real one). The first epoch is drawn from the real first in-bed stages (almost always
    W). This reproduces the real time-of-night structure (W at lights-off and before
    lights-on, N3 concentrated in the first third, REM in the last two thirds), the SC-20
    stage proportions (W 11.8 %, N1 7.2 %, N2 46.1 %, N3 14.7 %, REM 20.2 %) and the
    NREM-REM cycles: with REM episodes taken as REM runs merged across gaps < 15 min, the
    real nights have 4.2 episodes and a median of 94.5 min between episode onsets (IQR
    79-112), 100 simulated 960-epoch nights 3.9-4.1 and 95-97 min (IQR 75-126).

    **Stage signatures.** Source: the visual scoring rules and definitions of the AASM
    Manual for the Scoring of Sleep and Associated Events (Berry et al., AASM, v2.x; the
    definitions of alpha, theta, slow-wave activity, sleep spindles, K-complexes, sawtooth
    waves, eye blinks, slow and rapid eye movements), which Sleep-EDF's R&K stages map onto
    (REFERENCE §1: S3 + S4 = N3). µV below are peak values on the C4-A1-like profile at
    amplitude scale 1.

    - W: alpha (8-12 Hz; each subject's own frequency, 8.3-11.7 Hz), posterior-dominant
      and present when the eyes are closed (each W epoch is eyes-closed with a
      per-subject probability around 0.6; then alpha RMS is 20 µV, else about 4 µV);
      beta / muscle activity (15-30 Hz); eye blinks (80-200 µV, 0.1-0.2 s; more with eyes
      open) and, with eyes open, rapid saccades (50-200 µV); some slow eye movements when
      drowsy.
    - N1: alpha replaced by low-amplitude mixed-frequency activity, predominantly theta
      (4-7 Hz); slow rolling eye movements (sinusoidal, 0.2-0.5 Hz, 40-110 µV) in 85 % of
      N1 epochs.
    - N2: sleep spindles (11-16 Hz, 0.5-2 s, sin²-shaped envelope, 15-40 µV, about
      4 / min, maximal centrally), K-complexes (a negative sharp wave followed by a
      positive component, >= 0.5 s in total, 70-140 µV, about 1 / min) and a few isolated
      slow waves; fewer than 5 % of N2 epochs reach the N3 criterion below.
    - N3: slow-wave activity: continuous trains of single 0.6-1.7 s cycles (0.59-1.67 Hz);
      cycles adding up to 30-95 % of every N3 epoch are >= 110 µV peak to peak on both
      EEG profiles whatever the subject's amplitude (AASM: N3 when >= 20 % of the epoch is
      0.5-2 Hz waves of > 75 µV peak to peak); spindles and K-complexes are rarer.
    - REM: low-amplitude mixed-frequency EEG (theta, some alpha); sawtooth waves (trains of
      3-7 triangular, sharply contoured 2-5 Hz waves, 25-60 µV, maximal centrally); rapid
      eye movements (sharp deflections, rise 50-120 ms, 80-250 µV), in bursts in phasic
      epochs (60 %) and rarely in tonic ones.

    Ongoing rhythms (1/f background, beta, alpha, theta, delta) and the white Gaussian
    measurement noise (1.5 / 2 / 3 µV RMS on the three profiles) are random-phase spectral
    syntheses with stage-dependent RMS (a new complex Gaussian spectrum per epoch, shared
    by the profiles of that epoch); transient events (spindles, K-complexes, slow waves,
    sawtooth waves, blinks, eye movements) are explicit waveforms. Epochs are synthesised
    independently, so the signal is not continuous across epoch boundaries.

    **Channel profiles.** The same sources are mixed with profile-specific gains
    (``_GAINS`` in the source), mimicking how the derivations differ:

    - ``"C4-A1-like"``: central EEG against the mastoid (referential, long inter-electrode
      distance): largest amplitude, strong spindles and alpha, eye movements nearly absent
      (0.04x).
    - ``"Fpz-Cz-like"``: frontal bipolar EEG (Sleep-EDF): smaller background (0.6x), weak
      alpha (0.3x) and spindles (0.5x), strong frontal delta / slow waves (0.95x) and
      K-complexes (0.85x), eye movements leaking in (0.3x).
    - ``"EOG-like"``: dominated by the eye movements (blinks and saccades in W, slow
      rolling eye movements in N1, rapid eye movements in REM) with EEG leaking in at low
      amplitude, most of all delta (slow waves 0.45x, delta 0.4x, alpha 0.1x, spindles
      0.08x).

    A classifier trained on one profile therefore transfers imperfectly to another, worst
    to EOG (log band powers + logistic regression trained on 4 C4-A1-like subjects, five
    seeds: accuracy 0.86-0.92 on 2 new C4-A1-like subjects, 0.71-0.85 on their Fpz-Cz-like
    signals, 0.17-0.45 on their EOG-like signals; trained and tested on EOG-like: 0.76-0.93).

    **Variability** (at ``subject_variability=1``; every spread scales linearly with it):
    per subject an overall amplitude factor (log-normal, log sd 0.25), alpha frequency
    (10 +- 0.9 Hz) and strength (log sd 0.4), eyes-closed probability in W (0.6 +- 0.2),
    spindle density (4 / min, log sd 0.35), frequency (13 +- 0.7 Hz) and amplitude (log sd
    0.25), noise level (log sd 0.5, within 0.4-2.5x), slow-wave coverage (log sd 0.2),
    REM eye-movement and sawtooth density (log sd 0.3), per-profile electrode gain (log sd
    0.1) and stage proportions (the probability of moving into each stage from another
    multiplied by ``exp(N(0, sd))``, sd 0.4 / 0.5 / 0.2 / 0.5 / 0.1 for W / N1 / N2 / N3 /
    REM, with the exits of each stage renormalised so that dwell times are unchanged).
    Per night: amplitude (log sd 0.07), noise (log sd 0.15) and stage proportions (sd
    0.12 for every stage). Per-night stage-proportion sd over 60 simulated nights: W 0.055,
    N1 0.021, N2 0.079, N3 0.060, REM 0.084 (real SC-20: 0.079, 0.042, 0.098, 0.082,
    0.047). Every epoch also jitters its
    rhythm amplitudes (log sd 0.2). ``subject_params`` and ``night_params`` hold the values.

    **Speed and memory.** Vectorised over the epochs of a night (one loop iteration per
    night, per profile). Besides ``X`` only per-night temporaries are allocated (peak
    resident memory 1.08 x the size of ``X``). Measured with
    ``benchmarks/bench_make_sleep_cohort.py`` on the 2-core development machine: 20
    subjects x 2 nights x 960 epochs x 2 profiles (76 800 epoch-channels, 0.92 GB) take
    4.2-5.3 s of CPU time, of which about 1.6 s is the kernel providing X's 0.92 GB of
    fresh memory; wall-clock 5.2 s at load 3.7, up to 13 s when the 2 cores were shared
    at load 5. ``n_jobs=2`` only helps when a second core is actually free.

    Examples
    --------
    >>> from skseqsleep.datasets import make_sleep_cohort
    >>> data = make_sleep_cohort(n_subjects=2, n_nights=2, n_epochs=100,
    ...                          channels=["C4-A1-like", "EOG-like"], random_state=0)
    >>> data.X.shape, data.X.dtype
    ((400, 2, 3000), dtype('float32'))
    >>> sorted(set(data.y.tolist()))
    [0, 1, 2, 3, 4]
    >>> print(data.recordings[0], data.groups[0], data.ch_names, data.simulated)
    sim-s00-n1 sim-s00 ['C4-A1-like', 'EOG-like'] True
    >>> data.description[:9]
    'SIMULATED'
    """
    n_subjects = _check_int(n_subjects, "n_subjects")
    n_nights = _check_int(n_nights, "n_nights")
    n_epochs = _check_int(n_epochs, "n_epochs")
    profiles, single = _check_channels(channels)
    fs = _check_fs(fs)
    if (isinstance(subject_variability, bool)
            or not isinstance(subject_variability, numbers.Real)
            or not 0.0 <= float(subject_variability) <= 1.0):
        raise ValueError("subject_variability must be a number between 0 and 1, got "
                         f"{subject_variability!r}")
    sv = float(subject_variability)
    if n_jobs is None:
        n_jobs = 1
    elif isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None or a non-zero int (-1: all cores, -2: all but "
                         f"one, as in joblib), got {n_jobs!r}")
    elif n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))
    entropy = _seed_entropy(random_state)
    stats = _load_stats()
    n_samples = round(fs * EPOCH_SECONDS)

    width = max(2, len(str(n_subjects - 1)))
    subject_ids = [f"sim-s{s:0{width}d}" for s in range(n_subjects)]
    subjects = [_subject_params(_rng(entropy, s, 0, 0), sv) for s in range(n_subjects)]
    keys = [(s, k + 1) for s in range(n_subjects) for k in range(n_nights)]
    nights = [_night_params(_rng(entropy, s, k, 1), sv) for s, k in keys]
    recording_ids = [f"{subject_ids[s]}-n{k}" for s, k in keys]

    # hypnograms
    length = max(n_epochs, NIGHT_EPOCHS)
    tilts = np.array([np.add(subjects[s]["stage_tilt"], nights[i]["stage_tilt"])
                      for i, (s, _) in enumerate(keys)])
    streams = [_rng(entropy, s, k, 2) for s, k in keys]
    initial_u = np.array([r.random() for r in streams])
    uniforms = np.stack([r.random(length) for r in streams])
    full = _simulate_hypnograms(stats, tilts, uniforms, initial_u)
    slots = np.arange(n_epochs)                 # each epoch's 30-s slot in its night
    if n_epochs < length:
        slots = ((np.arange(n_epochs) + 0.5) * length / n_epochs).astype(np.int64)
        full = full[:, slots]
    y = full.reshape(-1).copy()
    forced = _force_all_stages(y, _rng(entropy, 2**31, 0, 3))

    X = np.empty((y.size, len(profiles), n_samples), dtype=np.float32)

    def night(i: int) -> None:
        s, k = keys[i]
        rows = slice(i * n_epochs, (i + 1) * n_epochs)
        _synthesise_night(entropy, (s, k), y[rows], subjects[s], nights[i], profiles, fs,
                          n_samples, X[rows])

    if n_jobs == 1 or len(keys) == 1:
        for i in range(len(keys)):
            night(i)
    else:  # numpy and scipy.fft release the GIL on large arrays: threads suffice
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(night, range(len(keys))))
    if single:
        X = X.reshape(y.size, n_samples)

    ch_names = [CHANNEL_PROFILES[p] for p in profiles]
    description = (
        "SIMULATED polysomnography cohort made by skseqsleep.datasets.make_sleep_cohort "
        f"(random_state entropy {entropy}): {n_subjects} subject(s) x {n_nights} night(s) x "
        f"{n_epochs} epoch(s) of {EPOCH_SECONDS} s at {fs:g} Hz, profile(s) "
        f"{', '.join(ch_names)}, subject_variability={sv:g}. Stage signatures follow the AASM "
        "scoring manual; hypnograms follow a time-inhomogeneous Markov chain fitted to the "
        "39 Sleep-EDF-SC-20 in-bed hypnograms. Not real data.")
    if forced:
        description += (f" To contain all five stages, one epoch each was relabelled to "
                        f"{', '.join(forced)}.")
    report = ExclusionReport()
    for rec in recording_ids:
        notes = ["simulated by make_sleep_cohort: nothing excluded"]
        if forced and rec == recording_ids[-1]:
            notes.append(f"cohort-wide, one epoch each was relabelled to {', '.join(forced)} "
                         "so that all five stages occur")
        report.add(rec, kept=n_epochs, excluded={}, trimmed={}, notes=notes)
    return Bunch(
        X=X,
        y=y,
        groups=np.repeat(np.array(subject_ids), n_nights * n_epochs),
        recordings=np.repeat(np.array(recording_ids), n_epochs),
        onsets=np.tile(slots * float(EPOCH_SECONDS), len(recording_ids)),
        fs=fs,
        ch_names=ch_names,
        target_names=list(STAGES),
        report=report,
        description=description,
        simulated=True,
        subject_params=dict(zip(subject_ids, subjects)),
        night_params=dict(zip(recording_ids, nights)),
    )
