"""The TensorBundle reader: real checkpoints, hand-built bundles, corruptions and fuzzing.

The golden answers are ``reference_variables.npz`` (read out with TensorFlow itself) next to
each of the authors' checkpoints in ``../shared/pretrained/phan2019-mass``. The small bundles
built here are written by an independent minimal writer (below) that follows the public format
descriptions (LevelDB table_format.md, tensor_bundle.proto, protobuf encoding).
"""

import contextlib
import itertools
import os
import signal
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from skseqsleep.pretrained.tensorbundle import (
    CheckpointFormatError,
    crc32c,
    mask_crc32c,
    read_bundle_index,
    read_tensorbundle,
    resolve_checkpoint_prefix,
    unmask_crc32c,
)

CHECKPOINTS = ("1chan_eeg", "1chan_eog", "2chan_eegeog")


def _prefix(shared_dir, name):
    return shared_dir / "pretrained" / "phan2019-mass" / name / "pretrained_model.ckpt"


# ------------------------------------------------------------------------------------------
# CRC32C
# ------------------------------------------------------------------------------------------
def _crc32c_bitwise(data: bytes) -> int:
    """Bit-at-a-time CRC32C straight from the definition (reflected poly 0x82F63B78)."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
    return c ^ 0xFFFFFFFF


def test_crc32c_published_check_values():
    # the standard check value and the iSCSI test vectors of RFC 3720, appendix B.4
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    assert crc32c(b"") == 0


@pytest.mark.parametrize("n", [4095, 4096, 4097, 10_000, 65_537, 100_003])
def test_crc32c_vectorised_path_matches_bitwise_definition(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    assert crc32c(data) == _crc32c_bitwise(data)
    # incremental use over an unaligned split gives the same value
    k = n // 3 + 1
    assert crc32c(data[k:], crc=crc32c(data[:k])) == crc32c(data)


def test_mask_is_leveldb_rotation_plus_delta():
    # mask(c) = rotr(c, 15) + 0xa282ead8 (mod 2**32)
    assert mask_crc32c(0) == 0xA282EAD8
    assert mask_crc32c(1 << 15) == 0xA282EAD8 + 1
    for c in (0, 1, 0xDEADBEEF, 0xFFFFFFFF, 0x80000000):
        assert unmask_crc32c(mask_crc32c(c)) == c
        assert mask_crc32c(c) != c


# ------------------------------------------------------------------------------------------
# the authors' real checkpoints
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_real_checkpoint_equals_tensorflow_readout(shared_dir, name):
    prefix = _prefix(shared_dir, name)
    ours = read_tensorbundle(prefix)
    ref = np.load(prefix.parent / "reference_variables.npz")
    assert len(ref.files) > 50
    for key in ref.files:
        assert ours[key].dtype == ref[key].dtype, key
        assert ours[key].shape == ref[key].shape, key
        assert np.array_equal(ours[key], ref[key]), key
    # the npz drops exactly the optimiser state: the beta powers and the two Adam slots of
    # every trainable variable (not of the BN population statistics, nor of global_step)
    extra = set(ours) - set(ref.files)
    trainable = [k for k in ref.files
                 if k != "global_step" and not k.endswith(("pop_mean", "pop_var"))]
    assert extra == {"beta1_power", "beta2_power"} | {
        f"{k}/{slot}" for k in trainable for slot in ("Adam", "Adam_1")}


def test_real_index_listing(shared_dir):
    prefix = _prefix(shared_dir, "2chan_eegeog")
    header, entries = read_bundle_index(prefix)
    assert (header.num_shards, header.endianness) == (1, "little")
    by_name = {e.name: e for e in entries}
    assert [e.name for e in entries] == sorted(by_name)  # a sorted table
    e = by_name["filterbank-layer-eog/Variable"]
    assert (e.tf_dtype, e.shape, e.shard_id, e.size) == ("DT_FLOAT", (129, 32), 0, 129 * 32 * 4)
    assert by_name["global_step"].tf_dtype == "DT_INT32"
    assert by_name["global_step"].shape == ()
    # tensors tile the data file without overlap (TF writes them back to back)
    data_size = os.path.getsize(f"{prefix}.data-00000-of-00001")
    spans = sorted((e.offset, e.offset + e.size) for e in entries)
    assert all(a1 <= b0 for (_, a1), (b0, _) in itertools.pairwise(spans))
    assert spans[-1][1] == data_size
    # the entry's crc32c is the unmasked CRC of exactly those bytes
    raw = Path(f"{prefix}.data-00000-of-00001").read_bytes()[e.offset:e.offset + e.size]
    assert e.crc32c == _crc32c_bitwise(raw)


def test_prefix_forms_and_names_subset(shared_dir, tmp_path):
    prefix = _prefix(shared_dir, "1chan_eeg")
    want = ["output_layer/output/biases", "global_step"]
    a = read_tensorbundle(prefix, names=want)
    b = read_tensorbundle(str(prefix) + ".index", names=want)
    c = read_tensorbundle(prefix.parent, names=want)
    assert list(a) == want
    for k in want:
        assert np.array_equal(a[k], b[k]) and np.array_equal(a[k], c[k])
    with pytest.raises(KeyError, match="nope"):
        read_tensorbundle(prefix, names=["nope"])
    # one name as a string (it was split into its characters: a KeyError listing them)
    one = read_tensorbundle(prefix, names="global_step")
    assert list(one) == ["global_step"] and np.array_equal(one["global_step"], a["global_step"])
    with pytest.raises(FileNotFoundError, match="no TensorBundle checkpoint"):
        read_tensorbundle(tmp_path / "missing.ckpt")
    with pytest.raises(FileNotFoundError, match="exactly one"):
        resolve_checkpoint_prefix(tmp_path)


def test_release_folder_layout_and_state_file(shared_dir, tmp_path):
    src = _prefix(shared_dir, "1chan_eeg")
    # the authors' release: 1chan_eeg/checkpoint/{checkpoint, pretrained_model.ckpt.*}, whose
    # state file holds an absolute path of the authors' machine
    ckdir = tmp_path / "1chan_eeg" / "checkpoint"
    ckdir.mkdir(parents=True)
    for suffix in (".index", ".data-00000-of-00001"):
        os.symlink(f"{src}{suffix}", ckdir / f"pretrained_model.ckpt{suffix}")
    (ckdir / "checkpoint").write_text(
        'model_checkpoint_path: "/cluster/home/x/mass_all/checkpoint/pretrained_model.ckpt"\n'
        'all_model_checkpoint_paths: "/cluster/home/x/mass_all/checkpoint/'
        'pretrained_model.ckpt"\n')
    assert resolve_checkpoint_prefix(tmp_path / "1chan_eeg") == ckdir / "pretrained_model.ckpt"
    assert resolve_checkpoint_prefix(ckdir) == ckdir / "pretrained_model.ckpt"
    # a second checkpoint in the folder: the state file tells which one
    for suffix in (".index", ".data-00000-of-00001"):
        os.symlink(f"{src}{suffix}", ckdir / f"older.ckpt{suffix}")
    assert resolve_checkpoint_prefix(ckdir) == ckdir / "pretrained_model.ckpt"
    (ckdir / "checkpoint").unlink()
    with pytest.raises(FileNotFoundError, match="found 2"):
        resolve_checkpoint_prefix(ckdir)


def test_reading_does_not_import_torch(shared_dir):
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import sys; from skseqsleep.pretrained import read_tensorbundle; "
            f"read_tensorbundle({str(_prefix(shared_dir, '1chan_eeg'))!r}); "
            "print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------
# an independent minimal writer (follows the public format descriptions)
# ------------------------------------------------------------------------------------------
def _uvarint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_varint(field, value):
    return _uvarint(field << 3) + _uvarint(value)


def _pb_bytes(field, payload):
    return _uvarint(field << 3 | 2) + _uvarint(len(payload)) + payload


def _pb_fixed32(field, value):
    return _uvarint(field << 3 | 5) + struct.pack("<I", value)


_DT = {"f4": 1, "f8": 2, "i4": 3, "u1": 4, "i2": 5, "i8": 9, "f2": 19}


def _block(pairs, restart_interval):
    out = bytearray()
    restarts = []
    prev = b""
    for i, (k, v) in enumerate(pairs):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                shared += 1
        out += _uvarint(shared) + _uvarint(len(k) - shared) + _uvarint(len(v))
        out += k[shared:] + v
        prev = k
    if not restarts:
        restarts = [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def _with_trailer(contents, kind=0):
    body = contents + bytes([kind])
    return body + struct.pack("<I", mask_crc32c(_crc32c_bitwise(body)))


def _table(pairs, entries_per_block=1000, restart_interval=16, kind=0):
    out = bytearray()
    index = []
    for i in range(0, len(pairs), entries_per_block):
        chunk = pairs[i:i + entries_per_block]
        contents = _block(chunk, restart_interval)
        index.append((chunk[-1][0], _uvarint(len(out)) + _uvarint(len(contents))))
        out += _with_trailer(contents, kind)
    meta_handle = _uvarint(len(out)) + _uvarint(len(_block([], 16)))
    out += _with_trailer(_block([], 16))
    ic = _block(index, 1)
    index_handle = _uvarint(len(out)) + _uvarint(len(ic))
    out += _with_trailer(ic)
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    return bytes(out + footer)


def write_bundle(prefix, tensors, *, big_endian=False, entries_per_block=1000,
                 restart_interval=16, kind=0, extra=None):
    """Write ``{name: array}`` as a TensorBundle; ``extra`` = {name: raw entry proto}."""
    data = bytearray()
    pairs = []
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        code = arr.dtype.str[1:]
        raw = arr.astype(arr.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
        shape = b"".join(_pb_bytes(2, _pb_varint(1, d)) for d in arr.shape)
        entry = (_pb_varint(1, _DT[code]) + (_pb_bytes(2, shape) if shape else b"")
                 + (_pb_varint(4, len(data)) if data else b"") + _pb_varint(5, len(raw))
                 + _pb_fixed32(6, mask_crc32c(crc32c(raw))))  # checked on its own above
        pairs.append((name.encode(), entry))
        data += raw
    for name, proto in (extra or {}).items():
        pairs.append((name.encode(), proto))
    header = _pb_varint(1, 1) + (_pb_varint(2, 1) if big_endian else b"") + _pb_bytes(
        3, _pb_varint(1, 1))
    pairs = [(b"", header)] + sorted(pairs)
    Path(f"{prefix}.index").write_bytes(
        _table(pairs, entries_per_block, restart_interval, kind))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    return Path(prefix)


def _small_tensors(seed=0, n=40):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        dt = ["f4", "f8", "i4", "i8", "u1", "f2", "i2"][i % 7]
        shape = tuple(rng.integers(0, 5, size=i % 4))
        out[f"layer_{i % 5}/block/v{i:02d}"] = (rng.normal(size=shape) * 100).astype(dt)
    return out


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize(("per_block", "restart"), [(1000, 16), (7, 3), (1, 1)])
def test_written_bundle_round_trips(tmp_path, big_endian, per_block, restart):
    tensors = _small_tensors()
    prefix = write_bundle(tmp_path / "m.ckpt", tensors, big_endian=big_endian,
                          entries_per_block=per_block, restart_interval=restart)
    got = read_tensorbundle(prefix)
    assert list(got) == sorted(tensors)
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert np.array_equal(got[k], v), k
    header, _ = read_bundle_index(prefix)
    assert header.endianness == ("big" if big_endian else "little")


def test_snappy_block_is_rejected_clearly(tmp_path):
    prefix = write_bundle(tmp_path / "m.ckpt", _small_tensors(n=3), kind=1)
    with pytest.raises(CheckpointFormatError, match=r"m\.ckpt\.index.*Snappy"):
        read_bundle_index(prefix)


def test_unsupported_entries_are_named(tmp_path):
    sliced = _pb_varint(1, 1) + _pb_bytes(7, b"")
    prefix = write_bundle(tmp_path / "a.ckpt", _small_tensors(n=2), extra={"part": sliced})
    with pytest.raises(CheckpointFormatError, match="'part'.*partitioned"):
        read_bundle_index(prefix)
    string = _pb_varint(1, 7) + _pb_varint(5, 3)
    prefix = write_bundle(tmp_path / "b.ckpt", {"x": np.ones(2, "f4")}, extra={"s": string})
    with pytest.raises(CheckpointFormatError, match="'s' has dtype DT_STRING"):
        read_tensorbundle(prefix)
    assert np.array_equal(read_tensorbundle(prefix, names=["x"])["x"], np.ones(2, "f4"))


# ------------------------------------------------------------------------------------------
# targeted corruptions: clear errors naming the file
# ------------------------------------------------------------------------------------------
@pytest.fixture
def real_copy(shared_dir, tmp_path):
    """A writable copy of the real 1-channel EEG checkpoint (index copied, data linked)."""
    src = _prefix(shared_dir, "1chan_eeg")
    dst = tmp_path / "pretrained_model.ckpt"
    Path(f"{dst}.index").write_bytes(Path(f"{src}.index").read_bytes())
    os.symlink(f"{src}.data-00000-of-00001", f"{dst}.data-00000-of-00001")
    return dst


def test_corrupt_index_errors(real_copy):
    index = Path(f"{real_copy}.index")
    good = index.read_bytes()
    index.write_bytes(good[:-1])
    with pytest.raises(CheckpointFormatError, match=r"ckpt\.index: bad table magic"):
        read_tensorbundle(real_copy)
    index.write_bytes(good[:30])
    with pytest.raises(CheckpointFormatError, match="fewer than the 48-byte table footer"):
        read_tensorbundle(real_copy)
    bad = bytearray(good)
    bad[100] ^= 0x40
    index.write_bytes(bytes(bad))
    with pytest.raises(CheckpointFormatError, match="data block 0 .*checksum"):
        read_tensorbundle(real_copy)


def test_corrupt_data_errors(real_copy, tmp_path):
    data_link = Path(f"{real_copy}.data-00000-of-00001")
    good = data_link.read_bytes()
    data_link.unlink()
    bad = bytearray(good)
    bad[len(good) // 2] ^= 1
    data_link.write_bytes(bytes(bad))
    with pytest.raises(CheckpointFormatError, match=r"data-00000-of-00001: tensor .* checksum"):
        read_tensorbundle(real_copy)
    # the checksum check can be switched off, and then the flipped value shows up
    read_tensorbundle(real_copy, verify_checksums=False)
    data_link.write_bytes(good[:-10])
    with pytest.raises(CheckpointFormatError, match="beyond the end of the file"):
        read_tensorbundle(real_copy)
    data_link.unlink()
    with pytest.raises(FileNotFoundError, match="data shard .* is missing"):
        read_tensorbundle(real_copy)


def _read_handle(buf, pos):
    vals = []
    for _ in range(2):
        v, shift = 0, 0
        while True:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        vals.append(v)
    return vals, pos


def _block_spans(table: bytes):
    """(offset, size) of the metaindex, index and data blocks of a one-data-block table."""
    (m_off, m_size), pos = _read_handle(table, len(table) - 48)
    (i_off, i_size), _ = _read_handle(table, pos)
    ib = table[i_off:i_off + i_size]
    assert ib[0] == 0 and struct.unpack("<I", ib[-4:])[0] == 1  # one full-key entry
    (d_off, d_size), _ = _read_handle(ib, 3 + ib[1])
    return [(m_off, m_size), (i_off, i_size), (d_off, d_size)]


def _restamp(table: bytearray, spans) -> None:
    """Recompute the trailer CRC of the blocks at ``spans`` (so corruption gets past it)."""
    for off, size in spans:
        if off + size + 5 <= len(table):
            body = bytes(table[off:off + size + 1])
            table[off + size + 1:off + size + 5] = struct.pack(
                "<I", mask_crc32c(_crc32c_bitwise(body)))


def test_real_index_layout(shared_dir):
    good = Path(f"{_prefix(shared_dir, '1chan_eeg')}.index").read_bytes()
    # data block at 0, then the (empty) metaindex and the index block, then the footer
    assert _block_spans(good) == [(4400, 8), (4413, 15), (0, 4395)]


def test_huge_lengths_fail_cleanly_without_allocating(real_copy, tmp_path):
    index = Path(f"{real_copy}.index")
    good = index.read_bytes()
    spans = _block_spans(good)
    cases = []
    # the value length of the first tensor entry ('beta1_power'), overwritten in place
    pos = good.index(b"beta1_power") - 1
    for huge in (2**31, 2**32 - 1, 2**62, 2**64 - 1):
        bad = bytearray(good)
        v = _uvarint(huge)
        bad[pos:pos + len(v)] = v
        _restamp(bad, spans)
        cases.append((real_copy, index, bytes(bad)))
    # the restart count of the data block
    bad = bytearray(good)
    bad[4395 - 4:4395] = struct.pack("<I", 2**32 - 1)
    _restamp(bad, spans)
    cases.append((real_copy, index, bytes(bad)))
    # entries whose size, offset or shape are huge (written bundles)
    dim = _pb_bytes(2, _pb_varint(1, 2**30))
    protos = {
        "big": _pb_varint(1, 1) + _pb_bytes(2, dim + dim) + _pb_varint(5, 2**62),
        "neg": _pb_varint(1, 1) + _pb_varint(5, 2**64 - 1),
        "far": _pb_varint(1, 1) + _pb_bytes(2, _pb_bytes(2, _pb_varint(1, 1)))
        + _pb_varint(4, 2**63 - 1) + _pb_varint(5, 4),
        "wide": _pb_varint(1, 1) + _pb_bytes(2, dim * 40) + _pb_varint(5, 4),
        # empty tensors whose shape numpy still cannot describe
        # (with valid checksums: of no bytes, and of the first 4 bytes = a[0] = 1.0)
        "empty": _pb_varint(1, 1) + _pb_bytes(2, _pb_bytes(2, b"") + dim * 3)
        + _pb_fixed32(6, mask_crc32c(0)),
        "deep": _pb_varint(1, 1) + _pb_bytes(2, _pb_bytes(2, _pb_varint(1, 1)) * 65)
        + _pb_varint(5, 4) + _pb_fixed32(6, mask_crc32c(crc32c(np.float32(1).tobytes()))),
    }
    for name, proto in protos.items():
        pre = write_bundle(tmp_path / f"{name}.ckpt", {"a": np.ones(3, "f4")},
                           extra={name: proto})
        cases.append((pre, None, None))
    tracemalloc.start()
    try:
        for prefix, path, content in cases:
            if path is not None:
                path.write_bytes(content)
            tracemalloc.reset_peak()
            with pytest.raises(CheckpointFormatError, match=r"\.ckpt\.(index|data-)"):
                read_tensorbundle(prefix)
            assert tracemalloc.get_traced_memory()[1] < 32 * 2**20
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------------
# property-based fuzzing: a result or CheckpointFormatError, nothing else, never a hang
# ------------------------------------------------------------------------------------------
class _Hang(BaseException):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    if not hasattr(signal, "setitimer"):  # pragma: no cover - Windows
        yield
        return

    def on_alarm(signum, frame):
        raise _Hang(f"reader still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_VARINT_VALUES = st.one_of(
    st.sampled_from([0, 1, 127, 128, 2**31 - 1, 2**32, 2**63 - 1, 2**64 - 1]),
    st.integers(0, 2**64 - 1), st.integers(0, 5000))

_MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 2**32),
                                                   st.integers(1, 255)), min_size=1, max_size=6),
              st.booleans()),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True), st.just(False)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=64), st.just(False)),
    st.tuples(st.just("varint"), st.tuples(st.integers(0, 2**32), _VARINT_VALUES),
              st.booleans()),
)


def _mutate(buf: bytes, mutation, spans=None) -> bytes:
    kind, arg, restamp = mutation
    out = bytearray(buf)
    if kind == "flip":
        for pos, x in arg:
            out[pos % len(out)] ^= x
    elif kind == "truncate":
        del out[int(arg * len(out)):]
    elif kind == "append":
        out += arg
    else:
        pos, value = arg
        pos %= len(out)
        v = _uvarint(value)
        out[pos:pos + len(v)] = v[:len(out) - pos]
    if restamp and spans:
        _restamp(out, spans)
    return bytes(out)


def _read_or_format_error(prefix):
    with _time_limit(10):
        try:
            return read_tensorbundle(prefix)
        except CheckpointFormatError:
            return None


_GOOD = {}


def _good(key, path):
    """Original bytes of a file, cached across hypothesis examples."""
    if key not in _GOOD:
        _GOOD[key] = Path(path).read_bytes()
    return _GOOD[key]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=_MUTATION)
def test_fuzz_real_index(real_copy, mutation, shared_dir):
    """Mutated real index; with restamp=True the block checksums are recomputed after the
    mutation, so that the corruption reaches the block, table and protobuf decoders."""
    index = Path(f"{real_copy}.index")
    good = _good("index", index)
    index.write_bytes(_mutate(good, mutation, spans=_block_spans(good)))
    got = _read_or_format_error(real_copy)
    if got is not None:
        assert all(isinstance(a, np.ndarray) for a in got.values())
        if not mutation[2]:
            # not re-stamped: the block checksums held, so every tensor is the original one
            ref = np.load(_prefix(shared_dir, "1chan_eeg").parent / "reference_variables.npz")
            for k in ref.files:
                assert np.array_equal(got[k], ref[k])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=_MUTATION, target=st.sampled_from(["index", "data"]))
def test_fuzz_written_bundle(tmp_path, mutation, target):
    tensors = _small_tensors(n=12)
    prefix = write_bundle(tmp_path / "m.ckpt", tensors, entries_per_block=4, restart_interval=2)
    path = Path(f"{prefix}.index" if target == "index" else f"{prefix}.data-00000-of-00001")
    path.write_bytes(_mutate(path.read_bytes(), mutation))
    got = _read_or_format_error(prefix)
    if got is not None:
        # every block and tensor passed its checksum: the values are the original ones
        assert list(got) == sorted(tensors)
        for k, v in tensors.items():
            assert np.array_equal(got[k], v)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=_MUTATION)
def test_fuzz_real_data(real_copy, mutation, shared_dir):
    data_link = Path(f"{real_copy}.data-00000-of-00001")
    good = _good("data", data_link)
    with contextlib.suppress(FileNotFoundError):
        data_link.unlink()
    data_link.write_bytes(_mutate(good, mutation))
    got = _read_or_format_error(real_copy)
    if got is not None:
        # TF writes the tensors back to back, so any change inside the file fails a checksum
        # and a truncation cuts the last tensor: only appended bytes (or a mutation that
        # rewrote bytes with their own values) can give a result, and then the original one
        ref = np.load(_prefix(shared_dir, "1chan_eeg").parent / "reference_variables.npz")
        assert mutation[0] != "truncate"
        for k in ref.files:
            assert np.array_equal(got[k], ref[k])


_DIM = st.one_of(st.integers(0, 4), st.sampled_from([2**30, 2**31, 2**62, 2**63 - 1]))
_INT64 = st.one_of(st.integers(0, 80), st.sampled_from([2**31, 2**62, 2**63 - 1, 2**64 - 1]))


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(dtype=st.integers(0, 30), dims=st.lists(_DIM, max_size=70), offset=_INT64,
       size=st.one_of(st.none(), st.none(), _INT64), good_crc=st.booleans(), shard=st.sampled_from([0, 1]))
@example(dtype=1, dims=[0, 2**62], offset=0, size=None, good_crc=True, shard=0)
@example(dtype=1, dims=[1] * 65, offset=0, size=None, good_crc=True, shard=0)
@example(dtype=19, dims=[2, 3], offset=40, size=None, good_crc=True, shard=0)
def test_fuzz_entry_fields(tmp_path, dtype, dims, offset, size, good_crc, shard):
    """Arbitrary BundleEntryProto field values: a result or CheckpointFormatError."""
    a = np.arange(16, dtype="f4")
    raw = a.tobytes()
    if size is None:  # the size that dtype and shape imply, when it is small
        n = 1
        for d in dims:
            n *= d
        size = n * {1: 4, 2: 8, 3: 4, 9: 8, 19: 2}.get(dtype, 1)
    crc = crc32c(raw[offset:offset + size]) if good_crc and offset + size <= 64 else 12345
    proto = (_pb_varint(1, dtype) + _pb_bytes(2, b"".join(_pb_bytes(2, _pb_varint(1, d))
                                                           for d in dims))
             + _pb_varint(3, shard) + _pb_varint(4, offset) + _pb_varint(5, size)
             + _pb_fixed32(6, mask_crc32c(crc)))
    prefix = write_bundle(tmp_path / "m.ckpt", {"a": a}, extra={"z": proto})
    got = _read_or_format_error(prefix)
    if got is not None:
        assert np.array_equal(got["a"], a)
        z = got["z"]
        assert z.shape == tuple(dims) and z.nbytes == size
        assert z.tobytes() == raw[offset:offset + size]
