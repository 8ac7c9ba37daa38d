"""``attrkit explain``: attribute your own images with your own model and write one heatmap
PNG per image and method."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attrkit.cli._common import (
    IMAGE_SUFFIXES,
    CLIError,
    add_command,
    add_model_options,
    comma_separated_ints,
    error_line,
    load_input,
    load_model,
    parse_shape,
    parse_target_option,
    resolve_target,
)
from attrkit.core.registry import (
    MethodInfo,
    UnknownMethodError,
    create,
    method_info,
    takes_argument,
)

HELP = "attribute images with a model and write one heatmap PNG per image and method"
EPILOG = """example:
  attrkit explain --model torchvision.models:resnet18 --weights resnet18.pt \\
      --method guided_backprop,integrated_gradients --size 224,224 \\
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --out heatmaps/ cat.jpg dog.png
"""
# attrkit.viz.SIGNS and MODES (less original_image), spelled out so that the parser builds
# without importing matplotlib; tests/cli/test_explain.py checks that they match.
SIGNS = ("absolute_value", "positive", "negative", "all")
MODES = ("blended_heat_map", "heat_map", "masked_image", "alpha_scaling")


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "explain", HELP, EPILOG)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    add_model_options(parser)
    parser.add_argument(
        "--method",
        action="append",
        required=True,
        metavar="NAME",
        help="attribution method (see `attrkit methods`); repeat it or separate with commas",
    )
    parser.add_argument(
        "--target",
        default="predicted",
        metavar="N|predicted",
        help="output class to explain (default: the model's prediction for each image)",
    )
    parser.add_argument(
        "--layer",
        metavar="NAME",
        help="layer for the methods that need one, e.g. features.28 (default: the last "
        "Conv2d for Grad-CAM)",
    )
    parser.add_argument(
        "--neuron",
        metavar="I,J,...",
        help="neuron of --layer for the neuron methods, e.g. 5 or 12,3,3",
    )
    parser.add_argument(
        "--size", metavar="H,W", help="resize every image to H x W pixels (default: keep)"
    )
    parser.add_argument(
        "--grayscale", action="store_true", help="read images as one channel (default: RGB)"
    )
    parser.add_argument(
        "--mean",
        default="0",
        metavar="M[,M,M]",
        help="per-channel mean subtracted from the [0, 1] pixels (default: 0)",
    )
    parser.add_argument(
        "--std",
        default="1",
        metavar="S[,S,S]",
        help="per-channel standard deviation the pixels are divided by (default: 1)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="blended_heat_map",
        help="how the heatmap is drawn (default: blended_heat_map, over the greyscale image)",
    )
    parser.add_argument(
        "--sign",
        choices=SIGNS,
        default="absolute_value",
        help="which attributions are shown (default: absolute_value)",
    )
    parser.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help="folder for IMAGE-METHOD.png files (default: the current folder)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no list of files"
    )
    parser.set_defaults(run=run)


def _methods(values: list[str]) -> list[MethodInfo]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise CLIError("--method: give at least one method name (see `attrkit methods`)")
    try:
        infos = [method_info(name) for name in names]
    except UnknownMethodError as error:
        raise CLIError(f"--method: {error}") from None
    return list({info.name: info for info in infos}.values())


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise CLIError(f"{option} {text!r} must be comma-separated numbers") from None
    return values


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    shape = parse_shape(text, "--size")
    if len(shape) != 2:
        raise CLIError(f"--size {text!r} must be two sizes, H,W (e.g. 224,224)")
    return shape[0], shape[1]


def _last_conv(model: nn.Module) -> str | None:
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    return names[-1] if names else None


def _method_arguments(
    info: MethodInfo, model: nn.Module, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Constructor and ``attribute`` arguments from --layer and --neuron."""
    init_kwargs: dict[str, Any] = {}
    attribute_kwargs: dict[str, Any] = {}
    if "neuron_selector" in info.attribute_arguments:
        if args.layer is None or args.neuron is None:
            raise CLIError(f"--method {info.name} needs --layer NAME and --neuron I,J,...")
        neuron = comma_separated_ints(
            args.neuron, f"--neuron {args.neuron!r} must be comma-separated integers"
        )
        attribute_kwargs["neuron_selector"] = neuron[0] if len(neuron) == 1 else neuron
    if "layer" in info.init_arguments:
        layer = args.layer or _last_conv(model)
        if layer is None:
            raise CLIError(f"--method {info.name} needs --layer NAME (the model has no Conv2d)")
        init_kwargs["layer"] = layer
    return init_kwargs, attribute_kwargs


