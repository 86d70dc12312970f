"""skseqsleep: SeqSleepNet and deep transfer learning for sleep staging, as scikit-learn estimators.

The two estimators are :class:`SpectrogramTransformer` (30-s epochs -> standardised
log-power spectrograms, REFERENCE §2) and :class:`SeqSleepClassifier` (a skorch
``NeuralNetClassifier`` around :class:`skseqsleep.nn.SeqSleepNet`, REFERENCE §3-§5).
Sub-packages are imported lazily so that ``import skseqsleep`` stays cheap.
"""

from skseqsleep._lazy import lazy_module_attributes

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

__all__ = [
    "STAGES",
    "SeqSleepClassifier",
    "SpectrogramTransformer",
    "__version__",
    "classifier",
    "cli",
    "datasets",
    "load_model",
    "model_selection",
    "nn",
    "plotting",
    "preprocessing",
    "pretrained",
    "study",
]

__getattr__, __dir__ = lazy_module_attributes("skseqsleep", _LAZY, _SUBMODULES)
