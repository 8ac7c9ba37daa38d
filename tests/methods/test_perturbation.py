"""The perturbation family: Captum's classes under attrkit's names, with attrkit's checks.

attrkit's classes subclass Captum's and add no computation, so their results are
Captum's (test_parity_captum.py runs them against Captum on the model cases); here: the
registry, the checks (typed errors that name the argument and are AssertionErrors too,
as Captum's asserts), and the places where attrkit's class runs where Captum's fails.
"""

from __future__ import annotations

import inspect
import warnings

import captum.attr
import pytest
import torch
from torch import nn

import attrkit

PERTURBATION = sorted(
    name
    for name in attrkit.available_methods()
    if attrkit.method_info(name).family == "perturbation"
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.fc(torch.flatten(self.relu(self.conv(x)), 1)) * scale


MODEL = Net().eval()
X = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(6))
MASK = (torch.arange(16).reshape(1, 1, 4, 4) // 4).long()


def _captum(name: str, *init, **kwargs):
    """Captum's result, with its warnings silenced and the same seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        return getattr(captum.attr, name)(MODEL, *init).attribute(X, **kwargs)


def test_the_family_is_every_perturbation_class_of_captum():
    names = {attrkit.method_info(name).captum_name for name in PERTURBATION}
    assert names == {
        "FeatureAblation",
        "FeaturePermutation",
        "Occlusion",
        "ShapleyValueSampling",
        "ShapleyValues",
        "Lime",
        "KernelShap",
        "LayerFeatureAblation",
        "LayerFeaturePermutation",
        "NeuronFeatureAblation",
        "LimeBase",
        "DataLoaderAttribution",
    }


@pytest.mark.parametrize("name", PERTURBATION)
def test_each_class_is_captums_with_its_signature(name):
    info = attrkit.method_info(name)
    theirs = getattr(captum.attr, info.captum_name)
    assert issubclass(info.cls, theirs)
    assert info.cls.__name__ == theirs.__name__
    assert attrkit.method_info(theirs.__name__) is info
    assert inspect.signature(info.cls.attribute) == inspect.signature(theirs.attribute)
    assert info.cls.attribute.__wrapped__ is not None  # Captum's NoiseTunnel calls it


def test_the_issues_examples_run_quietly_and_equal_captum():
    """``attrkit.create("Occlusion", model)`` and ``attrkit.attribute(model, x,
    method="KernelShap", ...)`` (warnings are errors in the tests)."""
    occlusion = attrkit.create("Occlusion", MODEL)
    assert isinstance(occlusion, captum.attr.Occlusion)
    target = torch.tensor([0, 2, 1])
    torch.manual_seed(0)
    ours = attrkit.attribute(
        MODEL, X, method="KernelShap", target=target, feature_mask=MASK, n_samples=30
    )
    theirs = _captum("KernelShap", target=target, feature_mask=MASK, n_samples=30)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_lime_takes_what_captums_batch_path_fails_on():
    """Captum's Lime on several examples fails on a 0-d target tensor and on
    ``additional_forward_args`` that is not a tuple; attrkit's attributes each example."""
    torch.manual_seed(0)
    ours = attrkit.Lime(MODEL).attribute(
        X, target=torch.tensor(1), additional_forward_args=2.0, feature_mask=MASK, n_samples=20
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError):
            captum.attr.Lime(MODEL).attribute(
                X, target=torch.tensor(1), additional_forward_args=2.0, feature_mask=MASK
            )
    expected = _captum(
        "Lime", target=1, additional_forward_args=(2.0,), feature_mask=MASK, n_samples=20
    )
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)


