"""``attrkit compare`` and ``attrkit audit``, run as a user runs them: in a subprocess, from
the repository root, with the model factories of tests/cli_models.py. The error tables run
in this process through ``attrkit.cli.main`` (a few rows also in a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch

from attrkit.cli import main
from tests import cli_models
from tests.helpers import ROOT, assert_one_line_error, run_cli
from tests.report_schemas import AUDIT_SCHEMA, COMPARE_SCHEMA

AGREE = ["--model", "tests.cli_models:relu_modules", "--input-shape", "2,3,12,12"]
DIFFER = ["--model", "tests.cli_models:functional_relu", "--input-shape", "2,3,6,6"]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``attrkit ARGS`` run in this process from the repository root (as the subprocess
    runs): returns (exit status, stdout, stderr)."""
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


# -------------------------------------------------------------------------- compare
def test_compare_agreeing_libraries_exit_0():
    result = run_cli("compare", *AGREE, "--method", "guided_backprop", "--target", "1",
                     "--fail-on-difference")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("attrkit.compare: guided_backprop (Guided Backpropagation)")
    pairs = [line for line in lines if line.startswith(("attrkit / ", "captum / "))]
    assert len(pairs) == 3
    assert all(line.endswith("agree") for line in pairs)


def test_compare_disagreement_exit_1_with_fail_on_difference():
    result = run_cli("compare", *DIFFER, "--target", "1", "--fail-on-difference")
    assert result.returncode == 1, result.stderr
    assert "attrkit / captum differ: Captum misses 1 functional ReLU in (root)" in result.stdout
    assert run_cli("compare", *DIFFER, "--target", "1").returncode == 0


def test_compare_json_follows_the_schema():
    result = run_cli("compare", *DIFFER, "--target", "predicted", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema.validate(data, COMPARE_SCHEMA)
    assert data["method"] == "deconvolution"
    assert data["target"].startswith("tensor([")  # the predicted classes
    assert data["agree"] is False
    assert data["audit"]["counts"]["captum"] == {"ok": 5, "missed": 1, "wrong": 0, "crash": 0}


def test_compare_markdown_libraries_and_options():
    result = run_cli("compare", *AGREE, "--target", "0,1", "--libraries", "zennit",
                     "--method", "integrated_gradients", "--option", "method=riemann_right",
                     "--option", "n_steps=6", "--format", "markdown")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## attrkit.compare: integrated_gradients")
    assert "| attrkit / zennit | 0 |" in result.stdout
    assert "captum" not in result.stdout


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_compare_input_file_and_weights(tmp_path, suffix):
    x = torch.randn(2, 3, 12, 12)
    path = tmp_path / f"x{suffix}"
    if suffix == ".pt":
        torch.save(x, path)
    else:
        np.save(path, x.numpy())
    weights = tmp_path / "weights.pt"
    torch.save(cli_models.relu_modules().state_dict(), weights)
    result = run_cli("compare", "--model", "tests.cli_models:relu_modules", "--weights",
                     str(weights), "--input", str(path), "--target", "2", "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["input_shapes"] == [[2, 3, 12, 12]]


# ---------------------------------------------------------------------------- audit
def test_audit_table_and_json():
    table = run_cli("audit", *DIFFER)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1] == (
        "Captum misses 1 functional ReLU in (root); zennit misses 1 functional ReLU in (root)."
    )
    as_json = run_cli("audit", *DIFFER, "--format", "json")
    data = json.loads(as_json.stdout)
    jsonschema.validate(data, AUDIT_SCHEMA)
    functional = data["relus"][-1]
    assert functional["form"] == "functional"
    assert Path(functional["file"]).name == "models.py"
    markdown = run_cli("audit", *AGREE, "--format", "markdown")
    assert markdown.stdout.startswith("## attrkit.audit of `SmallCNN`")


def test_help_lists_the_commands_and_exit_codes():
    result = run_cli("--help")
    assert "compare" in result.stdout
    assert "audit" in result.stdout
    help_text = run_cli("compare", "--help").stdout
    assert "1  with --fail-on-difference: a pair of libraries disagrees" in help_text


# ---------------------------------------------------------------------- error paths
MODEL_AND_INPUT_ERRORS = [
        pytest.param(["--model", "tests.cli_models", "--input-shape", "2,5"],
                     "must look like package.module:factory", id="spec-without-colon"),
        pytest.param(["--model", "no_such_module:f", "--input-shape", "2,5"],
                     "cannot import 'no_such_module'", id="module-not-found"),
        pytest.param(["--model", "tests.cli_models:missing", "--input-shape", "2,5"],
                     "has no attribute 'missing'", id="attribute-missing"),
        pytest.param(["--model", "tests.cli_models:NOT_CALLABLE", "--input-shape", "2,5"],
                     "'NOT_CALLABLE' is not callable", id="not-callable"),
        pytest.param(["--model", "tests.cli_models:raises", "--input-shape", "2,5"],
                     "the factory raised RuntimeError: cannot build the model", id="factory-raises"),
        pytest.param(["--model", "tests.cli_models:not_a_module", "--input-shape", "2,5"],
                     "returned int, not a torch.nn.Module", id="not-a-module"),
        pytest.param(["--model", "tests.cli_models:relu_modules", "--input", "missing.pt"],
                     "--input 'missing.pt': no such file", id="missing-input"),
        pytest.param(["--model", "tests.cli_models:relu_modules", "--weights", "missing.pt",
                      "--input-shape", "2,3,12,12"],
                     "--weights 'missing.pt': no such file", id="missing-weights"),
        pytest.param(["--model", "tests.cli_models:relu_modules", "--input-shape", "2,x"],
                     "--input-shape '2,x' must be comma-separated integers", id="bad-shape"),
        pytest.param(["--model", "tests.cli_models:relu_modules", "--input-shape", "2,3,11"],
                     "RuntimeError: ", id="shape-mismatch"),
]  # fmt: skip
# Both commands read the model and inputs with the same code (add_model_arguments and
# load_model_and_inputs); audit runs the errors that reach its own code.
AUDIT_ERRORS = ("spec-without-colon", "not-a-module", "missing-input", "shape-mismatch")


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [pytest.param("compare", *p.values, id=f"compare-{p.id}") for p in MODEL_AND_INPUT_ERRORS]
    + [
        pytest.param("audit", *p.values, id=f"audit-{p.id}")
        for p in MODEL_AND_INPUT_ERRORS
        if p.id in AUDIT_ERRORS
    ],
)
def test_model_and_input_errors(cli, command, args, message):
    extra = ["--target", "1"] if command == "compare" else []
    assert_one_line_error(*cli(command, *args, *extra), command, message)


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        pytest.param("compare", *p.values, id=f"compare-{p.id}")
        for p in MODEL_AND_INPUT_ERRORS
        if p.id in ("spec-without-colon", "missing-input")
    ]
    + [
        pytest.param("audit", *p.values, id=f"audit-{p.id}")
        for p in MODEL_AND_INPUT_ERRORS
        if p.id == "shape-mismatch"
    ],
)
def test_model_and_input_errors_in_a_subprocess(command, args, message):
    extra = ["--target", "1"] if command == "compare" else []
    result = run_cli(command, *args, *extra)
    assert_one_line_error(result.returncode, result.stdout, result.stderr, command, message)


