"""Bad-input fuzzing: every registered method, called with one argument replaced by a
random value of the wrong type, shape, dtype, device or layout (NaN/inf values, empty
batches, zero-size dimensions, non-contiguous, channels-last, expanded, sparse and meta
tensors), either

- returns a correct result: the right structure, shape and dtype, and the same numbers as
  for a contiguous copy of the same values (NaN where the values are NaN), or
- raises ``TypeError`` / ``ValueError`` / ``IndexError`` whose message names the argument
  (an exception raised by the model itself, or by a user's callable, passes unchanged),

never hangs, and leaves nothing behind: hooks, training flags, parameters and ``.grad``,
grad mode, the torch-function mode stack, the random generator (but for NoiseTunnel,
which draws from it on purpose) and the caller's tensors (values, version, grad flag).
"""

from __future__ import annotations

import math
import os
import traceback
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import attrkit
from tests.helpers import ROOT, as_tuple, assert_same, run_in_thread, snapshot
from tests.models import BATCH, IMAGE, FuzzNet
from tests.strategies import (
    DTYPES,
    JUNK,
    TensorSpec,
    junk,
    near_shapes,
    some_tensors,
    tensor_specs,
)
from tests.tester import (
    attrkit_contract,
    definition_kind,
    draws_noise,
    method_params,
    one_gradient,
    quick_call,
)

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

# ------------------------------------------------------------------ valid calls


def valid_arguments(name: str, model: FuzzNet) -> tuple[dict[str, Any], dict[str, Any]]:
    """Constructor and ``attribute`` arguments of a valid call of method ``name``."""
    call = quick_call(name, layer=model.conv, target=1, neuron_selector=(1, 2, 2))
    return call.init, call.kwargs


# ------------------------------------------------------------------ bad values

COUNTS = st.one_of(
    st.integers(-3, 6), st.sampled_from([j for j in JUNK if not (type(j) is int and j > 100)])
)
#: Flags are read by truth value; an array's truth value is an error of NumPy's own.
BOOLS = st.one_of(st.booleans(), junk().filter(lambda value: not isinstance(value, np.ndarray)))
FLOATS = st.sampled_from([0.0, 0.1, -0.1, 1.0, math.nan, math.inf, -math.inf, 1e30])
IMAGE_TENSORS = tensor_specs(
    shapes=st.one_of(st.just((BATCH, *IMAGE)), near_shapes((BATCH, *IMAGE))),
    dtypes=st.sampled_from(DTYPES[:2] * 4 + DTYPES),
).map(TensorSpec.make)
INDICES = st.one_of(st.integers(-6, 6), st.just(2**70), st.just(-(2**70)))
SLICES = st.builds(
    slice,
    st.one_of(st.none(), st.integers(-4, 4), st.just("a"), st.just(1.5)),
    st.one_of(st.none(), st.integers(-4, 4)),
    st.one_of(st.none(), st.integers(-2, 2)),
)
SELECTOR_ENTRIES = st.one_of(INDICES, SLICES, st.sampled_from([None, Ellipsis, True, 1.5]))
SELECTOR_CALLABLES = st.sampled_from(
    [
        lambda t: t[:, 0, 0, 0],
        lambda t: t.sum(),
        lambda t: t[:, 0],
        lambda t: 3,
        lambda t: t.long().flatten(1).sum(1),
        lambda t: t.detach()[:, 0, 0, 0],
        lambda t: t[:0, 0, 0, 0],
    ]
)


def _option_values(name: str) -> st.SearchStrategy[Any]:
    """Random values for one method option, wrong ones included."""
    tensors = some_tensors(shapes=st.one_of(near_shapes((BATCH, *IMAGE)), st.just((1, *IMAGE))))
    table: dict[str, st.SearchStrategy[Any]] = {
        "baselines": st.one_of(
            FLOATS, tensors, junk(), st.tuples(tensors), st.tuples(FLOATS, FLOATS)
        ),
        "n_steps": COUNTS,
        "internal_batch_size": COUNTS,
        "nt_samples": COUNTS,
        "n_samples": COUNTS,
        "nt_samples_batch_size": COUNTS,
        "method": st.one_of(
            st.sampled_from(["gausslegendre", "riemann_left", "riemann_trapezoid", "simpson"]),
            junk(),
        ),
        "nt_type": st.one_of(st.sampled_from(["smoothgrad", "vargrad", "smooth"]), junk()),
        "stdevs": st.one_of(FLOATS, junk(), st.tuples(FLOATS), st.tuples(FLOATS, FLOATS)),
        "interpolate_mode": st.one_of(
            st.sampled_from(["nearest", "bilinear", "linear", "trilinear", "area", "cubic"]),
            junk(),
        ),
        "grad_kwargs": st.one_of(
            st.sampled_from([None, {}, {"retain_graph": True}, {"foo": 1}, {"inputs": 1}]),
            junk(),
        ),
        "neuron_selector": st.one_of(
            INDICES,
            st.tuples(INDICES, INDICES, INDICES),
            st.tuples(SLICES, SELECTOR_ENTRIES, SELECTOR_ENTRIES),
            st.lists(SELECTOR_ENTRIES, max_size=4).map(tuple),
            SELECTOR_CALLABLES,
            junk(),
        ),
        "layer": st.one_of(
            st.sampled_from(["conv", "fc", "relu", "nope", "conv.weight"]),
            st.just(nn.Linear(2, 2)),
            junk(),
        ),
        "base_method": st.one_of(
            st.sampled_from(["saliency", "guided_backprop", "gbp", "layer_grad_cam", "nope"]),
            junk(),
        ),
    }
    return table.get(name, BOOLS)


