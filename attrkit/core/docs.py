"""One home for docstring prose that several public objects share.

A docstring says ``%(inputs)s`` on a line of its own; :func:`fill_doc` replaces the line
with the paragraph registered under that name, indented like the placeholder.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable
from typing import TypeVar

__all__ = ["DOCS", "fill_doc"]

F = TypeVar("F", bound=Callable[..., object])

DOCS: dict[str, str] = {
    "inputs": """
        inputs (Tensor or tuple[Tensor, ...]): The input for which attributions are
            computed: one floating-point tensor, or a tuple of them when the model takes
            several. Dimension 0 of every tensor is the batch, and all tensors share it.
            The caller's tensors are never modified and their ``requires_grad`` flag is
            left as it was.""",
    "target": """
        target (int, tuple, Tensor, list, optional): Selects, for each example, the one
            output value whose gradient is taken. ``None`` when the model returns a
            single value per example; an ``int`` (negative counts from the end) or a
            0-d / one-element integer tensor, applied to every example as ``output[:,
            target]``; a list of ints or a 1-D integer tensor with one entry per
            example; a tuple of ints for outputs with more than two dimensions, applied
            as ``output[:, *target]``; a list of tuples with one tuple per example.
            Default: ``None``.""",
    "additional_forward_args": """
        additional_forward_args (Any, optional): Extra arguments passed to the model
            after the inputs and never attributed: a single non-tuple object, or a tuple
            of them. Default: ``None``.""",
    "neuron_selector": """
        neuron_selector (int, tuple, or Callable): The neuron of the layer's tensor, for
            every example: an int (``tensor[:, i]``), a tuple of ints and slices
            (``tensor[:, i, j, ...]``; the neurons a slice selects are summed), or a
            callable that receives the layer's tensor (or tuple of tensors) and returns
            one value per example.""",
    "baselines": """
        baselines (scalar, Tensor, or tuple of them, optional): The reference point of each
            input: a number, or a tensor with the input's shape or with a batch of one
            (broadcast to every example); a tuple with one entry per input tensor when
            ``inputs`` is a tuple. ``None`` means zeros. Default: ``None``.""",
    "layers": """
        layer (torch.nn.Module or list[torch.nn.Module]): The layer (a submodule of the
            model, applied once per forward pass) whose input or output the method works
            on, or a list of such layers (the result is then a list with one entry per
            layer). Layers of a list should not feed each other.""",
    "layer_hooks_on_a_copy": """
        Captum's computation registers forward hooks on the layer for the duration of a
        call; attrkit runs it on a private structural copy of the model (new module
        objects holding the model's own parameters, buffers and other objects: no tensor
        is copied), so that the hooks never reach the model's modules and other threads
        may use the model meanwhile. Hooks the caller registered on the model run in the
        copy too. The copy needs the model: where ``forward_func`` is a function that
        calls it (not the model or a method of it), the model is TorchScript or
        ``torch.compile``'d, or its forward reaches the layer through a function that
        closes over it, the hooks go on the model's layer, as in Captum; to share the
        model between threads there, pass a small ``nn.Module`` that holds the model and
        wraps the function.""",
    "inputs_any_dtype": """
        inputs (Tensor or tuple[Tensor, ...]): The model's input: one tensor, or a tuple
            of them when the model takes several; dimension 0 of every tensor is the
            batch. They are not differentiated, so they may be integer tensors (token
            ids). The caller's tensors are never modified.""",
    "attribute_to_layer_input": """
        attribute_to_layer_input (bool, optional): Work on the layer's input instead of
            its output. Default: ``False``.""",
    "returns_layer": """
        Tensor or tuple[Tensor, ...] or list: One attribution per layer tensor, with its
        shape: a tensor when the layer's output (or input) is one tensor, a tuple when it
        is several; for a list of layers, a list with one such entry per layer.""",
    "attribute_to_neuron_input": """
        attribute_to_neuron_input (bool, optional): Select the neuron in the layer's
            input instead of its output. Default: ``False``.""",
    "n_steps": """
        n_steps (int, optional): Number of points of the quadrature rule.
            Default: 50.""",
    "method": """
        method (str, optional): The quadrature rule: ``"riemann_left"``,
            ``"riemann_right"``, ``"riemann_middle"``, ``"riemann_trapezoid"`` or
            ``"gausslegendre"``. Default: ``"gausslegendre"``.""",
    "internal_batch_size": """
        internal_batch_size (int, optional): At most this many rows (path points times
            examples) per forward pass; ``None`` runs all ``n_steps * batch`` rows at
            once. Default: ``None``.""",
    "returns_attributions": """
        Tensor or tuple[Tensor, ...]: The attributions, one tensor per input tensor with
        the input's shape: a tensor when ``inputs`` was a tensor, a tuple when it was a
        tuple.""",
    "forward_func": """
        forward_func (torch.nn.Module or Callable): The model, or any function of the
            inputs (followed by the additional forward arguments) that returns a tensor
            whose dimension 0 is the batch.""",
    "layer": """
        layer (torch.nn.Module): The layer (a submodule of the model, applied once per
            forward pass) whose input or output the method works on.""",
    "device_ids": """
        device_ids (list[int], optional): Accepted for Captum compatibility and not
            needed: attrkit refuses ``DataParallel`` models over several devices (their
            replicas run in threads the method cannot reach); pass ``model.module``.""",
    "grad_kwargs": """
        grad_kwargs (dict, optional): Options passed through to
            :func:`torch.autograd.grad`: ``retain_graph``, ``create_graph``,
            ``allow_unused`` or ``materialize_grads``. Default: ``None``.""",
    "model": """
        model (torch.nn.Module or Callable): The model (or any function of the inputs
            returning a tensor whose dimension 0 is the batch).""",
    "baseline_distribution": """
        baselines (Tensor, tuple, or Callable): Reference rows drawn from a distribution:
            a tensor whose dimension 0 lists the reference examples and whose other
            dimensions are the input's, or a tuple with one such tensor per input tensor
            (all with the same number of rows), or a callable that returns them (called
            with ``inputs`` when it takes an argument).""",
    "multiply_by_inputs": """
        multiply_by_inputs (bool, optional): Multiply the multipliers by
            ``inputs - baselines`` (global attribution, the method as published); with
            ``False`` the multipliers alone (local attribution). Ignored when
            ``custom_attribution_func`` is given. Default: ``True``.""",
    "custom_attribution_func": """
        custom_attribution_func (Callable, optional): Computes the attributions from the
            multipliers instead of ``multipliers * (inputs - baselines)``: called as
            ``f(multipliers)``, ``f(multipliers, inputs)`` or ``f(multipliers, inputs,
            baselines)`` (by its number of parameters), each a tuple with one tensor per
            input (or layer) tensor, and returning such a tuple. Default: ``None``.""",
    "return_convergence_delta": """
        return_convergence_delta (bool, optional): Also return ``sum(attributions) -
            (F(inputs) - F(baselines))``: one entry per example, or per example and
            baseline pair for a method that draws from a baseline distribution.
            Default: ``False``.""",
    "lrp_composite": """
        composite (str, optional): The name of one of zennit's composites, which picks
            the rule of every layer: ``"epsilon_gamma_box"``, ``"epsilon_plus"``,
            ``"epsilon_alpha2_beta1"``, ``"epsilon_plus_flat"``,
            ``"epsilon_alpha2_beta1_flat"``, ``"excitation_backprop"``, or the gradient
            composites ``"deconvnet"``, ``"guided_backprop"`` and ``"beta_smooth"``.
            ``None`` (the default) applies Captum's rules: the rule each module holds in
            its ``rule`` attribute, else Captum's default (the epsilon rule with epsilon
            ``1e-9``).
        epsilon, gamma, stabilizer, low, high, zero_params, beta_smooth (optional): The
            composite's parameters, as zennit names them (``low`` and ``high`` are
            required by ``"epsilon_gamma_box"``); ``None`` leaves zennit's default.""",
    "lrp_initial_relevance": """
        The initial relevance is the target output's value (Captum's convention; with
        zennit it is ``grad_output = one_hot * output``), so the attributions sum to the
        target output where the rules conserve relevance.""",
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)


def _substitute(match: re.Match[str]) -> str:
    name = match.group("name")
    if name not in DOCS:
        raise KeyError(f"no shared docstring paragraph named {name!r}; known: {sorted(DOCS)}")
    text = textwrap.dedent(DOCS[name]).strip("\n")
    return textwrap.indent(text, match.group("indent"))


def fill_doc(obj: F) -> F:
    """Replace every ``%(name)s`` line of ``obj.__doc__`` with the shared paragraph."""
    if obj.__doc__:
        obj.__doc__ = _PLACEHOLDER.sub(_substitute, inspect.cleandoc(obj.__doc__))
    return obj
