"""Sphinx configuration for attrkit's documentation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The checkout's attrkit is documented (and its examples run), installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import attrkit

project = "attrkit"
author = "attrkit developers"
copyright = "2026, attrkit developers"
release = attrkit.__version__
version = attrkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    # MathJax from the sphinx-mathjax-offline package, copied into _static/mathjax: the
    # math renders without network access (attrkit_docs checks that no page loads a CDN).
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    # docs/_ext: figures, example output, CLI help and every number, made at build time
    "attrkit_docs",
]

autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# The build must work without network access (CI has none), so links into the Python and
# PyTorch docs are made only when ATTRKIT_DOCS_INTERSPHINX=1 says the inventories are
# reachable.
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
    }
    if os.environ.get("ATTRKIT_DOCS_INTERSPHINX") == "1"
    else {}
)

nitpicky = False
html_theme = "furo"
html_title = f"attrkit {release}"
html_static_path = ["_static"]
# _generated/ holds build-time output (see docs/_ext/attrkit_docs.py); performance_table.rst
# is written by the benchmarks, included by performance.rst.
exclude_patterns = ["_build", "_generated", "performance_table.rst"]

# The numbers the pages state (|n_methods|, |demo_accuracy|, ...) are substitutions that
# docs/_ext/attrkit_docs.py adds to rst_epilog from their sources.
