"""The shared method tester (tests/tester.py) run over every registered method.

Methods come from ``attrkit.available_methods()``, selected by their ``MethodInfo``:

- **parity with Captum** (methods with a ``captum_name``; tests/methods/test_parity.py):
  every configuration of the ``METHOD_SPECS`` table on every model case where Captum
  follows the definition (``captum_agrees_with``), in float32 and float64, against
  ``captum.attr``'s class of the same name; a guard checks that every method with a Captum
  namesake has a row;
- **the definition** (methods whose metadata says what their definition is,
  ``tester.definition_kind``; for a rule-based method, its rule's line in
  tests/reference.py): every configuration on every model case, including the ReLU usages
  where Captum deviates, in both dtypes; a guard checks that every method whose rules all
  have a reference line is covered;
- **hygiene, thread safety, typed errors, quietness, result structure**: every registered
  method through a quick call derived from its metadata (``tester.quick_call``).

Covering design for the target forms (``cases.target_forms``: up to 8 forms per output
shape) and neuron selectors (``cases.neuron_selectors``: up to 4 per layer shape). The forms
reach the model's output through ONE code path per method call, ``Target.select`` of
attrkit.core.targets (neuron selectors: ``select_neuron`` of attrkit.core.layers), so the
products here run each configuration x model case x dtype with ONE form, dealt in turn
(``tester.covering``) so that every form of every case appears
(``test_covering_design_reaches_every_form`` checks it). Every form also goes through each
other distinct target path, once per form and output-shape class:

============================================  ==============================================
path                                          tests
============================================  ==============================================
core ``Target.select`` (every branch: none,   parity and definition (every case's forms)
shared index, per-example gather, per-example and tests/core/test_targets.py (every
advanced indexing)                            form x output shape against the reference)
neuron selectors (``select_neuron``)          parity and definition, and
                                              tests/core/test_layers.py (every selector
                                              form x layer shape, output and input)
NoiseTunnel's per-example expansion           tests/methods/test_noise_tunnel.py (every
(``_expand_target``)                          form x output shape, against Captum)
IntegratedGradients' row expansion            tests/methods/test_integrated_gradients.py
(``AttributionCall.take``/``Target.take``)    (every form x output shape, chunked, vs Captum)
``compare`` (the target parsed once per       tests/validation/test_compare.py (1-d and 3-d
request) and the zennit adapter's one-hot     outputs) and test_compare_targets.py (the
output gradient                               scalar-output forms)
the dataset runner (its own forms: label,     tests/dataset/test_dataset.py and
predicted, fixed int or tuple, none)          tests/dataset/test_target_forms.py
============================================  ==============================================
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import attrkit
from attrkit.core.registry import takes_argument
from tests import models
from tests.cases import (
    ALL_CASES,
    LAYERS,
)
from tests.helpers import (
    as_tuple,
    assert_all_close,
    assert_same,
    snapshot,
)
from tests.tester import (
    QUICK_OPTIONS,
    applies,
    assert_covering_reaches_every_form,
    attrkit_contract,
    configurations,
    covering_params,
    definition,
    definition_kind,
    draws_more_than_noise,
    draws_noise,
    info,
    method_params,
    methods,
    quick_call,
    quick_call_on,
    quick_callable,
    reference_rule,
    takes_neuron_selector,
)

CASES = {case.id: case for case in ALL_CASES}


# --------------------------------------------------------------------------- definition

DEFINED = methods(lambda m: definition_kind(m) is not None)
DEFINITION_ROWS = [
    (spec, case)
    for name in DEFINED
    for spec in configurations(name)
    for case in ALL_CASES
    if applies(spec, case) and (not spec.layer or case.id in LAYERS)
]


@pytest.mark.parametrize(("spec", "case", "selection", "dtype"), covering_params(DEFINITION_ROWS))
def test_matches_definition(spec, case, selection, dtype):
    inputs = case.inputs(dtype)
    ours = spec.attribute(
        attrkit,
        case.build(dtype),
        LAYERS.get(case.id),
        case.attribute_inputs(inputs),
        selection,
        additional_forward_args=case.extra_args(dtype),
        **spec.kwargs(dtype),
    )
    expected = definition(spec, case, selection, dtype)
    for got, want in zip(as_tuple(ours), expected, strict=True):
        if want.numel() == 0:  # a guided layer map of an input it cannot be upsampled to
            assert got.numel() == 0
            continue
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    "name", methods(lambda m: bool(m.rules) and reference_rule(m) != "undefined")
)
def test_every_method_whose_rules_have_a_reference_line_is_defined(name):
    """A rule-based method is checked against the definition wherever the reference has
    its rule (tests/reference.py RULE_BACKWARDS): its shape of definition must be known.
    (Rules without a line are tested by their families' properties.)"""
    assert name in DEFINED, f"tests/tester.py definition_kind does not know {name}'s shape"


@pytest.mark.parametrize("path", [False, True], ids=["targets", "neuron-selectors"])
def test_covering_design_reaches_every_form(path):
    assert_covering_reaches_every_form(DEFINITION_ROWS, path)


# ---------------------------------------------------------------------------- hygiene

HYGIENE_CASE = CASES["small-cnn-bn-pool-dropout"]


def _model_with_grads(train: bool) -> torch.nn.Module:
    model = HYGIENE_CASE.build().train(train)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    model.features[1].weight.grad = None  # one parameter without .grad
    return model


def _comparable(state: dict, name: str, train: bool) -> dict:
    """What a call must leave as it was: BatchNorm's running statistics move in train
    mode exactly as in a plain forward pass, and a method that draws noise advances the
    global generator by its noise (tests/core/test_training_step.py checks both)."""
    if train:
        del state["buffers"]
    if draws_noise(info(name)):
        del state["rng_state"]
    return state


@pytest.mark.parametrize("name", method_params(attrkit_contract))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("requires_grad", [False, True], ids=["plain-input", "grad-input"])
def test_success_leaves_no_trace(name, train, requires_grad):
    """Hooks, training flags, parameters and their ``.grad``, buffers, the caller's
    tensors, grad mode, the random generator and the torch-function mode stack are as
    before (also in train mode, where dropout draws random numbers)."""
    model = _model_with_grads(train)
    x = torch.randn(2, 3, 12, 12).requires_grad_(requires_grad)
    call = quick_call_on(HYGIENE_CASE, name, target=1, neuron_selector=(1, 0, 0))
    before = snapshot(model, (x,))
    call.run(model, x)
    after = snapshot(model, (x,))
    assert_same(_comparable(before, name, train), _comparable(after, name, train))


def _raising_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.RaisingNet().eval()


#: (model, per-example input shape, layer, target, neuron selector, error): calls that fail.
FAILURES = {
    "forward-raises": (_raising_model, (5,), "fc", 0, 0, RuntimeError),
    "target-out-of-range": (
        HYGIENE_CASE.build,
        (3, 12, 12),
        "features.4",
        99,
        (99, 0, 0),
        IndexError,
    ),
    "target-missing": (HYGIENE_CASE.build, (3, 12, 12), "features.4", None, (0,), ValueError),
}


#: Every method with every failure that applies to it: a bad target or neuron selector
#: needs a method that selects one (``LayerActivation`` selects none).
FAILURE_ROWS = [
    pytest.param(name, failure, id=f"{failure}-{name}")
    for name in methods(attrkit_contract)
    for failure in FAILURES
    if failure == "forward-raises" or info(name).takes_target or takes_neuron_selector(info(name))
]


@pytest.mark.parametrize(("name", "failure"), FAILURE_ROWS)
def test_failure_leaves_no_trace(name, failure):
    factory, shape, layer, target, selector, error = FAILURES[failure]
    model = factory()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    x = torch.randn(2, *shape)
    call = quick_call(name, layer=layer, target=target, neuron_selector=selector)
    before = snapshot(model, (x,))
    with pytest.raises(error):
        call.run(model, x)
    assert_same(_comparable(before, name, False), _comparable(snapshot(model, (x,)), name, False))


# ----------------------------------------------------------------------- thread safety

THREADS_CASE = CASES["inception-style"]
THREADS = 3  # two attributing, one running plain backward passes
CALLS = 4


@pytest.mark.parametrize(
    "name", method_params(lambda m: attrkit_contract(m) and not draws_more_than_noise(m))
)
def test_concurrent_calls_on_one_model(name):
    """Threads sharing one method object on one model (functional in-place ReLUs in
    parallel branches), while another thread runs plain backward passes of the same
    model, all get the sequential results; the plain passes get the plain gradient.
    (Different methods at once, each call with a new object: tests/core/test_soak.py.)"""
    model = THREADS_CASE.build()
    (x,) = THREADS_CASE.inputs()
    # Without noise: threads share torch's global generator, so noisy results would
    # depend on the interleaving by design.
    call = quick_call_on(
        THREADS_CASE,
        name,
        target=[0, 2, 4],
        neuron_selector=(1, 2, 2),
        options={**QUICK_OPTIONS, "stdevs": 0.0},
    )
    explainer = call.explainer(model)
    expected = as_tuple(explainer.attribute(x, **call.kwargs))
    leaf = x.clone().requires_grad_()
    plain = torch.autograd.grad(model(leaf)[[0, 1, 2], [0, 2, 4]].sum(), leaf)[0]
    start = threading.Barrier(THREADS)
    failures: list[str] = []

    def attribute_repeatedly(worker: int) -> None:
        start.wait()
        for turn in range(CALLS):
            got = as_tuple(explainer.attribute(x, **call.kwargs))
            if not all(
                torch.allclose(a, b, rtol=1e-5, atol=1e-7)
                for a, b in zip(got, expected, strict=True)
            ):
                failures.append(f"worker {worker} call {turn}")

    def plain_backward_repeatedly() -> None:
        start.wait()
        for turn in range(CALLS):
            leaf = x.clone().requires_grad_()
            grad = torch.autograd.grad(model(leaf)[[0, 1, 2], [0, 2, 4]].sum(), leaf)[0]
            if not torch.allclose(grad, plain, rtol=1e-5, atol=1e-7):
                failures.append(f"plain backward call {turn}")

    threads = [threading.Thread(target=attribute_repeatedly, args=(i,)) for i in range(THREADS - 1)]
    threads.append(threading.Thread(target=plain_backward_repeatedly))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ------------------------------------------------------------------------- typed errors

IMAGES = torch.randn(2, 3, 12, 12)
#: (inputs, target, neuron selector, error, message pattern): one bad argument each. The
#: target rows name the neuron selector for the methods that take one instead.
BAD_ARGUMENTS = {
    "inputs-list": ([IMAGES], 1, (1, 0, 0), TypeError, r"`inputs` must be a torch\.Tensor or a tuple"),
    "inputs-int-dtype": (IMAGES.long(), 1, (1, 0, 0), TypeError, r"`inputs` has dtype torch\.int64"),
    "inputs-empty-tuple": ((), 1, (1, 0, 0), ValueError, r"`inputs` is an empty tuple"),
    "inputs-0d": (torch.tensor(1.0), 1, (1, 0, 0), ValueError, r"`inputs` is 0-dimensional"),
    "target-out-of-range": (IMAGES, 99, (99, 0, 0), IndexError, r"index 99 is out of range"),
    "target-type": (IMAGES, "cat", "top", TypeError, r"` must be .*got str"),
    "target-missing": (IMAGES, None, (0,), ValueError, r"leaves 16 values|is required"),
}  # fmt: skip


def _applies(name: str, bad: str) -> bool:
    """A bad target needs a method that selects something (``LayerActivation`` selects
    nothing); integer inputs are bad only for a method that differentiates them (a
    layer method may take token ids)."""
    method = info(name)
    if bad.startswith("target"):
        return method.takes_target or takes_neuron_selector(method)
    if bad == "inputs-int-dtype":
        return bool(getattr(method.cls, "differentiates_inputs", True))
    return True


BAD_ROWS = [
    pytest.param(name, bad, id=f"{bad}-{name}")
    for name in methods(attrkit_contract)
    for bad in BAD_ARGUMENTS
    if _applies(name, bad)
]


@pytest.mark.parametrize(("name", "bad"), BAD_ROWS)
def test_bad_argument_raises_a_typed_error_naming_it(name, bad):
    inputs, target, selector, error, pattern = BAD_ARGUMENTS[bad]
    method = info(name)
    # (a method that takes both, neuron conductance, may name either)
    arguments = [a for a in ("target", "neuron_selector") if takes_argument(method, a)]
    if bad.startswith("inputs"):
        arguments = ["inputs"]
    model = HYGIENE_CASE.build()
    hooks = [dict(m._forward_hooks) | dict(m._forward_pre_hooks) for m in model.modules()]
    call = quick_call_on(HYGIENE_CASE, name, target=target, neuron_selector=selector)
    with pytest.raises(error, match=pattern) as raised:
        call.run(model, inputs)
    # The built-in type, or attrkit's subclass of it that is an AssertionError too (where
    # Captum asserts): never another exception that merely passes for one.
    assert type(raised.value).__module__ in ("builtins", "attrkit.core.errors")
    assert isinstance(raised.value, (TypeError, ValueError, IndexError))
    assert any(f"`{argument}" in str(raised.value) for argument in arguments)
    assert torch._C._len_torch_function_stack() == 0
    assert torch.is_grad_enabled()
    assert hooks == [dict(m._forward_hooks) | dict(m._forward_pre_hooks) for m in model.modules()]


# ------------------------------------------------------------------ quiet, and structure

QUIET_CASE = CASES["densenet-style"]


@pytest.mark.parametrize("name", method_params(quick_callable))
def test_normal_call_is_quiet(name, recwarn):
    call = quick_call_on(QUIET_CASE, name)
    call.run(QUIET_CASE.build(), QUIET_CASE.attribute_inputs(QUIET_CASE.inputs()))
    assert len(recwarn) == 0


@pytest.mark.parametrize("name", method_params(lambda m: quick_callable(m) and not m.layer_output))
def test_result_structure_follows_inputs(name):
    """Tensor in, tensor out; tuple in, tuple out (also a one-element tuple), with the
    inputs' shapes."""
    model = HYGIENE_CASE.build()
    call = quick_call_on(HYGIENE_CASE, name)
    x = torch.randn(2, 3, 12, 12)
    torch.manual_seed(0)
    np.random.seed(0)  # (GradientShap draws from NumPy's generator too)
    as_tensor = call.run(model, x)
    torch.manual_seed(0)
    np.random.seed(0)
    as_one_tuple = call.run(model, (x,))
    assert isinstance(as_tensor, torch.Tensor)
    assert isinstance(as_one_tuple, tuple)
    assert len(as_one_tuple) == 1
    assert as_tensor.shape == x.shape
    assert_all_close(as_one_tuple, (as_tensor,))