def test_bad_weights_and_input_files(cli, tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save({"nonsense": torch.zeros(1)}, weights)
    result = cli("compare", *AGREE, "--weights", str(weights), "--target", "1")
    assert_one_line_error(*result, "compare", "RuntimeError: Error(s) in loading state_dict")
    text = tmp_path / "x.txt"
    text.write_text("1 2 3")
    result = cli("audit", "--model", "tests.cli_models:relu_modules", "--input", str(text))
    assert_one_line_error(*result, "audit", "unknown file type .txt")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--method", "gradcam++"], "--method: no attribution method named",
                     id="unknown-method"),
        pytest.param(["--libraries", "captum,lrp"], "--libraries: unknown 'lrp'",
                     id="unknown-library"),
        pytest.param(["--target", "one"], "--target 'one' must be 'predicted'", id="bad-target"),
        pytest.param(["--target", "7"], "IndexError: `target` 7: index 7 is out of range",
                     id="target-out-of-range"),
        pytest.param(["--target", "1", "--option", "n_steps"], "--option 'n_steps' must look "
                     "like KEY=VALUE", id="bad-option"),
        pytest.param(["--target", "1", "--option", "n_steps=4"],
                     "TypeError: deconvolution does not take 'n_steps'", id="unknown-option"),
        pytest.param(["--target", "1", "--top-k", "2"],
                     "ValueError: `top_k` must be a fraction in (0, 1]", id="bad-top-k"),
        pytest.param(["--target", "1", "--rtol", "-1"],
                     "--rtol: `tolerances.rtol` must be a number >= 0", id="bad-rtol"),
    ],
)  # fmt: skip
def test_compare_option_errors(cli, args, message):
    assert_one_line_error(*cli("compare", *AGREE, *args), "compare", message)


def test_predicted_target_needs_class_scores(cli):
    result = cli("compare", "--model", "tests.cli_models:scalar_output", "--input-shape",
                 "2,5", "--target", "predicted")  # fmt: skip
    assert_one_line_error(*result, "compare", "--target predicted needs a model that returns N")


@pytest.mark.parametrize("command", ["compare", "audit"])
def test_usage_errors_exit_2(command):
    result = run_cli(command, "--input-shape", "2,5")
    assert result.returncode == 2
    assert "the following arguments are required: --model" in result.stderr
