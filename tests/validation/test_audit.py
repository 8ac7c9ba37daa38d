"""``attrkit.audit``: its per-ReLU findings on the test models, and its verdicts against
what Captum and zennit actually compute (the definition-based reference decides)."""

from __future__ import annotations

import inspect
import json
import threading
import warnings

import jsonschema
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from zennit.attribution import Gradient
from zennit.composites import DeconvNet
from zennit.composites import GuidedBackprop as GuidedBackpropComposite

import attrkit
from attrkit.validation.auditing import AuditReport, group_paths, relu_rule
from tests import models
from tests.cases import ALL_CASES, METHODS, RULE_OF, Case, captum_agrees, case_params, first_target
from tests.helpers import assert_same, captum_attribute, snapshot
from tests.reference import reference_attribution, select_reference
from tests.report_schemas import AUDIT_SCHEMA

MODELS_FILE = inspect.getsourcefile(models)


def audit_case(case: Case) -> AuditReport:
    return attrkit.audit(case.build(), case.attribute_inputs(case.inputs()), case.extra_args())


def call_lines(function: object, text: str) -> list[int]:
    """Line numbers (in tests/models.py) of the source lines of ``function`` containing
    ``text``."""
    source, start = inspect.getsourcelines(function)  # type: ignore[arg-type]
    return [start + offset for offset, line in enumerate(source) if text in line]


def matches_reference(result: tuple[Tensor, ...], expected: tuple[Tensor, ...]) -> bool:
    return all(
        torch.allclose(r, e, rtol=1e-4, atol=1e-6) for r, e in zip(result, expected, strict=True)
    )


# ------------------------------------------------------------------ extra reuse models
class ReuseInterleaved(models.ReusedReluParallel):
    """One nn.ReLU on two branches, the second branch computed after the first ReLU:
    Captum's output-gradient slot is still right (the audit must say ok)."""

    def forward(self, x: Tensor) -> Tensor:
        a = self.relu(self.left(x))
        b = self.relu(self.right(x))
        return self.out(torch.cat([a, b], 1))


class ReuseThreeApplications(ReuseInterleaved):
    """Three applications; the third one's input was computed before the first two."""

    def forward(self, x: Tensor) -> Tensor:
        left, right = self.left(x), self.right(x)
        a = self.relu(left)
        b = self.relu(self.left(a[:, :5] + x))
        c = self.relu(right)
        return self.out(torch.cat([a + b, c], 1))


class DeadReluBranch(nn.Module):
    """A ReLU whose result is discarded reads the same tensor as a live one (Captum's
    BasicModel_MultiLayer does this): neither counts as "used elsewhere"."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 4)
        self.relu, self.unused = nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        z = self.fc1(x)
        self.unused(z)
        return self.fc2(self.relu(z))


class TwoReluModulesOnOneInput(nn.Module):
    """``fc2(relu1(z)) + fc3(relu2(z))``: two distinct modules read one tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(5, 8), nn.Linear(8, 4), nn.Linear(8, 4)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        z = self.fc1(x)
        return self.fc2(self.relu1(z)) + self.fc3(self.relu2(z))


EXTRA_CASES = [
    Case("reuse-interleaved", ReuseInterleaved, ((5,),), (4,)),
    Case("reuse-three-applications", ReuseThreeApplications, ((5,),), (4,)),
    Case("dead-relu-branch", DeadReluBranch, ((5,),), (4,)),
    Case("two-relu-modules-one-input", TwoReluModulesOnOneInput, ((5,),), (4,)),
]


# --------------------------------------------------------- verdicts vs the libraries
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", case_params(ALL_CASES))
def test_captum_verdict_matches_the_documented_deviations(case, method):
    """tests/cases.py records where Captum deviates (reproduced in test_reference.py)."""
    report = audit_case(case)
    assert report.follows_definition("captum", RULE_OF[method]) == captum_agrees(case, method)


