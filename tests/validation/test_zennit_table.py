"""The zennit adapter's table: the composite comes from the method's backward rule, a new
method costs one row, and a rule without a zennit composite is reported, not guessed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import attrkit
from attrkit.core.targets import parse_target
from attrkit.engine.rules.relu import DECONVOLUTION, GUIDED_BACKPROP, PASS
from attrkit.validation.adapters import MethodRequest, ZennitAdapter
from attrkit.validation.adapters.zennit import GRADIENT, ZENNIT_METHODS, zennit_composite

pytest.importorskip("zennit")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)).eval()


def _request(info: attrkit.MethodInfo, model: nn.Module, x: torch.Tensor) -> MethodRequest:
    return MethodRequest(
        info=info,
        model=model,
        inputs=(x,),
        is_tuple=False,
        parsed_target=parse_target(2, x.shape[0]),
        target=2,
    )


@pytest.mark.parametrize(
    ("method", "composite"),
    [("deconvolution", "DeconvNet"), ("guided_backprop", "GuidedBackprop"), ("saliency", None)],
)
def test_composite_is_zennits_equivalent_of_the_rule(method, composite):
    assert zennit_composite(attrkit.method_info(method)) == composite


def test_a_new_method_needs_one_row(monkeypatch):
    """A copy of Deconvolution under another name, given the GRADIENT row, is computed by
    zennit with the DeconvNet composite: equal to attrkit's Deconvolution on a model whose
    ReLU zennit's hooks reach."""
    info = dataclasses.replace(attrkit.method_info("deconvolution"), name="deconvolution_copy")
    monkeypatch.setitem(ZENNIT_METHODS, "deconvolution_copy", GRADIENT)
    model, x = _model(), torch.randn(4, 5)
    request = _request(info, model, x)
    adapter = ZennitAdapter()
    assert adapter.supports(request)
    (zennit_result,) = adapter.attribute(request)
    expected = attrkit.Deconvolution(model).attribute(x, target=2)
    torch.testing.assert_close(zennit_result, expected)
    # and the rule decides: with Guided Backprop's rule the same row gives its result
    info = dataclasses.replace(info, rules=(GUIDED_BACKPROP,))
    (zennit_result,) = adapter.attribute(_request(info, model, x))
    torch.testing.assert_close(zennit_result, attrkit.GuidedBackprop(model).attribute(x, target=2))


def test_without_a_row_zennit_is_unavailable():
    support = ZennitAdapter().supports(
        _request(attrkit.method_info("input_x_gradient"), _model(), torch.randn(2, 5))
    )
    assert not support
    assert support.reason == "zennit has no attributor for Input x Gradient"


def test_rule_without_a_composite_is_reported(monkeypatch):
    """zennit's ``Pass`` is a rule, not a composite: the adapter says so."""
    info = dataclasses.replace(
        attrkit.method_info("deconvolution"), name="pass_copy", rules=(PASS,)
    )
    monkeypatch.setitem(ZENNIT_METHODS, "pass_copy", GRADIENT)
    support = ZennitAdapter().supports(_request(info, _model(), torch.randn(2, 5)))
    assert not support
    assert support.reason == "zennit's Pass is not a composite (zennit.composites.Pass)"


def test_rules_of_two_composites_are_reported():
    info = dataclasses.replace(
        attrkit.method_info("deconvolution"), rules=(DECONVOLUTION, GUIDED_BACKPROP)
    )
    with pytest.raises(LookupError, match="no composite with DeconvNet and GuidedBackprop"):
        zennit_composite(info)
