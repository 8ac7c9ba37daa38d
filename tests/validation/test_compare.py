"""``attrkit.compare``: verdicts where the libraries must agree and where they must not (with
the audit's explanation), the metrics against independent computations, the zennit
adapter where zennit's definitions match, and the report exports."""

from __future__ import annotations

import json
import math
import runpy
import sys

import jsonschema
import numpy as np
import pytest
import scipy.stats
import torch
from torch import Tensor, nn

import attrkit
from attrkit.validation.comparison import (
    Tolerances,
    average_ranks,
    compare,
    compare_tensors,
    spearman,
    top_k_overlap,
)
from tests import models
from tests.cases import (
    DEFINITION_CASES,
    METHODS,
    PARITY_CASES,
    RULE_OF,
    Case,
    captum_agrees,
    case_params,
    first_target,
    target_forms,
)
from tests.helpers import ROOT, assert_same, snapshot
from tests.report_schemas import COMPARE_SCHEMA


def compare_case(case: Case, method: str, **kwargs):
    return compare(
        RULE_OF.get(method, method),
        case.build(),
        case.attribute_inputs(case.inputs()),
        target=first_target(case),
        additional_forward_args=case.extra_args(),
        **kwargs,
    )


# -------------------------------------------------------- agreement and disagreement
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", case_params(PARITY_CASES))
def test_libraries_agree_on_distinct_relu_modules(case, method):
    report = compare_case(case, method)
    assert report.pair("attrkit", "captum").verdict == "agree"
    assert report.audit.follows_definition("captum", RULE_OF[method])
    zennit = report.run("zennit")
    if len(case.input_shapes) == 1:
        assert report.pair("attrkit", "zennit").verdict == "agree"
    else:
        assert zennit.status == "unavailable"
        assert zennit.reason == "zennit's attributors take one input tensor"
    assert report.agree
    assert report.disagreements == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", case_params(DEFINITION_CASES))
def test_captum_disagreement_is_explained_by_the_audit(case, method):
    report = compare_case(case, method, libraries=("attrkit", "captum"))
    captum = report.run("captum")
    if captum_agrees(case, method):
        assert report.pair("attrkit", "captum").verdict == "agree"
        return
    explanation = report.audit.library_summary("captum", RULE_OF[method])
    assert explanation.startswith("Captum ")
    if captum.status == "error":  # Captum raises on this model
        assert captum.explanation == explanation
        assert report.pairs == ()
    else:
        pair = report.pair("attrkit", "captum")
        assert pair.verdict == "differ"
        assert pair.explanation == explanation
        assert pair.tensors[0].relative_l2_error > 1e-3
    assert report.audit_summary.startswith(explanation)


@pytest.mark.parametrize("case", case_params(DEFINITION_CASES[:2] + DEFINITION_CASES[-3:]))
def test_zennit_disagreement_is_explained_by_the_audit(case):
    report = compare_case(case, "Deconvolution", libraries=("attrkit", "zennit"))
    explanation = report.audit.library_summary("zennit", "deconvolution")
    zennit = report.run("zennit")
    if zennit.status == "error":
        assert zennit.explanation == explanation
    else:
        assert report.pair("attrkit", "zennit").explanation == explanation


