"""Methods by name: one uniform way to find, describe and construct any attribution method.

A method registers itself with :func:`register` (a class decorator) under a canonical
snake_case name and optional aliases; lookups accept ``-`` or ``_`` and any case.
Third-party packages register through the ``attrkit.methods`` entry-point group: each
entry point names a module or class whose import calls :func:`register`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import captum.attr

from attrkit.core.warnings import warn_at_caller

__all__ = [
    "ENTRY_POINT_GROUP",
    "FAMILIES",
    "MethodInfo",
    "UnknownMethodError",
    "attribute",
    "available_methods",
    "built_from_model",
    "common_kwargs",
    "create",
    "method_info",
    "register",
    "required_init_arguments",
    "resolve_layer",
    "split_method_kwargs",
    "takes_argument",
    "takes_inputs",
]

ENTRY_POINT_GROUP = "attrkit.methods"

#: The arguments every method's ``attribute`` takes; the rest are method-specific.
COMMON_ARGUMENTS = ("inputs", "target", "additional_forward_args")

C = TypeVar("C", bound=type)


class UnknownMethodError(KeyError):
    """No method is registered under the requested name."""

    def __str__(self) -> str:
        return str(self.args[0])


#: The families ``attrkit methods`` groups the methods by: key -> heading.
FAMILIES: dict[str, str] = {
    "gradient": "Gradients",
    "activation": "Layer activations",
    "relu_rules": "Modified ReLU backward rules",
    "path": "Path integrals",
    "deeplift": "DeepLift and SHAP approximations",
    "lrp": "Layer-wise relevance propagation",
    "cam": "Class activation maps",
    "perturbation": "Perturbation",
    "wrapper": "Wrappers of other methods",
}


@dataclass(frozen=True)
class MethodInfo:
    """What the CLI, the docs, the validation tools and the tests need to know about a
    registered method.

    Attributes:
        name: Canonical snake_case name.
        cls: The class.
        aliases: Other names that find it (its Captum class name finds it too).
        display_name: Human-readable name ("Guided Backpropagation").
        paper: Reference to the method's paper, with a link.
        family: Its family, a key of :data:`FAMILIES`.
        multiplies_by_inputs: Whether the attribution is multiplied by the inputs (the
            default configuration, for methods where it is a constructor option).
        has_convergence_delta: Whether ``attribute`` can return a convergence delta.
        init_arguments: Constructor arguments beyond the model (e.g. ``layer``).
        attribute_arguments: ``attribute`` arguments beyond ``inputs``, ``target`` and
            ``additional_forward_args``.
        required_arguments: Those of ``attribute_arguments`` without a default (the
            ``baselines`` of DeepLiftShap and GradientShap, the neuron methods'
            ``neuron_selector``).
        layer_output: Whether attributions have the shape of a layer rather than of the
            inputs (Grad-CAM).
        factory: Builds the method from ``(model, **init_kwargs)``; the class itself
            unless the method wraps another one (NoiseTunnel).
        common_arguments: Which of ``inputs``, ``target`` and ``additional_forward_args``
            its ``attribute`` takes (the neuron methods take no ``target``).
        open_ended: Whether ``attribute`` also takes any other keyword (``**kwargs``).
        rules: The backward rules the method applies (its class's ``rules``: objects of
            :mod:`attrkit.engine.rule`), empty for a method of plain gradients.
        captum_name: The name of the ``captum.attr`` class with the same definition and
            contract, or ``None`` where Captum has none.
        draws_random_numbers: Whether ``attribute`` draws from the global random
            generators (torch's, and NumPy's for GradientShap), as its Captum namesake
            does: two calls give the same result only from the same generator states.
    """

    name: str
    cls: type
    aliases: tuple[str, ...]
    display_name: str
    paper: str
    family: str
    multiplies_by_inputs: bool
    has_convergence_delta: bool
    init_arguments: tuple[str, ...]
    attribute_arguments: tuple[str, ...]
    required_arguments: tuple[str, ...] = ()
    layer_output: bool = False
    factory: Callable[..., Any] | None = None
    common_arguments: tuple[str, ...] = COMMON_ARGUMENTS
    open_ended: bool = False
    rules: tuple[Any, ...] = ()
    captum_name: str | None = None
    draws_random_numbers: bool = False

    @property
    def takes_target(self) -> bool:
        """Whether ``attribute`` takes a ``target`` (the neuron methods take a
        ``neuron_selector`` instead)."""
        return takes_argument(self, "target")

    def rule_for(self, op: str) -> Any:
        """The method's rule for the op named ``op`` (``"relu"``), or ``None``."""
        for rule in self.rules:
            if any(o.name == op for o in rule.ops):
                return rule
        return None


