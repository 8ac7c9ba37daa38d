"""``attrkit compare`` with the model factories of tests/cli_models.py, in this process
(``cli``), and once as a user runs it, in a subprocess: verdicts and exit codes, the
formats, input files and weights, one-line errors (also ``attrkit audit``'s, which reads
the model and inputs with the same code)."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import torch

from tests import cli_models
from tests.helpers import assert_one_line_error, run_cli
from tests.report_schemas import COMPARE_SCHEMA

AGREE = ["--model", "tests.cli_models:relu_modules", "--input-shape", "2,3,12,12"]
DIFFER = ["--model", "tests.cli_models:functional_relu", "--input-shape", "2,3,6,6"]


# -------------------------------------------------------------------------- compare
def test_compare_agreeing_libraries_exit_0(cli):
    status, out, err = cli("compare", *AGREE, "--method", "guided_backprop", "--target", "1",
                           "--fail-on-difference")  # fmt: skip
    assert status == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("attrkit.compare: guided_backprop (Guided Backpropagation)")
    pairs = [line for line in lines if line.startswith(("attrkit / ", "captum / "))]
    assert len(pairs) == 3
    assert all(line.endswith("agree") for line in pairs)


def test_compare_disagreement_exit_1_with_fail_on_difference(cli):
    """As a user runs it, in a subprocess: the exit status reaches the shell."""
    result = run_cli("compare", *DIFFER, "--target", "1", "--fail-on-difference")
    assert result.returncode == 1, result.stderr
    assert "attrkit / captum differ: Captum misses 1 functional ReLU in (root)" in result.stdout
    assert cli("compare", *DIFFER, "--target", "1")[0] == 0


def test_compare_json_follows_the_schema(cli):
    status, out, err = cli("compare", *DIFFER, "--target", "predicted", "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    jsonschema.validate(data, COMPARE_SCHEMA)
    assert data["method"] == "deconvolution"
    assert data["target"].startswith("tensor([")  # the predicted classes
    assert data["agree"] is False
    assert data["audit"]["counts"]["captum"] == {"ok": 5, "missed": 1, "wrong": 0, "crash": 0}


def test_compare_markdown_libraries_and_options(cli):
    status, out, err = cli("compare", *AGREE, "--target", "0,1", "--libraries", "zennit",
                           "--method", "integrated_gradients", "--option", "method=riemann_right",
                           "--option", "n_steps=6", "--format", "markdown")  # fmt: skip
    assert status == 0, err
    assert out.startswith("## attrkit.compare: integrated_gradients")
    assert "| attrkit / zennit | 0 |" in out
    assert "captum" not in out


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_compare_input_file_and_weights(cli, tmp_path, suffix):
    x = torch.randn(2, 3, 12, 12)
    path = tmp_path / f"x{suffix}"
    if suffix == ".pt":
        torch.save(x, path)
    else:
        np.save(path, x.numpy())
    weights = tmp_path / "weights.pt"
    torch.save(cli_models.relu_modules().state_dict(), weights)
    status, out, err = cli("compare", "--model", "tests.cli_models:relu_modules", "--weights",
                           str(weights), "--input", str(path), "--target", "2", "--format", "json")  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["input_shapes"] == [[2, 3, 12, 12]]


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
def test_usage_errors_exit_2(cli, command):
    status, _, err = cli(command, "--input-shape", "2,5")
    assert status == 2
    assert "the following arguments are required: --model" in err
