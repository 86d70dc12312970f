"""The Sphinx documentation builds with warnings as errors (a real sphinx-build subprocess).

Only the quick sphinx-gallery examples are executed (see ``docs/conf.py``), so that the build
stays within a few tens of seconds.
"""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("sphinx_gallery")


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    # sphinx-gallery and autosummary write into the source tree and skip examples whose source
    # did not change: start clean so that every build really runs the examples (as in CI)
    for generated in ("auto_examples", "generated", "gen_modules"):
        shutil.rmtree(ROOT / "docs" / generated, ignore_errors=True)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    env.pop("SKSEQSLEEP_DOCS_RUN_ALL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    return out / "html"


def test_pages_exist(html):
    for page in ("index", "quickstart", "user_guide", "api", "results", "benchmarks",
                 "auto_examples/index"):
        assert (html / f"{page}.html").is_file(), page


def test_api_reference_documents_the_public_api(html):
    gen = html / "generated"
    for name in ("skseqsleep.SeqSleepClassifier", "skseqsleep.SpectrogramTransformer",
                 "skseqsleep.study.run_study", "skseqsleep.plotting.plot_hypnogram",
                 "skseqsleep.datasets.load_sleep_edf", "skseqsleep.datasets.make_sleep_cohort",
                 "skseqsleep.nn.SeqSleepNet"):
        page = gen / f"{name}.html"
        assert page.is_file(), name
    text = (gen / "skseqsleep.study.run_study.html").read_text()
    assert "Parameters" in text and "output_dir" in text


def test_quick_examples_ran_and_made_figures(html):
    page = (html / "auto_examples" / "plot_plotting.html").read_text()
    assert "sphx_glr_plot_plotting_001.png" in page
    assert (html / "_images" / "sphx_glr_plot_plotting_001.png").is_file()


def _python_blocks(path):
    """The ``.. code-block:: python`` blocks of an rst file, dedented, with their line."""
    import textwrap

    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == ".. code-block:: python":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                body.append(lines[i])
                i += 1
            blocks.append((start, textwrap.dedent("\n".join(body)).strip("\n")))
        else:
            i += 1
    return blocks


def test_python_code_blocks_of_the_readme_and_docs_are_valid_python():
    # README.rst is not built by Sphinx: a syntax error there (an extra parenthesis) went
    # unnoticed; every python block of it and of docs/*.rst must at least parse
    import ast

    files = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
    n_blocks = 0
    for path in files:
        for line, code in _python_blocks(path):
            n_blocks += 1
            try:
                ast.parse(code)
            except SyntaxError as err:
                pytest.fail(f"{path.name}, block at line {line}: {err}\n{code}")
    assert n_blocks >= 5        # the blocks were found (README, quickstart, user guide...)
