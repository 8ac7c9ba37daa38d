"""Heatmaps of attributions over images, in the modes of Captum's ``visualize_image_attr``.

Needs matplotlib (``pip install "attrkit[viz]"``). Figures are built with matplotlib's
object-oriented API on the non-interactive Agg canvas: nothing touches ``pyplot``'s global
state and no window opens; save them with :func:`save_figure` or ``fig.savefig``.

Tensors are read in PyTorch's layout (``C x H x W``, optionally with a batch of one in
front); NumPy arrays in Captum's and matplotlib's layout (``H x W x C``). Either may be
``H x W``. Attributions with several channels are summed over them, as Captum does.

Values are normalized as Captum's ``_normalize_attr`` does: the chosen ``sign`` is kept
(``positive``, ``negative``, ``absolute_value`` or ``all``), and the largest values that
together hold ``outlier_perc`` percent of the total are clipped, so one extreme pixel does
not wash out the rest. Unlike Captum, an all-zero attribution gives an all-zero heatmap
instead of an error.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

try:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Colormap, LinearSegmentedColormap, Normalize
    from matplotlib.figure import Figure, FigureBase
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'attrkit.viz needs matplotlib, which is an optional extra: pip install "attrkit[viz]"'
    ) from error

__all__ = [
    "MODES",
    "SIGNS",
    "attribution_grid",
    "attribution_scale",
    "normalize_attr",
    "save_figure",
    "visualize_image_attr",
]

#: The ``sign`` options, as in Captum.
SIGNS = ("absolute_value", "positive", "negative", "all")
#: The ``method`` options, as in Captum's ``visualize_image_attr``.
MODES = ("heat_map", "blended_heat_map", "masked_image", "alpha_scaling", "original_image")

ArrayLike = torch.Tensor | npt.NDArray[Any]
FloatArray = npt.NDArray[np.float64]

_RED_WHITE_GREEN = LinearSegmentedColormap.from_list("RdWhGn", ["red", "white", "green"])
_DEFAULT_CMAPS: dict[str, str | Colormap] = {
    "all": _RED_WHITE_GREEN,
    "positive": "Greens",
    "negative": "Reds",
    "absolute_value": "Blues",
}


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}")


def _as_array(values: ArrayLike) -> FloatArray:
    """A tensor or array as a float64 NumPy array of the same shape."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def _as_hwc(value: ArrayLike, name: str) -> FloatArray:
    """An image or attribution as a float ``H x W x C`` array (see the module docstring)."""
    if isinstance(value, torch.Tensor):
        array = _as_array(value)
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    elif isinstance(value, np.ndarray):
        array = value.astype(np.float64)
    else:
        raise TypeError(f"`{name}` must be a torch.Tensor or numpy.ndarray, got {type(value)}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(
            f"`{name}` must be an image (C x H x W tensor or H x W x C array, or H x W); "
            f"got shape {tuple(value.shape)}"
        )
    return array


def _as_map(attr: ArrayLike, name: str = "attr") -> FloatArray:
    """An attribution as an ``H x W`` map, summed over channels."""
    summed: FloatArray = _as_hwc(attr, name).sum(axis=2)
    return summed


def _signed(values: FloatArray, sign: str) -> FloatArray:
    _check_choice(sign, SIGNS, "sign")
    if sign == "positive":
        return np.maximum(values, 0.0)
    if sign == "negative":
        return np.minimum(values, 0.0)
    if sign == "absolute_value":
        return np.abs(values)
    return values


