"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attrkit", *args], capture_output=True, text=True, timeout=300
    )


def test_demo_prints_agreement_and_deviation():
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.startswith(("nn.ReLU modules", "functional F.relu"))]
    assert len(rows) == 4
    assert all(row.endswith("agree") for row in rows if row.startswith("nn.ReLU"))
    assert all("differ" in row for row in rows if row.startswith("functional"))
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["--version"], ["demo", "--help"]])
def test_help_and_version(args):
    result = run_cli(*args)
    assert result.returncode == 0
    assert "attrkit" in result.stdout


def test_unknown_command_exits_non_zero():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
