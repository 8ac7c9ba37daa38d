"""Run Captum's own unit tests against attrkit: every ``captum.attr`` class that attrkit
registers (under the same class name) is replaced by attrkit's before the tests import it.

Usage::

    python scripts/run_captum_suite.py CAPTUM_CHECKOUT [--json OUT.json] [--rst OUT.rst]

``CAPTUM_CHECKOUT`` is a checkout (or an extracted archive) of the pytorch/captum
repository; its ``tests/attr`` are run where they are, never copied. The tests run twice,
in two pytest processes: once with attrkit's classes in place of Captum's, and once against
the installed Captum (the baseline: what Captum itself passes). A test counts for
attrkit when, in the second run, it constructed at least one attrkit class; the table
gives, per test module, how many of those tests pass against Captum itself and against
attrkit, and every failure with its documented deviation (:data:`DEVIATIONS`) or, if it
has none, ``UNDOCUMENTED``. (The attrkit run comes first; the baseline runs only the tests
it selected.)

How the classes are replaced: a pytest plugin (this file, loaded with ``-p``) sets
``captum.attr.<Name>`` and the ``<Name>`` of the Captum module that defines the class to
attrkit's class before any test module is collected, so ``from captum.attr import X`` and
``from captum.attr._core.x import X`` in the tests (and the class lists of
``captum.testing``'s test configurations) give attrkit's class. Captum's own modules keep
the classes they imported (Captum's implementation of a class attrkit does not provide
still uses Captum's). The LLM-wrapper tests are left out (out of scope).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Environment variables through which the driver configures the plugin.
MODE_VARIABLE = "ATTRKIT_CAPTUM_SUITE_MODE"  # "captum" or "attrkit"
OUT_VARIABLE = "ATTRKIT_CAPTUM_SUITE_OUT"

#: Test modules (relative to ``tests/attr``) that are never run: Captum's LLM wrappers
#: (out of attrkit's scope) and the tests of several GPUs.
EXCLUDED = ("test_llm_attr.py", "test_llm_attr_hf_compatibility.py", "test_data_parallel.py")

#: Why a Captum test fails against attrkit: a regular expression matched against the test
#: id (``module::Class::test``) -> the deviation (see docs/captum_deviations.rst).
DEVIATIONS: dict[str, str] = {
    r"test_lrp\.py::Test::test_lrp_repeated_module$|test_deeplift_basic\.py::Test::"
    r"test_reusable_modules$": (
        "a module applied twice: Captum raises a RuntimeError (its hooks keep one input "
        "per module), attrkit applies the rule at each application, with its own input"
    ),
    r"test_lrp\.py::Test::test_lrp_multi_inputs$": (
        "LRP through a sum of two inputs (x + 3x): Captum gives each summand the whole "
        "relevance of the sum (relevance 192 from an output of 88, delta -104); attrkit "
        "divides it in proportion, 1:3, as LRP's rule for a sum does (relevance 96, "
        "delta -8: the biases' share)"
    ),
    r"test_lrp\.py::Test::test_lrp_simple2_attributions$": (
        "a model whose output keeps only the first example (batch 1 for 2 examples): "
        "attrkit refuses an output whose dimension 0 is not the batch, with a ValueError "
        "that says so; Captum attributes the rows it gets"
    ),
    r"test_lrp_creator_activation$": (
        "a sigmoid module added to a model whose forward pass never calls it: Captum "
        "refuses any module without an LRP rule (a TypeError), used or not; attrkit "
        "looks at the operations the forward pass applies (here it asks for the missing "
        "`target` of a model with 4 outputs per example; with one, it attributes)"
    ),
    r"test_internal_influence\.py::Test::test_(simple|multiple)_with_baseline_internal_inf$": (
        "the trapezoid rule: attrkit's weights sum to one, Captum's to (n_steps - 1) / "
        "n_steps; the test expects 0.8 where the integral is 0.811 (Gauss-Legendre, 500 "
        "steps: 0.8111), and Captum's result, 0.2 % short (0.8090), falls within its "
        "tolerance of 0.01, attrkit's (0.8106) does not"
    ),
    r"test_guided_grad_cam\.py::Test::test_improper_method_multi_input_conv$": (
        "an interpolate_mode that torch.nn.functional.interpolate does not know: attrkit "
        "raises a ValueError that names it, Captum warns and returns empty tensors"
    ),
}

REPOSITORY = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- plugin
_used: set[str] = set()
_used_lock = threading.Lock()
_results: dict[str, dict[str, Any]] = {}


def _replacements() -> dict[str, type]:
    """Captum class name -> attrkit's class, for every registered method with one."""
    import attrkit

    classes = {}
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        if info.captum_name is not None:
            classes[info.captum_name] = info.cls
    return classes


