"""Sphinx configuration for attrkit's documentation."""

from __future__ import annotations

import os

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
exclude_patterns = ["_build"]
