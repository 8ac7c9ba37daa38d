"""``attrkit evaluate``: sanity checks and faithfulness metrics of attribution methods on
your model, or with no arguments on the built-in digits model and its held-out digits."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from attrkit.cli._common import (
    FORMATS,
    CLIError,
    add_command,
    add_model_arguments,
    add_option_argument,
    error_line,
    load_input,
    load_model,
    parse_options,
    parse_shape,
    parse_target_option,
    random_input,
    render_report,
    resolve_target,
)
from attrkit.core.registry import UnknownMethodError, available_methods, method_info
from attrkit.core.targets import predicted_target
from attrkit.validation.evaluation import (
    DEFAULT_METHODS,
    METRICS,
    Deletion,
    EvaluationReport,
    Insertion,
    evaluate,
)
from attrkit.validation.evaluation.crosscheck import LIBRARIES

HELP = "sanity checks and faithfulness metrics of attribution methods (default: built-in model)"
DEFAULT_DIGITS = 100
EPILOG = f"""metrics:
  model_randomization  similarity of the attributions before and after the model's layers
                       are randomized (cascading from the top and one at a time); a method
                       that explains the model must change
  deletion, insertion  the model's score as the most-attributed features are removed
                       from the input / inserted into the baseline; area under the curve
  infidelity           captum.metrics.infidelity (lower is better)
  sensitivity          captum.metrics.sensitivity_max (lower is better)
  completeness         |sum of attributions - (f(x) - f(baseline))|, for methods defined
                       to sum to it
Every metric also runs on random attributions (the "random" row): the chance level.

Without --model, the built-in digits CNN and its first {DEFAULT_DIGITS} held-out digits
(--digits); the target is the predicted class unless --target says otherwise.

exit status:
  0  the evaluation ran (a method or metric that failed is listed in the report)
  2  a usage error or a bad model, file or input (one line on stderr)

examples:
  attrkit evaluate --methods saliency,guided_backprop,integrated_gradients \\
      --metrics model_randomization,deletion --format json
  attrkit evaluate --model torchvision.models:resnet18 --input images.pt \\
      --methods guided_backprop,layer_grad_cam --option layer=layer4 --figure evaluation.png