def target_values() -> st.SearchStrategy[Any]:
    int_tensors = some_tensors(
        shapes=st.sampled_from([(), (1,), (BATCH,), (3,), (BATCH, 1), (0,)]),
        dtypes=st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32, torch.bool]),
    )
    entries = st.one_of(INDICES, st.tuples(INDICES), st.tuples(INDICES, INDICES), junk())
    return st.one_of(
        INDICES,
        junk(),
        st.lists(INDICES, max_size=3).map(tuple),
        st.lists(entries, max_size=3),
        int_tensors,
    )


def extra_arg_values() -> st.SearchStrategy[Any]:
    scales = some_tensors(shapes=st.sampled_from([(BATCH, 1), (BATCH, 4), (1,), (), (3, 4), (0,)]))
    values = st.one_of(scales, FLOATS, junk())
    return st.one_of(values, st.lists(values, max_size=3).map(tuple))


def input_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        IMAGE_TENSORS, junk(), st.tuples(IMAGE_TENSORS), st.tuples(IMAGE_TENSORS, IMAGE_TENSORS)
    )


@st.composite
def corruptions(draw: st.DrawFn, name: str) -> tuple[str, Any]:
    """(argument, value): one argument of a valid call of ``name`` and its new value."""
    info = attrkit.method_info(name)
    options = [a for a in (*info.init_arguments, *info.attribute_arguments) if a != "device_ids"]
    common = ["inputs", "additional_forward_args"]
    if "neuron_selector" not in info.attribute_arguments:
        common.append("target")
    argument = draw(st.sampled_from(common + options))
    common_values = {
        "inputs": input_values,
        "target": target_values,
        "additional_forward_args": extra_arg_values,
    }
    strategy = common_values[argument]() if argument in common_values else _option_values(argument)
    return argument, draw(strategy, label=argument)


# ------------------------------------------------------------------ the oracle

ATTRKIT_DIR = os.path.dirname(os.path.abspath(attrkit.__file__))
#: The rule engine runs the model's own ops (with a rule): an error there is the model's.
ENGINE_DIR = os.path.join(ATTRKIT_DIR, "engine") + os.sep
TESTS_DIR = str(ROOT / "tests")
MODULE_CALL = os.path.join("torch", "nn", "modules", "module.py")