def _record_construction(cls: type, name: str) -> None:
    """Make every construction of ``cls`` (or a subclass) add ``name`` to :data:`_used`."""
    original = cls.__init__

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        with _used_lock:
            _used.add(name)
        original(self, *args, **kwargs)

    recording_init.__wrapped__ = original  # type: ignore[attr-defined]
    cls.__init__ = recording_init  # type: ignore[misc]


def _install(mode: str) -> None:
    """Replace Captum's classes by attrkit's (mode ``attrkit``) and record constructions
    (both modes)."""
    import captum.attr

    replacements = _replacements()
    for name, ours in replacements.items():
        theirs = getattr(captum.attr, name)
        if mode == "attrkit":
            setattr(captum.attr, name, ours)
            setattr(sys.modules[theirs.__module__], name, ours)
            for module_name, module in list(sys.modules.items()):
                testing = module_name.startswith("captum.testing")
                if testing and getattr(module, name, None) is theirs:
                    setattr(module, name, ours)
            _record_construction(ours, name)
        else:
            _record_construction(theirs, name)


def pytest_configure(config: Any) -> None:
    mode = os.environ.get(MODE_VARIABLE)
    if mode in ("captum", "attrkit"):
        _install(mode)


def pytest_runtest_setup(item: Any) -> None:
    with _used_lock:
        _used.clear()


def pytest_runtest_teardown(item: Any) -> None:
    with _used_lock:
        item.user_properties.append(("attrkit_used", sorted(_used)))


def pytest_runtest_logreport(report: Any) -> None:
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "used": [], "error": ""})
    if report.when == "call" or report.outcome != "passed":
        if report.outcome != "passed" or entry["outcome"] == "passed":
            entry["outcome"] = report.outcome
        if report.failed and not entry["error"]:
            entry["error"] = _error_line(report)
    for name, value in report.user_properties:
        if name == "attrkit_used":
            entry["used"] = value


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _results[report.nodeid] = {
            "outcome": "collection error",
            "used": [],
            "error": _error_line(report),
        }


def _error_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def pytest_sessionfinish(session: Any) -> None:
    out = os.environ.get(OUT_VARIABLE)
    if out:
        Path(out).write_text(json.dumps(_results, indent=1))


# --------------------------------------------------------------------------- driver
def _test_modules(checkout: Path) -> list[Path]:
    """The test modules of ``tests/attr`` that name a class attrkit provides or use
    Captum's generated test configurations."""
    names = set(_replacements())
    pattern = re.compile(r"\b(" + "|".join(sorted(names)) + r"|test_config)\b")
    root = checkout / "tests" / "attr"
    if not root.is_dir():
        raise SystemExit(f"{checkout} has no tests/attr folder (is it a Captum checkout?)")
    return [
        path
        for path in sorted(root.rglob("test_*.py"))
        if path.name not in EXCLUDED and pattern.search(path.read_text())
    ]


