"""audit_lrp lists every layer and activation application with Captum's and zennit's
verdicts; compare runs LRP through the three libraries and explains their differences
with it."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import attrkit
from attrkit.validation import audit_lrp
from tests import models
from tests.methods.test_lrp import TARGET, inputs, pooling_cnn, seeded


def verdicts(report, library):
    return [(f.location, f.spelling, f.verdict(library).status) for f in report.layers]


def test_module_network_is_reached_everywhere():
    model = seeded(models.LrpCNN)
    report = audit_lrp(model, inputs((3, 12, 12)))
    assert len(report.layers) == 13  # 7 layers, 3 ReLUs, tanh, 2 pools (the view: none)
    assert report.follows_definition("captum")
    assert report.follows_definition("zennit")
    assert report.summary() == (
        "Captum reaches all 13 applications; zennit reaches all 13 applications."
    )


def test_functional_layers_are_missed():
    report = audit_lrp(seeded(lambda: models.LrpCNN("functional")), inputs((3, 12, 12)))
    captum = verdicts(report, "captum")
    assert ("(root)", "torch.conv2d", "missed") in captum  # F.conv2d is torch.conv2d
    assert ("(root)", "aten.linear", "missed") in captum
    assert ("(root)", "torch.relu", "ok") in captum  # a ReLU's mask changes nothing here
    zennit = {(loc, sp): st for loc, sp, st in verdicts(report, "zennit")}
    assert zennit["(root)", "F.max_pool2d_with_indices"] == "ok"  # zennit keeps its gradient
    assert zennit["(root)", "F.batch_norm"] == "missed"
    assert report.library_summary("captum") == (
        "Captum misses 9 functional layers in (root), and misses 1 functional activation in (root)"
    )


def test_reused_module_and_unsupported_modules():
    reused = seeded(models.ReusedLinear)
    report = audit_lrp(reused, inputs((5,)))
    square = [f for f in report.layers if f.location == "square"]
    assert [f.applications for f in square] == [2, 2]
    assert {f.captum.status for f in square} == {"crash"}
    assert {f.zennit.status for f in square} == {"wrong"}
    flat = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    refused = audit_lrp(flat, torch.randn(2, 4))
    assert refused.captum_refuses == ("2",)
    assert "raises TypeError: no rule for the leaf module 2" in refused.summary()


def test_residual_sum_is_missed_by_both():
    report = audit_lrp(seeded(models.ResidualBlockNet), inputs((2, 6, 6)))
    sums = [f for f in report.layers if f.op == "sum of two tensors"]
    assert len(sums) == 1
    assert (sums[0].captum.status, sums[0].zennit.status) == ("missed", "missed")


def test_report_formats():
    report = audit_lrp(seeded(models.ReusedLinear), inputs((5,)))
    data = json.loads(report.to_json())
    assert data["summary"] == report.summary()
    assert len(data["layers"]) == len(report.layers)
    assert "| square |" in report.to_markdown()
    assert "Captum crash (rows" in str(report)


def test_audit_lrp_errors():
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module"):
        audit_lrp(lambda x: x, torch.randn(2, 3))


def test_compare_agrees_with_captum_and_explains_the_functional_twin():
    x = inputs((3, 12, 12))
    module = attrkit.compare("lrp", seeded(models.LrpCNN), x, target=TARGET)
    assert module.pair("attrkit", "captum").verdict == "agree"
    assert module.run("zennit").status == "unavailable"
    twin = attrkit.compare("lrp", seeded(lambda: models.LrpCNN("mixed")), x, target=TARGET)
    pair = twin.pair("attrkit", "captum")
    assert pair.verdict == "differ"
    assert "Captum misses 6 functional layers" in pair.explanation


def test_compare_with_a_composite_agrees_with_zennit():
    x = inputs((3, 8, 8))
    report = attrkit.compare(
        "lrp",
        seeded(pooling_cnn),
        x,
        target=TARGET,
        composite="epsilon_gamma_box",
        low=-3.0,
        high=3.0,
    )
    assert report.pair("attrkit", "zennit").verdict == "agree"
    assert "no zennit composites" in report.run("captum").reason


def test_compare_layer_lrp_on_a_layer_captum_has_no_rule_for():
    model = seeded(models.LrpCNN)
    report = attrkit.compare("layer_lrp", model, inputs((3, 12, 12)), target=TARGET, layer="relu1")
    assert "needs a layer it has a rule for" in report.run("captum").reason
    conv = attrkit.compare("layer_lrp", model, inputs((3, 12, 12)), target=TARGET, layer="conv2")
    assert conv.pair("attrkit", "captum").verdict == "agree"
