"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import contextlib
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import attrkit
from attrkit.cli import main
from attrkit.demo import load_heldout_digits
from tests.helpers import assert_one_line_error, png_size, run_cli

ATTRKIT_SCRIPT = Path(sys.executable).parent / "attrkit"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([sys.executable, "-m", "attrkit"], id="python-m"),
        pytest.param([str(ATTRKIT_SCRIPT)], id="console-script"),
    ],
)
def test_demo_writes_the_figure_and_prints_the_table(tmp_path, command):
    result = subprocess.run(
        [*command, "demo"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    width, height = png_size(tmp_path / "attrkit-demo.png")
    assert width > len(attrkit.available_methods()) * 80  # a column per method
    assert height > 6 * 100
    verdicts = {}
    for line in result.stdout.splitlines():
        cells = re.split(r"\s{2,}", line)
        for name in attrkit.available_methods():
            if cells[0] == attrkit.method_info(name).display_name:
                verdicts[name] = cells[-1]
    assert sorted(verdicts) == attrkit.available_methods()
    # The model's hidden layer uses F.relu, which Captum's module hooks never see: the
    # ReLU-rule methods differ from Captum, and the audit says why; plain gradients agree.
    assert verdicts["saliency"] == "agree"
    for name in ("deconvolution", "guided_backprop"):
        assert re.fullmatch(r"differ \[\d\]", verdicts[name])
        note = verdicts[name].split()[1]
        assert f"\n{note} Captum misses 1 functional ReLU" in result.stdout


def test_demo_out_folder_is_created(tmp_path):
    result = run_cli("demo", "--digits", "2", "--out", str(tmp_path / "new" / "dir"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "dir" / "attrkit-demo.png").is_file()


def test_demo_without_the_figure_module_still_prints_the_table(tmp_path):
    code = (
        "import sys; sys.modules['attrkit.viz'] = None\n"
        "from attrkit.cli import main; sys.exit(main(['demo', '--digits', '2']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert 'figure: skipped, it needs matplotlib: pip install "attrkit[viz]"' in result.stdout
    assert "Saliency" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_methods_lists_every_registered_method():
    result = run_cli("methods")
    assert result.returncode == 0, result.stderr
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        assert f"{name}: {info.display_name}" in result.stdout
        assert info.paper in result.stdout
        for alias in info.aliases:
            assert alias in result.stdout


@pytest.fixture
def digit_images(tmp_path):
    """Three held-out digits as 64 x 64 greyscale PNGs, and their labels."""
    digits = load_heldout_digits()
    paths = []
    for index in range(3):
        pixels = (digits.images[index, 0].numpy() * 255).astype("uint8")
        path = tmp_path / f"digit{index}.png"
        Image.fromarray(pixels).resize((64, 64), Image.Resampling.NEAREST).save(path)
        paths.append(path)
    return paths


DEMO_MODEL = ("--model", "attrkit.demo:load_demo_model", "--grayscale", "--size", "8,8")


def test_explain_writes_one_heatmap_per_image_and_method(tmp_path, digit_images):
    out = tmp_path / "out"
    result = run_cli(
        "explain",
        *DEMO_MODEL,
        "--method",
        "gbp,saliency",
        "--method",
        "layer_grad_cam",
        "--out",
        str(out),
        *map(str, digit_images),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    expected = {
        f"digit{i}-{m}.png"
        for i in range(3)
        for m in ("guided_backprop", "saliency", "layer_grad_cam")
    }
    assert {path.name for path in out.iterdir()} == expected
    assert set(result.stdout.split()) == {str(out / name) for name in expected}
    for name in expected:
        assert png_size(out / name) == (400, 460)


def test_explain_quiet_prints_nothing(tmp_path, digit_images):
    result = run_cli(
        "explain",
        *DEMO_MODEL,
        "--method",
        "saliency",
        "-q",
        "--out",
        str(tmp_path),
        str(digit_images[0]),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    assert (tmp_path / "digit0-saliency.png").is_file()


EXPLAIN_ERRORS = [
    pytest.param(["--model", "nocolon"], "must look like package.module:factory", id="model-spec"),
    pytest.param(["--model", "no_such_module_xyz:f"], "cannot import", id="model-import"),
    pytest.param(["--model", "attrkit.demo:nope"], "has no attribute 'nope'", id="model-attr"),
    pytest.param([*DEMO_MODEL, "--weights", "missing.pt"], "no such file", id="weights-missing"),
    pytest.param([*DEMO_MODEL, "IMAGE:missing.png"], "no such file", id="image-missing"),
    pytest.param([*DEMO_MODEL, "IMAGE:notes.txt"], "is not an image", id="not-an-image"),
    pytest.param([*DEMO_MODEL, "IMAGE:broken.png"], "UnidentifiedImageError", id="broken-image"),
    pytest.param([*DEMO_MODEL[:3], "--size", "8"], "must be two sizes", id="size-one"),
    pytest.param([*DEMO_MODEL[:3], "--size", "a,b"], "comma-separated integers", id="size-text"),
    pytest.param([*DEMO_MODEL[:3], "--size", "0,8"], "must be positive", id="size-zero"),
    pytest.param(
        DEMO_MODEL[:3],
        "the model failed on the input of shape (1, 1, 64, 64)",
        id="wrong-size-for-model",
    ),
    pytest.param([*DEMO_MODEL, "--mean", "0.1,0.2"], "--mean has 2 values", id="mean-channels"),
    pytest.param([*DEMO_MODEL, "--std", "0"], "must not contain 0", id="std-zero"),
    pytest.param([*DEMO_MODEL, "--mean", "x"], "comma-separated numbers", id="mean-text"),
    pytest.param([*DEMO_MODEL, "--target", "cat"], "--target 'cat' must be", id="target-text"),
    pytest.param([*DEMO_MODEL, "--target", "1,2"], "one class index", id="target-list"),
    pytest.param([*DEMO_MODEL, "--target", "12"], "IndexError", id="target-range"),
    pytest.param([*DEMO_MODEL, "METHOD:no_such"], "no attribution method named", id="method"),
    pytest.param(
        [*DEMO_MODEL, "METHOD:neuron_guided_backprop"],
        "needs --layer NAME and --neuron",
        id="neuron-needs-layer",
    ),
    pytest.param(
        [*DEMO_MODEL, "METHOD:layer_grad_cam", "--layer", "conv9"],
        "not a submodule",
        id="bad-layer",
    ),
]


def _explain_argv(tmp_path: Path, digit_image: Path, args: list[str]) -> list[str]:
    """``explain`` arguments: ``args`` with IMAGE:/METHOD: overriding the defaults."""
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    image, method, options = str(digit_image), "saliency", []
    for arg in args:
        if arg.startswith("IMAGE:"):
            image = arg.removeprefix("IMAGE:")
        elif arg.startswith("METHOD:"):
            method = arg.removeprefix("METHOD:")
        else:
            options.append(arg)
    return ["explain", *options, "--method", method, "--out", str(tmp_path / "out"), image]


@pytest.mark.parametrize(("args", "message"), EXPLAIN_ERRORS)
def test_explain_error_is_one_line(tmp_path, digit_images, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    status = main(_explain_argv(tmp_path, digit_images[0], args))
    captured = capsys.readouterr()
    assert_one_line_error(status, captured.out, captured.err, "explain", message)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [param for param in EXPLAIN_ERRORS if param.id in ("model-spec", "image-missing", "size-one")],
)
def test_explain_error_in_a_subprocess(tmp_path, digit_images, args, message):
    result = run_cli(*_explain_argv(tmp_path, digit_images[0], args), cwd=tmp_path)
    assert_one_line_error(result.returncode, result.stdout, result.stderr, "explain", message)


@pytest.mark.parametrize(
    "args", [["--version"], ["demo", "--help"], ["explain", "--help"], ["methods", "--help"]]
)
def test_help_and_version(args):
    result = run_cli(*args)
    assert result.returncode == 0
    assert "attrkit" in result.stdout


def test_unknown_command_exits_non_zero():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_explain_shows_a_progress_bar_on_a_terminal(tmp_path, digit_images):
    """stderr is a 100-column pseudo-terminal: tqdm draws its bar over the images."""
    import fcntl
    import pty
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    argv = ["explain", *DEMO_MODEL, "--method", "saliency", "--out", str(tmp_path)]
    process = subprocess.run(
        [sys.executable, "-m", "attrkit", *argv, *map(str, digit_images)],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        timeout=300,
    )
    os.close(follower)
    drawn = b""
    with contextlib.suppress(OSError):  # reading past the end of a pty raises EIO
        while chunk := os.read(leader, 4096):
            drawn += chunk
    os.close(leader)
    assert process.returncode == 0
    assert "explain: 100%" in drawn.decode()
    assert "3/3" in drawn.decode()


def test_explain_offers_the_figure_modes_and_signs():
    from attrkit import viz
    from attrkit.cli import explain

    assert set(explain.SIGNS) == set(viz.SIGNS)
    assert set(explain.MODES) == set(viz.MODES) - {"original_image"}