_lock = threading.Lock()
_methods: dict[str, MethodInfo] = {}
_lookup: dict[str, str] = {}  # normalized name or alias -> canonical name
_entry_points_loaded = False


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _takes_any_keyword(function: Callable[..., Any]) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())


def _parameters(
    function: Callable[..., Any], skip: tuple[str, ...], required_only: bool = False
) -> tuple[str, ...]:
    return tuple(
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.name not in skip
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and not (required_only and p.default is not p.empty)
    )


def register(
    name: str,
    *,
    display_name: str,
    family: str,
    paper: str = "",
    aliases: tuple[str, ...] = (),
    multiplies_by_inputs: bool = False,
    has_convergence_delta: bool = False,
    layer_output: bool = False,
    factory: Callable[..., Any] | None = None,
    draws_random_numbers: bool = False,
) -> Callable[[C], C]:
    """Class decorator that registers an attribution method.

    The keyword arguments become the method's :class:`MethodInfo`; its constructor and
    ``attribute`` arguments are read from the signatures (from ``factory``'s when given),
    its rules from the class's ``rules``, its Captum namesake from ``captum.attr``. Without
    ``paper``, the paper of the method's first rule.

    Raises:
        ValueError: if the name, an alias or the class name is already taken, the name is
            not snake_case, the family is unknown or no paper is given.
    """

    def decorator(cls: C) -> C:
        method: Any = cls
        rules = tuple(getattr(cls, "rules", ()))
        info = MethodInfo(
            name=name,
            cls=cls,
            aliases=aliases,
            display_name=display_name,
            paper=paper or (rules[0].paper if rules else ""),
            family=family,
            rules=rules,
            captum_name=cls.__name__ if hasattr(captum.attr, cls.__name__) else None,
            multiplies_by_inputs=multiplies_by_inputs,
            has_convergence_delta=has_convergence_delta,
            init_arguments=_parameters(factory or cls, ("model", "forward_func")),
            attribute_arguments=_parameters(method.attribute, ("self", *COMMON_ARGUMENTS)),
            required_arguments=_parameters(
                method.attribute, ("self", *COMMON_ARGUMENTS), required_only=True
            ),
            common_arguments=tuple(
                a for a in COMMON_ARGUMENTS if a in inspect.signature(method.attribute).parameters
            ),
            open_ended=_takes_any_keyword(method.attribute),
            layer_output=layer_output,
            factory=factory,
            draws_random_numbers=draws_random_numbers,
        )
        keys = list(dict.fromkeys(_normalize(n) for n in (name, *aliases, cls.__name__)))
        with _lock:
            if name != _normalize(name) or not name.isidentifier():
                raise ValueError(f"method name {name!r} must be snake_case")
            if family not in FAMILIES:
                raise ValueError(f"`family` {family!r} must be one of {', '.join(FAMILIES)}")
            if not info.paper:
                raise ValueError(f"method {name!r} needs a `paper`")
            for key in keys:
                if key in _lookup:
                    owner = _methods[_lookup[key]].cls
                    raise ValueError(
                        f"cannot register {cls.__qualname__} as {key!r}: that name already "
                        f"belongs to {owner.__module__}.{owner.__qualname__}"
                    )
            _methods[name] = info
            for key in keys:
                _lookup[key] = name
        return cls

    return decorator


