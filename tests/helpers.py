"""Small helpers shared by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import captum.attr
import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

#: The repository root.
ROOT = Path(__file__).resolve().parent.parent


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


# ------------------------------------------------------------------ registered methods


def is_neuron_method(name: str) -> bool:
    """Whether registered method ``name`` takes a ``neuron_selector`` (kept for older
    callers: ``tests.tester.takes_neuron_selector``)."""
    from tests.tester import info, takes_neuron_selector

    return takes_neuron_selector(info(name))


def baseline_distribution(inputs: Tensor | tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    """Two reference rows per input tensor, zeros and a constant 0.1 (for the methods that
    need a baseline distribution); a callable baseline, so that it fits any input."""
    tensors = as_tuple(inputs)
    rows = tuple(
        torch.stack([t.new_zeros(t.shape[1:]), t.new_full(t.shape[1:], 0.1)]) for t in tensors
    )
    return rows if isinstance(inputs, tuple) else rows[0]


def quick_call(
    name: str,
    *,
    layer: Any = None,
    target: Any = None,
    neuron_selector: Any = None,
    base_method: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Constructor and ``attribute`` arguments of a quick valid call of method ``name``,
    then the method's entry of ``options`` (kept for older callers: ``tests.tester.quick_call``
    builds the call from the metadata alone)."""
    from tests import tester

    base = {"base_method": base_method} if base_method is not None else {}
    call = tester.quick_call(
        name, layer=layer, target=target, neuron_selector=neuron_selector, options={}, **base
    )
    return call.init, {**call.kwargs, **(options or {}).get(name, {})}


def assert_matches_captum(
    ours: Any, theirs: Any, delta: bool, tolerance: Mapping[str, float]
) -> None:
    """attrkit's result equals Captum's: the convergence delta (where ``delta``), the type,
    and each tensor's dtype and values within ``tolerance`` (an empty tensor, Guided
    Grad-CAM's "cannot upsample to this input", only its shape)."""
    if delta:
        (ours, our_delta), (theirs, their_delta) = ours, theirs
        torch.testing.assert_close(our_delta, their_delta.to(our_delta.dtype), rtol=1e-6, atol=1e-5)
    assert type(ours) is type(theirs)
    for a, b in zip(as_tuple(ours), as_tuple(theirs), strict=True):
        if b.numel() == 0:  # (Captum's empty tensor is float32)
            assert a.shape == b.shape
            continue
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, **tolerance)


# ------------------------------------------------------------------- no side effects

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)
GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)


def snapshot(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict:
    return {
        "hooks": [
            (name, attr, dict(getattr(module, attr, {})))
            for name, module in model.named_modules()
            for attr in HOOK_DICTS
        ],
        "global_hooks": [dict(getattr(nn.modules.module, attr)) for attr in GLOBAL_HOOKS],
        "modules": [(name, type(m), m.training) for name, m in model.named_modules()],
        "params": [
            (name, p.detach().clone(), p.requires_grad) for name, p in model.named_parameters()
        ],
        "grads": [
            (name, None if p.grad is None else p.grad.clone())
            for name, p in model.named_parameters()
        ],
        "grad_ids": [id(p.grad) for p in model.parameters()],
        "buffers": [(name, b.clone()) for name, b in model.named_buffers()],
        "inputs": [(x.detach().clone(), x.requires_grad, x.grad, x.is_leaf) for x in inputs],
        "grad_enabled": torch.is_grad_enabled(),
        "rng_state": torch.get_rng_state(),
        "function_modes": torch._C._len_torch_function_stack(),
    }


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key in before:
        _assert_equal(before[key], after[key], key)


def _assert_equal(a, b, where):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert torch.equal(a, b), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for x, y in zip(a, b, strict=True):
            _assert_equal(x, y, where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
    else:
        assert a == b, where


# ----------------------------------------------------------------- files and the CLI


def assert_same_run(a: Path, b: Path, same_source: bool = True) -> None:
    """Two runs of ``attribute_dataset`` wrote the same files, arrays and manifest (but
    its creation details, and the description of the data when it came in different
    forms)."""
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    for name in files:
        if name.endswith(".npy"):
            np.testing.assert_array_equal(np.load(a / name), np.load(b / name), err_msg=name)
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (a, b)]
    for manifest in manifests:
        del manifest["world_size"], manifest["created"]
        if not same_source:
            del manifest["run"]["data"]
    assert manifests[0] == manifests[1]


def png_size(path: Path) -> tuple[int, int]:
    """The size of the image at ``path``, decoding the whole file."""
    with Image.open(path) as image:
        image.load()
        return image.size


def run_cli(*args: str, cwd: Path | None = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m attrkit ARGS`` as a user runs it, in a subprocess in ``cwd``, with the
    repository importable (the model factories of tests/cli_models.py)."""
    return subprocess.run(
        [sys.executable, "-m", "attrkit", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def assert_one_line_error(status: int, stdout: str, stderr: str, command: str, text: str) -> None:
    """``attrkit COMMAND`` failed as a user error: status 2, nothing on stdout, and one
    line on stderr, ``attrkit COMMAND: error: ...`` holding ``text``, without a traceback."""
    assert status == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"attrkit {command}: error: ")
    assert text in lines[0]
