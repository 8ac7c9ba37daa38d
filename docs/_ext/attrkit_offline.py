"""The built pages must work offline: no script or stylesheet from another site (a CDN),
and MathJax shipped with the pages wherever they have math.

Imports no Sphinx, so the tests can check it on their own.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["offline_problems"]

_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)
_ASSETS = re.compile(
    r"<script\b[^>]*\bsrc=\"([^\"]+)\"|<link\b[^>]*\brel=\"stylesheet\"[^>]*\bhref=\"([^\"]+)\""
)


def offline_problems(out: Path) -> list[str]:
    """What keeps the HTML pages under ``out`` from working offline: a script or a
    stylesheet loaded from another site, a local one the build did not write, a page with
    math that loads no local MathJax."""
    problems = []
    for page in sorted(out.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        name = page.relative_to(out)
        mathjax = False
        for match in _ASSETS.finditer(html):
            url = match.group(1) or match.group(2)
            if _EXTERNAL.match(url):
                problems.append(
                    f"{name} loads {url} from another site: the pages must work offline"
                )
                continue
            mathjax |= "mathjax" in url.lower()
            if not (page.parent / url.split("?")[0].split("#")[0]).is_file():
                problems.append(f"{name} loads {url}, which the build did not write")
        if 'class="math' in html and not mathjax:
            problems.append(f"{name} has math but loads no local MathJax")
    return problems
