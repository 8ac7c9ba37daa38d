"""The benchmark script keeps working: its built-in stand-ins for torchvision's models are
the same networks, and a short run writes a table with a row per method (no timing is
checked: the benchmark reports, the tests check correctness)."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
import torch
import torchvision

import attrkit
from attrkit.engine.override import RuleOverride
from attrkit.engine.rule import RuleSet
from attrkit.engine.rules.relu import DECONVOLUTION
from benchmarks import _models, catalogue, run
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
    # By default, both sections.
    assert "### Layer, neuron and perturbation methods" in done.stdout


# ----------------------------------------------- layer, neuron and perturbation methods

#: The methods of the section's families that cannot be built from (model, layer) with
#: generic options: LimeBase's interpretable model and transforms are the caller's, and
#: DataLoaderAttribution attributes a DataLoader.
NOT_BUILDABLE = {"lime_base", "data_loader_attribution"}
#: Captum 0.9.0's LayerFeaturePermutation fails on any target (docs/captum_deviations.rst).
CAPTUM_RAISES = {"layer_feature_permutation": "Output must be 2D|Cannot choose target column"}


def test_every_method_of_the_families_is_timed_once():
    """Each registered method of the path, activation, gradient and perturbation families
    is in exactly one section, but for the two that need the caller's objects; the main
    tables keep the perturbation family (exponential on a large model) out."""
    main = set(run._methods(None))
    layered = set(catalogue.methods(main))
    families = {
        name
        for name in attrkit.available_methods()
        if attrkit.method_info(name).family in catalogue.FAMILIES
    }
    assert not main & layered
    assert families - main - layered == NOT_BUILDABLE
    assert layered <= families
    assert all(attrkit.method_info(name).family != "perturbation" for name in main)
    assert catalogue.methods(main, ["occlusion", "saliency"]) == ["occlusion"]


def _catalogue_cases(model_name: str) -> list:
    spec, model = _models.build(model_name)
    x = torch.randn(2, *spec.input_shape, generator=torch.Generator().manual_seed(0))
    target = 1 if spec.int_target else torch.tensor([0, 3])
    names = catalogue.methods(run._methods(None))
    found, skipped = catalogue.cases(spec, model, x, target, names, n_steps=3)
    assert not skipped  # batch 2: every method runs
    assert [case.name for case in found] == names
    return found


@pytest.mark.usefixtures("one_intra_op_thread")
@pytest.mark.parametrize("model_name", ["tiny-mlp", "small-cnn"])
def test_catalogue_cases_compute_captums_attributions(model_name):
    """attrkit's call and Captum's compute the same attributions (from the same random
    state), so that the section times like against like; where Captum raises, it raises
    its own error."""
    for case in _catalogue_cases(model_name):
        torch.manual_seed(5)
        ours = case.ours()
        torch.manual_seed(5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Captum's per-call warnings
            if case.name in CAPTUM_RAISES:
                with pytest.raises(AssertionError, match=CAPTUM_RAISES[case.name]):
                    case.theirs()
                continue
            theirs = case.theirs()
        torch.testing.assert_close(ours, theirs, msg=lambda m, n=case.name: f"{n}: {m}")


@pytest.mark.parametrize("model_name", ["tiny-mlp", "small-cnn"])
def test_catalogue_options_are_small(model_name):
    """Masks of GROUPS features (input or layer), every path and sampling method at the
    fixed small numbers, the layer and neuron the model names."""
    spec, model = _models.build(model_name)
    x = torch.randn(2, *spec.input_shape)
    for name in catalogue.methods(run._methods(None)):
        init_kwargs, kwargs = catalogue.options(name, spec, model, x, n_steps=3)
        if "layer" in init_kwargs:
            assert init_kwargs["layer"] is model.get_submodule(spec.layer)
        for key in ("feature_mask", "layer_mask"):
            if key in kwargs:
                assert kwargs[key].unique().tolist() == list(range(catalogue.GROUPS)), name
        if "sliding_window_shapes" in kwargs:  # GROUPS windows or fewer
            windows = math.prod(
                (size - window) // stride + 1
                for size, window, stride in zip(
                    x.shape[1:], kwargs["sliding_window_shapes"], kwargs["strides"], strict=True
                )
            )
            assert 1 < windows <= catalogue.GROUPS, name
        assert kwargs.get("n_steps", 3) == 3
        assert kwargs.get("n_samples", catalogue.SAMPLES) == catalogue.SAMPLES
        assert kwargs.get("neuron_selector", spec.neuron) == spec.neuron


@pytest.mark.slow
def test_catalogue_section_runs_alone(tmp_path):
    """``--sections catalogue``: a row per method and small model (memory measured in the
    worker processes, which get the section), the methods that need a larger batch
    named, nothing of the main tables."""
    output = tmp_path / "table.rst"
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sections", "catalogue"]
    command += ["--batch-sizes", "2", "--repeats", "1", "--min-time", "0", "--warmup", "0"]
    command += ["--memory-repeats", "1", "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "### Layer, neuron and perturbation methods" in done.stdout
    assert "Deconvolution and Guided Backpropagation" not in done.stdout
    assert "resnet18" not in done.stdout
    names = catalogue.methods(run._methods(None))
    assert len(names) >= 15
    for name in names:
        display = attrkit.method_info(name).display_name
        assert f"| small-cnn | 2 | {display} |" in done.stdout
        if "permutation" not in name:
            assert f"| tiny-mlp | 1 | {display} |" in done.stdout
    assert "Feature Permutation on tiny-mlp at batch 1 (needs a batch of at least 2)" in (
        done.stdout
    )
    assert (
        "| small-cnn | 2 | Layer Feature Permutation | layer 6, layer_mask: 4 features | raises"
        in (done.stdout)
    )
    # The small CNN's calls peak above 1 MiB at some method: memory came back from the worker.
    rows = [r for r in done.stdout.splitlines() if r.startswith("| small-cnn | 2 |")]
    assert any(not r.rstrip(" |").endswith("—") for r in rows)
    assert ".. list-table::" in output.read_text()
