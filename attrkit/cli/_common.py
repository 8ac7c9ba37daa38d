"""Pieces shared by the subcommands: loading a model, its weights, inputs and targets from
command-line options, with one-line errors (:class:`CLIError`) instead of tracebacks."""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrkit.core.targets import predicted_target

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "CLIError",
    "add_command",
    "add_model_arguments",
    "add_model_options",
    "add_option_argument",
    "call_factory",
    "comma_separated_ints",
    "error_line",
    "load_factory",
    "load_image",
    "load_input",
    "load_model",
    "load_model_and_inputs",
    "parse_options",
    "parse_shape",
    "parse_target_option",
    "random_input",
    "render_report",
    "resolve_target",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class CLIError(Exception):
    """A user error the command line reports as one line on stderr (exit status 2)."""


def load_factory(spec: str, option: str = "--model") -> Callable[..., Any]:
    """Import ``package.module:attribute`` (from the current directory or the installed
    packages) and return the attribute, which must be callable."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CLIError(f"{option} {spec!r} must look like package.module:factory")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CLIError(f"{option} {spec!r}: cannot import {module_name!r}: {error}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise CLIError(f"{option} {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise CLIError(f"{option} {spec!r}: {attribute!r} is not callable")
    return target  # type: ignore[no-any-return]


def call_factory(spec: str, option: str = "--model") -> Any:
    """Import the factory ``spec`` names (see :func:`load_factory`) and call it without
    arguments; an exception it raises becomes a one-line :class:`CLIError`."""
    factory = load_factory(spec, option)
    try:
        return factory()
    except Exception as error:
        raise CLIError(
            f"{option} {spec!r}: the factory raised {type(error).__name__}: {error}"
        ) from None


def load_model(spec: str, weights: str | None = None) -> torch.nn.Module:
    """Build the model from ``--model`` (a factory called without arguments), load the
    optional ``--weights`` state dict, and put it in eval mode."""
    model = call_factory(spec)
    if not isinstance(model, torch.nn.Module):
        raise CLIError(f"--model {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        path = _existing_file(weights, "--weights")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as error:
            raise CLIError(f"--weights {weights!r}: {error_line(error)}") from None
    return model.eval()


def _existing_file(path: str, option: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise CLIError(f"{option} {path!r}: no such file")
    return file


def load_input(
    path: str,
    option: str = "--input",
    size: tuple[int, int] | None = None,
    grayscale: bool = False,
) -> torch.Tensor:
    """Read a float tensor from a ``.pt`` / ``.pth`` file (a tensor), a ``.npy`` array, or an
    image (as a ``1 x C x H x W`` tensor in [0, 1], resized to ``size`` and converted to one
    channel with ``grayscale``, see :func:`load_image`)."""
    file = _existing_file(path, option)
    suffix = file.suffix.lower()
    try:
        if suffix in (".pt", ".pth"):
            value = torch.load(file, map_location="cpu", weights_only=True)
            if not isinstance(value, torch.Tensor):
                raise CLIError(f"{option} {path!r} holds a {type(value).__name__}, not a tensor")
            return value.float()
        if suffix == ".npy":
            return torch.from_numpy(np.load(file, allow_pickle=False)).float()
        if suffix in IMAGE_SUFFIXES:
            return load_image(file, size=size, grayscale=grayscale)
    except CLIError:
        raise
    except Exception as error:
        raise CLIError(f"{option} {path!r}: {error_line(error)}") from None
    raise CLIError(
        f"{option} {path!r}: unknown file type {suffix or '(none)'}; "
        f"use .pt, .npy or an image ({', '.join(IMAGE_SUFFIXES)})"
    )


def load_image(
    path: Path, size: tuple[int, int] | None = None, grayscale: bool = False
) -> torch.Tensor:
    """An image as a ``1 x C x H x W`` float tensor in [0, 1], optionally resized."""
    try:
        from PIL import Image
    except ImportError:
        raise CLIError("reading images needs Pillow: pip install pillow") from None
    with Image.open(path) as opened:
        image = opened.convert("L" if grayscale else "RGB")
    if size is not None:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array.copy())
    tensor = tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    return tensor.unsqueeze(0)


def comma_separated_ints(text: str, message: str) -> tuple[int, ...]:
    """``"2,3,32"`` -> ``(2, 3, 32)``; a :class:`CLIError` with ``message`` when a part is
    not an integer."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise CLIError(message) from None