def attribution_scale(
    attr: ArrayLike, sign: str = "absolute_value", outlier_perc: float = 2
) -> float:
    """The value that :func:`normalize_attr` maps to 1 (``-1`` for ``sign="negative"``).

    Sort the magnitudes of the values of the chosen sign; the scale is the one at which
    their running total first reaches ``100 - outlier_perc`` percent of their sum (Captum's
    ``_cumulative_sum_threshold``). Pass a stack of attributions to get one scale for all
    of them (a shared colour scale).

    Example:
        >>> import numpy as np
        >>> attribution_scale(np.array([[1.0, 2.0], [3.0, 94.0]]), outlier_perc=10)
        94.0
        >>> attribution_scale(np.array([[1.0, 2.0], [3.0, 4.0]]), outlier_perc=50)
        3.0
        >>> attribution_scale(np.array([-1.0, 2.0, -3.0]), sign="negative", outlier_perc=0)
        -3.0
    """
    if not 0 <= outlier_perc <= 100:
        raise ValueError(f"`outlier_perc` must be between 0 and 100; got {outlier_perc}")
    magnitudes = np.sort(np.abs(_signed(_as_array(attr), sign)), axis=None)
    if magnitudes.size == 0:
        raise ValueError("`attr` is empty")
    cumulative = np.cumsum(magnitudes)
    reached = cumulative >= cumulative[-1] * 0.01 * (100.0 - outlier_perc)
    # With outlier_perc=0 rounding can leave the last sum just short of 100 % (Captum then
    # raises IndexError); the largest value is the scale.
    index = int(np.argmax(reached)) if reached.any() else magnitudes.size - 1
    threshold = float(magnitudes[index])
    return -threshold if sign == "negative" else threshold


def normalize_attr(
    attr: ArrayLike,
    sign: str = "absolute_value",
    outlier_perc: float = 2,
    scale: float | None = None,
) -> FloatArray:
    """Keep the chosen ``sign``, divide by the scale and clip to ``[-1, 1]``.

    The result is in ``[0, 1]`` for ``positive``, ``absolute_value`` and ``negative``
    (where it is the magnitude of the negative values) and in ``[-1, 1]`` for ``all`` —
    the same numbers as Captum's ``_normalize_attr``, on an array of any shape.

    Args:
        attr: Attribution values, any shape.
        sign: ``"absolute_value"``, ``"positive"``, ``"negative"`` or ``"all"``.
        outlier_perc: Percent of the total attribution held by the largest values, which
            are clipped to 1 (Captum's default: 2).
        scale: Use this scale instead of computing it from ``attr`` (to share one colour
            scale between several maps; see :func:`attribution_scale`).

    Example:
        >>> import numpy as np
        >>> normalize_attr(np.array([-2.0, 1.0, 4.0]), sign="all", outlier_perc=0)
        array([-0.5 ,  0.25,  1.  ])
    """
    signed = _signed(_as_array(attr), sign)
    if scale is None:
        scale = attribution_scale(signed, sign, outlier_perc)
    if scale == 0:
        return np.zeros_like(signed)
    return np.clip(signed / scale, -1.0, 1.0)


def _resized(values: FloatArray, height: int, width: int) -> FloatArray:
    """A map resampled (bilinear) to ``height x width``, e.g. a Grad-CAM map to the image."""
    if values.shape == (height, width):
        return values
    tensor = torch.from_numpy(np.ascontiguousarray(values))[None, None]
    resized = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
    return resized[0, 0].numpy()


def _display_image(image: ArrayLike) -> FloatArray:
    """An image in [0, 1], ``H x W x C`` (values above 1 are taken as 0..255)."""
    array = _as_hwc(image, "original_image")
    if array.max() > 1.0:
        array = array / 255.0
    return np.clip(array, 0.0, 1.0)


def _new_figure(fig_size: tuple[float, float]) -> Figure:
    """A figure with the compressed layout on the Agg canvas."""
    figure = Figure(figsize=fig_size, layout="compressed")
    FigureCanvasAgg(figure)
    return figure


def _root(figure: FigureBase) -> Figure:
    """The top-level figure of a figure or sub-figure."""
    while not isinstance(figure, Figure):
        figure = figure.figure
    return figure


