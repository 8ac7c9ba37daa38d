"""``attrkit methods``: the registered attribution methods, their names and options."""

from __future__ import annotations

import argparse
from typing import Any

from attrkit.cli._common import add_command
from attrkit.core.registry import available_methods, method_info

HELP = "list the registered attribution methods"


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "methods", HELP)
    parser.set_defaults(run=run)


def describe(name: str) -> str:
    """The block ``attrkit methods`` prints for one method."""
    info = method_info(name)
    options = [f"{argument} (constructor)" for argument in info.init_arguments]
    options += list(info.attribute_arguments)
    lines = [
        f"{info.name}: {info.display_name}",
        f"  aliases: {', '.join(info.aliases) or '-'}",
        f"  paper:   {info.paper}",
        f"  options: {', '.join(options) or '-'}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print("\n\n".join(describe(name) for name in available_methods()))
    return 0