def _captum_follows_definition(case: Case, method: str) -> bool:
    model, inputs, target = case.build(), case.inputs(), first_target(case)
    try:
        theirs = captum_attribute(
            method,
            model,
            case.attribute_inputs(inputs),
            target=target,
            additional_forward_args=case.extra_args(),
        )
    except RuntimeError:
        return False
    expected = reference_attribution(
        case.build_reference(), inputs, target, case.extra_tuple(), RULE_OF[method]
    )
    return matches_reference(theirs, expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", case_params(EXTRA_CASES))
def test_captum_verdict_on_reuse_patterns_matches_captum(case, method):
    report = audit_case(case)
    expected = _captum_follows_definition(case, method)
    assert report.follows_definition("captum", RULE_OF[method]) == expected


def test_reuse_verdicts_are_the_expected_ones():
    """The reuse patterns above, by hand: only a ReLU whose input predates another
    application of its module is mixed up, for the deconvolution rule only."""
    three = attrkit.audit(ReuseThreeApplications(), torch.randn(3, 5))
    assert [f.captum.issue for f in three.relus] == ["", "", "reused_interleaved"]
    assert three.relus[2].captum.only_for == ("deconvolution",)
    assert [f.applications for f in three.relus] == [3, 3, 3]
    assert [f.call_sites for f in three.relus] == [3, 3, 3]
    interleaved = attrkit.audit(ReuseInterleaved(), torch.randn(3, 5))
    assert interleaved.follows_definition("captum")
    dead = attrkit.audit(DeadReluBranch(), torch.randn(3, 5))
    assert [f.on_gradient_path for f in dead.relus] == [False, True]
    # The unused ReLU's input feeds the live one, not the other way round.
    assert [f.input_used_elsewhere for f in dead.relus] == [1, 0]
    assert dead.follows_definition("captum")
    two = attrkit.audit(TwoReluModulesOnOneInput(), torch.randn(3, 5))
    assert [f.input_used_elsewhere for f in two.relus] == [1, 1]
    assert {f.captum.issue for f in two.relus} == {"input_used_elsewhere"}


def _zennit_follows_definition(case: Case, rule: str) -> bool:
    model, inputs, target = case.build(), case.inputs(), first_target(case)
    extra_tuple = case.extra_tuple()

    class Bound(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: Tensor) -> Tensor:
            return self.model(x, *extra_tuple)

    def one_hot(output: Tensor) -> Tensor:
        probe = output.detach().requires_grad_()
        (gradient,) = torch.autograd.grad(select_reference(probe, target).sum(), probe)
        return gradient

    composite = DeconvNet() if rule == "deconvolution" else GuidedBackpropComposite()
    try:
        with Gradient(Bound(), composite) as attributor:
            _, result = attributor(inputs[0].clone(), one_hot)
    except RuntimeError:
        return False
    expected = reference_attribution(case.build_reference(), inputs, target, extra_tuple, rule)
    return matches_reference((result,), expected)


SINGLE_INPUT_CASES = [case for case in ALL_CASES + EXTRA_CASES if len(case.input_shapes) == 1]


@pytest.mark.parametrize("rule", ["deconvolution", "guided_backprop"])
@pytest.mark.parametrize("case", case_params(SINGLE_INPUT_CASES))
def test_zennit_verdict_matches_zennit(case, rule):
    """zennit run on each model, compared with the definition: the audit predicts it."""
    expected = _zennit_follows_definition(case, rule)
    assert audit_case(case).follows_definition("zennit", rule) == expected


# ------------------------------------------------------------- per-ReLU findings
EXPECTED_SPELLINGS = {
    "F.relu": ("F.relu", False),
    "F.relu_inplace": ("F.relu", True),
    "F.relu_": ("torch.relu_", True),  # F.relu_ is torch.relu_
    "torch.relu": ("torch.relu", False),
    "torch.relu_": ("torch.relu_", True),
    "Tensor.relu": ("Tensor.relu", False),
    "Tensor.relu_": ("Tensor.relu_", True),
    "aten.relu": ("aten.relu.default", False),
    "aten.relu_": ("aten.relu_.default", True),
}


@pytest.mark.parametrize("spelling", list(models.RELU_SPELLINGS))
def test_functional_spellings_with_file_and_line(spelling):
    report = attrkit.audit(models.FunctionalReluMLP(spelling), torch.randn(2, 5))
    line = models.RELU_SPELLINGS[spelling].__code__.co_firstlineno
    expected_spelling, inplace = EXPECTED_SPELLINGS[spelling]
    assert len(report.relus) == 2
    for finding in report.relus:
        assert (finding.file, finding.line) == (MODELS_FILE, line)
        assert (finding.form, finding.spelling, finding.inplace) == (
            "functional",
            expected_spelling,
            inplace,
        )
        assert finding.location == "(root)"
        assert finding.captum.issue == finding.zennit.issue == "functional"


def test_reused_inplace_module():
    model = models.ResidualBlockNet()
    report = attrkit.audit(model, torch.randn(2, 2, 6, 6))
    lines = call_lines(models.ResidualBlockNet.forward, "self.relu(")
    assert [(f.location, f.form, f.inplace) for f in report.relus] == [("relu", "module", True)] * 2
    assert [f.line for f in report.relus] == lines
    assert all(f.file == MODELS_FILE for f in report.relus)
    assert [(f.applications, f.call_sites, f.reused) for f in report.relus] == [(2, 2, True)] * 2
    assert report.follows_definition("captum")
    assert report.follows_definition("zennit")


def test_relu_created_in_forward():
    (finding,) = attrkit.audit(models.ReluCreatedInForward(), torch.randn(2, 5)).relus
    assert (finding.form, finding.location, finding.spelling) == (
        "created_in_forward",
        "(root)",
        "nn.ReLU",
    )
    assert finding.line == call_lines(models.ReluCreatedInForward.forward, "nn.ReLU()(")[0]
    assert finding.captum.status == finding.zennit.status == "missed"


def test_relu_input_used_elsewhere():
    (finding,) = attrkit.audit(models.ReluInputUsedElsewhere(), torch.randn(2, 5)).relus
    assert finding.input_used_elsewhere == 1
    assert (finding.captum.status, finding.captum.issue) == ("wrong", "input_used_elsewhere")
    assert finding.zennit.status == "ok"


@pytest.mark.parametrize("functional", [True, False], ids=["functional", "module"])
def test_inplace_relu_on_the_input(functional):
    x = torch.randn(2, 5)
    original = x.clone()
    (finding,) = attrkit.audit(models.InplaceReluOnInput(functional), x).relus
    assert torch.equal(x, original)
    assert finding.inplace
    assert finding.input_is_model_input
    expected = "crash" if functional else "ok"
    assert finding.captum.status == finding.zennit.status == expected


def test_relu_on_an_argument_without_grad():
    report = attrkit.audit(models.ReluOnNonGradArgument(), torch.randn(2, 5), torch.randn(2, 8))
    on_input, on_gate = report.relus
    assert (on_input.input_requires_grad, on_input.on_gradient_path) == (True, True)
    assert (on_gate.input_requires_grad, on_gate.on_gradient_path) == (False, False)
    assert (on_gate.captum.status, on_gate.captum.issue) == ("crash", "input_without_grad")
    assert on_gate.zennit.status == "ok"
    assert on_input.applications == on_gate.applications == 2


def test_densenet_style_model():
    report = attrkit.audit(models.TinyDenseNet().eval(), torch.randn(2, 3, 6, 6))
    assert [(f.location, f.form) for f in report.relus] == [
        ("layers.0.relu1", "module"),
        ("layers.0.relu2", "module"),
        ("layers.1.relu1", "module"),
        ("layers.1.relu2", "module"),
        ("transition.0", "module"),
        ("(root)", "functional"),
    ]
    assert report.relus[-1].line == call_lines(models.TinyDenseNet.forward, "F.relu(")[0]
    assert report.summary() == (
        "Captum misses 1 functional ReLU in (root); zennit misses 1 functional ReLU in (root)."
    )


def test_inception_style_summary_groups_paths():
    report = attrkit.audit(models.TinyInception().eval(), torch.randn(2, 3, 6, 6))
    assert {f.location for f in report.relus} == {
        "stem",
        "branch1",
        "branch3.0",
        "branch3.1",
        "branch5.0",
        "branch5.1",
        "branch5.2",
        "pool_proj",
    }
    assert report.library_summary("captum") == (
        "Captum misses 8 functional ReLUs in branch*, pool_proj, stem"
    )


class OtherActivations(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 5)
        self.act = nn.Sequential(nn.ReLU6(), nn.LeakyReLU(), nn.SiLU(), nn.PReLU())

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.fc(x))
        return torch.sigmoid(F.gelu(x)) + x.tanh() + F.elu(x) + F.softplus(x) + F.mish(x)


