""":func:`evaluate`: every requested metric of every requested method on one model and
batch of inputs, with the random-attribution reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from torch import Tensor
from tqdm.auto import tqdm

from attrkit.core.attribution import check_callable
from attrkit.core.call import format_tensors
from attrkit.core.docs import fill_doc
from attrkit.core.registry import method_info, takes_inputs
from attrkit.core.targets import Target, parse_target
from attrkit.validation.evaluation.crosscheck import LIBRARIES, cross_checks
from attrkit.validation.evaluation.explainers import (
    Explainer,
    MethodExplainer,
    RandomReference,
    Subject,
    input_shaped,
)
from attrkit.validation.evaluation.faithfulness import (
    Completeness,
    Deletion,
    Infidelity,
    Insertion,
    Sensitivity,
)
from attrkit.validation.evaluation.randomization import ModelRandomization
from attrkit.validation.evaluation.report import EvaluationReport, EvaluationResult, Scores

__all__ = ["DEFAULT_METHODS", "METRICS", "Metric", "evaluate"]


class Metric(Protocol):
    """What :func:`evaluate` asks of a metric (the classes of :data:`METRICS`)."""

    name: str

    def options(self) -> dict[str, Any]: ...

    def not_applicable(self, subject: Subject, explainer: Explainer) -> str: ...

    def steps(self, subject: Subject) -> int: ...

    def compute(
        self,
        subject: Subject,
        explainer: Explainer,
        attributions: tuple[Tensor, ...],
        progress: Any = None,
    ) -> Scores: ...


#: Metric name -> its class; a name in ``metrics`` stands for the class's defaults.
METRICS: dict[str, type] = {
    cls.name: cls
    for cls in (ModelRandomization, Deletion, Insertion, Infidelity, Sensitivity, Completeness)
}

#: The methods of Adebayo et al.'s comparison that attrkit has, evaluated by default.
DEFAULT_METHODS = (
    "saliency",
    "deconvolution",
    "guided_backprop",
    "integrated_gradients",
    "input_x_gradient",
)


def _metrics(metrics: object) -> list[Metric]:
    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise TypeError(
            "`metrics` must be a sequence of metric names or metric objects such as "
            f"['deletion', attrkit.Deletion(step=0.05)], got {type(metrics).__name__}"
        )
    resolved: dict[str, Metric] = {}
    for metric in metrics:
        if isinstance(metric, str):
            if metric not in METRICS:
                raise ValueError(
                    f"`metrics`: unknown metric {metric!r}; choose from {', '.join(METRICS)}"
                )
            metric = METRICS[metric]()
        elif type(metric) not in METRICS.values():
            raise TypeError(
                f"`metrics` entries must be metric names or objects of "
                f"{', '.join(c.__name__ for c in METRICS.values())}; got {type(metric).__name__}"
            )
        resolved[metric.name] = metric
    if not resolved:
        raise ValueError(f"`metrics` is empty; choose from {', '.join(METRICS)}")
    return list(resolved.values())


def _methods(methods: object) -> list[str]:
    if isinstance(methods, str) or not isinstance(methods, Sequence):
        raise TypeError(
            "`methods` must be a sequence of method names such as ['saliency', "
            f"'guided_backprop'], got {type(methods).__name__}"
        )
    names = list(dict.fromkeys(method_info(name).name for name in methods))
    if not names:
        raise ValueError("`methods` is empty; see attrkit.available_methods()")
    for name in names:
        if not takes_inputs(method_info(name)):
            raise ValueError(
                f"`methods`: {name} attributes a DataLoader, not `inputs`, and cannot be "
                "evaluated on them; evaluate the method it wraps"
            )
    return names


def _options(
    names: list[str],
    method_kwargs: Mapping[str, Any],
    method_options: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """Each method's options: the keyword arguments it names, then its own entry of
    ``method_options`` (by any of its names)."""
    named: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for name in names:
        info = method_info(name)
        accepted = set(info.init_arguments) | set(info.attribute_arguments)
        named[name] = {k: v for k, v in method_kwargs.items() if k in accepted}
        used |= set(named[name])
    unused = sorted(set(method_kwargs) - used)
    if unused:
        raise TypeError(
            f"no evaluated method takes {', '.join(map(repr, unused))} (methods: "
            f"{', '.join(names)}; give a method's own options in `method_options`)"
        )
    for key, options in (method_options or {}).items():
        name = method_info(key).name
        if name not in named:
            raise ValueError(f"`method_options` names {key!r}, which is not in `methods`")
        named[name] = {**named[name], **options}
    return named


def _check_libraries(libraries: object) -> tuple[str, ...]:
    if isinstance(libraries, str) or not isinstance(libraries, Sequence):
        raise TypeError(
            f"`libraries` must be a sequence such as ('attrkit', 'quantus'), got "
            f"{type(libraries).__name__}"
        )
    unknown = [name for name in libraries if name not in LIBRARIES]
    if unknown:
        raise ValueError(f"`libraries`: unknown {unknown!r}; choose from {', '.join(LIBRARIES)}")
    return tuple(dict.fromkeys(libraries))


def _evaluate_one(
    subject: Subject,
    explainer: Explainer,
    metrics: list[Metric],
    libraries: tuple[str, ...],
    progress: Any,
) -> list[EvaluationResult]:
    def result(metric: Metric, status: Any, reason: str = "", **kwargs: Any) -> EvaluationResult:
        return EvaluationResult(
            explainer.name, explainer.display_name, metric.name, status, reason, **kwargs
        )

    try:
        attributions = explainer.attribute(subject, subject.model)
    except Exception as error:
        progress.update(sum(metric.steps(subject) for metric in metrics))
        return [result(metric, "error", _error_line(error)) for metric in metrics]
    shaped = input_shaped(attributions, subject.inputs)
    results = []
    for metric in metrics:
        progress.set_postfix_str(f"{explainer.name}: {metric.name}", refresh=False)
        reason = metric.not_applicable(subject, explainer)
        uses_inputs_shape = not isinstance(metric, ModelRandomization)
        if not reason and uses_inputs_shape and isinstance(shaped, str):
            reason = f"{explainer.display_name}: {shaped}"
        if reason:
            progress.update(metric.steps(subject))
            results.append(result(metric, "not_applicable", reason))
            continue
        given = shaped if uses_inputs_shape else attributions
        assert not isinstance(given, str)
        try:
            scores = metric.compute(subject, explainer, given, progress)
        except Exception as error:
            results.append(result(metric, "error", _error_line(error)))
            continue
        checks = cross_checks(libraries, metric, subject, explainer, given, scores)
        results.append(result(metric, "ok", scores=scores, cross_checks=checks))
    return results


def _target_value(target: Target) -> Any:
    """The target for the report: ``None``, an index (a tuple for several dimensions), or
    one per example."""
    if target.per_example is not None:
        rows = target.per_example.tolist()
        return [row[0] if len(row) == 1 else row for row in rows]
    if target.shared is not None:
        return target.shared[0] if len(target.shared) == 1 else list(target.shared)
    return None


def _error_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


@fill_doc
def evaluate(
    model: Any,
    inputs: Any,
    /,
    target: Any = None,
    additional_forward_args: Any = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    metrics: Sequence[str | Any] = tuple(METRICS),
    seed: int = 0,
    libraries: Sequence[str] = ("attrkit",),
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | None = False,
    **method_kwargs: Any,
) -> EvaluationReport:
    """Evaluate attribution methods on one model and batch: sanity checks (model parameter
    randomization) and faithfulness (deletion, insertion, infidelity, sensitivity,
    completeness), with a random-attribution reference row for every metric.

    Every method is built through the registry, so every registered method can be
    evaluated; each is run once on the trained model, and its attributions are shared by
    the metrics (the randomization test runs it again on every randomized copy). A method
    or metric that raises is reported as ``"error"`` with the message, one that cannot
    apply (completeness for a method without the property) as ``"not_applicable"`` with
    the reason; the others go on. The caller's model is never changed: randomization
    works on a deep copy. Every random draw (SmoothGrad's noise, the re-initialized
    weights, Captum's perturbations, the random reference) starts from ``seed``, and
    torch's generators are restored afterwards.

    Args:
        %(model)s
        %(inputs)s
        %(target)s
        %(additional_forward_args)s
        methods (sequence of str): Registered method names that attribute ``inputs``
            (not ``DataLoaderAttribution``, which attributes a DataLoader). Default:
            Saliency, Deconvolution, Guided Backpropagation, Integrated Gradients, Input X
            Gradient.
        metrics (sequence): Metric names (``"model_randomization"``, ``"deletion"``,
            ``"insertion"``, ``"infidelity"``, ``"sensitivity"``, ``"completeness"``) or
            configured metric objects (:class:`ModelRandomization`, :class:`Deletion`,
            ...). Default: all, with their defaults.
        seed (int): The seed of every random draw. Default: 0.
        libraries (sequence of str): ``("attrkit", "quantus")`` also computes the metrics
            Quantus has (its model parameter randomisation test and pixel flipping) with
            Quantus, on the same inputs, seeds and attributions, and reports whether they
            agree. Default: attrkit only.
        method_options (mapping, optional): Method name -> options for that method only
            (e.g. ``{"noise_tunnel": {"base_method": "integrated_gradients"}}``).
        progress (bool, optional): Show a progress bar (on standard error); ``None``
            shows it when standard error is a terminal. Default: False.
        **method_kwargs: Options given to every method that takes them by name, split
            between the constructor (``layer``, a module or its name, as in
            :func:`attrkit.compare`) and ``attribute`` (``n_steps``); an option no method
            takes is an error.

    Returns:
        EvaluationReport: a result per method and metric; print it, export it
        (``to_json``, ``to_markdown``) or draw it (``figure``).

    Raises:
        KeyError: for an unknown method.
        TypeError, ValueError, IndexError: for bad arguments (the message names them).

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
        ...                             torch.nn.Linear(8, 3))
        >>> report = attrkit.evaluate(model, torch.randn(5, 4), target=0,
        ...                           methods=["saliency"], metrics=["model_randomization"])
        >>> [step["layer"] for step in report.to_dict()["results"][0]["cascade"]]
        ['2', '0']
    """
    check_callable(model, "model")
    tensors, is_tuple = format_tensors(inputs, "inputs")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}")
    names = _methods(methods)
    chosen = _metrics(metrics)
    chosen_libraries = _check_libraries(libraries)
    options = _options(names, method_kwargs, method_options)
    subject = Subject(
        model=model,
        inputs=tuple(x.detach() for x in tensors),
        is_tuple=is_tuple,
        target=target,
        parsed_target=parse_target(target, int(tensors[0].shape[0])),
        additional_forward_args=additional_forward_args,
        seed=seed,
    )
    explainers: list[Explainer] = [
        MethodExplainer.build(name, subject, options[name]) for name in names
    ]
    explainers.append(RandomReference())
    total = len(explainers) * sum(metric.steps(subject) for metric in chosen)
    results: list[EvaluationResult] = []
    disable = None if progress is None else not progress  # None: only on a terminal
    with tqdm(total=total, desc="attrkit evaluate", disable=disable, leave=False) as bar:
        for explainer in explainers:
            results += _evaluate_one(subject, explainer, chosen, chosen_libraries, bar)
    return EvaluationReport(
        model=type(model).__name__,
        input_shapes=tuple(tuple(x.shape) for x in tensors),
        target=_target_value(subject.parsed_target),
        seed=seed,
        methods=tuple(explainer.name for explainer in explainers),
        metrics={metric.name: metric.options() for metric in chosen},
        results=tuple(results),
        images=tuple(x[:1].detach().cpu() for x in tensors),
    )
