"""How similar two attribution maps are, the measures of Adebayo et al.'s sanity checks:
Spearman rank correlation of the absolute values and of the signed values (the Spearman
of :func:`attrkit.compare`), and the structural similarity index (SSIM) of the maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from attrkit.validation.comparison import spearman
from attrkit.validation.evaluation.explainers import flat_features

__all__ = ["SSIM_WINDOW", "MapSimilarity", "map_similarity", "ssim"]

#: The side of SSIM's square window (Wang et al. 2004; scikit-image's default), made
#: smaller for maps smaller than it.
SSIM_WINDOW = 7
_K1, _K2 = 0.01, 0.03


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0, window: int = SSIM_WINDOW) -> Tensor:
    """The structural similarity index (SSIM) of two batches of 2-D maps.

    The maps are the last two dimensions (``H x W``); SSIM is the mean over every position
    of a ``window x window`` window inside the map (no padding) of

    .. math:: \\frac{(2 \\mu_a \\mu_b + C_1)(2 \\sigma_{ab} + C_2)}
              {(\\mu_a^2 + \\mu_b^2 + C_1)(\\sigma_a^2 + \\sigma_b^2 + C_2)}

    with the window's means, sample variances and covariance, :math:`C_1 = (0.01 R)^2`,
    :math:`C_2 = (0.03 R)^2` and ``R = data_range`` (scikit-image's
    ``structural_similarity`` with its defaults). A map smaller than the window gets the
    largest odd window that fits.

    Returns:
        One value per map, shape ``...``.

    Raises:
        ValueError: if the maps differ in shape or a side is shorter than 3.

    Example:
        >>> a = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> ssim(a, a).tolist()
        [1.0, 1.0]
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim: the maps' shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    height, width = a.shape[-2:]
    side = min(window, height, width)
    side -= 1 - side % 2
    if side < 3:
        raise ValueError(f"ssim: maps of {height} x {width} are smaller than a 3 x 3 window")
    lead = a.shape[:-2]
    x = a.reshape(-1, 1, height, width).double()
    y = b.reshape(-1, 1, height, width).double()

    def mean(values: Tensor) -> Tensor:
        return F.avg_pool2d(values, side, stride=1)

    mu_x, mu_y = mean(x), mean(y)
    sample = side * side / (side * side - 1)
    var_x = sample * (mean(x * x) - mu_x * mu_x)
    var_y = sample * (mean(y * y) - mu_y * mu_y)
    cov = sample * (mean(x * y) - mu_x * mu_y)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return index.mean(dim=(1, 2, 3)).reshape(lead)


@dataclass(frozen=True)
class MapSimilarity:
    """The similarity of two attributions of a batch, per example (``None`` where a
    measure is undefined: a constant map for Spearman, no map of 3 x 3 or more for SSIM).

    Attributes:
        spearman_abs: Spearman rank correlation of the absolute values.
        spearman: Spearman rank correlation of the signed values.
        ssim: SSIM of the absolute values, each map scaled to [0, 1] by its largest
            value, averaged over channels and input tensors.
    """

    spearman_abs: list[float | None]
    spearman: list[float | None]
    ssim: list[float | None]


def _unit_maps(values: Tensor) -> Tensor | None:
    """``N x maps x H x W``: the absolute values of ``N x ... x H x W`` attributions, each
    example divided by its largest (``None`` for tensors without two spatial dimensions
    of 3 or more)."""
    if values.dim() < 3 or min(values.shape[-2:]) < 3:
        return None
    maps = values.abs().double().reshape(values.shape[0], -1, *values.shape[-2:])
    largest = maps.amax(dim=(1, 2, 3), keepdim=True)
    return maps / torch.where(largest > 0, largest, torch.ones_like(largest))


def map_similarity(first: tuple[Tensor, ...], second: tuple[Tensor, ...]) -> MapSimilarity:
    """Every measure of :class:`MapSimilarity` between two attributions (tuples of
    tensors of the same shapes, dimension 0 the batch); Spearman over all values of an
    example, SSIM over its maps.

    Example:
        >>> a = (torch.arange(18.0).reshape(2, 1, 3, 3),)
        >>> similarity = map_similarity(a, (2 * a[0],))
        >>> similarity.spearman_abs, similarity.ssim
        ([1.0, 1.0], [1.0, 1.0])
    """
    rows_a = flat_features(first).detach().to("cpu", torch.float64).numpy()
    rows_b = flat_features(second).detach().to("cpu", torch.float64).numpy()
    per_tensor = []
    for a, b in zip(first, second, strict=True):
        maps_a, maps_b = _unit_maps(a.cpu()), _unit_maps(b.cpu())
        if maps_a is not None and maps_b is not None:
            per_tensor.append(ssim(maps_a, maps_b).mean(dim=1))
    ssims: list[float | None] = (
        torch.stack(per_tensor).mean(dim=0).tolist() if per_tensor else [None] * len(rows_a)
    )
    return MapSimilarity(
        spearman_abs=[spearman(np.abs(x), np.abs(y)) for x, y in zip(rows_a, rows_b, strict=True)],
        spearman=[spearman(x, y) for x, y in zip(rows_a, rows_b, strict=True)],
        ssim=ssims,
    )
