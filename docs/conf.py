"""Sphinx configuration of the skseqsleep documentation.

Build with warnings as errors (as ``tests/test_docs.py`` does)::

    sphinx-build -W -b html docs docs/_build/html

Only the quick sphinx-gallery examples are executed (``filename_pattern`` below); the others
need real data or minutes of training and are rendered without running. Set
``SKSEQSLEEP_DOCS_RUN_ALL=1`` to execute every example.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import skseqsleep  # noqa: E402

project = "skseqsleep"
author = "skseqsleep developers"
copyright = "2026, skseqsleep developers"  # noqa: A001
version = release = skseqsleep.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = []
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
root_doc = "index"
html_theme = "alabaster"
html_static_path = []
html_title = f"skseqsleep {release}"

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

_run_all = os.environ.get("SKSEQSLEEP_DOCS_RUN_ALL") == "1"
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # quick examples (simulated data, seconds) run at every build; the others are shown
    "filename_pattern": r".*" if _run_all else r"/plot_(simulated_cohort|plotting)",
    "download_all_examples": False,
    "write_computation_times": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}
