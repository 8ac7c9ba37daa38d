"""Content generated while the documentation builds, so that it cannot go stale.

When the builder starts, this extension writes into ``docs/_generated/`` (not committed):

- the output and figure of ``attrkit demo`` (run in this process, from the shipped model);
- two concept figures from the built-in model (the three backward rules; attrkit next to
  Captum);
- the output and figure of ``attrkit evaluate`` on the built-in model;
- the output of every script in ``docs/examples/`` (each is run; a failing script fails the
  build);
- ``cli_commands.rst``: the ``--help`` of every ``attrkit`` command, from the parsers;
- ``methods.rst``: a table of the registered methods.

It makes every fact of ``attrkit_numbers`` (counts from the registry and the tests, the
demo model's record, the benchmark's figures) an rST substitution such as ``|n_methods|``,
so that no page types a number that can go stale.

It warns (an error under ``-W``) when

- a name in ``attrkit.__all__``, the class of a registered method or a registered backward
  rule is missing from ``api.rst``;
- a number in ``README.md`` disagrees with its source, or is typed by hand
  (``attrkit_numbers.check_readme``), or the README or a page names a file of the
  repository that does not exist;
- a built page loads a script or stylesheet from another site, or has math but no local
  MathJax: the pages must render offline.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import runpy
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrkit_numbers import FACT_FUNCTIONS, Facts, check_readme, compute_facts, missing_paths
from attrkit_offline import offline_problems
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]

HELP_WIDTH = "88"


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", add_substitutions)
    app.connect("builder-inited", generate)
    # after the other build-finished handlers (sphinx-mathjax-offline copies MathJax there)
    app.connect("build-finished", check_offline, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


_FACTS = Facts(ROOT)


def add_substitutions(app: Sphinx, config: Config) -> None:
    """Every fact as a substitution: ``|demo_accuracy|`` -> ``98.0%``."""
    facts = compute_facts(_FACTS, list(FACT_FUNCTIONS))
    lines = [f".. |{name}| replace:: {value}" for name, value in facts.items()]
    config.rst_epilog = "\n".join([config.rst_epilog or "", *lines, ""])


def generate(app: Sphinx) -> None:
    source = Path(app.srcdir)
    out = source / "_generated"
    (out / "examples").mkdir(parents=True, exist_ok=True)
    steps = {
        "demo": lambda: _demo(out),
        "figures": lambda: _concept_figures(out),
        "evaluation": lambda: _evaluation(out),
        "examples": lambda: _examples(source / "examples", out / "examples"),
        "cli": lambda: _cli_reference(out / "cli_commands.rst"),
        "methods": lambda: _methods_table(out / "methods.rst"),
        "api check": lambda: _check_api_reference(source / "api.rst"),
        "README and paths check": lambda: _check_readme_and_paths(source),
    }
    timings = []
    for name, step in steps.items():
        start = time.perf_counter()
        step()
        timings.append(f"{name} {time.perf_counter() - start:.1f} s")
    logger.info(f"attrkit_docs: generated content ({', '.join(timings)})")


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _demo(out: Path) -> None:
    """``attrkit demo`` in ``out``: its figure, and what it prints (minus the timing)."""
    from attrkit.cli import main

    printed = io.StringIO()
    with _working_directory(out), contextlib.redirect_stdout(printed):
        status = main(["demo"])
    if status != 0:
        raise ExtensionError(f"attrkit demo exited with {status}")
    text = re.sub(r"\ndone in .*\n", "\n", printed.getvalue())
    (out / "demo_output.txt").write_text(text)


def _concept_figures(out: Path) -> None:
    """The three backward rules on held-out digits; attrkit next to Captum."""
    import captum.attr
    import torch

    import attrkit
    from attrkit.demo import load_demo_model, load_heldout_digits
    from attrkit.viz import attribution_grid, save_figure

    model = load_demo_model()
    images = load_heldout_digits().images[:4]
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    labels = [f"predicted {int(p)}" for p in predicted]
    rules = {
        "gradient": attrkit.Saliency(model).attribute(images, target=predicted, abs=False),
        "deconvolution": attrkit.Deconvolution(model).attribute(images, target=predicted),
        "guided backprop": attrkit.GuidedBackprop(model).attribute(images, target=predicted),
    }
    figure = attribution_grid(images, rules, row_labels=labels, sign="all", cell_size=1.6)
    save_figure(figure, out / "rules.png")

    ours = attrkit.GuidedBackprop(model).attribute(images, target=predicted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns on every call
        theirs = captum.attr.GuidedBackprop(model).attribute(images.clone(), target=predicted)
    columns = {"attrkit": ours, "Captum": theirs.detach(), "attrkit - Captum": ours - theirs}
    figure = attribution_grid(images, columns, row_labels=labels, sign="all", cell_size=1.6)
    save_figure(figure, out / "captum_vs_attrkit.png")


#: The ``attrkit evaluate`` run of docs/evaluation.rst (its figure: evaluation.png).
EVALUATION_ARGS = [
    "evaluate", "--digits", "30",
    "--methods", "saliency,deconvolution,guided_backprop,integrated_gradients,input_x_gradient",
    "--metrics", "model_randomization,deletion,insertion,completeness",
]  # fmt: skip


def _evaluation(out: Path) -> None:
    """``attrkit evaluate`` on the built-in model: what it prints, and its figure."""
    from attrkit.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([*EVALUATION_ARGS, "--figure", str(out / "evaluation.png")])
    if status != 0:
        raise ExtensionError(f"attrkit evaluate exited with {status}")
    (out / "evaluation_output.txt").write_text(printed.getvalue())


def _examples(folder: Path, out: Path) -> None:
    """Run every example script; write what it prints to ``out/<name>.txt``."""
    scripts = sorted(folder.glob("*.py"))
    if not scripts:
        raise ExtensionError(f"no example scripts in {folder}")
    for script in scripts:
        printed = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
                runpy.run_path(str(script), run_name="__main__")
        except BaseException as error:
            raise ExtensionError(f"docs example {script.name} failed: {error!r}") from error
        (out / f"{script.stem}.txt").write_text(printed.getvalue())


def _cli_reference(path: Path) -> None:
    """One section per command: its one-line help and its full ``--help``."""
    from attrkit.cli import COMMANDS, build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps help to the terminal width
    try:
        sections = [_section("attrkit", "", build_parser().format_help())]
        for name in sorted(COMMANDS):
            module = importlib.import_module(COMMANDS[name])
            subparsers = argparse.ArgumentParser(prog="attrkit").add_subparsers()
            module.add_parser(subparsers)
            help_text = subparsers.choices[name].format_help()
            sections.append(_section(f"attrkit {name}", getattr(module, "HELP", ""), help_text))
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    path.write_text("\n".join(sections))


def _section(title: str, summary: str, help_text: str) -> str:
    lines = [title, "-" * len(title), ""]
    if summary:
        lines += [summary[0].upper() + summary[1:] + ".", ""]
    lines += [".. code-block:: text", ""]
    lines += [f"   {line}".rstrip() for line in help_text.rstrip().splitlines()]
    return "\n".join(lines) + "\n"


def _methods_table(path: Path) -> None:
    """The registry as a table: name and aliases, display name, links to the papers."""
    import attrkit

    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 35 30 35", ""]
    lines += ["   * - name (aliases)", "     - method", "     - paper"]
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        aliases = f" ({', '.join(f'``{a}``' for a in info.aliases)})" if info.aliases else ""
        lines += [
            f"   * - ``{name}``{aliases}",
            f"     - {info.display_name}",
            f"     - {'; '.join(_paper_link(part) for part in info.paper.split(';'))}",
        ]
    path.write_text("\n".join(lines) + "\n")


def _paper_link(paper: str) -> str:
    """``"Zeiler & Fergus, Title, ECCV 2014, https://..."`` -> a link "Zeiler & Fergus 2014"."""
    url = re.search(r"https?://\S+", paper)
    year = re.search(r"\b(?:19|20)\d\d\b", paper)
    label = paper.split(",")[0].strip() + (f" {year.group()}" if year else "")
    return f"`{label} <{url.group()}>`__" if url else paper.strip()


def _check_api_reference(api: Path) -> None:
    """Every public name must be an entry of the API reference: an autosummary line
    (relative to ``.. currentmodule:: attrkit``) or a ``py:`` directive."""
    import attrkit

    text = api.read_text()
    entries = set(re.findall(r"^ {3}(?:attrkit\.)?([\w.]+)$", text, flags=re.M))
    entries |= set(re.findall(r"^\.\. py:\w+:: (\w+)$", text, flags=re.M))
    for name in attrkit.__all__:
        if not name.startswith("__") and name not in entries:
            logger.warning(f"api.rst does not document attrkit.{name} (it is in attrkit.__all__)")
    for name in attrkit.available_methods():
        cls = attrkit.method_info(name).cls
        path = f"{cls.__module__}.{cls.__qualname__}"
        written = {path.removeprefix("attrkit.")}
        if getattr(attrkit, cls.__name__, None) is cls:
            written.add(cls.__name__)
        if not written & entries:
            logger.warning(
                f"api.rst does not document {path}, the class of the registered method "
                f"{name!r} (list it as {min(written, key=len)})"
            )
    for rule in _registered_rules():
        module = sys.modules[type(rule).__module__]
        names = [f"{module.__name__}.{n}" for n, v in vars(module).items() if v is rule]
        if not {n.removeprefix("attrkit.") for n in names} & entries:
            where = names[0] if names else f"the module-level name of {rule!r}"
            logger.warning(f"api.rst does not document {where}, the registered rule {rule.name!r}")


def _registered_rules() -> list[Any]:
    from attrkit.engine.rule import RULES

    return list(RULES.values())


def _check_readme_and_paths(source: Path) -> None:
    """The README's numbers against their sources, and the repository paths that the README
    and the pages name (see ``attrkit_numbers``)."""
    documents = [ROOT / "README.md", *sorted(source.glob("*.rst"))]
    for problem in [*check_readme(_FACTS), *missing_paths(ROOT, documents)]:
        logger.warning(problem)


def check_offline(app: Sphinx, exception: Exception | None) -> None:
    """Warn when a built page would not work offline (see ``attrkit_offline``)."""
    if exception is None and app.builder.format == "html":
        for problem in offline_problems(Path(app.outdir)):
            logger.warning(problem)