def _plain(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _show_image(ax: Axes, image: FloatArray) -> None:
    if image.shape[2] == 1:
        ax.imshow(image[:, :, 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(image)


def visualize_image_attr(
    attr: ArrayLike,
    original_image: ArrayLike | None = None,
    method: str = "heat_map",
    sign: str = "absolute_value",
    outlier_perc: float = 2,
    cmap: str | Colormap | None = None,
    alpha_overlay: float = 0.5,
    show_colorbar: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
    fig_size: tuple[float, float] = (6, 6),
    scale: float | None = None,
) -> tuple[Figure, Axes]:
    """Draw one attribution map, as Captum's ``visualize_image_attr`` does.

    Args:
        attr: The attribution of one image (``C x H x W`` tensor or ``H x W x C`` array,
            or ``H x W``); channels are summed. A map smaller than the image (Grad-CAM)
            is resampled to the image's size.
        original_image: The image, needed for every ``method`` but ``heat_map``; values
            in [0, 1] (or 0..255).
        method: ``"heat_map"``, ``"blended_heat_map"`` (the heat map over the greyscale
            image), ``"masked_image"`` (the image times the normalized attribution),
            ``"alpha_scaling"`` (the normalized attribution as the image's opacity) or
            ``"original_image"``.
        sign: ``"absolute_value"``, ``"positive"``, ``"negative"`` or ``"all"``; the
            masking modes need one sign.
        outlier_perc: See :func:`normalize_attr`.
        cmap: Colour map; by default Blues / Greens / Reds / red-white-green for
            absolute / positive / negative / all, as in Captum.
        alpha_overlay: Opacity of the heat map in ``blended_heat_map``.
        show_colorbar: Add a colour bar (in units of the attribution) below the axes.
        title: Axes title.
        ax: Draw into these axes instead of a new figure.
        fig_size: Size in inches of a new figure.
        scale: A shared scale (see :func:`attribution_scale`).

    Returns:
        The figure and the axes drawn into.

    Example:
        >>> import torch
        >>> fig, ax = visualize_image_attr(torch.randn(3, 8, 8), torch.rand(3, 8, 8),
        ...                                method="blended_heat_map", sign="all")
        >>> len(ax.images)
        2
    """
    _check_choice(method, MODES, "method")
    _check_choice(sign, SIGNS, "sign")
    if method in ("masked_image", "alpha_scaling") and sign == "all":
        raise ValueError(f'`sign` "all" cannot be shown with `method` {method!r}; pick one sign')
    if method != "heat_map" and original_image is None:
        raise ValueError(f"`original_image` is needed for `method` {method!r}")
    axes = ax if ax is not None else _new_figure(fig_size).add_subplot()
    figure = _root(axes.figure)
    _plain(axes)
    values = _as_map(attr)
    if scale is None:
        scale = attribution_scale(values, sign, outlier_perc)
    normalized = normalize_attr(values, sign, outlier_perc, scale=scale)
    cmap = cmap if cmap is not None else _DEFAULT_CMAPS[sign]
    vmin = -1.0 if sign == "all" else 0.0
    image = None if original_image is None else _display_image(original_image)
    if image is not None:
        normalized = _resized(normalized, image.shape[0], image.shape[1])

    if method == "original_image":
        assert image is not None
        _show_image(axes, image)
    elif method == "heat_map":
        axes.imshow(normalized, cmap=cmap, vmin=vmin, vmax=1.0)
    elif method == "blended_heat_map":
        assert image is not None
        axes.imshow(image.mean(axis=2), cmap="gray", vmin=0.0, vmax=1.0)
        axes.imshow(normalized, cmap=cmap, vmin=vmin, vmax=1.0, alpha=alpha_overlay)
    elif method == "masked_image":
        assert image is not None
        _show_image(axes, image * normalized[:, :, None])
    else:  # alpha_scaling
        assert image is not None
        rgb = image if image.shape[2] == 3 else np.repeat(image[:, :, :1], 3, axis=2)
        axes.imshow(np.concatenate([rgb, normalized[:, :, None]], axis=2))
    if show_colorbar and method != "original_image":
        _colorbar(figure, axes, cmap, sign, scale)
    if title:
        axes.set_title(title)
    return figure, axes


def _colorbar(
    figure: FigureBase, axes: Axes | list[Axes], cmap: str | Colormap, sign: str, scale: float
) -> None:
    """A horizontal colour bar under ``axes`` in units of the attribution."""
    magnitude = abs(scale) if scale != 0 else 1.0
    low = -magnitude if sign in ("all", "negative") else 0.0
    high = 0.0 if sign == "negative" else magnitude
    if sign == "negative":
        cmap = _reversed(cmap)
    mappable = ScalarMappable(norm=Normalize(low, high), cmap=cmap)
    bar = figure.colorbar(mappable, ax=axes, orientation="horizontal", shrink=0.9, aspect=12)
    bar.ax.tick_params(labelsize=7)
    bar.ax.xaxis.get_offset_text().set_fontsize(7)
    bar.locator = _ticks(low, high)
    bar.update_ticks()


def _reversed(cmap: str | Colormap) -> Colormap:
    from matplotlib import colormaps

    base = colormaps[cmap] if isinstance(cmap, str) else cmap
    return base.reversed()


def _ticks(low: float, high: float) -> Any:
    from matplotlib.ticker import FixedLocator

    return FixedLocator([low, (low + high) / 2, high] if low < 0 < high else [low, high])


def attribution_grid(
    images: ArrayLike | Sequence[ArrayLike],
    attributions: Mapping[str, ArrayLike | Sequence[ArrayLike]],
    row_labels: Sequence[str] | None = None,
    method: str = "heat_map",
    sign: str = "absolute_value",
    outlier_perc: float = 2,
    cmap: str | Colormap | None = None,
    cell_size: float = 1.5,
    title: str | None = None,
) -> Figure:
    """A figure with one row per image: the image, then one column per attribution method.

    Each method's column shares one colour scale (computed over all its rows, see
    :func:`attribution_scale`), shown in a colour bar under the column in the
    attribution's units, so rows can be compared within a column.

    Args:
        images: ``N x C x H x W`` tensor, or a sequence of ``N`` images.
        attributions: Column title -> the ``N`` attributions for those images (a batch
            tensor or a sequence); maps smaller than the image are resampled.
        row_labels: ``N`` labels written left of each row.
        method: Drawing mode of the attribution columns (see
            :func:`visualize_image_attr`).
        sign: Sign of the attributions shown.
        outlier_perc: See :func:`normalize_attr`.
        cmap: Colour map of the attribution columns.
        cell_size: Size of one cell, in inches.
        title: Figure title.

    Returns:
        The figure (save it with :func:`save_figure`).

    Example:
        >>> import torch
        >>> images = torch.rand(3, 1, 8, 8)
        >>> fig = attribution_grid(images, {"Saliency": torch.randn(3, 1, 8, 8)},
        ...                        row_labels=["a", "b", "c"])
        >>> len(fig.axes)  # 3 rows x 2 columns, and one colour bar
        7
    """
    rows = list(images)
    columns = {name: list(values) for name, values in attributions.items()}
    for name, values in columns.items():
        if len(values) != len(rows):
            raise ValueError(
                f"`attributions` {name!r} has {len(values)} entries but there are "
                f"{len(rows)} images"
            )
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(
            f"`row_labels` has {len(row_labels)} entries but there are {len(rows)} images"
        )
    if not rows:
        raise ValueError("`images` is empty")
    figure = _new_figure((cell_size * (1 + len(columns)), cell_size * len(rows) + 0.9))
    grid = figure.subplots(len(rows), 1 + len(columns), squeeze=False)
    column_cmap = cmap if cmap is not None else _DEFAULT_CMAPS[sign]
    for row, image in enumerate(rows):
        visualize_image_attr(image, image, method="original_image", ax=grid[row, 0])
        if row_labels is not None:
            grid[row, 0].set_ylabel(row_labels[row], fontsize=8)
    grid[0, 0].set_title("input", fontsize=9)
    for column, (name, values) in enumerate(columns.items(), start=1):
        maps = [_as_map(value, f"attributions[{name!r}]") for value in values]
        scale = attribution_scale(_stack(maps), sign, outlier_perc)
        for row, (image, value) in enumerate(zip(rows, maps, strict=True)):
            visualize_image_attr(
                value,
                image,
                method=method,
                sign=sign,
                cmap=column_cmap,
                ax=grid[row, column],
                scale=scale,
            )
        grid[0, column].set_title(textwrap.fill(name, 14, break_long_words=False), fontsize=9)
        if method not in ("masked_image", "alpha_scaling", "original_image"):
            _colorbar(figure, list(grid[:, column]), column_cmap, sign, scale)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def _stack(maps: list[FloatArray]) -> FloatArray:
    """All maps' values in one array (they may differ in size)."""
    return np.concatenate([value.ravel() for value in maps])


def save_figure(figure: Figure, path: str | Path, dpi: float = 100) -> Path:
    """Write ``figure`` to ``path`` (PNG unless the suffix says otherwise) with the Agg
    renderer, creating the folder; return the path."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    root = _root(figure)
    FigureCanvasAgg(root)
    root.savefig(file, dpi=dpi)
    return file
