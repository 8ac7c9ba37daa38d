"""Small helpers shared by the tests."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import captum.attr
import torch
from torch import Tensor


def as_tuple(value: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return value if isinstance(value, tuple) else (value,)


def fresh(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Copies for a library that mutates its inputs' ``requires_grad`` (Captum does)."""
    return tuple(x.detach().clone() for x in inputs)


def captum_attribute(
    method: str, model: Any, inputs: Tensor | tuple[Tensor, ...], **kwargs: Any
) -> tuple[Tensor, ...]:
    """Run ``captum.attr.<method>``; its per-call warnings are Captum's, not ours."""
    inputs = fresh(inputs) if isinstance(inputs, tuple) else inputs.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return as_tuple(getattr(captum.attr, method)(model).attribute(inputs, **kwargs))


def assert_all_close(actual: tuple[Tensor, ...], expected: tuple[Tensor, ...]) -> None:
    """Equal up to the rounding of the dtype (torch.testing's defaults)."""
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e)


def relative_error(actual: Tensor, expected: Tensor) -> float:
    """``|actual - expected| / |expected|`` in the L2 norm."""
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-30))


def differs(actual: tuple[Tensor, ...], expected: tuple[Tensor, ...]) -> bool:
    """Some tensor is off by more than 0.1% relative L2 error (far above rounding)."""
    return any(relative_error(a, e) > 1e-3 for a, e in zip(actual, expected, strict=True))


def run_in_thread(function: Any, timeout: float = 60.0) -> Any:
    """Run ``function()`` in a new thread; return its result or raise its exception.
    Fails (instead of hanging the suite) if it is still running after ``timeout``
    seconds."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function()
        except BaseException as error:  # handed to the calling thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"the call did not finish within {timeout} s (a hang)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
