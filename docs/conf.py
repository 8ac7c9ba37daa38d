"""Sphinx configuration for attrkit's documentation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import attrkit
from attrkit.demo import load_demo_metadata

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

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
    "attrkit_docs",  # docs/_ext: figures, example output and CLI help, made at build time
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
# is written by the benchmarks and included by performance.rst.
exclude_patterns = ["_build", "_generated", "performance_table.rst"]

_demo = load_demo_metadata()
rst_epilog = f"""
.. |demo_accuracy| replace:: {_demo["test_accuracy"]:.1%}
.. |demo_test_size| replace:: {_demo["n_test"]}
.. |demo_train_size| replace:: {_demo["n_train"]}
"""
