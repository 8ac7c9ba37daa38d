import os
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, settings

# Plain asserts in the shared helpers report their values, as in the test modules.
pytest.register_assert_rewrite("tests.helpers")

# Under pytest-xdist every worker gets one intra-op thread, so workers do not compete.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# Hypothesis profiles for the reliability tests (tests/test_fuzz_*.py, test_soak.py).
# "ci" (the default) is small and deterministic; "long" is the developers' run:
#     ATTRKIT_FUZZ_PROFILE=long python -m pytest tests/test_fuzz_models.py ...
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