def raised_by_attrkit(error: BaseException) -> bool:
    """Whether attrkit raised ``error`` itself, or through its own use of torch or NumPy,
    rather than the model or a user's callable that attrkit called (attrkit's
    torch-function passthrough frames, and the rule engine's, which run the model's own
    ops, do not count)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [
        i
        for i, frame in enumerate(frames)
        if os.path.abspath(frame.filename).startswith(ATTRKIT_DIR)
        and not os.path.abspath(frame.filename).startswith(ENGINE_DIR)
        and frame.name != "__torch_function__"
    ]
    if not ours:
        return False
    following = frames[ours[-1] + 1 :]
    if not following:
        return True
    callee = os.path.abspath(following[0].filename)
    return not (callee.endswith(MODULE_CALL) or callee.startswith(TESTS_DIR))


def tensors_in(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensors_in(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors_in(item)]
    return []


def tensor_state(tensor: Tensor) -> tuple[Any, ...]:
    values = None
    if tensor.device.type != "meta":
        values = tensor.detach().to_dense().clone() if tensor.is_sparse else tensor.detach().clone()
    return (values, tensor._version, tensor.requires_grad, tensor.grad, tensor.is_leaf)


def assert_tensor_unchanged(before: tuple[Any, ...], tensor: Tensor) -> None:
    after = tensor_state(tensor)
    if before[0] is not None:
        torch.testing.assert_close(after[0], before[0], rtol=0, atol=0, equal_nan=True)
    assert after[1:] == before[1:]


def attempt(
    name: str, model: FuzzNet, init: dict[str, Any], kwargs: dict[str, Any], inputs: Any
) -> Any:
    """Run the call in this thread, checking that it leaves nothing behind; return the
    result or the exception."""
    watched = tensors_in((inputs, init, kwargs))
    states = [tensor_state(t) for t in watched]
    before = snapshot(model, ())
    try:
        result: Any = attrkit.create(name, model, **init).attribute(inputs, **kwargs)
    except Exception as error:
        result = error
    after = snapshot(model, ())
    if draws_noise(attrkit.method_info(name)):  # from the global generator, as documented
        del before["rng_state"], after["rng_state"]
    assert_same(before, after)
    for state, tensor in zip(states, watched, strict=True):
        assert_tensor_unchanged(state, tensor)
    return result


#: Arguments whose valid value can fail against a changed one: an error may name those.
RELATED = {
    "inputs": ("target", "neuron_selector", "baselines"),
    "layer": ("neuron_selector",),
    "base_method": ("layer",),
}


def check_error(error: Exception, argument: str) -> None:
    # An AssertionError only as Captum raises one, and then one of attrkit's errors that
    # are a TypeError, ValueError or IndexError too (attrkit.core.errors, DeepLift's
    # BaselineError; DESIGN.md).
    bare = isinstance(error, AssertionError) and not (
        type(error).__module__.startswith("attrkit.")
        and isinstance(error, (TypeError, ValueError, IndexError))
    )
    assert not bare, f"bare AssertionError: {error!r}"
    if not raised_by_attrkit(error):
        event("the model's (or a callable's) own exception")
        return
    event(f"attrkit: {type(error).__name__}")
    # The registry's error for a name that is not registered is a KeyError.
    expected = (TypeError, ValueError, IndexError)
    if argument == "base_method":
        expected = (*expected, attrkit.UnknownMethodError)
    where = "".join(traceback.format_tb(error.__traceback__)[-3:])
    assert isinstance(error, expected), f"{type(error).__name__} from attrkit: {error}\n{where}"
    message = str(error)
    names = (argument, *RELATED.get(argument, ()))
    assert any(f"`{name}" in message or f"'{name}'" in message for name in names), (
        f"the message does not name `{argument}`: {message}"
    )


def check_result(
    name: str, argument: str, result: Any, inputs: Any, model: FuzzNet, init: dict, kwargs: dict
) -> None:
    """A successful call: the structure, shapes and dtypes follow the inputs, and the
    numbers equal those for a contiguous copy (and the reference, where there is one)."""
    event("returned a result")
    if kwargs.get("return_convergence_delta") and isinstance(result, tuple) and len(result) == 2:
        result = result[0]
    given = as_tuple(inputs)
    attributions = as_tuple(result)
    info = attrkit.method_info(name)
    assert isinstance(result, tuple) == isinstance(inputs, tuple) or info.layer_output
    if not info.layer_output:
        assert len(attributions) == len(given)
        for a, x in zip(attributions, given, strict=True):
            if a.numel() == 0 and definition_kind(info) == "guided_layer_map":
                continue  # an input the layer's map cannot be upsampled to
            assert a.shape == x.shape
            assert a.dtype == x.dtype
            assert a.layout == torch.strided
    if argument != "inputs" or not all(x.device.type == "cpu" for x in given):
        return
    dense = tuple(x.detach().to_dense() if x.is_sparse else x.detach() for x in given)
    copies = tuple(x.clone(memory_format=torch.contiguous_format) for x in dense)
    torch.manual_seed(0)
    np.random.seed(0)
    again = attrkit.create(name, model, **init).attribute(
        copies if isinstance(inputs, tuple) else copies[0], **kwargs
    )
    torch.testing.assert_close(as_tuple(result), as_tuple(again), equal_nan=True)
    # The reference's mask ``input > 0`` blocks a NaN activation; torch's ReLU gradient
    # (and so attrkit's and Captum's guided backpropagation) lets it through: compare
    # with the reference on finite values only.
    finite = all(bool(x.isfinite().all()) for x in copies)
    one = definition_kind(info) == "gradient"
    if one and len(copies) == 1 and copies[0].shape[0] > 0 and finite:
        expected = one_gradient(info, model, copies, kwargs["target"], options=kwargs)
        torch.testing.assert_close(attributions, expected, equal_nan=True)


#: attrkit's computation (the perturbation family is Captum's own behind attrkit's argument
#: checks, tests/methods/test_perturbation.py and tests/core/test_errors.py: an error from
#: inside it is Captum's, and its draws from the global generator are Captum's) that a
#: quick call can build (not LimeBase or DataLoaderAttribution).
@pytest.mark.parametrize("name", method_params(attrkit_contract))
@settings(max_examples=settings().max_examples * 4)
@given(data=st.data())
def test_bad_argument_raises_clear_error_or_gives_correct_result(name, data):
    model = FuzzNet().eval()
    init, kwargs = valid_arguments(name, model)
    inputs: Any = torch.randn(BATCH, *IMAGE, generator=torch.Generator().manual_seed(0))
    argument, value = data.draw(corruptions(name))
    event(f"argument: {argument}")
    if argument == "inputs":
        inputs = value
    elif argument in attrkit.method_info(name).init_arguments:
        init[argument] = value
    else:
        kwargs[argument] = value
    torch.manual_seed(0)
    np.random.seed(0)  # GradientShap draws from NumPy's generator too
    result = run_in_thread(lambda: attempt(name, model, init, kwargs, inputs))
    if isinstance(result, Exception):
        check_error(result, argument)
    else:
        check_result(name, argument, result, inputs, model, init, kwargs)