def test_layer_feature_permutation_takes_a_target():
    """Captum 0.9.0 selects the target twice and fails; attrkit's equals Captum's on the
    model that returns the targeted output."""
    torch.manual_seed(0)
    ours = attrkit.LayerFeaturePermutation(MODEL, MODEL.relu).attribute(X, target=2)
    selected = lambda x: MODEL(x)[:, 2]  # noqa: E731
    torch.manual_seed(0)
    expected = captum.attr.LayerFeaturePermutation(selected, MODEL.relu).attribute(X)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    with pytest.raises(AssertionError):
        captum.attr.LayerFeaturePermutation(MODEL, MODEL.relu).attribute(X, target=2)


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "pattern"),
    [
        pytest.param(
            "feature_ablation",
            {"perturbations_per_eval": 0},
            ValueError,
            r"`perturbations_per_eval` must be an int >= 1, got 0",
            id="perturbations-per-eval",
        ),
        pytest.param(
            "shapley_value_sampling",
            {"n_samples": 1.5},
            TypeError,
            r"`n_samples` must be an int >= 1, got float",
            id="n-samples",
        ),
        pytest.param(
            "feature_ablation",
            {"feature_mask": [MASK]},
            TypeError,
            r"`feature_mask` must be a torch.Tensor, got list",
            id="mask-type",
        ),
        pytest.param(
            "feature_permutation",
            {"feature_mask": (MASK, MASK)},
            ValueError,
            r"`feature_mask` has 2 entries but `inputs` has 1 tensors",
            id="mask-count",
        ),
        pytest.param(
            "lime",
            {"baselines": "zero"},
            TypeError,
            r"`baselines` must be a number or a torch.Tensor, got str",
            id="baselines",
        ),
        pytest.param(
            "kernel_shap",
            {"target": [0, 1]},
            ValueError,
            r"`target` has 2 entries but the batch has 3 examples",
            id="target-length",
        ),
        pytest.param(
            "occlusion",
            {"sliding_window_shapes": [1, 2, 2]},
            TypeError,
            r"`sliding_window_shapes` must be a tuple of ints",
            id="window",
        ),
    ],
)
def test_checks_name_the_argument_and_are_assertion_errors(name, kwargs, error, pattern):
    explainer = attrkit.create(name, MODEL)
    kwargs = {"target": 0, **kwargs}
    if name == "occlusion":
        kwargs.setdefault("sliding_window_shapes", (1, 2, 2))
    with pytest.raises(error, match=pattern) as info:
        explainer.attribute(X, **kwargs)
    assert isinstance(info.value, AssertionError)


def test_inputs_must_be_tensors():
    with pytest.raises(TypeError, match=r"`inputs\[1\]` must be a torch.Tensor, got list"):
        attrkit.FeatureAblation(MODEL).attribute((X, [1, 2]), target=0)


def test_noise_tunnel_expands_a_per_example_feature_mask():
    """As Captum's NoiseTunnel does (it was one of the 16 Captum tests attrkit failed)."""
    masks = torch.stack([MASK[0], 3 - MASK[0], MASK[0].flip(-1)])
    kwargs = {"nt_samples": 2, "stdevs": 0.1, "target": 1, "feature_mask": masks}
    torch.manual_seed(0)
    ours = attrkit.NoiseTunnel(attrkit.FeatureAblation(MODEL)).attribute(X, **kwargs)
    torch.manual_seed(0)
    theirs = captum.attr.NoiseTunnel(captum.attr.FeatureAblation(MODEL)).attribute(X, **kwargs)
    torch.testing.assert_close(ours, theirs)


def test_data_loader_attribution_takes_attrkits_feature_ablation():
    """Captum's takes only its own FeatureAblation (an exact type check)."""
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(X), batch_size=2)
    ours = attrkit.DataLoaderAttribution(attrkit.FeatureAblation(MODEL)).attribute(loader)
    theirs = captum.attr.DataLoaderAttribution(captum.attr.FeatureAblation(MODEL)).attribute(loader)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert isinstance(attrkit.create("DataLoaderAttribution", MODEL), attrkit.DataLoaderAttribution)
    with pytest.raises(TypeError, match=r"`attr_method` must be a FeatureAblation") as info:
        attrkit.DataLoaderAttribution(attrkit.Occlusion(MODEL))
    assert isinstance(info.value, AssertionError)
    with pytest.raises(ValueError, match=r"data_loader_attribution attributes a DataLoader"):
        attrkit.compare("data_loader_attribution", MODEL, X)


def test_lime_base_is_captums_with_the_callers_parts():
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr._core.lime import (
        default_from_interp_rep_transform,
        default_perturb_func,
        get_exp_kernel_similarity_function,
    )

    parts = (
        SkLearnLinearRegression(),
        get_exp_kernel_similarity_function(),
        default_perturb_func,
        True,
        default_from_interp_rep_transform,
        None,
    )
    x = X[:1]
    kwargs = {"target": 1, "n_samples": 20, "feature_mask": MASK, "num_interp_features": 4}
    torch.manual_seed(0)
    ours = attrkit.LimeBase(MODEL, *parts).attribute(x, baselines=0.0, **kwargs)
    torch.manual_seed(0)
    theirs = captum.attr.LimeBase(MODEL, *parts).attribute(x, baselines=0.0, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert issubclass(attrkit.Lime, attrkit.LimeBase)
