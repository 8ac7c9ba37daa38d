"""What identifies a run in its manifest: the method and its arguments (as JSON), the
model's fingerprint, and the library versions; and the method object built from them."""

from __future__ import annotations

import hashlib
import inspect
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attrkit.core.registry import (
    COMMON_ARGUMENTS,
    _takes_any_keyword,
    available_methods,
    create,
    method_info,
    split_method_kwargs,
)

__all__ = ["Method", "describe", "model_fingerprint", "resolve_method", "versions"]

#: Arguments ``attribute_dataset`` sets on every ``attribute`` call itself.


def _qualified(value: object) -> str:
    kind = value if isinstance(value, type) else type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _tensor_digest(tensor: Tensor) -> str:
    data = tensor.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest()[:32]


def _module_of(function: object) -> nn.Module | None:
    """The ``torch.nn.Module`` that ``function`` is, or is a bound method of (such as
    ``model.forward``); ``None`` for any other callable."""
    module = function if isinstance(function, nn.Module) else getattr(function, "__self__", None)
    return module if isinstance(module, nn.Module) else None


def model_fingerprint(model: Callable[..., Any]) -> dict[str, Any]:
    """The model's class and a SHA-256 of its state dict (names, dtypes, shapes, bytes) for
    a ``torch.nn.Module`` (also behind a bound method such as ``model.forward``); the
    function's qualified name for any other callable.

    Example:
        >>> import torch
        >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
        >>> _ = b.load_state_dict(a.state_dict())
        >>> model_fingerprint(a) == model_fingerprint(b)
        True
    """
    module = _module_of(model)
    if module is None:
        name = getattr(model, "__qualname__", type(model).__qualname__)
        return {"class": f"{getattr(model, '__module__', '?')}.{name}", "sha256": None}
    digest = hashlib.sha256(_qualified(module).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}:".encode())
        digest.update(_tensor_digest(tensor).encode())
    return {
        "class": _qualified(module),
        "sha256": digest.hexdigest(),
        "training": module.training,
    }


