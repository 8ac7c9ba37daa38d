"""``attrkit attribute-dataset``: what it writes equals what ``attrkit.attribute_dataset``
writes (as a user runs it, in a subprocess), resuming, and one-line errors (in this
process)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attrkit
from tests import dataset_fixtures as fixtures
from tests.helpers import assert_same_run, run_cli

FIXTURES = "tests.dataset_fixtures"


def base_args(out, method: str = "integrated_gradients") -> list[str]:
    return [
        "--model", f"{FIXTURES}:model", "--data", f"{FIXTURES}:dataset", "--method", method,
        "--target", "label", "--batch-size", "4", "--out", str(out), "--device", "cpu",
    ]  # fmt: skip


def test_cli_writes_what_the_function_writes(tmp_path):
    model = fixtures.model()
    with torch.no_grad():
        model.head[1].weight.mul_(-1.5)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    args = base_args(tmp_path / "cli")
    result = run_cli(
        "attribute-dataset",
        *args,
        "--weights",
        str(tmp_path / "weights.pt"),
        "--option",
        "n_steps=3",
    )
    assert result.returncode == 0, result.stderr
    assert "38 attributions by integrated_gradients, shape (38, 3, 8, 8)" in result.stdout
    assert "samples/s" in result.stderr
    expected = attrkit.attribute_dataset(
        "integrated_gradients",
        fixtures.dataset(),
        model=model,
        target="label",
        out=tmp_path / "function",
        batch_size=4,
        n_steps=3,
        progress=False,
    )
    assert_same_run(tmp_path / "cli", tmp_path / "function")
    np.testing.assert_array_equal(attrkit.load_attributions(tmp_path / "cli")[:], expected[:])


def test_cli_resume(cli, tmp_path):
    args = base_args(tmp_path / "out", "saliency")
    assert cli("attribute-dataset", *args, "--quiet")[0] == 0
    status, _, err = cli("attribute-dataset", *args, "--quiet")
    assert status == 2
    assert err.count("\n") == 1
    assert "already holds a complete run; pass resume=True" in err
    status, out, err = cli("attribute-dataset", *args, "--quiet", "--resume")
    assert status == 0, err
    assert out == ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            ("--target", "bogus"), "--target 'bogus' must be label, predicted", id="target"
        ),
        pytest.param(("--method", "nope"), "no attribution method named 'nope'", id="method"),
        pytest.param(("--data", f"{FIXTURES}:nope"), "has no attribute 'nope'", id="data"),
        pytest.param(("--option", "n_steps"), "must look like KEY=VALUE", id="option"),
    ],
)
def test_cli_errors_are_one_line(cli, tmp_path, change, message):
    args = base_args(tmp_path / "out")
    position = args.index(change[0]) if change[0] in args else len(args)
    args[position : position + 2] = change
    status, _, err = cli("attribute-dataset", *args)
    assert status == 2
    assert err.startswith("attrkit attribute-dataset: error: ")
    assert err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "out").exists()
