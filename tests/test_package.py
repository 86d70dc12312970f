import re
import subprocess
import sys

import skseqsleep


def test_version_is_pep440():
    assert re.fullmatch(r"\d+\.\d+\.\d+", skseqsleep.__version__)


def test_unknown_attribute_raises():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        skseqsleep.nope  # noqa: B018


def test_import_is_lazy():
    # importing the package must not import torch (cheap CLI start-up, fast `--help`)
    code = "import sys, skseqsleep; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shared_data_is_not_shipped():
    # nothing from ../shared (licensed data, checkpoints) may be inside the package
    from pathlib import Path

    pkg = Path(skseqsleep.__file__).parent
    banned = {".edf", ".ckpt", ".index", ".npz", ".xls"}
    shipped = [p for p in pkg.rglob("*") if p.suffix.lower() in banned
               or "data-00000-of-00001" in p.name]
    assert shipped == []


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_second():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("rc", ROOT / ".ci" / "readme_commands.py")
    rc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rc)
    cmds = rc.readme_commands(ROOT / "README.rst")
    assert len(cmds) == 2
    assert "skseqsleep study" in cmds[0]
    assert "pytest" in cmds[1]
    # a fresh machine has no torch: the CPU wheel must be pinned, never a plain `torch`
    assert all("torch==2.13.0" in c for c in cmds)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "SKSEQSLEEP_REQUIRE_SHARED=1" in ci and "readme_commands.py 2" in ci


def test_all_lists_every_lazy_name():
    import skseqsleep.datasets
    import skseqsleep.nn

    assert set(skseqsleep._LAZY) | set(skseqsleep._SUBMODULES) | {"__version__"} == set(skseqsleep.__all__)
    for mod in (skseqsleep.datasets, skseqsleep.nn):
        assert set(mod.__all__) == set(mod._LAZY)
