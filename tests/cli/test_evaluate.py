"""``attrkit evaluate``: the issue's done-when command as a user runs it (a subprocess, no
other argument), the defaults on the built-in model, a user's model, the figure, and the
usage errors as one line on stderr."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_one_line_error, png_size, run_cli

DONE_WHEN = ["evaluate", "--methods", "saliency,guided_backprop,integrated_gradients",
             "--metrics", "model_randomization,deletion", "--format", "json"]  # fmt: skip


@pytest.mark.slow
def test_done_when_command_shows_the_papers_finding():
    result = run_cli(*DONE_WHEN)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "DigitsCNN"
    assert data["input_shapes"] == [[100, 1, 8, 8]]
    assert data["methods"] == ["saliency", "guided_backprop", "integrated_gradients", "random"]
    cascades = {r["method"]: r["cascade"] for r in data["results"]
                if r["metric"] == "model_randomization"}  # fmt: skip
    assert [step["layer"] for step in cascades["saliency"]] == ["fc2", "fc1", "conv2", "conv1"]
    fully = {method: steps[-1]["spearman_abs"] for method, steps in cascades.items()}
    # Saliency depends on the weights, Guided Backprop much less, IG keeps the digit's shape
    assert fully["saliency"] < 0.2 < fully["guided_backprop"] - fully["saliency"]
    assert fully["integrated_gradients"] > 0.85
    deletion = {r["method"]: r["auc"] for r in data["results"] if r["metric"] == "deletion"}
    assert deletion["integrated_gradients"] < deletion["saliency"] < deletion["random"]


def test_table_and_markdown_on_a_few_digits(cli):
    status, out, err = cli("evaluate", "--digits", "4", "--methods", "deconvolution",
                           "--metrics", "model_randomization,completeness")  # fmt: skip
    assert status == 0, err
    assert out.startswith("attrkit.evaluate: DigitsCNN; inputs (4, 1, 8, 8); target one per input")
    assert "Deconvolution" in out
    assert "random (reference)" in out
    status, out, err = cli("evaluate", "--digits", "4", "--methods", "saliency",
                           "--metrics", "deletion", "--format", "markdown")  # fmt: skip
    assert status == 0, err
    assert out.startswith("## attrkit.evaluate")
    assert "| Saliency |" in out


def test_layer_and_neuron_methods_get_the_demo_arguments(cli):
    status, out, err = cli("evaluate", "--digits", "3", "--format", "json",
                           "--methods", "layer_grad_cam,neuron_guided_backprop",
                           "--metrics", "deletion")  # fmt: skip
    assert status == 0, err
    assert {r["status"] for r in json.loads(out)["results"]} == {"ok"}


def test_figure_is_saved(cli, tmp_path):
    path = tmp_path / "evaluation.png"
    status, _, err = cli("evaluate", "--digits", "3", "--methods", "saliency",
                         "--metrics", "model_randomization,insertion", "--figure", str(path))  # fmt: skip
    assert status == 0, err
    width, height = png_size(path)
    assert width > 300
    assert height > 300


def test_a_users_model_with_options(cli):
    status, out, err = cli("evaluate", "--model", "tests.cli_models:relu_modules",
                           "--input-shape", "2,3,12,12", "--target", "1",
                           "--methods", "integrated_gradients", "--option", "n_steps=4",
                           "--metrics", "completeness,deletion", "--baseline", "mean",
                           "--step", "36", "--score", "logit", "--format", "json")  # fmt: skip
    assert status == 0, err
    data = json.loads(out)
    assert data["target"] == 1
    assert data["metrics"]["deletion"] == {"baseline": "mean", "step": 36, "score": "logit",
                                           "absolute": False}  # fmt: skip
    deletion = next(r for r in data["results"] if r["metric"] == "deletion")
    assert len(deletion["curve"]) == 3 * 12 * 12 // 36 + 1


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--metrics", "deletion,blur"], "--metrics: unknown 'blur'"),
        (["--methods", "salency"], "--methods: no attribution method named 'salency'"),
        (["--step", "0"], "--step '0': `step` must be an int > 0"),
        (["--baseline", "black"], "--baseline 'black' must be a number or 'mean'"),
        (["--digits", "0"], "--digits must be between 1 and"),
        (["--weights", "w.pt"], "--weights needs --model"),
        (["--model", "tests.cli_models:relu_modules"], "--model needs the inputs"),
        (["--libraries", "zennit"], "--libraries: unknown 'zennit'"),
        (["--option", "n_stepz=3"], "no evaluated method takes 'n_stepz'"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_usage_errors_are_one_line(cli, args, text):
    status, out, err = cli("evaluate", "--digits", "2", "--metrics", "deletion", *args)
    assert_one_line_error(status, out, err, "evaluate", text)
