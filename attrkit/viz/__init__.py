"""Figures: heatmaps of attributions over images (needs matplotlib, ``attrkit[viz]``).

See :mod:`attrkit.viz.figures`.
"""

from attrkit.viz.figures import (
    MODES,
    SIGNS,
    attribution_grid,
    attribution_scale,
    normalize_attr,
    save_figure,
    visualize_image_attr,
)

__all__ = [
    "MODES",
    "SIGNS",
    "attribution_grid",
    "attribution_scale",
    "normalize_attr",
    "save_figure",
    "visualize_image_attr",
]
