"""skseqsleep: SeqSleepNet and deep transfer learning for sleep staging, as scikit-learn estimators.

The two estimators are :class:`SpectrogramTransformer` (30-s epochs -> standardised
log-power spectrograms, REFERENCE §2) and :class:`SeqSleepClassifier` (a skorch
``NeuralNetClassifier`` around :class:`skseqsleep.nn.SeqSleepNet`, REFERENCE §3-§5).
Sub-packages are imported lazily so that ``import skseqsleep`` stays cheap.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "SpectrogramTransformer": "skseqsleep.preprocessing",
    "SeqSleepClassifier": "skseqsleep.classifier",
    "load_model": "skseqsleep.classifier",
    "STAGES": "skseqsleep._constants",
}
_SUBMODULES = {
    "datasets", "nn", "preprocessing", "classifier", "model_selection",
    "pretrained", "plotting", "study", "cli",
}

__all__ = ["__version__", *sorted(_LAZY), *sorted(_SUBMODULES)]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return import_module(f"skseqsleep.{name}")
    raise AttributeError(f"module 'skseqsleep' has no attribute {name!r}")


def __dir__():
    return __all__
