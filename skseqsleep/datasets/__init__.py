"""Readers for real polysomnography data and a documented simulator (REFERENCE §1).

Public functions are imported lazily from their modules.
"""

from skseqsleep._lazy import lazy_module_attributes

_LAZY = {
    "read_psg": "skseqsleep.datasets._edf",
    "read_hypnogram": "skseqsleep.datasets._hypnogram",
    "sleep_edf_in_bed_times": "skseqsleep.datasets._inbed",
    "trim_in_bed": "skseqsleep.datasets._inbed",
    "load_sleep_edf": "skseqsleep.datasets.sleep_edf",
    "load_edf_recordings": "skseqsleep.datasets.sleep_edf",
    "fetch_sleep_edf": "skseqsleep.datasets.fetch",
    "load_mass": "skseqsleep.datasets.mass",
    "read_dreams_excerpt": "skseqsleep.datasets.dreams",
    "load_dreams": "skseqsleep.datasets.dreams",
    "make_sleep_cohort": "skseqsleep.datasets.simulate",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_module_attributes('skseqsleep.datasets', _LAZY)