def describe(value: object, model: object = None) -> Any:
    """``value`` as JSON that is the same in every run with the same arguments: submodules
    of ``model`` by their name, tensors by shape, dtype and digest, other objects by type.

    Example:
        >>> describe({"n_steps": 8, "baselines": torch.zeros(2)})  # doctest: +ELLIPSIS
        {'n_steps': 8, 'baselines': {'tensor': [2], 'dtype': 'torch.float32', 'sha256': '...'}}
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [describe(v, model) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v, model) for k, v in value.items()}
    if isinstance(value, Tensor):
        digest = _tensor_digest(value) if value.device.type != "meta" else None
        return {"tensor": list(value.shape), "dtype": str(value.dtype), "sha256": digest}
    if isinstance(value, nn.Module):
        if isinstance(model, nn.Module):
            for name, module in model.named_modules():
                if module is value:
                    return {"module": name}
        return {"module_class": _qualified(value), **model_fingerprint(value)}
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if inspect.isroutine(value) or isinstance(value, type):
        return {"callable": f"{value.__module__}.{value.__qualname__}"}
    return {"object": _qualified(value)}


def versions() -> dict[str, str]:
    """The versions of Python and of the libraries that decide the result."""
    import captum

    import attrkit

    return {
        "attrkit": attrkit.__version__,
        "torch": torch.__version__,
        "captum": captum.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class Method:
    """The attribution object of a run, with what the manifest says about it."""

    explainer: Any
    forward: Callable[..., Any]
    attribute_kwargs: dict[str, Any]
    description: dict[str, Any]
    has_delta: bool
    takes_target: bool


def _registered_name(explainer: object) -> str | None:
    for name in available_methods():
        if method_info(name).cls is type(explainer):
            return name
    return None


def resolve_method(
    method: object, model: Callable[..., Any] | None, method_kwargs: dict[str, Any]
) -> Method:
    """Build (or check) the attribution object and split ``method_kwargs`` between its
    constructor and its ``attribute``.

    Raises:
        TypeError: for an argument that neither the constructor nor ``attribute`` takes,
            a missing ``model``, or a ``method`` that is neither a name nor an object with
            ``attribute``.
        KeyError: for an unknown method name.
    """
    _check_per_batch(method_kwargs)
    if isinstance(method, str):
        explainer, model, init_kwargs, init, name = _from_name(method, model, method_kwargs)
    else:
        explainer, model, init, name = _from_object(method, model)
        init_kwargs = {}
    attribute_kwargs = {k: v for k, v in method_kwargs.items() if k not in init_kwargs}
    _check_attribute_kwargs(explainer, attribute_kwargs)
    return Method(
        explainer=explainer,
        forward=model,
        attribute_kwargs=attribute_kwargs,
        description={
            "name": name or _qualified(explainer),
            "class": _qualified(explainer),
            "init_arguments": init,
            "attribute_arguments": describe(attribute_kwargs, model),
        },
        has_delta=bool(attribute_kwargs.get("return_convergence_delta", False)),
        takes_target="target" in inspect.signature(explainer.attribute).parameters
        or _takes_any_keyword(explainer.attribute),
    )


def _from_name(
    method: str, model: Callable[..., Any] | None, method_kwargs: dict[str, Any]
) -> tuple[Any, Callable[..., Any], dict[str, Any], dict[str, Any], str | None]:
    """The method built from its name, its model, its constructor arguments, their
    description and its registered name."""
    info = method_info(method)
    if model is None:
        raise TypeError("`model` is required when `method` is a name")
    init_kwargs, _ = split_method_kwargs(info, method_kwargs)
    explainer = create(info.name, model, **init_kwargs)
    values = {k: getattr(explainer, k, v) for k, v in init_kwargs.items()}
    init = _describe_init(info.factory or info.cls, values, model)
    return explainer, model, init_kwargs, init, _registered_name(explainer)


def _from_object(
    method: object, model: Callable[..., Any] | None
) -> tuple[Any, Callable[..., Any], dict[str, Any], str | None]:
    """The method object checked, its model, the description of its constructor
    arguments and its registered name."""
    if not callable(getattr(method, "attribute", None)):
        raise TypeError(
            "`method` must be a registered method name (see attrkit.available_methods()) "
            f"or an attribution object with an `attribute` method, got {type(method).__name__}"
        )
    forward_func = getattr(method, "forward_func", None)
    if model is not None and model is not forward_func:
        raise ValueError("`model` is not the model that `method` was built for; leave it out")
    if not callable(forward_func):
        raise TypeError("`method` has no callable `forward_func` (the model)")
    name = _registered_name(method)
    if name is None:
        return method, forward_func, {}, None
    info = method_info(name)
    values = {k: getattr(method, k) for k in info.init_arguments if hasattr(method, k)}
    init = _describe_init(info.factory or info.cls, values, forward_func)
    return method, forward_func, init, name


def _describe_init(
    constructor: Callable[..., Any], values: dict[str, Any], model: object
) -> dict[str, Any]:
    """The constructor arguments that differ from their defaults, described. (A layer
    given by name and the layer module are both described by the module's name.)"""
    parameters = inspect.signature(constructor).parameters
    chosen = {
        k: v for k, v in values.items() if k not in parameters or not _is_default(parameters[k], v)
    }
    described: dict[str, Any] = describe(chosen, model)
    return described


def _is_default(parameter: inspect.Parameter, value: object) -> bool:
    default = parameter.default
    if default is value:
        return True
    if default is inspect.Parameter.empty or type(default) is not type(value):
        return False
    try:
        return bool(default == value)
    except (TypeError, ValueError, RuntimeError):
        return False


def _check_per_batch(kwargs: dict[str, Any]) -> None:
    reserved = sorted(set(kwargs) & set(COMMON_ARGUMENTS))
    if reserved:
        raise TypeError(
            f"{', '.join(map(repr, reserved))} come from each batch (see `batch_fn` and "
            "`target`), not from the method's keyword arguments"
        )


def _check_attribute_kwargs(explainer: Any, kwargs: dict[str, Any]) -> None:
    signature = inspect.signature(explainer.attribute)
    try:
        signature.bind(None, **kwargs)
    except TypeError as error:
        accepted = [p for p in signature.parameters if p not in COMMON_ARGUMENTS]
        raise TypeError(
            f"{type(explainer).__name__}.attribute does not take these arguments ({error}); "
            f"it takes: {', '.join(accepted) or 'none'}"
        ) from None
