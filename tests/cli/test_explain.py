"""``attrkit explain``: one heatmap per image and method, quiet mode, one-line errors (in
this process), and, run as a user runs it in a subprocess with stderr on a terminal, the
progress bar over the images."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from attrkit.demo import load_heldout_digits
from tests.helpers import ROOT, assert_one_line_error, png_size


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


def test_explain_writes_one_heatmap_per_image_and_method(cli, tmp_path, digit_images):
    out = tmp_path / "out"
    status, stdout, stderr = cli(
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
    assert status == 0, stderr
    assert stderr == ""  # no progress bar when stderr is not a terminal
    expected = {
        f"digit{i}-{m}.png"
        for i in range(3)
        for m in ("guided_backprop", "saliency", "layer_grad_cam")
    }
    assert {path.name for path in out.iterdir()} == expected
    assert set(stdout.split()) == {str(out / name) for name in expected}
    for name in expected:
        assert png_size(out / name) == (400, 460)


def test_explain_quiet_prints_nothing(cli, tmp_path, digit_images):
    status, stdout, stderr = cli(
        "explain",
        *DEMO_MODEL,
        "--method",
        "saliency",
        "-q",
        "--out",
        str(tmp_path),
        str(digit_images[0]),
    )
    assert status == 0, stderr
    assert stdout == stderr == ""
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
def test_explain_error_is_one_line(cli, tmp_path, digit_images, args, message):
    result = cli(*_explain_argv(tmp_path, digit_images[0], args), cwd=tmp_path)
    assert_one_line_error(*result, "explain", message)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_explain_as_a_user_runs_it_with_a_progress_bar(tmp_path, digit_images):
    """``python -m attrkit explain`` in a subprocess whose stderr is a 100-column
    pseudo-terminal: tqdm draws its bar over the images; stdout lists the heatmaps
    written."""
    import fcntl
    import pty
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    argv = ["explain", *DEMO_MODEL, "--method", "saliency", "--out", str(tmp_path)]
    process = subprocess.run(
        [sys.executable, "-m", "attrkit", *argv, *map(str, digit_images)],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
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
    written = {str(tmp_path / f"digit{i}-saliency.png") for i in range(3)}
    assert set(process.stdout.split()) == written
    assert all(Path(path).is_file() for path in written)


def test_explain_offers_the_figure_modes_and_signs():
    from attrkit import viz
    from attrkit.cli import explain

    assert set(explain.SIGNS) == set(viz.SIGNS)
    assert set(explain.MODES) == set(viz.MODES) - {"original_image"}