def test_unexplained_disagreement_says_so():
    """A model whose forward depends on a global flag the libraries see differently is
    outside anything the audit knows: the report says the difference is unexplained."""

    class FlipOnSecondCall(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.relu, self.calls = nn.Linear(3, 2), nn.ReLU(), 0

        def forward(self, x: Tensor) -> Tensor:
            self.calls += 1
            return self.relu(self.fc(x)) * (1.0 if self.calls % 2 else 3.0)

    report = compare("saliency", FlipOnSecondCall(), torch.randn(4, 3), target=0)
    pair = report.pair("attrkit", "captum")
    assert pair.verdict == "differ"
    assert pair.explanation == "not explained by the audit or a known difference of definition"


def test_known_difference_of_definition_is_reported():
    model, x = models.SmallCNN().eval(), torch.randn(2, 3, 12, 12)
    report = compare(
        "integrated_gradients", model, x, target=1, method="riemann_trapezoid", n_steps=8
    )
    pair = report.pair("attrkit", "captum")
    assert pair.verdict == "differ"
    assert "riemann_trapezoid weights sum to (n_steps - 1) / n_steps" in pair.explanation
    # Captum's weights sum to 7/8 of attrkit's: the attributions differ by that factor.
    ours, theirs = (report.run(lib).attributions[0] for lib in ("attrkit", "captum"))
    torch.testing.assert_close(theirs, ours * 7 / 8)


# ------------------------------------------------------------------ zennit adapter
def _zennit_matches(report, *others: str) -> None:
    assert report.run("zennit").status == "ok", report.run("zennit").reason
    for other in others:
        assert report.pair(other, "zennit").verdict == "agree"


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        pytest.param("saliency", {}, id="saliency-abs"),
        pytest.param("saliency", {"abs": False}, id="gradient"),
        pytest.param("deconvolution", {}, id="deconvolution"),
        pytest.param("guided_backprop", {}, id="guided-backprop"),
        pytest.param(
            "integrated_gradients", {"method": "riemann_right", "n_steps": 12}, id="ig-zero"
        ),
        pytest.param(
            "integrated_gradients",
            {"method": "riemann_right", "n_steps": 12, "baselines": 0.5},
            id="ig-scalar-baseline",
        ),
        pytest.param(
            "integrated_gradients",
            {
                "method": "riemann_right",
                "n_steps": 12,
                "baselines": torch.full((1, 3, 12, 12), -1.0),
            },
            id="ig-tensor-baseline",
        ),
    ],
)
def test_zennit_matches_where_definitions_match(method, kwargs):
    model, x = models.SmallCNN().eval(), torch.randn(3, 3, 12, 12)
    report = compare(method, model, x, target=[0, 2, 4], **kwargs)
    _zennit_matches(report, "attrkit", "captum")
    assert not report.pair("attrkit", "zennit").stochastic


@pytest.mark.parametrize(("name", "target"), target_forms((3, 7)))
def test_zennit_takes_every_target_form(name, target):
    """Output of shape (N, 3, 7) and additional arguments: the one-hot output gradient is
    built from every target form attrkit accepts."""
    case = next(c for c in PARITY_CASES if c.id == "sequence-tagger-3d-output")
    report = compare(
        "guided_backprop",
        case.build(),
        case.inputs()[0],
        target=target,
        libraries=("attrkit", "zennit"),
    )
    _zennit_matches(report, "attrkit")


@pytest.mark.parametrize(("name", "target"), target_forms((4,)))
def test_zennit_with_additional_forward_args(name, target):
    case = next(c for c in DEFINITION_CASES if c.id == "relu-on-non-grad-argument")
    report = compare(
        "guided_backprop",
        case.build(),
        case.inputs()[0],
        target=target,
        additional_forward_args=case.extra_args(),
    )
    _zennit_matches(report, "attrkit")


