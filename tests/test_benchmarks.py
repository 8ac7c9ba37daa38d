"""The benchmark script keeps working: its built-in stand-ins for torchvision's models are
the same networks, and a short run writes a table with a row per method (no timing is
checked: the benchmark reports, the tests check correctness)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torchvision

import attrkit
from attrkit.engine.override import RuleOverride
from attrkit.engine.rule import RuleSet
from attrkit.engine.rules.relu import DECONVOLUTION
from benchmarks import _models, run
from tests.helpers import ROOT


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "densenet121"])
def test_builtin_models_are_torchvisions(name):
    """Same parameter shapes, in the same order, and the same ReLU count per forward."""
    ours = _models.build(name, use_torchvision=False)[1]
    theirs = getattr(torchvision.models, name)(weights=None).eval()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    x = torch.randn(2, 3, 64, 64)
    counts = []
    for model in (ours, theirs):
        override = RuleOverride(RuleSet([DECONVOLUTION]))
        with torch.no_grad(), override:
            assert model(x).shape == (2, 1000)
        counts.append(override.applications)
    assert counts[0] == counts[1] > 0


@pytest.mark.slow
def test_short_run_writes_a_table(tmp_path):
    """Markdown on stdout, reStructuredText into the file the docs include."""
    output = tmp_path / "table.rst"
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--models", "tiny-mlp"]
    command += ["--repeats", "1", "--min-time", "0", "--no-depth", "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    rst = output.read_text()
    for method in (name for name in run._methods(None) if name not in run.EXPENSIVE):
        name = attrkit.method_info(method).display_name
        assert f"| tiny-mlp | 1 | {name} |" in done.stdout
        assert f"     - {name}" in rst
    assert ".. list-table::" in rst
