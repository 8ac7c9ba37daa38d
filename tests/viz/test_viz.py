"""attrkit.viz: normalization against Captum's, figures that decode at the expected size."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch
from captum.attr._utils.visualization import _cumulative_sum_threshold, _normalize_attr

from attrkit import viz
from tests.helpers import png_size

SIGNS = ["absolute_value", "positive", "negative", "all"]


def _random_map(seed: int, shape: tuple[int, ...] = (12, 9)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("sign", [pytest.param(s, id=s) for s in SIGNS])
@pytest.mark.parametrize(
    "outlier_perc",
    [pytest.param(0.5, id="perc0.5"), pytest.param(2, id="perc2"), pytest.param(30, id="perc30")],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_normalize_equals_captum(sign, outlier_perc, seed):
    attr = _random_map(seed)
    np.testing.assert_allclose(
        viz.normalize_attr(attr, sign, outlier_perc), _normalize_attr(attr, sign, outlier_perc)
    )


@pytest.mark.parametrize("sign", [pytest.param(s, id=s) for s in SIGNS])
def test_normalize_accepts_a_tensor_like_the_array(sign):
    attr = _random_map(3, (2, 5, 5))
    np.testing.assert_allclose(
        viz.normalize_attr(torch.from_numpy(attr), sign),
        _normalize_attr(attr.reshape(10, 5), sign).reshape(2, 5, 5),
    )


@pytest.mark.parametrize("sign", [pytest.param(s, id=s) for s in SIGNS])
def test_shared_scale_is_captums_threshold_of_the_stack(sign):
    maps = [_random_map(seed) * (seed + 1) for seed in range(3)]
    stack = np.stack(maps)
    kept = {"positive": np.maximum(stack, 0), "negative": np.minimum(stack, 0)}.get(sign, stack)
    threshold = _cumulative_sum_threshold(np.abs(kept), 98)
    expected = -threshold if sign == "negative" else threshold
    assert viz.attribution_scale(stack, sign) == pytest.approx(expected)
    normalized = viz.normalize_attr(maps[0], sign, scale=expected)
    shown = np.abs(kept[0]) if sign == "absolute_value" else kept[0]
    np.testing.assert_allclose(normalized, np.clip(shown / expected, -1, 1))


def test_all_zero_attribution_gives_zeros_not_an_error():
    np.testing.assert_array_equal(viz.normalize_attr(np.zeros((4, 4))), np.zeros((4, 4)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"sign": "both"}, "`sign` must be one of", id="sign"),
        pytest.param({"method": "heatmap"}, "`method` must be one of", id="method"),
        pytest.param(
            {"method": "masked_image", "sign": "all"}, '`sign` "all" cannot', id="masked-all"
        ),
        pytest.param({"method": "blended_heat_map"}, "`original_image` is needed", id="no-image"),
        pytest.param({"outlier_perc": 101}, "`outlier_perc` must be", id="outlier"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        viz.visualize_image_attr(torch.randn(1, 8, 8), **kwargs)


def test_bad_attribution_type_raises_type_error():
    with pytest.raises(TypeError, match=r"`attr` must be a torch\.Tensor or numpy\.ndarray"):
        viz.visualize_image_attr([[1.0, 2.0]])


MODE_SIGNS = [
    pytest.param(mode, sign, id=f"{mode}-{sign}")
    for mode in viz.MODES
    for sign in SIGNS
    if not (mode in ("masked_image", "alpha_scaling") and sign == "all")
]


@pytest.mark.parametrize(("mode", "sign"), MODE_SIGNS)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_writes_a_png_of_the_requested_size(tmp_path, mode, sign, channels):
    image, attr = torch.rand(channels, 10, 10), torch.randn(channels, 10, 10)
    figure, _ = viz.visualize_image_attr(
        attr, image, method=mode, sign=sign, fig_size=(4, 3), show_colorbar=True, title="t"
    )
    path = viz.save_figure(figure, tmp_path / "sub" / "map.png", dpi=50)
    assert png_size(path) == (200, 150)


def test_heat_map_shows_the_normalized_channel_sum():
    attr = torch.randn(3, 6, 6, dtype=torch.float64)
    _, axes = viz.visualize_image_attr(attr, sign="all")
    expected = _normalize_attr(attr.sum(0).numpy(), "all", 2)
    np.testing.assert_allclose(axes.images[0].get_array(), expected)


def test_array_is_read_channels_last_and_tensor_channels_first():
    attr = np.random.default_rng(0).standard_normal((5, 7, 3))
    _, from_array = viz.visualize_image_attr(attr, sign="all")
    _, from_tensor = viz.visualize_image_attr(torch.from_numpy(attr).permute(2, 0, 1), sign="all")
    np.testing.assert_allclose(from_array.images[0].get_array(), from_tensor.images[0].get_array())


def test_small_map_is_resampled_to_the_image():
    _, axes = viz.visualize_image_attr(
        torch.rand(1, 2, 2), torch.rand(3, 8, 8), method="blended_heat_map"
    )
    assert [image.get_array().shape[:2] for image in axes.images] == [(8, 8), (8, 8)]


def test_grid_shares_one_scale_per_column(tmp_path):
    images = torch.rand(3, 1, 6, 6)
    columns = {
        "small": torch.randn(3, 1, 6, 6, dtype=torch.float64),
        "large": 100 * torch.randn(3, 1, 6, 6, dtype=torch.float64),
    }
    figure = viz.attribution_grid(
        images, columns, row_labels=["a", "b", "c"], sign="all", cell_size=1.0
    )
    cells = [axes for axes in figure.axes if axes.images]
    assert len(cells) == 3 * 3
    for column, values in enumerate(columns.values(), start=1):
        threshold = _cumulative_sum_threshold(np.abs(values.numpy()), 98)
        for row in range(3):
            shown = cells[row * 3 + column].images[0].get_array()
            np.testing.assert_allclose(shown, np.clip(values[row, 0].numpy() / threshold, -1, 1))
    path = viz.save_figure(figure, tmp_path / "grid.png", dpi=100)
    assert png_size(path) == (300, 390)  # 3 columns x 1 inch; 3 rows + 0.9 inch of labels


def test_grid_checks_lengths():
    with pytest.raises(ValueError, match="`attributions` 'x' has 2 entries but there are 3"):
        viz.attribution_grid(torch.rand(3, 1, 4, 4), {"x": torch.rand(2, 1, 4, 4)})


def test_missing_matplotlib_is_a_clear_import_error(monkeypatch):
    """``import attrkit.viz`` (afresh) where matplotlib's Agg backend cannot be imported."""
    for name in [m for m in sys.modules if m == "attrkit.viz" or m.startswith("attrkit.viz.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(
        ImportError,
        match=r'attrkit\.viz needs matplotlib, which is an optional extra: pip install "attrkit\[viz\]"',
    ):
        importlib.import_module("attrkit.viz")
