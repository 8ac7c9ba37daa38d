"""``attrkit compare``: one method through attrkit, Captum and zennit on your model, with a
verdict per pair of libraries, for use in CI."""

from __future__ import annotations

import argparse
from typing import Any

from attrkit.cli._common import (
    FORMATS,
    CLIError,
    add_command,
    add_model_arguments,
    add_option_argument,
    error_line,
    load_model_and_inputs,
    parse_options,
    parse_target_option,
    render_report,
    resolve_target,
)
from attrkit.core.registry import UnknownMethodError
from attrkit.validation.adapters import ADAPTERS
from attrkit.validation.comparison import Tolerances, compare

HELP = "run one method through attrkit, Captum and zennit and report whether they agree"
EPILOG = """exit status:
  0  the comparison ran (with --fail-on-difference: and every pair of libraries agrees)
  1  with --fail-on-difference: a pair of libraries disagrees beyond the tolerance
  2  a usage error or a bad model, file or input (one line on stderr)

example:
  attrkit compare --model torchvision.models:densenet121 --input-shape 2,3,64,64 \\
      --method guided_backprop --target predicted --fail-on-difference
"""


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "compare", HELP, EPILOG)
    add_model_arguments(parser)
    parser.add_argument(
        "--method",
        default="deconvolution",
        metavar="NAME",
        help="attribution method (see `attrkit methods`; default: deconvolution)",
    )
    parser.add_argument(
        "--target",
        metavar="N|N,N,...|predicted",
        help="output index, one per example, or the model's prediction (default: none, for "
        "models with one output value per example)",
    )
    parser.add_argument(
        "--libraries",
        default="captum,zennit",
        metavar="LIB,...",
        help="libraries to compare with attrkit, from "
        f"{', '.join(name for name in ADAPTERS if name != 'attrkit')} (default: captum,zennit)",
    )
    add_option_argument(parser, "layer=features.3, method=riemann_right or n_steps=32")
    parser.add_argument(
        "--rtol",
        type=float,
        default=Tolerances.rtol,
        help=f"largest relative L2 error that counts as agreement (default: {Tolerances.rtol:g})",
    )
    parser.add_argument(
        "--top-k",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="fraction of the largest attributions the top-k overlap compares (default: 0.1)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="(default: table)")
    parser.add_argument(
        "--fail-on-difference",
        action="store_true",
        help="exit with status 1 when a pair of libraries disagrees beyond the tolerance",
    )
    parser.set_defaults(run=run)


def parse_libraries(text: str) -> tuple[str, ...]:
    """``--libraries captum,zennit`` -> ``("attrkit", "captum", "zennit")``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ADAPTERS]
    if unknown:
        raise CLIError(
            f"--libraries: unknown {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(name for name in ADAPTERS if name != 'attrkit')}"
        )
    return tuple(dict.fromkeys(["attrkit", *names]))


def run(args: argparse.Namespace) -> int:
    libraries = parse_libraries(args.libraries)
    target_option = parse_target_option(args.target)
    options = parse_options(args.option)
    try:
        tolerances = Tolerances(rtol=args.rtol)
    except ValueError as error:
        raise CLIError(f"--rtol: {error}") from None
    model, inputs = load_model_and_inputs(args)
    target = resolve_target(model, inputs, target_option)
    try:
        report = compare(
            args.method,
            model,
            inputs,
            target=target,
            libraries=libraries,
            tolerances=tolerances,
            top_k=args.top_k,
            seed=args.seed,
            **options,
        )
    except UnknownMethodError as error:
        raise CLIError(f"--method: {error}") from None
    except Exception as error:
        raise CLIError(
            f"{args.method} on the input of shape {tuple(inputs.shape)}: {error_line(error)}"
        ) from None
    print(render_report(report, args.format))
    return 1 if args.fail_on_difference and not report.agree else 0
