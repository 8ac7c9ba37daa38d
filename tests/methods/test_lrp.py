"""LRP and LayerLRP: parity with zennit's composites, spelling invariance, conservation, the
Captum deviations the docs list, the rule objects' contracts, and errors.

Parity with Captum's ``LRP`` / ``LayerLRP`` (default and user-set rules, every target
form, float32 and float64) runs in tests/test_parity_captum.py from the ``lrp`` rows of
``METHOD_SPECS``. Covering design here: every zennit composite x {image model with
batch-norm and transposed convolution, image model with every pooling, MLP} x {float32,
float64} against zennit; every composite and Captum's rules x {functional, mixed} twin and
{reused module} against the module version; the epsilon rule (and the conserving
composites) x {bias-free CNN, MLP} for conservation.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import captum.attr
import pytest
import torch
import torch.nn.functional as F
import zennit.composites
from captum.attr._utils import lrp_rules
from torch import Tensor, nn
from zennit.canonizers import SequentialMergeBatchNorm

import attrkit
from attrkit.engine.composites import COMPOSITES
from tests import models
from tests.helpers import as_tuple, assert_all_close, differs, relative_error, snapshot
from tests.reference import reference_lrp

BATCH = 3
TARGET = [0, 2, 1]
LRP_COMPOSITES = (
    "epsilon_gamma_box",
    "epsilon_plus",
    "epsilon_alpha2_beta1",
    "epsilon_plus_flat",
    "epsilon_alpha2_beta1_flat",
    "excitation_backprop",
)
GRADIENT_COMPOSITES = ("deconvnet", "guided_backprop", "beta_smooth")
BOX = {"low": -3.0, "high": 3.0}


def composite_params(name: str) -> dict[str, Any]:
    return dict(BOX) if name == "epsilon_gamma_box" else {}


def seeded(factory: Any, dtype: torch.dtype = torch.float64) -> nn.Module:
    """``factory()`` with seeded weights and non-trivial batch-norm statistics, in eval
    mode."""
    torch.manual_seed(0)
    model = factory()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return model.to(dtype).eval()


def inputs(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn((BATCH, *shape), generator=generator, dtype=dtype)


# ------------------------------------------------------------------- zennit's composites
# zennit attaches its rules to module types and merges batch-norms into the linear layer
# before them with a canonizer that works on nn.Sequential: the models are sequential.
# (The canonizer keeps the batch-norm's eps in the identity it leaves, which scales the
# output by 1/sqrt(1 + eps): eps=0 here.)


def pooling_cnn(inplace: bool = False) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6, eps=0.0),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3),
        nn.ReLU(inplace=inplace),
        nn.AvgPool2d(2),
        nn.Conv2d(8, 8, 1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
        nn.Dropout(),
        nn.ReLU(),
        nn.Linear(10, 4),
    )


def transposed_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4, eps=0.0),
        nn.ReLU(),
        nn.ConvTranspose2d(4, 5, 2, stride=2),
        nn.ELU(),
        nn.Conv2d(5, 6, 3, stride=2),
        nn.Sigmoid(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 8),
        nn.BatchNorm1d(8, eps=0.0),
        nn.ReLU(),
        nn.Linear(8, 4),
    )


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4))


ZENNIT_MODELS = {
    "pooling-cnn": (pooling_cnn, (3, 8, 8)),
    "transposed-cnn": (transposed_cnn, (3, 6, 6)),
    "mlp": (mlp, (6,)),
}


def zennit_relevance(model: nn.Module, x: Tensor, name: str, **params: Any) -> Tensor:
    """zennit's relevance: its composite (with the batch-norm canonizer) on ``model``,
    the gradient of the output with ``one_hot * output`` as its gradient."""
    composite = zennit.composites.COMPOSITES[name](
        canonizers=[SequentialMergeBatchNorm()], **params
    )
    leaf = x.clone().requires_grad_()
    with composite.context(model) as modified:
        output = modified(leaf)
        one_hot = torch.zeros_like(output)
        one_hot[torch.arange(BATCH), TARGET] = 1
        (relevance,) = torch.autograd.grad(output, leaf, one_hot * output)
    return relevance


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("model_name", sorted(ZENNIT_MODELS))
@pytest.mark.parametrize("name", LRP_COMPOSITES + GRADIENT_COMPOSITES)
def test_matches_zennit_composite(name, model_name, dtype):
    factory, shape = ZENNIT_MODELS[model_name]
    x = inputs(shape, dtype)
    params = composite_params(name)
    ours = attrkit.create("lrp", seeded(factory, dtype), composite=name, **params).attribute(
        x, TARGET
    )
    theirs = zennit_relevance(seeded(factory, dtype), x, name, **params)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"epsilon": 0.25, "gamma": 1.0, "stabilizer": 1e-3}, id="scalars"),
        pytest.param({"zero_params": "bias"}, id="zero-bias"),
        pytest.param(
            {
                "low": torch.tensor([-1.0, -2.0, -3.0]).reshape(1, 3, 1, 1),
                "high": torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1),
            },
            id="per-channel-bounds",
        ),
    ],
)
def test_composite_parameters_match_zennit(params):
    params = {**BOX, **params}
    params = {k: v.double() if isinstance(v, Tensor) else v for k, v in params.items()}
    x = inputs((3, 8, 8))
    name = "epsilon_gamma_box"
    ours = attrkit.create("lrp", seeded(pooling_cnn), composite=name, **params).attribute(x, TARGET)
    theirs = zennit_relevance(seeded(pooling_cnn), x, name, **params)
    torch.testing.assert_close(ours, theirs)


def test_composite_by_name_through_the_registry():
    x = inputs((3, 8, 8))
    ours = attrkit.attribute(
        seeded(pooling_cnn), x, method="lrp", composite="epsilon_gamma_box", target=TARGET, **BOX
    )
    theirs = zennit_relevance(seeded(pooling_cnn), x, "epsilon_gamma_box", **BOX)
    torch.testing.assert_close(ours, theirs)


def test_zennit_beta_smooth_reads_an_in_place_relu_s_overwritten_input():
    """zennit's ``ReLUBetaSmooth`` stores the ReLU's input in a forward hook; an in-place
    ReLU has overwritten it with its output by then. attrkit gives an in-place ReLU the
    same rule as the out-of-place one."""
    x = inputs((3, 8, 8))
    expected = zennit_relevance(seeded(pooling_cnn), x, "beta_smooth")
    model = seeded(lambda: pooling_cnn(inplace=True))
    torch.testing.assert_close(
        attrkit.create("lrp", model, composite="beta_smooth").attribute(x, TARGET), expected
    )
    assert differs((zennit_relevance(model, x, "beta_smooth"),), (expected,))


def test_composites_are_zennit_s():
    assert set(COMPOSITES) == set(zennit.composites.COMPOSITES)


# --------------------------------------------------------------------- spelling invariance

CONVENTIONS = [pytest.param(None, id="captum-rules")] + [
    pytest.param(name, id=name) for name in LRP_COMPOSITES + GRADIENT_COMPOSITES
]


def lrp(model: nn.Module, composite: str | None, x: Any, **kwargs: Any) -> Any:
    params = composite_params(composite) if composite else {}
    method = attrkit.create("lrp", model, composite=composite, **params)
    return method.attribute(x, target=TARGET, **kwargs)


@pytest.mark.parametrize("spelling", ["functional", "mixed"])
@pytest.mark.parametrize("composite", CONVENTIONS)
def test_functional_and_mixed_twins_equal_the_module_version(composite, spelling):
    module = seeded(models.LrpCNN)
    twin = seeded(lambda: models.LrpCNN(spelling))
    x = inputs((3, 12, 12))
    assert torch.equal(module(x), twin(x))
    torch.testing.assert_close(lrp(twin, composite, x), lrp(module, composite, x))


def _reused_and_twin() -> tuple[nn.Module, nn.Module]:
    reused = seeded(models.ReusedLinear)
    twin = seeded(lambda: models.ReusedLinear(reuse=False))
    twin.load_state_dict(reused.state_dict(), strict=False)
    twin.again.load_state_dict(reused.square.state_dict())
    return reused, twin


@pytest.mark.parametrize("composite", CONVENTIONS)
def test_reused_module_gets_one_rule_per_application(composite):
    reused, twin = _reused_and_twin()
    x = inputs((5,))
    torch.testing.assert_close(lrp(reused, composite, x), lrp(twin, composite, x))


def test_user_rule_on_a_reused_module_applies_at_every_application():
    reused, twin = _reused_and_twin()
    reused.square.rule = lrp_rules.GammaRule(gamma=0.7)
    twin.square.rule = lrp_rules.GammaRule(gamma=0.7)
    twin.again.rule = lrp_rules.GammaRule(gamma=0.7)
    x = inputs((5,))
    ours = lrp(reused, None, x)
    torch.testing.assert_close(ours, lrp(twin, None, x))
    assert differs((ours,), (lrp(seeded(models.ReusedLinear), None, x),))


def test_rule_of_a_module_that_calls_a_functional_layer():
    """A rule set on a custom module applies to the layer ops its own forward applies."""

    class FunctionalLinear(nn.Linear):
        def forward(self, x: Tensor) -> Tensor:
            return F.linear(x, self.weight, self.bias)

    def build(cls: type[nn.Linear]) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(cls(5, 6), nn.ReLU(), nn.Linear(6, 3)).double()

    module, custom = build(nn.Linear), build(FunctionalLinear)
    for model in (module, custom):
        model[0].rule = lrp_rules.Alpha1_Beta0_Rule()
    x = inputs((5,))
    torch.testing.assert_close(lrp(custom, None, x), lrp(module, None, x))


class Spellings(nn.Module):
    """Residual sums, scalings, means and dropout, written one way (``spelling=0``) or
    another (``1``): the same function with the same parameters."""

    def __init__(self, spelling: int) -> None:
        super().__init__()
        self.spelling = spelling
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4, 3)
        self.scale = torch.tensor([0.5, 2.0, 1.5])

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.conv1(x))
        if self.spelling == 0:
            h = self.conv2(h) + h
            h = self.pool(h).flatten(1)
            return self.fc(self.drop(h)) * self.scale
        h = torch.add(h, self.conv2(h))
        h = h.mean((2, 3))
        out = F.linear(F.dropout(h, 0.3, self.training), self.fc.weight, self.fc.bias)
        return out / (1 / self.scale)


@pytest.mark.parametrize("composite", CONVENTIONS)
def test_sums_scalings_means_and_dropout_in_every_spelling(composite):
    first, second = seeded(lambda: Spellings(0)), seeded(lambda: Spellings(1))
    x = inputs((3, 6, 6))
    torch.testing.assert_close(first(x), second(x))
    torch.testing.assert_close(lrp(second, composite, x), lrp(first, composite, x))


def test_sums_scalings_and_means_match_the_definition():
    model = seeded(lambda: Spellings(0))
    x = inputs((3, 6, 6))
    expected = reference_lrp(model, (x,), TARGET)
    assert_all_close((attrkit.LRP(model).attribute(x, target=TARGET),), expected)


def test_dropout_in_training_mode_passes_the_relevance_on():
    """Bias-free, epsilon 1e-12: the relevance sums to the output whatever the mask."""
    model = seeded(lambda: models.LrpMLP(bias=False)).train()
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.rule = lrp_rules.EpsilonRule(epsilon=1e-12)
    x = inputs((6,))
    torch.manual_seed(3)
    output = model(x)[torch.arange(BATCH), TARGET]
    torch.manual_seed(3)
    relevance = attrkit.LRP(model).attribute(x, target=TARGET)
    totals = relevance.flatten(1).sum(dim=1)
    assert ((totals - output).abs() <= 1e-9 * output.abs()).all()


# ---------------------------------------------------------------------- the definition


@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(models.LrpCNN, id="every-captum-layer"),
        pytest.param(models.ReusedLinear, id="reused-linear"),
        pytest.param(models.ResidualBlockNet, id="residual-block"),
        pytest.param(models.TinyDenseNet, id="densenet-style"),
        pytest.param(models.TinyInception, id="inception-style"),
    ],
)
def test_captum_rules_match_the_definition(factory):
    model = seeded(factory)
    shape = {
        "ReusedLinear": (5,),
        "ResidualBlockNet": (2, 6, 6),
        "TinyDenseNet": (3, 6, 6),
        "TinyInception": (3, 6, 6),
    }.get(type(model).__name__, (3, 12, 12))
    x = inputs(shape)
    expected = reference_lrp(model, (x,), TARGET)
    assert_all_close((attrkit.LRP(model).attribute(x, target=TARGET),), expected)


def test_layer_relevance_matches_the_definition():
    model = seeded(models.LrpCNN)
    x = inputs((3, 12, 12))
    for to_input in (False, True):
        expected = reference_lrp(model, (x,), TARGET, layer=model.conv2, to_input=to_input)
        ours = attrkit.LayerLRP(model, model.conv2).attribute(
            x, target=TARGET, attribute_to_layer_input=to_input
        )
        assert_all_close((ours,), expected)


# --------------------------------------------------------------------------- conservation


def bias_free_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 10, bias=False),
        nn.ReLU(),
        nn.Linear(10, 4, bias=False),
    )


CONSERVING = {
    "cnn": (bias_free_cnn, (3, 8, 8)),
    "mlp": (lambda: models.LrpMLP(bias=False), (6,)),
}


@pytest.mark.parametrize("model_name", sorted(CONSERVING))
def test_epsilon_rule_conserves_relevance(model_name):
    """Bias-free ReLU networks, epsilon rule with epsilon 1e-12 on every layer: the input
    relevance sums to the target output (relative error <= 1e-9), and so does the
    relevance of every layer's output."""
    factory, shape = CONSERVING[model_name]
    model = seeded(factory)
    for module in model.modules():
        if not list(module.children()) and not isinstance(module, nn.ReLU):
            module.rule = lrp_rules.EpsilonRule(epsilon=1e-12)
    x = inputs(shape)
    output = model(x)[torch.arange(BATCH), TARGET]
    relevance, delta = attrkit.LRP(model).attribute(x, target=TARGET, return_convergence_delta=True)
    totals = relevance.flatten(1).sum(dim=1)
    assert ((totals - output).abs() <= 1e-9 * output.abs()).all()
    assert (delta.abs() <= 1e-9 * output.abs()).all()
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for layer in layers:
        at_layer = attrkit.LayerLRP(model, layer).attribute(x, target=TARGET)
        assert ((at_layer.flatten(1).sum(dim=1) - output).abs() <= 1e-9 * output.abs()).all()


