"""``attrkit.evaluate``: each metric against an independent computation (hand-computed values
on tiny models, scipy's Spearman, a loop-over-windows SSIM, brute-force deletion and
insertion curves, Captum's metrics called directly), the randomization on a copy with the
caller's model and generators untouched, every registered method through the registry,
the report's JSON schema and figure, the paper's finding on the built-in model, and the
agreement with Quantus where it is installed."""

from __future__ import annotations

import copy
import json
import math

import captum.metrics
import jsonschema
import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

import attrkit
from attrkit.core.registry import takes_inputs
from attrkit.demo import demo_arguments, demo_methods, load_demo_model, load_heldout_digits
from attrkit.validation.evaluation import (
    Completeness,
    Deletion,
    Infidelity,
    Insertion,
    ModelRandomization,
    Sensitivity,
    map_similarity,
    randomizable_layers,
    randomized_models,
    ssim,
)
from tests.helpers import assert_same, snapshot

# ------------------------------------------------------------------------------ models


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)
    ).eval()


def tiny_inputs(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 1, 6, 6, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def demo() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = load_demo_model()
    images = load_heldout_digits().images[:30]
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    return model, images, predicted


# ----------------------------------------------------------------------------- SSIM
def reference_ssim(a: np.ndarray, b: np.ndarray, window: int, data_range: float) -> float:
    """Wang et al. 2004 by a loop over every window inside the map (sample statistics,
    C1 = (0.01 R)^2, C2 = (0.03 R)^2)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(a.shape[0] - window + 1):
        for j in range(a.shape[1] - window + 1):
            x = a[i : i + window, j : j + window].ravel()
            y = b[i : i + window, j : j + window].ravel()
            cov = np.cov(x, y, ddof=1)
            mx, my = x.mean(), y.mean()
            values.append(
                ((2 * mx * my + c1) * (2 * cov[0, 1] + c2))
                / ((mx**2 + my**2 + c1) * (cov[0, 0] + cov[1, 1] + c2))
            )
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(8, 8), (12, 9), (5, 5)], ids=str)
def test_ssim_matches_the_definition_computed_window_by_window(shape):
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(3, *shape, generator=generator, dtype=torch.float64)
    b = (a + 0.3 * torch.rand(3, *shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    window = min(7, *shape) - (1 - min(7, *shape) % 2)
    expected = [
        reference_ssim(x.numpy(), y.numpy(), window, 1.0) for x, y in zip(a, b, strict=True)
    ]
    assert ssim(a, b).tolist() == pytest.approx(expected, abs=1e-12)


def test_ssim_rejects_maps_smaller_than_a_window():
    with pytest.raises(ValueError, match="smaller than a 3 x 3 window"):
        ssim(torch.zeros(2, 2), torch.zeros(2, 2))


def test_map_similarity_against_scipy_and_the_ssim_of_unit_maps():
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(4, 2, 7, 7, generator=generator).round(decimals=1)  # ties included
    b = a + torch.randn(4, 2, 7, 7, generator=generator)
    similarity = map_similarity((a,), (b,))
    for i in range(4):
        x, y = a[i].ravel().numpy(), b[i].ravel().numpy()
        assert similarity.spearman[i] == pytest.approx(scipy.stats.spearmanr(x, y)[0])
        assert similarity.spearman_abs[i] == pytest.approx(
            scipy.stats.spearmanr(np.abs(x), np.abs(y))[0]
        )
        unit_a = (a[i].double().abs() / a[i].double().abs().max()).numpy()
        unit_b = (b[i].double().abs() / b[i].double().abs().max()).numpy()
        expected = np.mean([reference_ssim(unit_a[c], unit_b[c], 7, 1.0) for c in range(2)])
        assert similarity.ssim[i] == pytest.approx(expected, abs=1e-12)


def test_map_similarity_has_no_ssim_for_vectors():
    a = (torch.randn(3, 10),)
    assert map_similarity(a, a).ssim == [None, None, None]


# ---------------------------------------------------------------------- randomization
def test_randomizable_layers_are_modules_with_their_own_parameters():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Sequential(nn.Linear(8, 2)))  # fmt: skip
    assert [name for name, _ in randomizable_layers(model)] == ["0", "1", "4.0"]


@pytest.mark.parametrize("order", ["cascade", "independent"])
def test_randomized_models_reinitialize_a_copy_top_down_as_quantus_does(order):
    model = tiny_cnn()
    original = copy.deepcopy(model.state_dict())
    rng_before = torch.random.get_rng_state()
    seen = []
    for step, (layer, randomized) in enumerate(randomized_models(model, order, seed=7)):
        assert randomized is not model
        seen.append(layer)
        # independent: reset_parameters from torch's generator seeded seed + 1
        reference = copy.deepcopy(model)
        with torch.random.fork_rng():
            torch.manual_seed(8)
            reference.get_submodule(layer).reset_parameters()
        changed = {name for name, _ in randomizable_layers(model)[::-1][: step + 1]}
        for name, module in randomized.named_modules():
            if next(module.parameters(recurse=False), None) is None:
                continue
            expected = reference if name == layer else model
            if order == "cascade" and name in changed and name != layer:
                continue  # randomized at an earlier step
            for key, value in module.state_dict().items():
                assert torch.equal(value, expected.get_submodule(name).state_dict()[key])
    assert seen == ["3", "0"]
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    for key, value in model.state_dict().items():
        assert torch.equal(value, original[key])


def saliency_by_hand(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    leaf = x.clone().requires_grad_()
    output = model(leaf)
    (grad,) = torch.autograd.grad(output[torch.arange(len(x)), target].sum(), leaf)
    return grad.abs()


def test_model_randomization_matches_a_brute_force_computation():
    model, x = tiny_cnn(), tiny_inputs()
    target = torch.tensor([0, 1, 2, 3])
    report = attrkit.evaluate(model, x, target=target, methods=["saliency"],
                              metrics=["model_randomization"], seed=3)  # fmt: skip
    scores = report.scores("saliency", "model_randomization")
    original = saliency_by_hand(model, x, target)
    for order, steps in (("cascade", scores.cascade), ("independent", scores.independent)):
        randomized = copy.deepcopy(model)
        layers = ["3", "0"]
        assert [step.layer for step in steps] == layers
        for step in steps:
            if order == "independent":
                randomized = copy.deepcopy(model)
            torch.manual_seed(4)
            randomized.get_submodule(step.layer).reset_parameters()
            other = saliency_by_hand(randomized, x, target)
            rho = [
                scipy.stats.spearmanr(a.ravel(), b.ravel())[0]
                for a, b in zip(original, other, strict=True)
            ]
            assert step.spearman_abs == pytest.approx(np.mean(rho))
            assert step.spearman == pytest.approx(np.mean(rho))  # saliency is |gradient|


def test_random_reference_is_unrelated_to_the_model():
    report = attrkit.evaluate(tiny_cnn(), tiny_inputs(8), target=0, methods=["saliency"],
                              metrics=["model_randomization"])  # fmt: skip
    for step in report.scores("random", "model_randomization").cascade:
        assert abs(step.spearman_abs) < 0.3


def test_the_paper_finding_on_the_built_in_model(demo):
    """Adebayo et al.: Saliency's maps change when the model is randomized, Guided
    Backpropagation's much less, and the input-multiplying methods stay similar because the
    digit's pixels dominate (the values of the issue, measured on 100 digits, within 0.1)."""
    model, images, predicted = demo
    report = attrkit.evaluate(
        model, images, target=predicted,
        methods=["saliency", "guided_backprop", "integrated_gradients"],
        metrics=[ModelRandomization(orders=("cascade",))],
    )  # fmt: skip
    last = {m: report.scores(m, "model_randomization").cascade[-1].spearman_abs
            for m in ("saliency", "guided_backprop", "integrated_gradients", "random")}  # fmt: skip
    assert [s.layer for s in report.scores("saliency", "model_randomization").cascade] == [
        "fc2", "fc1", "conv2", "conv1"
    ]  # fmt: skip
    assert last["saliency"] < 0.2
    assert last["guided_backprop"] > last["saliency"] + 0.2
    assert last["integrated_gradients"] > 0.85
    assert abs(last["random"]) < 0.1


# --------------------------------------------------------------- deletion and insertion
class Linear(nn.Module):
    """f(x) = x . w for x of 4 features: every score can be computed by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[4.0, -1.0, 2.0, 3.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).squeeze(1)


def test_deletion_and_insertion_by_hand_on_a_linear_model():
    x = torch.ones(1, 4)
    report = attrkit.evaluate(
        Linear(), x, methods=["input_x_gradient"],
        metrics=[Deletion(step=1, score="logit"), Insertion(step=1, score="logit")],
    )  # fmt: skip
    deletion = report.scores("input_x_gradient", "deletion")
    insertion = report.scores("input_x_gradient", "insertion")
    # attributions w: removed in the order 4, 3, 2, -1; f(x) = 8
    assert deletion.fractions.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert deletion.curve.tolist() == [8, 4, 1, -1, 0]
    assert insertion.curve.tolist() == [0, 4, 7, 9, 8]
    assert deletion.auc == pytest.approx(0.25 * (8 / 2 + 4 + 1 - 1 + 0 / 2))
    assert insertion.auc == pytest.approx(0.25 * (0 / 2 + 4 + 7 + 9 + 8 / 2))


def brute_force_curve(model, x, attributions, target, mode, baseline, step):
    """Feature by feature in Python loops: the softmax probability of the target as the
    most-attributed features (ties: the first position first) are changed."""
    curves = []
    for example, values, label in zip(x, attributions, target, strict=True):
        flat, scores = values.ravel().tolist(), []
        order = sorted(range(len(flat)), key=lambda i: (-flat[i], i))
        for count in [*range(0, len(flat), step), len(flat)]:
            changed = set(order[:count])
            pixels = example.ravel().tolist()
            for i in range(len(pixels)):
                if (i in changed) == (mode == "deletion"):
                    pixels[i] = baseline
            probability = model(torch.tensor(pixels).reshape(1, *example.shape)).softmax(1)
            scores.append(float(probability[0, label]))
        curves.append(scores)
    return np.array(curves)


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_curves_match_a_brute_force_computation(mode):
    model, x = tiny_cnn(), tiny_inputs(3)
    target = torch.tensor([1, 0, 3])
    metric = (Deletion if mode == "deletion" else Insertion)(baseline=0.5, step=5)
    report = attrkit.evaluate(model, x, target=target, methods=["guided_backprop"],
                              metrics=[metric])  # fmt: skip
    scores = report.scores("guided_backprop", mode)
    attributions = attrkit.GuidedBackprop(model).attribute(x, target=target)
    with torch.no_grad():
        expected = brute_force_curve(model, x, attributions, target, mode, 0.5, 5)
    np.testing.assert_allclose(scores.scores, expected, rtol=1e-5, atol=1e-6)
    assert scores.fractions.tolist() == [i / 36 for i in range(0, 36, 5)] + [1.0]


def test_mean_baseline_and_fraction_steps():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    report = attrkit.evaluate(Linear(), x, methods=["saliency"],
                              metrics=[Deletion(baseline="mean", step=0.5, score="logit")],
                              abs=False)  # fmt: skip
    scores = report.scores("saliency", "deletion")
    # order by w: features 0 (4), 3 (3), then 2, 1; the mean is 3
    assert scores.fractions.tolist() == [0, 0.5, 1]
    assert scores.curve.tolist() == [4 - 2 + 6 + 18, 12 - 2 + 6 + 9, 12 - 3 + 6 + 9]


# ---------------------------------------------------- captum.metrics and completeness
def test_infidelity_and_sensitivity_are_captums_on_the_same_draws():
    model, x = tiny_cnn(), tiny_inputs()
    report = attrkit.evaluate(model, x, target=2, methods=["saliency"], seed=5,
                              metrics=[Infidelity(noise_scale=0.2), Sensitivity()])  # fmt: skip
    attributions = attrkit.Saliency(model).attribute(x, target=2)

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.2
        return noise, inputs - noise

    torch.manual_seed(5)
    infidelity = captum.metrics.infidelity(model, perturb, x, attributions, target=2,
                                           normalize=True)  # fmt: skip
    torch.manual_seed(5)
    sensitivity = captum.metrics.sensitivity_max(attrkit.Saliency(model).attribute, x, target=2)
    assert report.scores("saliency", "infidelity").values.tolist() == pytest.approx(
        infidelity.tolist(), rel=1e-5
    )
    assert report.scores("saliency", "sensitivity").values.tolist() == pytest.approx(
        sensitivity.tolist(), rel=1e-5
    )


def test_the_gradient_of_a_linear_model_is_faithful_and_stable():
    """f(x) - f(x - I) = I . w exactly: the gradient's infidelity is 0, and it does not
    change under perturbations: its sensitivity is 0."""
    report = attrkit.evaluate(Linear(), torch.randn(5, 4), methods=["saliency"], abs=False,
                              metrics=["infidelity", "sensitivity"])  # fmt: skip
    assert report.scores("saliency", "infidelity").value == pytest.approx(0, abs=1e-6)
    assert report.scores("saliency", "sensitivity").value == 0


def test_completeness_against_captums_convergence_delta_and_by_hand():
    model, x = tiny_cnn(), tiny_inputs()
    report = attrkit.evaluate(model, x, target=1, metrics=["completeness"], n_steps=8,
                              methods=["integrated_gradients", "input_x_gradient", "saliency",
                                       "neuron_guided_backprop"],
                              method_options={"neuron_guided_backprop": {
                                  "layer": model[3], "neuron_selector": 0}})  # fmt: skip
    ig = attrkit.IntegratedGradients(model)
    _, delta = ig.attribute(x, target=1, n_steps=8, return_convergence_delta=True)
    scores = report.scores("integrated_gradients", "completeness")
    np.testing.assert_allclose(scores.errors, delta.abs().double().numpy(), rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        change = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    assert scores.deltas.tolist() == pytest.approx(change.tolist(), rel=1e-5)
    assert report.result("saliency", "completeness").status == "not_applicable"
    assert report.result("neuron_guided_backprop", "completeness").status == "not_applicable"
    assert report.result("random", "completeness").status == "not_applicable"


def test_completeness_is_exact_for_input_x_gradient_on_a_linear_model():
    report = attrkit.evaluate(Linear(), torch.randn(3, 4), methods=["input_x_gradient"],
                              metrics=[Completeness()])  # fmt: skip
    assert report.scores("input_x_gradient", "completeness").error == pytest.approx(0, abs=1e-6)


def test_completeness_with_a_distribution_of_baselines_uses_their_mean_output():
    baselines = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 4)
    report = attrkit.evaluate(Linear(), x, methods=["integrated_gradients"],
                              metrics=["completeness"],
                              method_options={"integrated_gradients": {
                                  "baselines": baselines[:1]}})  # fmt: skip
    w = torch.tensor([4.0, -1.0, 2.0, 3.0])
    expected = (x @ w - baselines[0] @ w).tolist()
    assert report.scores("integrated_gradients", "completeness").deltas.tolist() == pytest.approx(
        expected, rel=1e-6
    )


# --------------------------------------------------------- every method, no side effects
def test_every_registered_method_can_be_evaluated(demo):
    """Every method the demo's arguments build (``demo_methods``: all but LimeBase, whose
    interpretable model and transforms are the caller's constructor arguments, and
    DataLoaderAttribution, which evaluate refuses: test_a_dataloader_method_is_refused)."""
    model, images, predicted = demo
    images, predicted = images[:3], predicted[:3]
    methods = demo_methods()
    options = {}
    for name in methods:
        init_kwargs, attribute_kwargs = demo_arguments(name, model, predicted)
        attribute_kwargs.pop("target", None)
        options[name] = {**init_kwargs, **attribute_kwargs}
    report = attrkit.evaluate(
        model, images, target=predicted, methods=methods, method_options=options,
        metrics=[ModelRandomization(orders=("cascade",)), Deletion(step=0.25)],
    )  # fmt: skip
    assert report.methods == (*methods, "random")
    # The layer perturbation methods ablate relu2's 32 channels (demo_arguments): their
    # attributions have the layer's shape, which deletion cannot resample to the inputs.
    channels = {n for n in methods if "layer_mask" in attrkit.method_info(n).attribute_arguments}
    assert channels
    for result in report.results:
        if result.method in channels and result.metric == "deletion":
            assert result.status == "not_applicable", (result.method, result.reason)
            assert "cannot be resampled to the input's" in result.reason
            continue
        assert result.status == "ok", (result.method, result.metric, result.reason)


@pytest.mark.parametrize(
    "name", [n for n in attrkit.available_methods() if not takes_inputs(attrkit.method_info(n))]
)
def test_a_dataloader_method_is_refused(demo, name):
    """A method that attributes a DataLoader, not inputs (DataLoaderAttribution): refused
    before any work, naming the argument."""
    model, images, _ = demo
    with pytest.raises(ValueError, match=f"`methods`: {name} attributes a DataLoader"):
        attrkit.evaluate(model, images[:2], target=0, methods=["saliency", name])


def test_no_side_effects_and_the_generators_are_restored():
    model, x = tiny_cnn(), tiny_inputs()
    model.train()
    x.requires_grad_()
    before = snapshot(model, (x,))
    state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()
    attrkit.evaluate(model, x, target=0, methods=["saliency", "noise_tunnel"],
                     libraries=("attrkit",))  # fmt: skip
    assert_same(before, snapshot(model, (x,)))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_the_same_seed_gives_the_same_report():
    def run(seed):
        return attrkit.evaluate(tiny_cnn(), tiny_inputs(), target=0,
                                methods=["noise_tunnel"], seed=seed).to_dict()  # fmt: skip

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_method_that_raises_is_reported_and_the_others_go_on():
    report = attrkit.evaluate(tiny_cnn(), tiny_inputs(), target=0,
                              methods=["saliency", "layer_grad_cam"],
                              metrics=["deletion"])  # fmt: skip
    result = report.result("layer_grad_cam", "deletion")
    assert result.status == "error"
    assert "layer" in result.reason
    assert report.result("saliency", "deletion").status == "ok"
    assert report.errors == [result]


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metrics": ["deletion", "blur"]}, ValueError, "unknown metric 'blur'"),
        ({"metrics": "deletion"}, TypeError, "`metrics` must be a sequence"),
        ({"metrics": [3]}, TypeError, "`metrics` entries must be"),
        ({"metrics": []}, ValueError, "`metrics` is empty"),
        ({"methods": "saliency"}, TypeError, "`methods` must be a sequence"),
        ({"methods": []}, ValueError, "`methods` is empty"),
        ({"methods": ["salency"]}, KeyError, "Did you mean 'saliency'"),
        ({"n_stepz": 3}, TypeError, "no evaluated method takes 'n_stepz'"),
        ({"method_options": {"deconvolution": {}}}, ValueError, "not in `methods`"),
        ({"libraries": ("zennit",)}, ValueError, "`libraries`: unknown"),
        ({"seed": True}, TypeError, "`seed` must be an int"),
        ({"target": [0, 1]}, ValueError, "`target` has 2 entries"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_bad_arguments_raise_naming_them(kwargs, error, match):
    arguments = {"target": 0, "methods": ["saliency"], "metrics": ["deletion"], **kwargs}
    with pytest.raises(error, match=match):
        attrkit.evaluate(tiny_cnn(), tiny_inputs(), **arguments)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Deletion(step=0), "`step` must be an int > 0"),
        (lambda: Deletion(step=1.5), "`step` must be an int > 0"),
        (lambda: Insertion(score="softmax"), "`score` must be 'probability' or 'logit'"),
        (lambda: Deletion(baseline="blur"), "`baseline` must be a number"),
        (lambda: Infidelity(noise_scale=-1), "`noise_scale` must be a number > 0"),
        (lambda: Sensitivity(n_perturb_samples=0), "`n_perturb_samples` must be an int > 0"),
        (lambda: ModelRandomization(orders=("bottom_up",)), "`orders` must be a tuple"),
    ],
)
def test_bad_metric_options_raise_naming_them(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_probability_needs_class_scores():
    report = attrkit.evaluate(Linear(), torch.randn(2, 4), methods=["saliency"],
                              metrics=["deletion"])  # fmt: skip
    assert report.result("saliency", "deletion").status == "error"
    assert "score='logit'" in report.result("saliency", "deletion").reason


# ----------------------------------------------------------------------------- report
CURVE = {
    "type": "array",
    "minItems": 2,
    "items": {
        "type": "object",
        "required": ["fraction", "score"],
        "properties": {"fraction": {"type": "number"}, "score": {"type": "number"}},
    },
}
STEPS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["layer", "spearman_abs", "spearman", "ssim"],
        "properties": {
            "layer": {"type": "string"},
            **{k: {"type": ["number", "null"]} for k in ("spearman_abs", "spearman", "ssim")},
        },
        "additionalProperties": False,
    },
}
EVALUATION_SCHEMA = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["method", "metric", "status"],
                "properties": {"method": {"type": "string"}, "metric": {"type": "string"}},
                "allOf": [
                    {
                        "if": {"properties": {"metric": {"const": "model_randomization"},
                                              "status": {"const": "ok"}}},
                        "then": {"required": ["cascade"],
                                 "properties": {"cascade": STEPS, "independent": STEPS}},
                    },
                    {
                        "if": {"properties": {"metric": {"enum": ["deletion", "insertion"]},
                                              "status": {"const": "ok"}}},
                        "then": {"required": ["auc", "curve"],
                                 "properties": {"auc": {"type": "number"}, "curve": CURVE}},
                    },
                ],
            },
        }
    },
}  # fmt: skip


def test_json_follows_the_schema_and_cascades_from_the_top_layer(demo):
    model, images, predicted = demo
    report = attrkit.evaluate(model, images[:4], target=predicted[:4],
                              methods=["saliency", "integrated_gradients"], n_steps=4)  # fmt: skip
    data = json.loads(report.to_json())
    jsonschema.validate(data, EVALUATION_SCHEMA)
    cascade = data["results"][0]["cascade"]
    assert [step["layer"] for step in cascade] == ["fc2", "fc1", "conv2", "conv1"]
    metrics = {(r["method"], r["metric"]) for r in data["results"]}
    assert len(metrics) == 3 * len(attrkit.validation.evaluation.METRICS)
    text, markdown = str(report), report.to_markdown()
    assert text.startswith("attrkit.evaluate: DigitsCNN; inputs (4, 1, 8, 8)")
    assert "to conv1" in text
    assert "| Integrated Gradients |" in markdown
    assert math.isfinite(data["results"][1]["auc"])


def test_figure_draws_the_grid_and_the_curves(demo, tmp_path):
    from attrkit.viz import save_figure

    model, images, predicted = demo
    report = attrkit.evaluate(model, images[:3], target=predicted[:3], methods=["saliency"],
                              metrics=["model_randomization", "deletion", "insertion"])  # fmt: skip
    figure = report.figure()
    # 2 rows (saliency, random) x (input, original, 4 layers), and three plots
    assert len(figure.axes) == 2 * 6 + 3
    assert save_figure(figure, tmp_path / "evaluation.png").stat().st_size > 0


# ----------------------------------------------------------------------------- Quantus
def test_quantus_cross_check_agrees_on_randomization_and_pixel_flipping(demo):
    pytest.importorskip("quantus", reason="Quantus is an optional extra: attrkit[quantus]")
    model, images, predicted = demo
    report = attrkit.evaluate(
        model, images[:8], target=predicted[:8], methods=["saliency", "guided_backprop"],
        metrics=["model_randomization", "deletion", "insertion"], libraries=("attrkit", "quantus"),
    )  # fmt: skip
    for method in ("saliency", "guided_backprop"):
        for metric in ("model_randomization", "deletion"):
            (check,) = report.result(method, metric).cross_checks
            assert check.status == "agree", check
        (check,) = report.result(method, "insertion").cross_checks
        assert check.status == "unavailable"
        assert "no insertion" in check.explanation
    assert report.result("random", "deletion").cross_checks == ()


def test_quantus_directly_against_the_report(demo):
    """Quantus called here, not through attrkit's cross-check."""
    quantus = pytest.importorskip("quantus", reason="Quantus is an optional extra")
    model, images, predicted = demo
    x, y = images[:6], predicted[:6]
    report = attrkit.evaluate(model, x, target=y, methods=["saliency"], seed=11,
                              metrics=["model_randomization", Deletion(step=4)])  # fmt: skip

    def explain(model, inputs, targets, **kwargs):
        return attrkit.Saliency(model).attribute(torch.as_tensor(inputs),
                                                 target=torch.as_tensor(targets)).numpy()  # fmt: skip

    state = torch.random.get_rng_state()
    mprt = quantus.MPRT(seed=11, disable_warnings=True)
    theirs = mprt(model=copy.deepcopy(model), x_batch=x.numpy(), y_batch=y.numpy(),
                  explain_func=explain, channel_first=True, batch_size=6)  # fmt: skip
    flipping = quantus.PixelFlipping(features_in_step=4, perturb_baseline=0.0,
                                     disable_warnings=True)  # fmt: skip
    attributions = attrkit.Saliency(model).attribute(x, target=y).numpy()
    curves = flipping(model=copy.deepcopy(model), x_batch=x.numpy(), y_batch=y.numpy(),
                      a_batch=attributions, channel_first=True, batch_size=6)  # fmt: skip
    torch.random.set_rng_state(state)
    for step in report.scores("saliency", "model_randomization").cascade:
        assert step.spearman_abs == pytest.approx(np.mean(theirs[step.layer]), abs=1e-9)
    ours = report.scores("saliency", "deletion").scores[:, 1:]
    np.testing.assert_allclose(ours, np.array(curves), atol=1e-6)
