"""The SeqSleepNet network in plain PyTorch (REFERENCE §3); no scikit-learn here."""

from skseqsleep._lazy import lazy_module_attributes

_LAZY = {
    "SeqSleepNet": "skseqsleep.nn.seqsleepnet",
    "BNLSTM": "skseqsleep.nn.cells",
    "triangular_filterbank": "skseqsleep.nn.seqsleepnet",
    "gru_backend": "skseqsleep.nn._gru_ext",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_module_attributes('skseqsleep.nn', _LAZY)