@pytest.mark.parametrize("base", ["saliency", "guided_backprop"])
def test_zennit_smoothgrad_agrees_statistically(base):
    """zennit draws other noise (and its last sample has none): with many samples it is
    close to attrkit's and Captum's SmoothGrad, which are equal to each other."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.randn(4, 6)
    kwargs = {"abs": False} if base == "saliency" else {}
    report = compare(
        "noise_tunnel",
        model,
        x,
        target=[0, 1, 2, 0],
        base_method=base,
        nt_samples=400,
        stdevs=0.3,
        **kwargs,
    )
    assert report.pair("attrkit", "captum").verdict == "agree"
    assert not report.pair("attrkit", "captum").stochastic
    pair = report.pair("attrkit", "zennit")
    assert pair.stochastic
    assert pair.verdict == "agree"
    assert pair.tensors[0].cosine_similarity > 0.98
    assert pair.tensors[0].relative_l2_error > 0  # a different noise sample


@pytest.mark.parametrize(
    ("method", "kwargs", "reason"),
    [
        pytest.param(
            "integrated_gradients",
            {},
            "zennit's IntegratedGradients uses the right Riemann sum; pass "
            "method='riemann_right' to compare (got 'gausslegendre')",
            id="ig-gausslegendre",
        ),
        pytest.param(
            "integrated_gradients",
            {"method": "riemann_right", "multiply_by_inputs": False},
            "zennit's IntegratedGradients always multiplies by the inputs",
            id="ig-local",
        ),
        pytest.param(
            "input_x_gradient",
            {},
            "zennit has no attributor for Input x Gradient",
            id="input-x-gradient",
        ),
        pytest.param(
            "noise_tunnel",
            {"base_method": "saliency"},
            "zennit's SmoothGrad averages signed gradients; Saliency's abs=True averages "
            "absolute values (pass abs=False to compare)",
            id="smoothgrad-abs",
        ),
        pytest.param(
            "noise_tunnel",
            {"base_method": "saliency", "abs": False, "nt_type": "vargrad"},
            "zennit has no vargrad",
            id="vargrad",
        ),
        pytest.param(
            "layer_grad_cam",
            {"layer": "features.4"},
            "zennit has no attributor for Grad-CAM",
            id="grad-cam",
        ),
    ],
)
def test_zennit_unavailable_where_definitions_differ(method, kwargs, reason):
    report = compare(
        method, models.SmallCNN().eval(), torch.randn(2, 3, 12, 12), target=1, **kwargs
    )
    zennit = report.run("zennit")
    assert (zennit.status, zennit.reason) == ("unavailable", reason)
    assert report.pair("attrkit", "captum").verdict == "agree"


def test_library_not_installed_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "zennit", None)
    monkeypatch.delitem(sys.modules, "zennit.attribution", raising=False)
    report = compare("saliency", models.SmallCNN().eval(), torch.randn(2, 3, 12, 12), target=1)
    zennit = report.run("zennit")
    assert zennit.status == "unavailable"
    assert zennit.reason.startswith('zennit.attribution is not installed (pip install "attrkit[')


def test_captum_lacks_a_method(monkeypatch):
    import captum.attr

    monkeypatch.delattr(captum.attr, "Saliency")
    report = compare("saliency", models.SmallCNN().eval(), torch.randn(2, 3, 12, 12), target=1)
    assert (report.run("captum").status, report.run("captum").reason) == (
        "unavailable",
        "captum.attr has no Saliency",
    )


# ------------------------------------------------------------------------ metrics
@pytest.mark.parametrize("seed", range(5))
def test_spearman_and_ranks_match_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=40).astype(float)  # many ties
    b = a + rng.normal(size=40)
    np.testing.assert_allclose(average_ranks(a), scipy.stats.rankdata(a))
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)


def test_spearman_undefined():
    assert spearman(np.array([1.0]), np.array([2.0])) is None
    assert spearman(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])) is None


def test_top_k_overlap_by_hand():
    a = np.array([9.0, 8.0, 7.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    b = np.array([9.0, 0.0, 7.0, 1.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert top_k_overlap(a, b, 0.3) == pytest.approx(2 / 3)  # {0, 1, 2} vs {0, 4, 2}
    assert top_k_overlap(a, b, 0.01) == 1.0  # k = 1: position 0 in both


def test_compare_tensors_by_hand():
    a = torch.tensor([[3.0, 0.0, 4.0, 0.0]])
    b = torch.tensor([[3.0, 0.0, 0.0, 4.0]])
    c = compare_tensors(a, b, top_k=0.25)
    assert c.max_abs_difference == 4.0
    assert c.relative_l2_error == pytest.approx(math.sqrt(32) / 5)
    assert c.cosine_similarity == pytest.approx(9 / 25)
    assert c.top_k_overlap == 0.0  # position 2 vs position 3


def test_metrics_are_averaged_over_examples():
    a = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    b = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    assert compare_tensors(a, b).spearman == pytest.approx(0.0)  # (1 + -1) / 2


def test_shape_mismatch():
    c = compare_tensors(torch.zeros(2, 3), torch.zeros(2, 4))
    assert c.shape_mismatch == "shapes differ: (2, 3) and (2, 4)"
    assert c.relative_l2_error is None


def test_all_zero_attributions_agree():
    c = compare_tensors(torch.zeros(2, 3), torch.zeros(2, 3))
    assert (c.relative_l2_error, c.cosine_similarity, c.spearman) == (0.0, None, None)


def test_tolerances_decide_the_verdict():
    """Captum's riemann_trapezoid is 7/8 of attrkit's with 8 steps: a relative error of
    1/8, agreement exactly when rtol >= 1/8."""
    model, x = models.SmallCNN().eval(), torch.randn(2, 3, 12, 12)
    for rtol, verdict in ((0.124, "differ"), (0.126, "agree")):
        report = compare(
            "integrated_gradients",
            model,
            x,
            target=1,
            libraries=("attrkit", "captum"),
            tolerances=Tolerances(rtol=rtol),
            method="riemann_trapezoid",
            n_steps=8,
        )
        assert report.pair("attrkit", "captum").tensors[0].relative_l2_error == pytest.approx(
            1 / 8, rel=1e-4
        )
        assert report.pair("attrkit", "captum").verdict == verdict


@pytest.mark.parametrize(
    ("field", "value"), [("rtol", -1.0), ("atol", "0"), ("stochastic_cosine", True)]
)
def test_bad_tolerances(field, value):
    with pytest.raises(ValueError, match=f"`tolerances.{field}` must be a number >= 0"):
        Tolerances(**{field: value})


# -------------------------------------------------------------------------- seeds
def test_noise_is_seeded_identically_and_the_rng_is_restored():
    model, x = models.SmallCNN().eval(), torch.randn(2, 3, 12, 12)
    state = torch.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()
    first = compare("noise_tunnel", model, x, target=1, nt_samples=4, seed=3)
    again = compare("noise_tunnel", model, x, target=1, nt_samples=4, seed=3)
    other = compare("noise_tunnel", model, x, target=1, nt_samples=4, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert first.pair("attrkit", "captum").verdict == "agree"
    ours = first.run("attrkit").attributions[0]
    assert torch.equal(ours, again.run("attrkit").attributions[0])
    assert not torch.equal(ours, other.run("attrkit").attributions[0])


# ---------------------------------------------------------------- report exports
def test_exports_follow_the_schema():
    report = compare(
        "deconvolution", models.TinyDenseNet().eval(), torch.randn(2, 3, 6, 6), target=1
    )
    data = json.loads(report.to_json())
    jsonschema.validate(data, COMPARE_SCHEMA)
    assert data == report.to_dict()
    assert [run["library"] for run in data["runs"]] == ["attrkit", "captum", "zennit"]
    assert data["agree"] is False
    text, markdown = str(report), report.to_markdown()
    for pair in report.pairs:
        assert pair.name in text
        assert f"| {pair.name} | 0 |" in markdown
    assert "audit: Captum misses 1 functional ReLU in (root)" in text
    assert "attrkit / captum differ: Captum misses 1 functional ReLU in (root)" in text


def test_nan_becomes_null_in_json():
    class NaNModel(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return (x * float("nan")).sum(1, keepdim=True)

    report = compare("saliency", NaNModel(), torch.randn(2, 3), libraries=("attrkit", "captum"))
    data = json.loads(report.to_json())
    jsonschema.validate(data, COMPARE_SCHEMA)
    assert data["pairs"][0]["tensors"][0]["relative_l2_error"] is None
    assert data["pairs"][0]["verdict"] == "differ"


def test_method_without_relu_rule_has_no_audit():
    report = compare("saliency", models.SmallCNN().eval(), torch.randn(2, 3, 12, 12), target=1)
    assert report.audit is None
    assert report.audit_summary == ""
    jsonschema.validate(json.loads(report.to_json()), COMPARE_SCHEMA)


def test_layer_and_neuron_methods():
    model, x = models.SmallCNN().eval(), torch.randn(2, 3, 12, 12)
    cam = compare("layer_grad_cam", model, x, target=1, layer="features.4")
    assert cam.input_shapes == ((2, 3, 12, 12),)
    assert cam.pair("attrkit", "captum").tensors[0].shape == (2, 1, 4, 4)
    neuron = compare(
        "neuron_guided_backprop", model, x, layer=model.features[4], neuron_selector=(1, 2, 2)
    )
    assert neuron.relu_rule == "guided_backprop"
    assert neuron.pair("attrkit", "captum").verdict == "agree"


# ------------------------------------------------------------------------- hygiene
@pytest.mark.parametrize(
    "case_id",
    ["small-cnn-bn-pool-dropout", "relu-on-non-grad-argument", "inplace-functional-relu-on-input"],
)
def test_compare_leaves_no_trace(case_id):
    """Also where Captum or zennit raise halfway (their hooks must be gone)."""
    case = next(c for c in PARITY_CASES + DEFINITION_CASES if c.id == case_id)
    model = case.build()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    inputs = case.inputs()
    before = snapshot(model, inputs)
    report = compare(
        "deconvolution",
        model,
        case.attribute_inputs(inputs),
        target=first_target(case),
        additional_forward_args=case.extra_args(),
    )
    assert report.run("attrkit").status == "ok"
    assert_same(before, snapshot(model, inputs))


# -------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"libraries": "captum"}, TypeError, "`libraries` must be a sequence", id="libraries-str"
        ),
        pytest.param(
            {"libraries": ("attrkit", "lrp")},
            ValueError,
            "`libraries` must name at least one of attrkit, captum, zennit",
            id="libraries-unknown",
        ),
        pytest.param({"libraries": ()}, ValueError, "`libraries` must name", id="no-libraries"),
        pytest.param(
            {"top_k": 0}, ValueError, r"`top_k` must be a fraction in \(0, 1\]", id="top-k"
        ),
        pytest.param({"seed": 1.5}, TypeError, "`seed` must be an int", id="seed"),
        pytest.param({"tolerances": 1e-3}, TypeError, "`tolerances` must be an", id="tolerances"),
        pytest.param({"target": 9}, IndexError, "`target` 9: index 9 is out of range", id="target"),
        pytest.param(
            {"n_steps": 3},
            TypeError,
            "guided_backprop does not take 'n_steps'",
            id="unknown-option",
        ),
        pytest.param({"inputs": [1.0]}, TypeError, "`inputs` must be a torch.Tensor", id="inputs"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    arguments = {"target": 1, **kwargs}
    inputs = arguments.pop("inputs", torch.randn(2, 3, 12, 12))
    with pytest.raises(error, match=message):
        compare("guided_backprop", models.SmallCNN().eval(), inputs, **arguments)


def test_unknown_method():
    with pytest.raises(KeyError, match="no attribution method named 'guided_backdrop'"):
        compare("guided_backdrop", models.SmallCNN(), torch.randn(2, 3, 12, 12))


def test_target_for_a_neuron_method():
    with pytest.raises(ValueError, match="`target`: neuron_deconvolution takes no target"):
        compare(
            "neuron_deconvolution",
            models.SmallCNN(),
            torch.randn(2, 3, 12, 12),
            target=1,
            layer="features.4",
            neuron_selector=0,
        )


def test_convergence_delta_is_refused():
    with pytest.raises(ValueError, match="`return_convergence_delta`"):
        compare(
            "integrated_gradients",
            models.SmallCNN(),
            torch.randn(2, 3, 12, 12),
            target=1,
            return_convergence_delta=True,
        )


def test_attrkit_errors_propagate_and_other_libraries_errors_are_reported():
    with pytest.raises(RuntimeError, match="forward failed on purpose"):
        compare("saliency", models.RaisingNet(), torch.randn(2, 5), target=0)
    case = next(c for c in DEFINITION_CASES if c.id == "inplace-functional-relu-on-input")
    report = compare_case(case, "Deconvolution")
    for library in ("captum", "zennit"):
        run = report.run(library)
        assert run.status == "error"
        assert run.reason.startswith("RuntimeError: a ")
        assert "in-place functional ReLU applied to the model's input" in run.explanation


def test_attrkit_module_exports():
    assert attrkit.compare is compare
    assert attrkit.Tolerances is Tolerances


# --------------------------------------------------------------------- the docs page
def test_validation_page_example_runs_and_says_what_the_page_says():
    """docs/validation.rst shows docs/examples/validation_densenet.py and the output the
    docs build records from it; the script asserts its claims, and the page's prose names
    what the audit finds (its count is in the recorded output, not typed in the prose)."""
    page = (ROOT / "docs" / "validation.rst").read_text()
    assert ".. literalinclude:: examples/validation_densenet.py" in page
    assert ".. literalinclude:: _generated/examples/validation_densenet.txt" in page
    namespace = runpy.run_path(str(ROOT / "docs" / "examples" / "validation_densenet.py"))
    issues = namespace["audit"].issues("captum")
    assert "The audit finds the functional ReLUs" in page
    assert issues
    assert {f.form for f in issues} == {"functional"}
