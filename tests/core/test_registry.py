"""The registry: every method by name, metadata, lookups, errors, plug-ins, and the
one-call ``attrkit.attribute``."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap

import captum.attr
import numpy as np
import pytest
import torch
from torch import nn

import attrkit
from attrkit.core.registry import built_from_model, register
from tests import models
from tests.tester import (
    QUICK_OPTIONS,
    method_params,
    methods,
    quick_call,
    quick_callable,
    wraps_a_method,
)

#: Classes attrkit exports that are not registered methods, and why.
NOT_REGISTERED = {
    "GradientAttribution": "the abstract base class of attrkit's methods",
    "ModifiedReluGradientAttribution": (
        "Captum's base class of the ReLU-rule methods, usable directly with the rule "
        "`use_relu_grad_output` picks; its subclasses are the registered methods"
    ),
}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return models.SmallCNN().eval()


def _arguments(name: str, model: nn.Module) -> tuple[dict, dict]:
    """Constructor and ``attribute`` arguments of a call of ``name`` on ``_model()``
    (without noise, so that two calls give the same result)."""
    call = quick_call(
        name,
        layer=model.features[4],
        target=1,
        neuron_selector=(0, 0, 0),
        options={**QUICK_OPTIONS, "stdevs": 0.0},
        image_shape=(3, 12, 12),
    )
    return call.init, call.kwargs


def test_available_methods_lists_every_exported_method():
    """The registry and ``attrkit.__all__`` agree: every registered method is exported
    under its class name, and every exported attribution class is registered (or listed
    in ``NOT_REGISTERED`` with its reason)."""
    names = attrkit.available_methods()
    assert names == sorted(names)
    registered = {attrkit.method_info(name).cls.__name__ for name in names}
    exported = {
        name
        for name in attrkit.__all__
        if inspect.isclass(getattr(attrkit, name))
        and issubclass(getattr(attrkit, name), captum.attr.Attribution)
    }
    for cls in registered:
        assert getattr(attrkit, cls) is attrkit.method_info(cls).cls
    assert exported - registered == set(NOT_REGISTERED)


@pytest.mark.parametrize("name", method_params())
def test_every_name_constructs_and_round_trips(name):
    """Every name (and alias) finds its metadata, which cites a paper with a link; where
    ``create`` builds the method from the model alone, the object is of the registered
    class and has the properties the metadata says."""
    info = attrkit.method_info(name)
    assert info.name == name
    for alias in (*info.aliases, name.upper(), name.replace("_", "-")):
        assert attrkit.method_info(alias) is info
    assert info.display_name
    assert "http" in info.paper
    if not built_from_model(info):
        return
    model = _model()
    init, _ = _arguments(name, model)
    explainer = attrkit.create(name, model, **init)
    assert isinstance(explainer, info.cls)
    assert isinstance(explainer, captum.attr.Attribution)
    assert info.multiplies_by_inputs == explainer.multiplies_by_inputs
    assert info.has_convergence_delta == explainer.has_convergence_delta()


@pytest.mark.parametrize(
    "name",
    methods(lambda m: m.captum_name is not None and not wraps_a_method(m)),
)
def test_signatures_match_captum(name):
    cls = attrkit.method_info(name).cls
    theirs_cls = getattr(captum.attr, attrkit.method_info(name).captum_name)
    for member in ("__init__", "attribute"):
        ours = inspect.signature(getattr(cls, member))
        theirs = inspect.signature(getattr(theirs_cls, member))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], member


def test_noise_tunnel_signature_matches_captum():
    for member in ("__init__", "attribute"):
        ours = inspect.signature(getattr(attrkit.NoiseTunnel, member))
        theirs = inspect.signature(getattr(captum.attr.NoiseTunnel, member))
        assert [(p.name, p.default) for p in ours.parameters.values()] == [
            (p.name, p.default) for p in theirs.parameters.values()
        ]


def test_metadata_describes_the_arguments():
    assert attrkit.method_info("saliency").attribute_arguments == ("abs",)
    assert attrkit.method_info("ig").attribute_arguments == (
        "baselines",
        "n_steps",
        "method",
        "internal_batch_size",
        "return_convergence_delta",
    )
    assert attrkit.method_info("ig").init_arguments == ("multiply_by_inputs",)
    assert attrkit.method_info("neuron_deconvolution").init_arguments == ("layer", "device_ids")
    assert attrkit.method_info("noise_tunnel").init_arguments == ("base_method",)
    assert attrkit.method_info("layer_grad_cam").layer_output
    assert attrkit.method_info("input_x_gradient").multiplies_by_inputs


def test_unknown_name_lists_methods_and_suggests_the_closest():
    available = ", ".join(attrkit.available_methods())
    with pytest.raises(
        KeyError,
        match=r"no attribution method named 'guided-backprob'\. Did you mean "
        rf"'guided_backprop'\? Available: {re.escape(available)}",
    ) as info:
        attrkit.create("guided-backprob", _model())
    assert isinstance(info.value, attrkit.UnknownMethodError)
    with pytest.raises(KeyError, match=r"named 'zzz'\. Available"):
        attrkit.method_info("zzz")


def test_method_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"`method` must be a method name \(str\), got int"):
        attrkit.method_info(3)


def test_duplicate_registration_is_an_error():
    with pytest.raises(
        ValueError,
        match=r"cannot register .*Impostor as 'gbp': that name already belongs to attrkit\.methods\.modified_relu\.GuidedBackprop",
    ):

        @register("impostor", aliases=("gbp",), display_name="x", family="gradient", paper="x")
        class Impostor(attrkit.GuidedBackprop):
            pass

    assert "impostor" not in attrkit.available_methods()


def test_create_rejects_unknown_constructor_arguments():
    with pytest.raises(TypeError, match=r"Saliency does not take 'layer' when constructed"):
        attrkit.create("saliency", _model(), layer="features.4")


def test_create_resolves_a_layer_name():
    model = _model()
    explainer = attrkit.create("layer_grad_cam", model, layer="features.4")
    assert explainer.layer is model.features[4]
    with pytest.raises(ValueError, match=r"`layer` 'features\.99' is not a submodule"):
        attrkit.create("layer_grad_cam", model, layer="features.99")


# (LimeBase and DataLoaderAttribution, which a quick call cannot build, are left out.)
@pytest.mark.parametrize("name", methods(quick_callable))
def test_one_call_attribute_equals_the_class(name):
    model = _model()
    x = torch.randn(2, 3, 12, 12)
    init, options = _arguments(name, model)
    torch.manual_seed(0)  # the perturbation methods that sample draw from torch's
    np.random.seed(0)  # GradientShap draws from NumPy's generator
    got = attrkit.attribute(model, x, method=name, **init, **options)
    torch.manual_seed(0)
    np.random.seed(0)
    expected = attrkit.create(name, model, **init).attribute(x, **options)
    torch.testing.assert_close(got, expected)


def test_one_call_attribute_rejects_unknown_options():
    with pytest.raises(TypeError, match=r"saliency does not take 'n_steps' \(its options: abs\)"):
        attrkit.attribute(
            _model(), torch.randn(1, 3, 12, 12), method="saliency", target=0, n_steps=5
        )


def test_entry_point_plugins_register(tmp_path):
    """A third-party package declaring an `attrkit.methods` entry point is registered
    when the registry is first used."""
    package = tmp_path / "my_plugin.py"
    package.write_text(
        textwrap.dedent(
            """
            import attrkit

            @attrkit.register("my_saliency", display_name="Mine", family="gradient", paper="https://example.org")
            class MySaliency(attrkit.Saliency):
                pass
            """
        )
    )
    dist = tmp_path / "my_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[attrkit.methods]\nmine = my_plugin\n")
    code = "import attrkit; print(attrkit.available_methods()); print(attrkit.method_info('my-saliency').cls.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "'my_saliency'" in result.stdout
    assert result.stdout.strip().endswith("MySaliency")