def _run(mode: str, checkout: Path, modules: list[str], timeout: float) -> dict[str, Any]:
    """Run pytest on ``modules`` (paths or test ids) in ``mode``; the plugin's results by
    test id."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "results.json"
        ini = Path(folder) / "pytest.ini"
        ini.write_text("[pytest]\n")
        environment = {
            **os.environ,
            MODE_VARIABLE: mode,
            OUT_VARIABLE: str(out),
            "PYTHONPATH": os.pathsep.join(
                [str(REPOSITORY / "scripts"), str(REPOSITORY), os.environ.get("PYTHONPATH", "")]
            ),
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "run_captum_suite",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ini),
            "--rootdir",
            str(checkout),
            "--import-mode=importlib",
            "--continue-on-collection-errors",
            "-W",
            "ignore",
            *(str(m) for m in modules),
        ]
        subprocess.run(
            command,
            cwd=folder,
            env=environment,
            timeout=timeout,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        if not out.exists():
            raise SystemExit(f"the {mode} run wrote no results (pytest crashed?)")
        results: dict[str, Any] = json.loads(out.read_text())
        return results


def _module(test_id: str) -> str:
    path = test_id.split("::")[0]
    return path.split("tests/attr/", 1)[-1]


def deviation(test_id: str) -> str:
    """The documented reason why ``test_id`` fails against attrkit, or ``""``."""
    short = test_id.split("tests/attr/", 1)[-1]
    for pattern, reason in DEVIATIONS.items():
        if re.search(pattern, short):
            return reason
    return ""


def summarize(captum: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """The table: per module, the tests that use an attrkit class, how many pass against
    Captum and against attrkit, and the failures with their deviations."""
    selected = {
        test_id: entry
        for test_id, entry in ours.items()
        if entry["used"] or entry["outcome"] == "collection error"
    }
    rows: dict[str, Counter[str]] = {}
    failures = []
    for test_id, entry in sorted(selected.items()):
        counts = rows.setdefault(_module(test_id), Counter())
        counts["tests"] += 1
        baseline = captum.get(test_id, {}).get("outcome", "not run")
        counts["captum passed"] += baseline == "passed"
        if entry["outcome"] == "passed":
            counts["attrkit passed"] += 1
        elif entry["outcome"] == "skipped":
            counts["skipped"] += 1
        else:
            counts["attrkit failed"] += 1
            failures.append(
                {
                    "test": test_id.split("tests/attr/", 1)[-1],
                    "captum": baseline,
                    "error": entry["error"],
                    "deviation": deviation(test_id)
                    or ("fails on Captum too" if baseline != "passed" else "UNDOCUMENTED"),
                }
            )
    total: Counter[str] = Counter()
    for counts in rows.values():
        total.update(counts)
    return {
        "classes": sorted(_replacements()),
        "modules": {module: dict(counts) for module, counts in sorted(rows.items())},
        "total": dict(total),
        "failures": failures,
    }


COLUMNS = ("tests", "captum passed", "attrkit passed", "attrkit failed", "skipped")


def table_rows(summary: dict[str, Any]) -> Iterator[list[str]]:
    for module, counts in [*summary["modules"].items(), ("total", summary["total"])]:
        yield [module, *(str(counts.get(c, 0)) for c in COLUMNS)]


def text_table(summary: dict[str, Any]) -> str:
    rows = [["test module", *COLUMNS], *table_rows(summary)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [f"- {f['test']}: {f['deviation']}\n    ({f['error']})" for f in summary["failures"]]
    return "\n".join([*lines, "", "failures:" if failures else "no failures", *failures])


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPOSITORY))  # this repository's attrkit, not an installed one
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of pytorch/captum")
    parser.add_argument("--json", type=Path, help="write the summary as JSON here")
    parser.add_argument("--commit", default="", help="the checkout's commit, for the record")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("-k", dest="only", default="", help="only modules whose path has this")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    modules = [str(m) for m in _test_modules(checkout) if args.only in str(m)]
    ours = _run("attrkit", checkout, modules, args.timeout)
    # The baseline: the same tests (those that used an attrkit class) against Captum.
    selected = [
        str(checkout / test_id) if not Path(test_id).is_absolute() else test_id
        for test_id, entry in ours.items()
        if entry["used"]
    ]
    captum = _run("captum", checkout, selected, args.timeout) if selected else {}
    summary = summarize(captum, ours)
    commit = args.commit or _commit(checkout)
    import captum as captum_package

    summary["captum"] = {"version": captum_package.__version__, "tests_commit": commit}
    print(text_table(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if any(f["deviation"] == "UNDOCUMENTED" for f in summary["failures"]) else 0


def _commit(checkout: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


if __name__ == "__main__":
    sys.exit(main())