@pytest.mark.parametrize("name", ["epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box"])
def test_conserving_composites_conserve_relevance(name):
    model = seeded(bias_free_cnn)
    x = inputs((3, 8, 8))
    params = {**composite_params(name), "epsilon": 1e-12, "stabilizer": 1e-12}
    output = model(x)[torch.arange(BATCH), TARGET]
    relevance = attrkit.create("lrp", model, composite=name, **params).attribute(x, target=TARGET)
    totals = relevance.flatten(1).sum(dim=1)
    assert ((totals - output).abs() <= 1e-9 * output.abs()).all()


# ------------------------------------------------------------ where Captum deviates


def captum_lrp(model: nn.Module, x: Tensor, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return captum.attr.LRP(model).attribute(x.clone(), target=TARGET, **kwargs)


@pytest.mark.parametrize("spelling", ["functional", "mixed"])
def test_captum_differs_on_functional_twins_without_a_word(spelling):
    twin = seeded(lambda: models.LrpCNN(spelling))
    x = inputs((3, 12, 12))
    expected = lrp(seeded(models.LrpCNN), None, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", "Input Tensor 0 did not already require gradients")
        theirs = captum_lrp(twin, x)
    assert relative_error(theirs.detach(), expected) > 0.1
    torch.testing.assert_close(lrp(twin, None, x), expected)


def test_captum_refuses_a_reused_module():
    reused, twin = _reused_and_twin()
    x = inputs((5,))
    with pytest.raises(RuntimeError, match="used more than once"):
        captum_lrp(reused, x)
    torch.testing.assert_close(lrp(reused, None, x), lrp(twin, None, x))


def test_rules_set_on_modules_stay_there():
    """Captum deletes the rules users set after each call, so its second call silently
    uses the default rules; attrkit leaves them on the modules."""
    x = inputs((3, 12, 12))
    model = seeded(models.LrpCNN)
    rule = lrp_rules.GammaRule(gamma=0.5)
    model.conv1.rule = rule
    first = attrkit.LRP(model).attribute(x, target=TARGET)
    assert model.conv1.rule is rule
    torch.testing.assert_close(attrkit.LRP(model).attribute(x, target=TARGET), first)
    first_captum = captum_lrp(model, x)
    assert not hasattr(model.conv1, "rule")
    torch.testing.assert_close(first_captum.detach(), first)
    assert differs((captum_lrp(model, x).detach(),), (first,))


@pytest.mark.parametrize(
    ("layer", "name"),
    [(nn.Flatten(), "Flatten"), (nn.Sigmoid(), "Sigmoid"), (nn.Identity(), "Identity")],
)
def test_captum_refuses_modules_attrkit_passes_relevance_through(layer, name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), layer, nn.Flatten(), nn.Linear(64, 3))
    model = model.double().eval()
    x = inputs((3, 6, 6))
    with pytest.raises(TypeError, match=name):
        captum_lrp(model, x)
    expected = reference_lrp(model, (x,), TARGET)
    assert_all_close((attrkit.LRP(model).attribute(x, target=TARGET),), expected)


# ------------------------------------------------------------------- Captum's contract


def test_layer_lrp_on_a_list_of_layers_returns_lists():
    model = seeded(models.LrpCNN)
    x = inputs((3, 12, 12))
    layers = [model.conv2, model.fc1]
    relevances, deltas = attrkit.LayerLRP(model, layers).attribute(
        x, target=TARGET, return_convergence_delta=True
    )
    assert isinstance(relevances, list)
    assert isinstance(deltas, list)
    for layer, relevance, delta in zip(layers, relevances, deltas, strict=True):
        alone, alone_delta = attrkit.LayerLRP(model, layer).attribute(
            x, target=TARGET, return_convergence_delta=True
        )
        torch.testing.assert_close(relevance, alone)
        torch.testing.assert_close(delta, alone_delta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = captum.attr.LayerLRP(model, layers).attribute(x.clone(), target=TARGET)
    for ours, captum_relevance in zip(relevances, theirs, strict=True):
        torch.testing.assert_close(ours, captum_relevance.detach())


def test_layer_with_two_inputs_gives_a_tuple():
    class Addition(nn.Module):
        def forward(self, a: Tensor, b: Tensor) -> Tensor:
            return a + b

    class TwoBranches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.left, self.right, self.add = nn.Linear(4, 5), nn.Linear(4, 5), Addition()
            self.head = nn.Linear(5, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.head(torch.relu(self.add(self.left(x), self.right(x))))

    model = seeded(TwoBranches)
    x = inputs((4,))
    left, right = attrkit.LayerLRP(model, model.add).attribute(
        x, target=TARGET, attribute_to_layer_input=True
    )
    expected = reference_lrp(model, (x,), TARGET, layer=model.add, to_input=True)
    assert_all_close((left,), expected)
    assert_all_close((right,), reference_lrp_second_input(model, x))


def reference_lrp_second_input(model: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    store: list[Tensor] = []
    handle = model.add.register_forward_pre_hook(
        lambda module, args: (store.append(args[1]), (args[0], args[1].clone()))[1]
    )
    try:
        from tests.reference import definition_lrp, select_reference

        leaf = x.clone().requires_grad_()
        with definition_lrp():
            selected = select_reference(model(leaf.clone()), TARGET)
        return torch.autograd.grad(selected, store, selected.detach())
    finally:
        handle.remove()


def test_verbose_prints_every_application(capsys):
    reused, _ = _reused_and_twin()
    attrkit.LRP(reused).attribute(inputs((5,)), target=TARGET, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    square = [line for line in lines if "Linear(in_features=6, out_features=6" in line]
    assert len(lines) == 7  # 4 linear applications, 3 ReLUs
    assert len(square) == 2
    assert all(line.startswith("Applied <rule ") for line in lines)


def test_quiet_without_verbose(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attrkit.LRP(seeded(models.LrpCNN)).attribute(inputs((3, 12, 12)), target=TARGET)
    assert capsys.readouterr().out == ""


def test_is_a_captum_attribution_with_captum_s_properties():
    model = seeded(mlp)
    method = attrkit.LRP(model)
    assert isinstance(method, captum.attr.GradientAttribution)
    assert method.multiplies_by_inputs
    assert method.has_convergence_delta()
    assert isinstance(attrkit.LayerLRP(model, model[0]), captum.attr.LayerAttribution)
    with pytest.raises(NotImplementedError):
        method.attribute_future()
    info = attrkit.method_info("LRP")
    assert (info.name, info.family, info.captum_name) == ("lrp", "lrp", "LRP")
    assert attrkit.method_info("layer_lrp").layer_output


# ------------------------------------------------------------------------ no residue


def test_no_residue_and_thread_safe_with_different_composites():
    model = seeded(models.LrpCNN)
    x = inputs((3, 12, 12))
    expected = {name: lrp(model, name, x) for name in (None, "epsilon_plus_flat")}
    before = snapshot(model, (x,))
    results: dict[Any, list[Tensor]] = {name: [] for name in expected}
    barrier = threading.Barrier(4)

    def run(name: str | None) -> None:
        barrier.wait()
        for _ in range(3):
            results[name].append(lrp(model, name, x))

    threads = [threading.Thread(target=run, args=(name,)) for name in list(expected) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    from tests.helpers import assert_same

    assert_same(before, snapshot(model, (x,)))
    for name, got in results.items():
        assert len(got) == 6
        for result in got:
            torch.testing.assert_close(result, expected[name])


@pytest.mark.slow
@pytest.mark.parametrize(
    "composite", [None, "epsilon_plus_flat"], ids=["captum-rules", "plus-flat"]
)
def test_compiled_model_gives_the_same_relevance_quietly(composite):
    torch._dynamo.reset()
    model = seeded(models.LrpCNN)
    x = inputs((3, 12, 12))
    expected = lrp(model, composite, x)
    compiled = torch.compile(model, backend="eager")
    compiled(x)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        results = [lrp(compiled, composite, x) for _ in range(2)]
    assert [str(w.message) for w in shown] == []
    for result in results:
        torch.testing.assert_close(result, expected)


# -------------------------------------------------------------------------------- errors

SOFTMAX_MODEL = lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.Softmax(-1))  # noqa: E731


class Product(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 4), nn.Linear(5, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.a(x) * torch.sigmoid(self.b(x))


class Quotient(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 3), nn.Linear(5, 3, bias=False)
        self.offset = torch.full((3,), 4.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.a(x).detach() / (self.b(x) + self.offset)


class NormAfterActivation(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.norm, self.head = nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(torch.relu(self.fc(x))))


class SquaredSum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x).sum(dim=1, keepdim=True)


@pytest.mark.parametrize(
    ("factory", "composite", "match"),
    [
        (SOFTMAX_MODEL, None, r"softmax \(autograd node SoftmaxBackward0\).*explain the logits"),
        (Product, None, r"no relevance rule for a product of two tensors that both carry"),
        (SquaredSum, None, r"no relevance rule for sum"),
        (Quotient, None, r"quotient by a tensor that carries relevance"),
        (NormAfterActivation, "epsilon_plus", r"batch-norm that does not directly follow"),
    ],
    ids=[
        "softmax",
        "product",
        "sum-over-dims",
        "quotient-by-relevance",
        "batch-norm-after-relu-in-composite",
    ],
)
def test_op_without_relevance_rule_is_refused(factory, composite, match):
    model = seeded(factory)
    x = inputs((5,))
    target = None if isinstance(model, SquaredSum) else TARGET
    with pytest.raises(attrkit.UnsupportedModelError, match=match):
        attrkit.create("lrp", model, composite=composite).attribute(x, target=target)
    assert torch._C._len_torch_function_stack() == 0


def test_batch_norm_in_training_mode_is_refused_by_composites():
    model = seeded(pooling_cnn).train()
    with pytest.raises(attrkit.UnsupportedModelError, match=r"training mode.*model\.eval\(\)"):
        attrkit.create("lrp", model, composite="epsilon_plus").attribute(
            inputs((3, 8, 8)), target=TARGET
        )


def test_merged_batch_norm_whose_layer_feeds_another_op_is_refused():
    class Forked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.norm, self.head = nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)

        def forward(self, x: Tensor) -> Tensor:
            z = self.fc(x)
            return self.head(torch.relu(self.norm(z)) + z)

    with pytest.raises(attrkit.UnsupportedModelError, match="used by other ops too"):
        attrkit.create("lrp", seeded(Forked), composite="epsilon_plus").attribute(
            inputs((5,)), target=TARGET
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"composite": "epsilon_box"}, ValueError, r"`composite` 'epsilon_box' is not one of"),
        ({"composite": 3}, TypeError, r"`composite` must be a composite's name \(str\), got int"),
        ({"composite": "epsilon_plus", "gamma": 0.5}, TypeError, r"does not take 'gamma'"),
        ({"composite": "epsilon_gamma_box"}, TypeError, r"needs 'low', 'high'"),
        ({"epsilon": 0.1}, TypeError, r"'epsilon' are parameters of zennit's composites"),
    ],
)
def test_bad_composite_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        attrkit.create("lrp", seeded(mlp), **kwargs)


def test_bad_module_rules():
    model = seeded(mlp)
    model[0].rule = "epsilon"
    with pytest.raises(TypeError, match=r"`Linear.rule` must be one of Captum's PropagationRule"):
        attrkit.LRP(model)

    class Hooked(lrp_rules.EpsilonRule):
        def _create_backward_hook_output(self, outputs: Tensor) -> Any:
            return super()._create_backward_hook_output(outputs)

    model[0].rule = Hooked()
    with pytest.raises(TypeError, match=r"overrides Captum's hooks \(_create_backward_hook_output"):
        attrkit.LRP(model)


def test_custom_captum_rule_that_changes_the_weights():
    class Halve(lrp_rules.PropagationRule):
        def _manipulate_weights(self, module: Any, inputs: Any, outputs: Any) -> None:
            module.weight.data = 0.5 * module.weight.data

    model = seeded(mlp)
    model[2].rule = Halve()
    x = inputs((6,))
    ours = attrkit.LRP(model).attribute(x, target=TARGET)
    torch.testing.assert_close(ours, captum_lrp(model, x).detach())


def test_identity_rule_on_a_layer_that_changes_the_shape():
    model = seeded(mlp)
    model[0].rule = lrp_rules.IdentityRule()
    with pytest.raises(ValueError, match="identity rule passes the relevance"):
        attrkit.LRP(model).attribute(inputs((6,)), target=TARGET)


def test_verbose_must_be_a_bool():
    with pytest.raises(TypeError, match="`verbose` must be a bool, got str"):
        attrkit.LRP(seeded(mlp)).attribute(inputs((6,)), target=TARGET, verbose="yes")


def test_layer_lrp_errors():
    model = seeded(mlp)
    with pytest.raises(ValueError, match="`layer` is an empty list"):
        attrkit.LayerLRP(model, [])
    with pytest.raises(ValueError, match="not a submodule"):
        attrkit.LayerLRP(model, [model[0], nn.Linear(2, 2)])
    reused = seeded(models.ReusedLinear)
    with pytest.raises(ValueError, match="ran 2 times"):
        attrkit.LayerLRP(reused, reused.square).attribute(inputs((5,)), target=TARGET)


def test_attributions_are_detached_and_inputs_untouched():
    model = seeded(mlp)
    x = inputs((6,))
    copy = x.clone()
    result = attrkit.LRP(model).attribute(x, target=TARGET)
    assert not result.requires_grad
    assert torch.equal(x, copy)
    assert not x.requires_grad
    assert as_tuple(result)[0].shape == x.shape
