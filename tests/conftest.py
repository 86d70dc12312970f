"""Shared fixtures.

Tests that need the real data in ``../shared`` use the ``shared_dir`` fixture. The folder is
found through ``SKSEQSLEEP_SHARED`` (default: ``../shared`` next to the checkout). When it is
missing the test is skipped with a reason, unless ``SKSEQSLEEP_REQUIRE_SHARED=1`` (set by
``.ci/run``), in which case the test fails.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_path() -> Path:
    return Path(os.environ.get("SKSEQSLEEP_SHARED", ROOT.parent / "shared")).expanduser()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_path()
    if not (path / "README.md").is_file():
        msg = (f"the shared data folder was not found at {path} "
               "(set SKSEQSLEEP_SHARED to its location)")
        if os.environ.get("SKSEQSLEEP_REQUIRE_SHARED") == "1":
            pytest.fail(msg + "; SKSEQSLEEP_REQUIRE_SHARED=1 makes this an error")
        pytest.skip(msg)
    return path


@pytest.fixture(autouse=True)
def _few_torch_threads():
    """One torch thread by default (``SKSEQSLEEP_TEST_THREADS`` overrides).

    The CI machine has 2 cores; torch's intra-op threads spin, and on a loaded machine two
    threads were measured at about 30x the CPU time of one for the same forward pass.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("SKSEQSLEEP_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(n)
