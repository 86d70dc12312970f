"""Pretrained SeqSleepNet weights, including the authors' TensorFlow checkpoints (REFERENCE §3).

- :func:`read_tensorbundle` reads a TensorFlow TensorBundle checkpoint (``NAME.index`` +
  ``NAME.data-00000-of-00001``) into numpy arrays, without TensorFlow or protobuf.
- :func:`load_tf_checkpoint_state` maps the authors' MASS-pretrained checkpoints (1-channel EEG,
  1-channel EOG, 2-channel EEG+EOG) onto ``SeqSleepNet(cell="bnlstm")``: a config dict and a
  ``state_dict``; :func:`load_phan2019_model` returns the loaded network in eval mode.

Names are imported lazily, so importing this package does not import torch.
"""

from skseqsleep._lazy import lazy_module_attributes

_LAZY = {
    "CheckpointFormatError": "skseqsleep.pretrained.tensorbundle",
    "BundleEntry": "skseqsleep.pretrained.tensorbundle",
    "BundleHeader": "skseqsleep.pretrained.tensorbundle",
    "read_bundle_index": "skseqsleep.pretrained.tensorbundle",
    "read_tensorbundle": "skseqsleep.pretrained.tensorbundle",
    "crc32c": "skseqsleep.pretrained.tensorbundle",
    "load_tf_checkpoint_state": "skseqsleep.pretrained.phan2019",
    "load_phan2019_model": "skseqsleep.pretrained.phan2019",
    "is_tf_checkpoint": "skseqsleep.pretrained.phan2019",
}

__all__ = [
    "BundleEntry",
    "BundleHeader",
    "CheckpointFormatError",
    "crc32c",
    "is_tf_checkpoint",
    "load_phan2019_model",
    "load_tf_checkpoint_state",
    "read_bundle_index",
    "read_tensorbundle",
]

__getattr__, __dir__ = lazy_module_attributes("skseqsleep.pretrained", _LAZY)