def _load_entry_points() -> None:
    """Import the third-party methods declared in the ``attrkit.methods`` group, once."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception as error:  # a broken plug-in must not break attrkit
            warn_at_caller(
                f"attrkit: could not load method plug-in {entry_point.name!r} "
                f"({entry_point.value}): {type(error).__name__}: {error}",
                RuntimeWarning,
            )


def available_methods() -> list[str]:
    """The canonical names of every registered method, sorted."""
    _load_entry_points()
    return sorted(_methods)


def method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` registered under ``name`` or one of its aliases.

    Raises:
        KeyError: if no method has that name; the message lists the names and suggests
            the closest one.
    """
    if not isinstance(name, str):
        raise TypeError(f"`method` must be a method name (str), got {type(name).__name__}")
    _load_entry_points()
    key = _normalize(name)
    if key in _lookup:
        return _methods[_lookup[key]]
    close = difflib.get_close_matches(key, list(_lookup), n=1, cutoff=0.5)
    hint = f" Did you mean {_lookup[close[0]]!r}?" if close else ""
    names = ", ".join(sorted(_methods))
    raise UnknownMethodError(f"no attribution method named {name!r}.{hint} Available: {names}")


def create(name: str, model: Callable[..., Any], *init_args: Any, **init_kwargs: Any) -> Any:
    """Construct the method registered under ``name`` (or its Captum class name) for
    ``model``.

    Constructor arguments beyond the model may be given by position, in the order of the
    method's constructor (``create("LayerConductance", model, model.conv2)``, as Captum's
    ``LayerConductance(model, model.conv2)``), or by name. A ``layer`` given as a string
    (or a list of strings) is looked up with ``model.get_submodule``, so that
    ``create("layer_grad_cam", model, layer="features.3")`` works from a command line.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
        >>> attrkit.create("gbp", model)  # doctest: +ELLIPSIS
        <attrkit.methods.modified_relu.GuidedBackprop object at ...>
        >>> attrkit.create("LayerConductance", model, model[0]).layer
        Linear(in_features=3, out_features=2, bias=True)
    """
    info = method_info(name)
    factory = info.factory or info.cls
    if len(init_args) > len(info.init_arguments):
        raise TypeError(
            f"{info.cls.__name__} takes {len(info.init_arguments)} constructor argument(s) "
            f"besides the model ({', '.join(info.init_arguments) or 'none'}), "
            f"got {len(init_args)} by position"
        )
    positional = dict(zip(info.init_arguments, init_args, strict=False))
    twice = sorted(set(positional) & set(init_kwargs))
    if twice:
        raise TypeError(f"{info.cls.__name__} got {', '.join(map(repr, twice))} twice")
    init_kwargs = {**positional, **init_kwargs}
    unknown = sorted(set(init_kwargs) - set(info.init_arguments))
    if unknown and not _takes_any_keyword(factory):
        accepted = ", ".join(info.init_arguments) or "none"
        raise TypeError(
            f"{info.cls.__name__} does not take {', '.join(map(repr, unknown))} when "
            f"constructed (its arguments besides the model: {accepted})"
        )
    return factory(model, **resolve_layer(model, init_kwargs))


