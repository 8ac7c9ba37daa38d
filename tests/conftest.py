import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# Plain asserts in the shared helpers report their values, as in the test modules.
pytest.register_assert_rewrite("tests.helpers")

# Under pytest-xdist every worker gets one intra-op thread, so workers do not compete.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# Hypothesis profiles for the reliability tests (test_fuzz_*.py, test_soak.py).
# "ci" (the default) is small and deterministic; "long" is the developers' run:
#     ATTRKIT_FUZZ_PROFILE=long python -m pytest tests/methods/test_fuzz_models.py ...
# (or --hypothesis-profile=long). docs/reliability.rst lists the commands.
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("long", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("ATTRKIT_FUZZ_PROFILE", "ci"))


@pytest.fixture(scope="module")
def one_intra_op_thread() -> Iterator[None]:
    """One intra-op thread for a module of many calls on tiny models, where threads only
    add overhead (and, on a busy machine, make each call many times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# The command line run in this process, as ``attrkit ARGS`` runs it (``attrkit.cli.main``),
# with its output captured (tests/cli/: each command also has one test that runs it in a
# subprocess, as a user does: ``tests.helpers.run_cli``).
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``attrkit ARGS`` in this process, from the repository root (where ``run_cli``'s
    subprocess starts) or from ``cwd``: returns (exit status, stdout, stderr). A usage
    error (argparse's exit) gives its status too."""
    from attrkit.cli import main
    from tests.helpers import ROOT

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
