"""``attrkit methods``: the registered attribution methods, grouped by family, with their
names and options."""

from __future__ import annotations

import argparse
from typing import Any

from attrkit.cli._common import add_command
from attrkit.core.registry import FAMILIES, available_methods, method_info

HELP = "list the registered attribution methods, grouped by family"


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "methods", HELP)
    parser.set_defaults(run=run)


def describe(name: str) -> str:
    """The block ``attrkit methods`` prints for one method."""
    info = method_info(name)
    options = [f"{argument} (constructor)" for argument in info.init_arguments]
    options += list(info.attribute_arguments)
    captum = f"captum.attr.{info.captum_name}" if info.captum_name else "-"
    lines = [
        f"{info.name}: {info.display_name}",
        f"  aliases: {', '.join(info.aliases) or '-'}",
        f"  captum:  {captum}",
        f"  paper:   {info.paper}",
        f"  options: {', '.join(options) or '-'}",
    ]
    return "\n".join(lines)


def grouped() -> dict[str, list[str]]:
    """Family heading -> the names of its methods, in the order of
    :data:`~attrkit.core.registry.FAMILIES` (families without a method left out)."""
    groups: dict[str, list[str]] = {heading: [] for heading in FAMILIES.values()}
    for name in available_methods():
        groups[FAMILIES[method_info(name).family]].append(name)
    return {heading: names for heading, names in groups.items() if names}


def run(args: argparse.Namespace) -> int:
    blocks = []
    for heading, names in grouped().items():
        rule = "=" * len(heading)
        blocks.append("\n\n".join([f"{heading}\n{rule}", *(describe(name) for name in names)]))
    print("\n\n\n".join(blocks))
    return 0
