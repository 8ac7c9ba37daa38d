"""``attrkit`` itself (attrkit/cli/__init__.py): version, help, every command listed with
its own help, and usage errors (each command's own tests: tests/cli/test_<command>.py)."""

from __future__ import annotations

import pytest

import attrkit
from attrkit.cli import COMMANDS


def test_version(cli):
    status, out, _ = cli("--version")
    assert status == 0
    assert out.strip() == f"attrkit {attrkit.__version__}"


def test_help_lists_every_command(cli):
    status, out, _ = cli("--help")
    assert status == 0
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(cli, command):
    status, out, _ = cli(command, "--help")
    assert status == 0
    assert out.startswith(f"usage: attrkit {command}")


def test_unknown_command_exits_2(cli):
    status, out, err = cli("no-such-command")
    assert status == 2
    assert out == ""
    assert "invalid choice" in err


def test_compare_help_lists_its_exit_codes(cli):
    _, out, _ = cli("compare", "--help")
    assert "1  with --fail-on-difference: a pair of libraries disagrees" in out
