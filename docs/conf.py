"""Sphinx configuration of the skseqsleep documentation.

Build with warnings as errors (as ``tests/test_docs.py`` does)::

    sphinx-build -W -b html docs docs/_build/html

Only the quick sphinx-gallery examples are executed (``filename_pattern`` below); the others
need real data or minutes of training and are rendered without running. Set
``SKSEQSLEEP_DOCS_RUN_ALL=1`` to execute every ``plot_*`` example (scripts without that prefix,
such as the DREAMS study, are never executed by the build).
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import skseqsleep

project = "skseqsleep"
author = "skseqsleep developers"
copyright = "2026, skseqsleep developers"
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
    "filename_pattern": r"/plot_" if _run_all else r"/plot_(simulated_cohort|plotting)",
    "download_all_examples": False,
    "write_computation_times": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

autodoc_default_options["exclude-members"] = ",".join(
    f"set_{m}_request" for m in ("fit", "predict", "predict_proba", "score", "transform",
                                 "partial_fit", "inverse_transform", "split"))

# scikit-learn style docstrings mention fitted attributes (``n_channels_``) in free text and
# in shape descriptions; a bare word ending with "_" is a reStructuredText reference, so after
# numpydoc has rendered a docstring, escape such words outside inline markup.
_MARKUP = re.compile(r"(``.+?``|:[\w:.-]+:`.+?`|`[^`]+`_{0,2}|\*\*.+?\*\*|\*[^*\s][^*]*\*)")
_TRAILING = re.compile(r"(?<![\w\\])([A-Za-z][A-Za-z0-9_]*[A-Za-z0-9])_(?![\w`])")


def _escape_trailing_underscores(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if line.lstrip().startswith(".. ") or "_" not in line:
            continue
        parts = _MARKUP.split(line)
        lines[i] = "".join(p if k % 2 else _TRAILING.sub(r"\1\\_", p)
                           for k, p in enumerate(parts))


def setup(app):
    app.connect("autodoc-process-docstring", _escape_trailing_underscores, priority=900)
