"""The record of Captum's own tests run against attrkit (``docs/captum_suite.json``, written
by ``scripts/run_captum_suite.py``) is current and every failure in it is documented; the
script's summary counts what it should."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import attrkit

ROOT = Path(__file__).resolve().parents[2]
RECORD = json.loads((ROOT / "docs" / "captum_suite.json").read_text())


def _script():
    spec = importlib.util.spec_from_file_location(
        "run_captum_suite", ROOT / "scripts" / "run_captum_suite.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_record_covers_every_class_attrkit_provides_under_a_captum_name():
    """A class added since the last run makes this fail: run the script again."""
    names = {attrkit.method_info(n).captum_name for n in attrkit.available_methods()}
    assert RECORD["classes"] == sorted(names - {None})


def test_every_failure_has_its_documented_reason():
    script = _script()
    for failure in RECORD["failures"]:
        assert failure["deviation"] != "UNDOCUMENTED", failure
        assert failure["deviation"] == script.deviation(failure["test"]), failure


def test_the_totals_add_up():
    total = {key: sum(m.get(key, 0) for m in RECORD["modules"].values()) for key in RECORD["total"]}
    assert total == RECORD["total"]
    assert RECORD["total"]["attrkit failed"] == len(RECORD["failures"])


def test_the_summary_selects_the_tests_that_used_attrkit_and_explains_failures():
    script = _script()
    ours = {
        "tests/attr/test_a.py::T::test_uses": {
            "outcome": "passed",
            "used": ["Saliency"],
            "error": "",
        },
        "tests/attr/test_a.py::T::test_other": {"outcome": "passed", "used": [], "error": ""},
        "tests/attr/test_a.py::T::test_broken": {
            "outcome": "failed",
            "used": ["Saliency"],
            "error": "E",
        },
        "tests/attr/test_b.py::T::test_both": {"outcome": "failed", "used": ["Lime"], "error": "F"},
    }
    captum = {
        "tests/attr/test_a.py::T::test_uses": {"outcome": "passed"},
        "tests/attr/test_a.py::T::test_broken": {"outcome": "passed"},
        "tests/attr/test_b.py::T::test_both": {"outcome": "failed"},
    }
    summary = script.summarize(captum, ours)
    assert summary["modules"]["test_a.py"] == {
        "tests": 2,
        "captum passed": 2,
        "attrkit passed": 1,
        "attrkit failed": 1,
    }
    assert summary["modules"]["test_b.py"]["captum passed"] == 0
    reasons = {f["test"]: f["deviation"] for f in summary["failures"]}
    assert reasons["test_a.py::T::test_broken"] == "UNDOCUMENTED"
    assert reasons["test_b.py::T::test_both"] == "fails on Captum too"
