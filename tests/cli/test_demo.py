"""``attrkit demo``: the built-in model's figure and agreement table, run as a user runs it
(the console script, in a subprocess) and in this process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import attrkit
from attrkit.demo import demo_methods, figure_methods
from tests.cases import METHODS
from tests.helpers import ROOT, png_size

ATTRKIT_SCRIPT = Path(sys.executable).parent / "attrkit"


def test_demo_writes_the_figure_and_prints_the_table(tmp_path):
    """The console script, in a subprocess: by default the demo runs a representative set
    of the methods it can run (``figure_methods(demo_methods())``: every family), with a
    row and a figure column per method; the model's hidden layer uses F.relu, which
    Captum's module hooks never see, so the ReLU-rule methods Captum has differ from
    Captum, and the audit says why; plain gradients agree."""
    result = subprocess.run(
        [str(ATTRKIT_SCRIPT), "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's attrkit
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    shown = figure_methods(demo_methods())
    width, height = png_size(tmp_path / "attrkit-demo.png")
    assert width > len(shown) * 80  # a column per method
    assert height > 6 * 100
    verdicts = {}
    for line in result.stdout.splitlines():
        cells = re.split(r"\s{2,}", line)
        for name in attrkit.available_methods():
            if cells[0] == attrkit.method_info(name).display_name:
                verdicts[name] = cells[-1]
    assert sorted(verdicts) == sorted(shown)
    assert {attrkit.method_info(name).family for name in shown} == {
        attrkit.method_info(name).family for name in demo_methods()
    }
    assert verdicts["saliency"] == "agree"
    for name in (attrkit.method_info(method).name for method in METHODS):
        assert re.fullmatch(r"differ \[\d\]", verdicts[name])
        note = verdicts[name].split()[1]
        assert f"\n{note} Captum misses 1 functional ReLU" in result.stdout


def test_demo_out_folder_is_created(cli, tmp_path):
    status, _, err = cli("demo", "--digits", "2", "--out", str(tmp_path / "new" / "dir"))
    assert status == 0, err
    assert (tmp_path / "new" / "dir" / "attrkit-demo.png").is_file()


def test_demo_without_the_figure_module_still_prints_the_table(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "attrkit.viz", None)
    status, out, err = cli("demo", "--digits", "2", cwd=tmp_path)
    assert status == 0, err
    assert 'figure: skipped, it needs matplotlib: pip install "attrkit[viz]"' in out
    assert "Saliency" in out
    assert list(tmp_path.iterdir()) == []


def test_demo_bad_digits_is_a_one_line_error(cli):
    status, out, err = cli("demo", "--digits", "0")
    assert status == 2
    assert out == ""
    assert err.startswith("attrkit demo: error: --digits")
    assert len(err.splitlines()) == 1
