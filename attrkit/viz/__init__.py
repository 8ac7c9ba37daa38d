"""Figures: heatmaps of attributions over images (needs matplotlib, ``attrkit[viz]``).

See :mod:`attrkit.viz.figures`.
"""

from attrkit.viz import figures
from attrkit.viz.figures import *  # noqa: F403  (every name of figures.__all__)

__all__ = [*figures.__all__]
