"""The command line run in this process, as ``attrkit ARGS`` runs it (``attrkit.cli.main``),
with its output captured; each command also has one test that runs it in a subprocess,
as a user does (``tests.helpers.run_cli``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from attrkit.cli import main
from tests.helpers import ROOT

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``attrkit ARGS`` in this process, from the repository root (where ``run_cli``'s
    subprocess starts) or from ``cwd``: returns (exit status, stdout, stderr). A usage
    error (argparse's exit) gives its status too."""

    def run(*args: str, cwd: Path = ROOT) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        capsys.readouterr()  # what earlier steps of the test printed
        try:
            status = main(list(args))
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
