"""The SeqSleepNet network in plain PyTorch (REFERENCE §3); no scikit-learn here."""

from importlib import import_module

_LAZY = {
    "SeqSleepNet": "skseqsleep.nn.seqsleepnet",
    "BNLSTM": "skseqsleep.nn.cells",
    "triangular_filterbank": "skseqsleep.nn.seqsleepnet",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skseqsleep.nn' has no attribute {name!r}")


def __dir__():
    return __all__
