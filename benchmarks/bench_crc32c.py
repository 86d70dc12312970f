"""CRC32C and TensorBundle reading speed, measured side by side in one run.

Compares, on the same bytes: a byte-at-a-time table-driven loop in pure Python (the obvious
implementation) and the vectorised :func:`skseqsleep.pretrained.tensorbundle.crc32c`; then the
time to read a whole checkpoint with and without checksum verification.

Usage::

    python benchmarks/bench_crc32c.py [CHECKPOINT_PREFIX]

Without an argument, a 2.5 MB buffer of random bytes stands in for a data file and the
checkpoint part reads ``../shared/pretrained/phan2019-mass/1chan_eeg`` when it exists.
"""

import sys
from pathlib import Path

import numpy as np
from _timing import best_of

from skseqsleep.pretrained import tensorbundle as tb


def main():
    data = np.random.default_rng(0).integers(0, 256, 2_500_000, dtype=np.uint8).tobytes()
    loop = best_of(lambda: tb._crc_bytes(0xFFFFFFFF, data), repeat=2)
    vec = best_of(lambda: tb.crc32c(data))
    print(f"CRC32C of {len(data) / 1e6:.1f} MB: byte loop {loop * 1e3:.0f} ms, "
          f"vectorised {vec * 1e3:.1f} ms, ratio {loop / vec:.1f}x")
    default = Path(__file__).resolve().parents[2] / "shared/pretrained/phan2019-mass/1chan_eeg"
    prefix = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    try:
        prefix = tb.resolve_checkpoint_prefix(prefix)
    except FileNotFoundError:
        print(f"no checkpoint at {prefix}: skipped the checkpoint timing")
        return
    _, entries = tb.read_bundle_index(prefix)
    raw = Path(f"{prefix}.data-00000-of-00001").read_bytes()
    spans = [(e.offset, e.offset + e.size) for e in entries]
    per = best_of(lambda: [tb.crc32c(raw[a:b]) for a, b in spans])

    def shared_lanes():
        seg = tb._SegmentCRC(raw)
        return [seg.crc(a, b) for a, b in spans]

    shared = best_of(shared_lanes)
    print(f"{len(spans)} tensors of {prefix.parent.name}: crc32c per tensor {per * 1e3:.1f} ms, "
          f"shared lane CRCs {shared * 1e3:.1f} ms, ratio {per / shared:.1f}x")
    full = best_of(lambda: tb.read_tensorbundle(prefix))
    nocrc = best_of(lambda: tb.read_tensorbundle(prefix, verify_checksums=False))
    print(f"read_tensorbundle: {full * 1e3:.1f} ms with checksums, {nocrc * 1e3:.1f} ms without")


if __name__ == "__main__":
    main()