"""


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "evaluate", HELP, EPILOG)
    add_model_arguments(parser, required=False)
    parser.add_argument(
        "--digits",
        type=int,
        default=DEFAULT_DIGITS,
        metavar="N",
        help=f"without --model and --input: how many held-out digits (default: {DEFAULT_DIGITS})",
    )
    parser.add_argument(
        "--target",
        default="predicted",
        metavar="N|N,N,...|predicted",
        help="output index, one per example, or the model's prediction (default: predicted)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        metavar="NAME,...|all",
        help=f"methods to evaluate (see `attrkit methods`; default: {','.join(DEFAULT_METHODS)})",
    )
    parser.add_argument(
        "--metrics",
        default=",".join(METRICS),
        metavar="NAME,...",
        help=f"metrics, from {', '.join(METRICS)} (default: all)",
    )
    parser.add_argument(
        "--baseline",
        default="0",
        metavar="VALUE|mean",
        help="deletion and insertion: what replaces a feature, a number or each input's "
        "mean (default: 0)",
    )
    parser.add_argument(
        "--step",
        default="0.02",
        metavar="N|FRACTION",
        help="deletion and insertion: features per step, a count or a fraction (default: 0.02)",
    )
    parser.add_argument(
        "--score",
        choices=("probability", "logit"),
        default="probability",
        help="deletion and insertion: the softmax probability of the target or its logit "
        "(default: probability)",
    )
    parser.add_argument(
        "--libraries",
        default="",
        metavar="LIB,...",
        help="also compute the metrics that "
        f"{', '.join(name for name in LIBRARIES if name != 'attrkit')} has with it, and "
        "compare (default: none)",
    )
    add_option_argument(parser, "layer=features.3 or n_steps=32 (to every method that takes it)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="(default: table)")
    parser.add_argument("--figure", metavar="FILE", help="save the report's figure (a PNG)")
    parser.set_defaults(run=run)


def _comma_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _methods(text: str) -> list[str]:
    names = available_methods() if text.strip() == "all" else _comma_list(text)
    if not names:
        raise CLIError("--methods: give at least one method, or 'all'")
    try:
        return [method_info(name).name for name in names]
    except UnknownMethodError as error:
        raise CLIError(f"--methods: {error}") from None


def _metrics(args: argparse.Namespace) -> list[Any]:
    names = _comma_list(args.metrics)
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise CLIError(
            f"--metrics: unknown {', '.join(map(repr, unknown)) or 'none given'}; choose "
            f"from {', '.join(METRICS)}"
        )
    baseline: float | str = args.baseline
    if args.baseline != "mean":
        try:
            baseline = float(args.baseline)
        except ValueError:
            raise CLIError(f"--baseline {args.baseline!r} must be a number or 'mean'") from None
    try:
        step: float = int(args.step) if args.step.isdigit() else float(args.step)
        curves = {
            cls.name: cls(baseline=baseline, step=step, score=args.score)
            for cls in (Deletion, Insertion)
        }
    except ValueError as error:
        raise CLIError(f"--step {args.step!r}: {error}") from None
    return [curves.get(name, name) for name in names]


def _libraries(text: str) -> tuple[str, ...]:
    names = _comma_list(text)
    unknown = [name for name in names if name not in LIBRARIES]
    if unknown:
        raise CLIError(
            f"--libraries: unknown {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(name for name in LIBRARIES if name != 'attrkit')}"
        )
    return tuple(dict.fromkeys(["attrkit", *names]))


def _model_and_inputs(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.Tensor, bool]:
    """The model, the inputs and whether the model is the built-in one."""
    from attrkit.demo import load_demo_model, load_heldout_digits

    if args.model is None:
        if args.weights is not None:
            raise CLIError("--weights needs --model (the built-in model has its own)")
        model: torch.nn.Module = load_demo_model()
    else:
        model = load_model(args.model, args.weights)
    if args.input is not None:
        return model, load_input(args.input), args.model is None
    if args.input_shape is not None:
        return model, random_input(parse_shape(args.input_shape), args.seed), args.model is None
    if args.model is not None:
        raise CLIError("--model needs the inputs: --input FILE or --input-shape N,C,H,W")
    digits = load_heldout_digits()
    if not 1 <= args.digits <= len(digits.labels):
        raise CLIError(f"--digits must be between 1 and {len(digits.labels)}; got {args.digits}")
    return model, digits.images[: args.digits], True


def _demo_options(
    methods: list[str], model: Any, inputs: torch.Tensor, given: dict[str, Any]
) -> dict[str, Any]:
    """On the built-in model, the demo's arguments of each method (its layer, its neuron)
    that --option does not give; the target comes from --target."""
    from attrkit.demo import demo_arguments

    predicted = predicted_target(model, inputs)
    options = {}
    for name in methods:
        init_kwargs, attribute_kwargs = demo_arguments(name, model, predicted)
        defaults = {**init_kwargs, **attribute_kwargs}
        options[name] = {k: v for k, v in defaults.items() if k != "target" and k not in given}
    return options


def run(args: argparse.Namespace) -> int:
    methods = _methods(args.methods)
    metrics = _metrics(args)
    libraries = _libraries(args.libraries)
    options = parse_options(args.option)
    target_option = parse_target_option(args.target)
    model, inputs, built_in = _model_and_inputs(args)
    target = resolve_target(model, inputs, target_option)
    method_options = _demo_options(methods, model, inputs, options) if built_in else None
    try:
        report = evaluate(
            model,
            inputs,
            target=target,
            methods=methods,
            metrics=metrics,
            seed=args.seed,
            libraries=libraries,
            method_options=method_options,
            progress=None,
            **options,
        )
    except Exception as error:
        raise CLIError(
            f"evaluating on the input of shape {tuple(inputs.shape)}: {error_line(error)}"
        ) from None
    print(render_report(report, args.format))
    if args.figure is not None:
        _save_figure(report, args.figure)
    return 0


def _save_figure(report: EvaluationReport, path: str) -> None:
    try:
        from attrkit.viz import save_figure
    except ImportError:
        raise CLIError('--figure needs matplotlib: pip install "attrkit[viz]"') from None
    try:
        save_figure(report.figure(), Path(path))
    except OSError as error:
        raise CLIError(f"--figure {path!r}: cannot write it: {error.strerror}") from None
    except ValueError as error:
        raise CLIError(f"--figure: {error}") from None
