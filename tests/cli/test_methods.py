"""``attrkit methods``, run as a user runs it (``python -m attrkit``, in a subprocess)."""

from __future__ import annotations

import attrkit
from tests.helpers import run_cli


def test_methods_lists_every_registered_method():
    result = run_cli("methods")
    assert result.returncode == 0, result.stderr
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        assert f"{name}: {info.display_name}" in result.stdout
        assert info.paper in result.stdout
        for alias in info.aliases:
            assert alias in result.stdout