def _normalized(image: Tensor, mean: list[float], std: list[float], path: str) -> Tensor:
    channels = image.shape[1]
    for values, option in ((mean, "--mean"), (std, "--std")):
        if len(values) not in (1, channels):
            raise CLIError(
                f"{option} has {len(values)} values but {path!r} has {channels} channel(s)"
            )
    shape = (1, -1, 1, 1)
    return (image - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


def _output_names(paths: list[str]) -> list[str]:
    """File stems, made unique by their position where two images share one."""
    stems = [Path(path).stem for path in paths]
    return [
        f"{stem}-{index}" if stems.count(stem) > 1 else stem
        for index, stem in enumerate(stems, start=1)
    ]


def run(args: argparse.Namespace) -> int:
    try:
        from attrkit.viz import save_figure, visualize_image_attr
    except ImportError:
        raise CLIError(
            'explain draws heatmaps with matplotlib: pip install "attrkit[viz]"'
        ) from None
    from tqdm import tqdm

    methods = _methods(args.method)
    size = _size(args.size)
    mean, std = _floats(args.mean, "--mean"), _floats(args.std, "--std")
    if 0 in std:
        raise CLIError(f"--std {args.std!r} must not contain 0")
    target_option = parse_target_option(args.target)
    if isinstance(target_option, list):
        raise CLIError(f"--target {args.target!r} must be one class index or 'predicted'")
    for path in args.images:
        if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
            raise CLIError(f"{path!r} is not an image ({', '.join(IMAGE_SUFFIXES)})")
        if not Path(path).is_file():
            raise CLIError(f"{path!r}: no such file")
    model = load_model(args.model, args.weights)
    explainers = []
    for info in methods:
        init_kwargs, attribute_kwargs = _method_arguments(info, model, args)
        try:
            explainer = create(info.name, model, **init_kwargs)
        except (TypeError, ValueError) as error:
            raise CLIError(f"--method {info.name}: {error}") from None
        explainers.append((info, explainer, attribute_kwargs, takes_argument(info, "target")))
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CLIError(f"--out {args.out!r}: {error.strerror}") from None

    written: list[Path] = []
    progress = tqdm(
        list(zip(args.images, _output_names(args.images), strict=True)),
        desc="explain",
        unit="image",
        file=sys.stderr,
        disable=args.quiet or not sys.stderr.isatty(),
    )
    for path, stem in progress:
        image = load_input(path, "IMAGE", size=size, grayscale=args.grayscale)
        inputs = _normalized(image, mean, std, path)
        target = _target(model, inputs, target_option, path)
        for info, explainer, attribute_kwargs, takes_target in explainers:
            kwargs = dict(attribute_kwargs, target=target) if takes_target else attribute_kwargs
            try:
                attribution = explainer.attribute(inputs, **kwargs)
            except (RuntimeError, TypeError, ValueError, IndexError) as error:
                raise CLIError(f"{path!r}: {info.name}: {error_line(error)}") from None
            label = f"target {target}" if takes_target else f"neuron {kwargs['neuron_selector']}"
            figure, _ = visualize_image_attr(
                attribution[0],
                image[0],
                method=args.mode,
                sign=args.sign,
                show_colorbar=True,
                title=f"{info.display_name}, {label}",
                fig_size=(4, 4.6),
            )
            file = out / f"{stem}-{info.name}.png"
            try:
                written.append(save_figure(figure, file))
            except OSError as error:
                raise CLIError(
                    f"--out {args.out!r}: cannot write {file}: {error.strerror}"
                ) from None
    if not args.quiet:
        print("\n".join(str(file) for file in written))
    return 0


def _target(model: nn.Module, inputs: Tensor, option: int | str | None, path: str) -> int:
    try:
        target = resolve_target(model, inputs, option)
    except CLIError as error:
        raise CLIError(f"{path!r}: {error} (check --size and --grayscale)") from None
    return target if isinstance(target, int) else int(target[0])
