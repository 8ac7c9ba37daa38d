"""``attrkit audit``: every ReLU of your model, and whether Captum's and zennit's module
hooks override it as defined."""

from __future__ import annotations

import argparse
from typing import Any

from attrkit.cli._common import (
    FORMATS,
    CLIError,
    add_command,
    add_model_arguments,
    error_line,
    load_model_and_inputs,
    render_report,
)
from attrkit.validation.auditing import audit

HELP = "list every ReLU of a model and whether Captum and zennit override it as defined"
EPILOG = """exit status:
  0  the audit ran
  2  a usage error or a bad model, file or input (one line on stderr)

example:
  attrkit audit --model torchvision.models:densenet121 --input-shape 1,3,64,64
"""


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "audit", HELP, EPILOG)
    add_model_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="table", help="(default: table)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, inputs = load_model_and_inputs(args)
    try:
        report = audit(model, inputs)
    except Exception as error:
        raise CLIError(
            f"the model failed on the input of shape {tuple(inputs.shape)}: {error_line(error)}"
        ) from None
    print(render_report(report, args.format))
    return 0
