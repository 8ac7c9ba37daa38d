"""The steps of :func:`attrkit.compare`: check the arguments, audit the model's ReLUs, run
each library through its adapter with the same seed, compare every pair that ran."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves

from attrkit.core.attribution import check_callable
from attrkit.core.call import format_additional_forward_args, format_tensors
from attrkit.core.docs import fill_doc
from attrkit.core.random import seeded
from attrkit.core.registry import (
    method_info,
    resolve_layer,
    split_method_kwargs,
    takes_argument,
    takes_inputs,
)
from attrkit.core.targets import parse_target
from attrkit.validation.adapters import ADAPTERS, MethodRequest, Support
from attrkit.validation.auditing import LIBRARIES as AUDITED_LIBRARIES
from attrkit.validation.auditing import AuditReport, audit, relu_rule
from attrkit.validation.comparison.metrics import compare_tensors
from attrkit.validation.comparison.report import (
    CompareReport,
    LibraryRun,
    PairComparison,
    Tolerances,
)
from attrkit.validation.lrp_audit import LrpAuditReport, audit_lrp
from attrkit.validation.nonlinearity_audit import audit_deeplift

__all__ = ["DEFAULT_LIBRARIES", "compare"]

DEFAULT_LIBRARIES = ("attrkit", "captum", "zennit")


@contextmanager
def _seeded(seed: int, inputs: tuple[Tensor, ...]) -> Iterator[None]:
    """Run with torch's (CPU and the inputs' CUDA devices) and NumPy's global generators
    seeded with ``seed``; restore them afterwards."""
    numpy_state = np.random.get_state()
    with seeded(seed, (x.device for x in inputs)):
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def _audit_cause(report: AuditReport | None, library: str, rule: str | None) -> str:
    """The audit's finding on ``library``'s ReLU hooks, if it has one."""
    if report is None or library not in AUDITED_LIBRARIES:
        return ""
    return "" if report.follows_definition(library, rule) else report.library_summary(library, rule)


def _lrp_cause(report: LrpAuditReport, library: str) -> str:
    """The LRP audit's finding on ``library``'s hooks, if it has one."""
    return "" if report.follows_definition(library) else report.library_summary(library)


def _warm_up(request: MethodRequest, seed: int) -> None:
    """One untimed forward and backward pass of the model, so that the first library's
    time does not include what torch does once per process and shape (lazy imports,
    kernel selection)."""
    leaves = tuple(x.detach().clone().requires_grad_(x.is_floating_point()) for x in request.inputs)
    differentiable = tuple(leaf for leaf in leaves if leaf.requires_grad)
    extra = format_additional_forward_args(request.additional_forward_args)
    with _seeded(seed, request.inputs), torch.enable_grad():
        output = request.model(*(leaf.clone() for leaf in leaves), *extra)
        scores = [t.sum() for t in tree_leaves(output) if isinstance(t, Tensor) and t.requires_grad]
        if scores and differentiable:
            total = torch.stack(scores).sum()
            torch.autograd.grad(
                total, differentiable, grad_outputs=torch.ones_like(total), allow_unused=True
            )


def _pair(
    first: LibraryRun,
    second: LibraryRun,
    tolerances: Tolerances,
    top_k: float,
    explain: dict[str, str],
) -> PairComparison:
    assert first.attributions is not None
    assert second.attributions is not None
    tensors = tuple(
        compare_tensors(a, b, top_k, index)
        for index, (a, b) in enumerate(zip(first.attributions, second.attributions, strict=False))
    )
    stochastic = bool(first.stochastic or second.stochastic)
    same_count = len(first.attributions) == len(second.attributions)
    agree = same_count and all(tolerances.accept(t, stochastic) for t in tensors)
    verdict: Literal["agree", "differ"] = "agree" if agree else "differ"
    explanation = ""
    if verdict == "differ":
        causes = [explain[run.library] for run in (first, second) if explain.get(run.library)]
        if not same_count:
            causes.insert(0, "the libraries return different numbers of tensors")
        explanation = (
            "; ".join(causes) or "not explained by the audit or a known difference of definition"
        )
    return PairComparison(first.library, second.library, verdict, stochastic, tensors, explanation)


def _check_libraries(libraries: object) -> tuple[str, ...]:
    if isinstance(libraries, str) or not isinstance(libraries, Sequence):
        raise TypeError(
            "`libraries` must be a sequence of library names such as "
            f"('attrkit', 'captum'), got {type(libraries).__name__}"
        )
    names = tuple(dict.fromkeys(libraries))
    unknown = [name for name in names if name not in ADAPTERS]
    if unknown or not names:
        raise ValueError(
            f"`libraries` must name at least one of {', '.join(ADAPTERS)}; got {list(libraries)!r}"
        )
    return names


def _check_top_k(top_k: object) -> float:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, float)) or not 0 < top_k <= 1:
        raise ValueError(f"`top_k` must be a fraction in (0, 1], got {top_k!r}")
    return float(top_k)


def _request(
    method: str,
    model: Any,
    inputs: Any,
    target: Any,
    additional_forward_args: Any,
    method_kwargs: dict[str, Any],
) -> MethodRequest:
    info = method_info(method)
    if not takes_inputs(info):
        raise ValueError(
            f"`method`: {info.name} attributes a DataLoader, not `inputs`; call "
            f"attrkit.create({info.name!r}, model).attribute(dataloader) directly"
        )
    check_callable(model, "model")
    # Methods that do not differentiate the inputs (layer methods, perturbation) take
    # any dtype (token ids).
    floating = bool(getattr(info.cls, "differentiates_inputs", False))
    tensors, is_tuple = format_tensors(inputs, "inputs", floating)
    parsed_target = parse_target(target, int(tensors[0].shape[0]))
    init_kwargs, attribute_kwargs = split_method_kwargs(info, method_kwargs)
    if attribute_kwargs.get("return_convergence_delta"):
        raise ValueError("`return_convergence_delta`: compare compares attributions only")
    if target is not None and not takes_argument(info, "target"):
        raise ValueError(f"`target`: {info.name} takes no target (pass its own arguments)")
    return MethodRequest(
        info=info,
        model=model,
        inputs=tensors,
        is_tuple=is_tuple,
        target=target,
        parsed_target=parsed_target,
        additional_forward_args=additional_forward_args,
        init_kwargs=resolve_layer(model, init_kwargs),
        attribute_kwargs=attribute_kwargs,
    )


def _run(library: str, request: MethodRequest, seed: int) -> LibraryRun:
    adapter = ADAPTERS[library]()
    missing = adapter.unavailable()
    if missing:
        return LibraryRun(library, "unavailable", reason=missing)
    support: Support = adapter.supports(request)
    if not support:
        return LibraryRun(library, "unavailable", reason=support.reason)
    start = time.perf_counter()
    try:
        with _seeded(seed, request.inputs):
            attributions = adapter.attribute(request)
    except Exception as error:
        if library == "attrkit":
            raise  # the reference: a failure here is the caller's error
        lines = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {lines[0] if lines else ''}"
        return LibraryRun(library, "error", reason=reason, deviation=support.deviation)
    return LibraryRun(
        library,
        "ok",
        seconds=time.perf_counter() - start,
        stochastic=support.stochastic,
        deviation=support.deviation,
        attributions=attributions,
    )


@fill_doc
def compare(
    method: str,
    model: Any,
    inputs: Any,
    /,
    target: Any = None,
    additional_forward_args: Any = None,
    libraries: Sequence[str] = DEFAULT_LIBRARIES,
    tolerances: Tolerances | None = None,
    top_k: float = 0.1,
    seed: int = 0,
    **method_kwargs: Any,
) -> CompareReport:
    """Run ``method`` through several libraries on the same model, inputs and target, and
    report how well they agree.

    Every library gets copies of the same inputs, and each call starts with torch's and
    NumPy's random generators seeded with ``seed`` (restored afterwards), so that noise
    methods draw the same noise where the libraries draw it the same way. A library that
    is not installed, lacks the method or cannot take these arguments is reported as
    ``"unavailable"`` with the reason; one that raises is reported as ``"error"``. attrkit
    is the reference: if it raises, so does ``compare``. Each call is timed after one
    untimed forward and backward pass of the model (torch's one-time setup), so that the
    times compare the libraries.

    Args:
        method (str): A registered method name (see :func:`attrkit.available_methods`).
        %(model)s
        %(inputs)s
        %(target)s
        %(additional_forward_args)s
        libraries (sequence of str): Which of ``"attrkit"``, ``"captum"`` and
            ``"zennit"`` to run. Default: all three.
        tolerances (Tolerances, optional): The agreement criterion. Default:
            ``Tolerances()`` (relative L2 error at most ``1e-4``).
        top_k (float): The fraction of largest ``|attribution|`` positions the top-k
            overlap compares. Default: 0.1.
        seed (int): The seed every library's call starts from. Default: 0.
        **method_kwargs: The method's constructor arguments (e.g. ``layer``, a module or
            its name; ``base_method`` of ``noise_tunnel``) and ``attribute`` arguments
            (e.g. ``n_steps``), split by name as in :func:`attrkit.attribute`. The first
            three parameters are positional-only, so that Integrated Gradients' own
            ``method`` (e.g. ``method="riemann_right"``) is a method argument.

    Returns:
        CompareReport: runs, pairwise metrics and verdicts, and the audit's explanation.

    Raises:
        KeyError: for an unknown method.
        TypeError, ValueError, IndexError: for bad arguments (the message names them).

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> report = attrkit.compare("guided_backprop", model, torch.randn(5, 3), target=1,
        ...                          libraries=("attrkit", "captum"))
        >>> report.pair("attrkit", "captum").verdict
        'agree'
        >>> report.audit_summary
        'Captum overrides the 1 ReLU as defined; zennit overrides the 1 ReLU as defined.'
    """
    names = _check_libraries(libraries)
    tolerances = Tolerances() if tolerances is None else tolerances
    if not isinstance(tolerances, Tolerances):
        raise TypeError(
            f"`tolerances` must be an attrkit.Tolerances, got {type(tolerances).__name__}"
        )
    top_k = _check_top_k(top_k)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}")
    request = _request(method, model, inputs, target, additional_forward_args, method_kwargs)
    base = request.base_info
    # LRP's activations pass the relevance on: its own audit (audit_lrp) explains it;
    # DeepLift's rules apply to every nonlinearity: audit_deeplift explains its methods.
    lrp = (base or request.info).family == "lrp"
    deeplift = (base or request.info).family == "deeplift" and bool((base or request.info).rules)
    rule = None if lrp or deeplift else relu_rule((base or request.info).name)
    report_audit = (
        audit(model, inputs, additional_forward_args)
        if rule is not None and isinstance(model, nn.Module)
        else None
    )
    lrp_audit = None
    if lrp and isinstance(model, nn.Module):
        lrp_audit = audit_lrp(model, inputs, additional_forward_args)
    deeplift_cause = ""
    if deeplift and isinstance(model, nn.Module):
        deeplift_audit = audit_deeplift(model, inputs, additional_forward_args)
        deeplift_cause = "" if deeplift_audit.follows_definition() else deeplift_audit.summary()
    _warm_up(request, seed)
    runs = [_run(name, request, seed) for name in names]

    explain: dict[str, str] = {}
    for run in runs:
        causes = [_audit_cause(report_audit, run.library, rule), run.deviation]
        if lrp_audit is not None and run.library in AUDITED_LIBRARIES:
            causes.insert(0, _lrp_cause(lrp_audit, run.library))
        if run.library == "captum":
            causes.insert(0, deeplift_cause)
        explain[run.library] = "; ".join(cause for cause in causes if cause)
    runs = [
        replace(run, explanation=explain[run.library] if run.status == "error" else "")
        for run in runs
    ]
    done = [run for run in runs if run.status == "ok"]
    pairs = tuple(
        _pair(first, second, tolerances, top_k, explain)
        for i, first in enumerate(done)
        for second in done[i + 1 :]
    )
    return CompareReport(
        method=request.info.name,
        display_name=request.info.display_name,
        model=type(model).__name__,
        input_shapes=tuple(tuple(x.shape) for x in request.inputs),
        target=request.parsed_target.text,
        seed=seed,
        top_k=top_k,
        tolerances=tolerances,
        runs=tuple(runs),
        pairs=pairs,
        audit=report_audit,
        relu_rule=rule,
    )
