"""``attrkit audit``: the table as a user runs it (in a subprocess), JSON that follows the
schema and Markdown (in this process). Its model and input errors: tests/cli/test_compare.py."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from tests.helpers import run_cli
from tests.report_schemas import AUDIT_SCHEMA

AGREE = ["--model", "tests.cli_models:relu_modules", "--input-shape", "2,3,12,12"]
DIFFER = ["--model", "tests.cli_models:functional_relu", "--input-shape", "2,3,6,6"]


def test_audit_table():
    result = run_cli("audit", *DIFFER)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        "Captum misses 1 functional ReLU in (root); zennit misses 1 functional ReLU in (root)."
    )


def test_audit_json_and_markdown(cli):
    status, out, err = cli("audit", *DIFFER, "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    jsonschema.validate(data, AUDIT_SCHEMA)
    functional = data["relus"][-1]
    assert functional["form"] == "functional"
    assert Path(functional["file"]).name == "models.py"
    status, out, err = cli("audit", *AGREE, "--format", "markdown")
    assert status == 0, err
    assert out.startswith("## attrkit.audit of `SmallCNN`")