def resolve_layer(model: object, init_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``init_kwargs`` with a ``layer`` given by name (or a list of names) replaced by
    that submodule of ``model`` (``model.get_submodule``)."""
    path = init_kwargs.get("layer")
    if isinstance(path, list) and any(isinstance(p, str) for p in path):
        return {**init_kwargs, "layer": [_submodule(model, p) for p in path]}
    if not isinstance(path, str):
        return init_kwargs
    return {**init_kwargs, "layer": _submodule(model, path)}


def _submodule(model: object, path: object) -> Any:
    """The submodule of ``model`` named ``path`` (anything but a string as it is)."""
    if not isinstance(path, str):
        return path
    get_submodule = getattr(model, "get_submodule", None)
    if get_submodule is None:
        raise TypeError(f"`layer` {path!r} is a name, but the model is not a torch.nn.Module")
    try:
        return get_submodule(path)
    except AttributeError as error:
        raise ValueError(f"`layer` {path!r} is not a submodule of the model: {error}") from None


def attribute(
    model: Callable[..., Any],
    inputs: Any,
    method: str = "deconvolution",
    target: Any = None,
    additional_forward_args: Any = None,
    **method_kwargs: Any,
) -> Any:
    """Build ``method`` for ``model`` and attribute ``inputs`` in one call.

    ``method_kwargs`` are split by name between the method's constructor (e.g. ``layer``)
    and its ``attribute`` (e.g. ``n_steps``), for scripts that loop over methods.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> x = torch.randn(2, 3)
        >>> attrkit.attribute(model, x, method="guided_backprop", target=1).shape
        torch.Size([2, 3])
    """
    info = method_info(method)
    init_kwargs, attribute_kwargs = split_method_kwargs(info, method_kwargs)
    attribute_kwargs |= common_kwargs(info, target, additional_forward_args)
    return create(info.name, model, **init_kwargs).attribute(inputs, **attribute_kwargs)


def required_init_arguments(info: MethodInfo) -> tuple[str, ...]:
    """The constructor arguments (beyond the model) of the method ``info`` describes that
    have no default, e.g. ``("layer",)``."""
    parameters = inspect.signature(info.factory or info.cls).parameters
    return tuple(
        name for name in info.init_arguments if parameters[name].default is inspect.Parameter.empty
    )


def built_from_model(info: MethodInfo) -> bool:
    """Whether the method is built from the model alone, or with a layer (not ``LimeBase``,
    whose interpretable model and transforms are the caller's constructor arguments)."""
    return set(required_init_arguments(info)) <= {"layer"}


def takes_inputs(info: MethodInfo) -> bool:
    """Whether the method's ``attribute`` takes ``inputs`` (``DataLoaderAttribution``
    takes a ``DataLoader``)."""
    return "inputs" in info.common_arguments


def takes_argument(info: MethodInfo, name: str) -> bool:
    """Whether the ``attribute`` of the method ``info`` describes accepts ``name``, by name
    or through ``**kwargs`` (NoiseTunnel passes those to the method it wraps)."""
    return name in info.common_arguments or name in info.attribute_arguments or info.open_ended


def common_kwargs(info: MethodInfo, target: Any, additional_forward_args: Any) -> dict[str, Any]:
    """``target`` and ``additional_forward_args`` as keyword arguments for the method's
    ``attribute``, where it takes them (the neuron methods take no ``target``; through
    ``**kwargs`` only values that are not ``None`` are passed on).

    Raises:
        TypeError: for a value that is not ``None`` and that the method does not take.
    """
    kwargs = {}
    for name, value in (("target", target), ("additional_forward_args", additional_forward_args)):
        if name in info.common_arguments or (value is not None and takes_argument(info, name)):
            kwargs[name] = value
        elif value is not None:
            options = ", ".join(info.attribute_arguments)
            raise TypeError(f"{info.name} does not take `{name}` (its options: {options})")
    return kwargs


def split_method_kwargs(
    info: MethodInfo, method_kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments by name into (constructor, ``attribute``) arguments of the
    method ``info`` describes.

    Raises:
        TypeError: for a name that neither takes (unless ``attribute`` takes ``**kwargs``).
    """
    init_kwargs = {k: v for k, v in method_kwargs.items() if k in info.init_arguments}
    attribute_kwargs = {k: v for k, v in method_kwargs.items() if k not in info.init_arguments}
    unknown = sorted(set(attribute_kwargs) - set(info.attribute_arguments))
    if unknown and not info.open_ended:
        accepted = ", ".join(info.init_arguments + info.attribute_arguments) or "none"
        raise TypeError(
            f"{info.name} does not take {', '.join(map(repr, unknown))} (its options: {accepted})"
        )
    return init_kwargs, attribute_kwargs