def test_activations_that_no_relu_override_touches():
    report = attrkit.audit(OtherActivations(), torch.randn(2, 5))
    assert report.relus == ()
    assert [(a.location, a.name) for a in report.activations] == [
        ("act.0", "nn.ReLU6"),
        ("act.1", "nn.LeakyReLU"),
        ("act.2", "nn.SiLU"),
        ("act.3", "nn.PReLU"),
        ("(root)", "F.gelu"),
        ("(root)", "torch.sigmoid"),
        ("(root)", "Tensor.tanh"),
        ("(root)", "F.elu"),
        ("(root)", "F.softplus"),
        ("(root)", "F.mish"),
    ]
    assert report.summary().startswith("No ReLU: every ReLU-override method equals")
    assert "10 other activations" in report.summary()


METHOD_RULES = {
    "deconvolution": "deconvolution",
    "neuron_deconvolution": "deconvolution",
    "guided_backprop": "guided_backprop",
    "neuron_guided_backprop": "guided_backprop",
    "guided_grad_cam": "guided_backprop",
    "saliency": None,
    "integrated_gradients": None,
    "layer_grad_cam": None,
}


def test_relu_rule_names():
    assert {name: relu_rule(name) for name in METHOD_RULES} == (METHOD_RULES)


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        pytest.param(["fc"], "fc", id="one"),
        pytest.param(["(root)", "(root)"], "(root)", id="repeated"),
        pytest.param(
            ["features.denseblock1.denselayer1", "features.denseblock3.denselayer2"],
            "features.denseblock*",
            id="numbered-blocks",
        ),
        pytest.param(["layers.0.relu1", "layers.1.relu2"], "layers.*", id="module-list"),
        pytest.param(["layers.0.relu1"], "layers.0.relu1", id="single-numbered"),
        pytest.param(["a", "b", "c", "d", "e", "f"], "a, b, c, d, 2 more", id="limit"),
    ],
)
def test_group_paths(paths, expected):
    assert group_paths(paths) == expected