def parse_shape(text: str, option: str = "--input-shape") -> tuple[int, ...]:
    """``"2,3,32,32"`` -> ``(2, 3, 32, 32)``."""
    shape = comma_separated_ints(
        text, f"{option} {text!r} must be comma-separated integers, e.g. 2,3,32,32"
    )
    if not shape or any(size <= 0 for size in shape):
        raise CLIError(f"{option} {text!r} must be positive sizes, e.g. 2,3,32,32")
    return shape


def random_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A standard normal tensor of ``shape`` drawn from its own generator seeded ``seed``."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def parse_target_option(text: str | None) -> int | list[int] | str | None:
    """``--target``: ``None``, ``"predicted"``, an int, or comma-separated ints (one per
    example)."""
    if text is None or text == "predicted":
        return text
    values = comma_separated_ints(
        text, f"--target {text!r} must be 'predicted', an int, or comma-separated ints"
    )
    return values[0] if len(values) == 1 else list(values)


def parse_options(options: list[str]) -> dict[str, Any]:
    """``["n_steps=32", "layer=features.3"]`` -> ``{"n_steps": 32, "layer": "features.3"}``."""
    parsed: dict[str, Any] = {}
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or not key.strip().isidentifier():
            raise CLIError(f"--option {option!r} must look like KEY=VALUE, e.g. n_steps=32")
        try:
            value: Any = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        parsed[key.strip()] = value
    return parsed


def add_option_argument(parser: argparse.ArgumentParser, examples: str) -> None:
    """``--option KEY=VALUE``, repeatable (read back with :func:`parse_options`);
    ``examples`` ends its help, e.g. ``"n_steps=32 or layer=features.3"``."""
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"another argument of the method, as a Python literal or a string, e.g. {examples}; "
        "repeat for more",
    )


def error_line(error: BaseException) -> str:
    """``Type: first line of the message``, for a one-line error report."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def add_command(
    subparsers: Any, name: str, help: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``: ``help`` is also its description, and
    ``epilog`` (examples) keeps its line breaks."""
    if epilog is None:
        return subparsers.add_parser(name, help=help, description=help)  # type: ignore[no-any-return]
    return subparsers.add_parser(  # type: ignore[no-any-return]
        name,
        help=help,
        description=help,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_model_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--model MODULE:FACTORY`` and ``--weights FILE`` (read back with
    :func:`load_model`); ``required=False`` for a command with a default model."""
    parser.add_argument(
        "--model",
        required=required,
        metavar="MODULE:FACTORY",
        help="a function returning the torch.nn.Module, e.g. torchvision.models:resnet18 "
        "(imported from the current folder or the installed packages; put in eval mode)",
    )
    parser.add_argument("--weights", metavar="FILE", help="a state dict to load into the model")


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """:func:`add_model_options` and the inputs: ``--input FILE`` or ``--input-shape``
    with ``--seed`` (read back with :func:`load_model_and_inputs`); ``required=False``
    for a command with a default model and inputs."""
    add_model_options(parser, required)
    inputs = parser.add_mutually_exclusive_group(required=required)
    inputs.add_argument(
        "--input", metavar="FILE", help="the input: a .pt tensor, a .npy array or an image"
    )
    inputs.add_argument(
        "--input-shape",
        metavar="N,C,H,W",
        help="a random standard normal input of this shape, e.g. 2,3,32,32",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random input and of the methods' noise (default: 0)",
    )


def load_model_and_inputs(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model and the input tensor from :func:`add_model_arguments`' options."""
    model = load_model(args.model, args.weights)
    if args.input is not None:
        return model, load_input(args.input)
    return model, random_input(parse_shape(args.input_shape), args.seed)


def resolve_target(
    model: Callable[..., Any], inputs: torch.Tensor, option: int | list[int] | str | None
) -> Any:
    """The target of :func:`parse_target_option`'s ``option``: for ``"predicted"``, the
    model's highest-scoring class for each example
    (:func:`attrkit.core.targets.predicted_target`)."""
    if option != "predicted":
        return option
    try:
        return predicted_target(model, inputs, argument="--target predicted")
    except ValueError as error:
        raise CLIError(f"{error}; give --target") from None
    except Exception as error:
        raise CLIError(
            f"the model failed on the input of shape {tuple(inputs.shape)}: {error_line(error)}"
        ) from None


#: Report formats of ``attrkit compare`` and ``attrkit audit``.
FORMATS = ("table", "json", "markdown")


def render_report(report: Any, format: str) -> str:
    """A report (with ``__str__``, ``to_json`` and ``to_markdown``) in ``format``."""
    if format == "json":
        return str(report.to_json())
    if format == "markdown":
        return str(report.to_markdown())
    return str(report)
