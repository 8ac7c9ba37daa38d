"""The built pages work offline: ``docs/_ext/attrkit_offline.py``, which the documentation
build runs on its output, on pages written for the test."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from attrkit_offline import offline_problems  # noqa: E402

MATH = '<span class="math notranslate nohighlight">\\(a\\)</span>'


def site(tmp_path, pages, files=()):
    for name, html in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(html)
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    return tmp_path


def test_local_mathjax_passes(tmp_path):
    out = site(
        tmp_path,
        {
            "index.html": '<link rel="stylesheet" href="_static/furo.css?v=1">',
            "api/page.html": f'<script defer="defer" src="../_static/mathjax/tex-chtml.js"></script>{MATH}',
        },
        files=["_static/furo.css", "_static/mathjax/tex-chtml.js"],
    )
    assert offline_problems(out) == []


def test_mathjax_from_a_cdn_is_reported(tmp_path):
    url = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
    out = site(tmp_path, {"page.html": f'<script async="async" src="{url}"></script>{MATH}'})
    assert offline_problems(out) == [
        f"page.html loads {url} from another site: the pages must work offline",
        "page.html has math but loads no local MathJax",
    ]


def test_protocol_relative_stylesheet_is_reported(tmp_path):
    out = site(tmp_path, {"page.html": '<link rel="stylesheet" href="//fonts.example/x.css">'})
    assert offline_problems(out) == [
        "page.html loads //fonts.example/x.css from another site: the pages must work offline"
    ]


def test_missing_local_script_is_reported(tmp_path):
    out = site(tmp_path, {"page.html": '<script src="_static/mathjax/tex-chtml.js"></script>'})
    assert offline_problems(out) == [
        "page.html loads _static/mathjax/tex-chtml.js, which the build did not write"
    ]


def test_links_to_other_sites_are_fine(tmp_path):
    out = site(tmp_path, {"page.html": '<a href="https://arxiv.org/abs/1311.2901">paper</a>'})
    assert offline_problems(out) == []