# ------------------------------------------------------------------ report exports
@pytest.mark.parametrize("case", case_params([ALL_CASES[0], *ALL_CASES[-4:]]))
def test_exports(case):
    report = audit_case(case)
    data = json.loads(report.to_json())
    jsonschema.validate(data, AUDIT_SCHEMA)
    assert data == report.to_dict()
    assert len(data["relus"]) == len(report.relus)
    text, markdown = str(report), report.to_markdown()
    assert report.summary() in text
    assert report.summary() in markdown
    for finding in report.relus:
        assert f"\n{finding.index}  {finding.location}" in text
        assert f"| {finding.index} | {finding.location} |" in markdown


# ------------------------------------------------------------------------ hygiene
def test_audit_leaves_no_trace():
    model = models.TinyDenseNet().train()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    before = snapshot(model, (x,))
    attrkit.audit(model, x)
    after = snapshot(model, (x,))
    del before["buffers"], after["buffers"]  # BatchNorm statistics move in train mode
    assert_same(before, after)


def test_audit_leaves_no_trace_when_the_forward_raises():
    model = models.RaisingNet()
    x = torch.randn(2, 5)
    before = snapshot(model, (x,))
    with pytest.raises(RuntimeError, match="forward failed on purpose"):
        attrkit.audit(model, x)
    assert_same(before, snapshot(model, (x,)))


def test_audit_ignores_other_threads():
    """A forward pass on another thread while the audit runs is not recorded."""
    other = models.FunctionalReluMLP("F.relu")
    started, release = threading.Event(), threading.Event()

    class Waiting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x: Tensor) -> Tensor:
            started.set()
            release.wait(timeout=30)
            return self.relu(x)

    def run_other() -> None:
        started.wait(timeout=30)
        for _ in range(20):
            other(torch.randn(2, 5))
        release.set()

    thread = threading.Thread(target=run_other)
    thread.start()
    report = attrkit.audit(Waiting(), torch.randn(2, 5))
    thread.join()
    assert [(f.location, f.spelling) for f in report.relus] == [("relu", "nn.ReLU")]


def test_audit_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attrkit.audit(models.TinyInception().eval(), torch.randn(2, 3, 6, 6))


# ------------------------------------------------------------------------- errors
def test_model_must_be_a_module():
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module, got function"):
        attrkit.audit(lambda x: x.relu(), torch.randn(2, 3))


def test_inputs_are_checked():
    with pytest.raises(TypeError, match=r"`inputs` must be a torch\.Tensor"):
        attrkit.audit(models.SmallCNN(), [1, 2])


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")
def test_torchscript_is_refused():
    scripted = torch.jit.script(nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
    with pytest.raises(attrkit.UnsupportedModelError):
        attrkit.audit(scripted, torch.randn(2, 3))


def test_compiled_model_is_audited_through_the_module_it_wraps():
    model = models.TinyDenseNet().eval()
    x = torch.randn(2, 3, 6, 6)
    compiled = attrkit.audit(torch.compile(model), x)  # never compiled: audited eagerly
    assert compiled.to_dict() == attrkit.audit(model, x).to_dict()


def test_unknown_library():
    report = attrkit.audit(models.SmallCNN(), torch.randn(1, 3, 12, 12))
    with pytest.raises(ValueError, match="`library` must be one of captum, zennit"):
        report.relus[0].verdict("lrp")


# -------------------------------------------------------------- real architectures
TORCHVISION = {
    # name: (constructor arguments, input size, whether Captum misses functional ReLUs)
    "resnet18": ({}, 64, False),
    "vgg11": ({}, 32, False),
    "densenet121": ({}, 32, True),
    "googlenet": ({"aux_logits": False, "init_weights": False}, 32, True),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision_architectures(name):
    """test_torchvision_models.py shows Captum differs from the definition exactly on the
    architectures with functional ReLUs; the audit finds them."""
    tv_models = pytest.importorskip("torchvision.models")  # the test extra installs it
    kwargs, size, functional = TORCHVISION[name]
    torch.manual_seed(0)
    model = getattr(tv_models, name)(num_classes=7, **kwargs).eval()
    report = attrkit.audit(model, torch.randn(1, 3, size, size))
    assert report.follows_definition("captum") == (not functional)
    issues = {f.captum.issue for f in report.issues("captum")}
    assert issues == ({"functional"} if functional else set())
