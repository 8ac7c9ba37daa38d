"""Quadrature rules for path integrals over [0, 1]: weights ("step sizes") and points
("alphas") for Captum's method names, computed in float64.

They match Captum's except ``riemann_trapezoid``: Captum puts its points at
``linspace(0, 1, n)`` (spacing ``1 / (n - 1)``) but weights them with spacing ``1 / n``, so
its weights sum to ``(n - 1) / n`` and every trapezoid integral is scaled by that factor.
attrkit uses the trapezoid rule's weights, which sum to one.
"""

from __future__ import annotations

import numpy as np

from attrkit.core.errors import ArgumentValueError

__all__ = ["METHODS", "check_n_steps", "quadrature"]

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def check_n_steps(n_steps: object, minimum: int = 1, rule: str = "") -> None:
    """Raise unless ``n_steps`` is an int >= ``minimum`` (``rule``: what the message adds
    after the minimum).

    Raises:
        ValueError: naming ``n_steps`` (an ``AssertionError`` too, as in Captum).
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < minimum:
        raise ArgumentValueError(f"`n_steps` must be an int >= {minimum}{rule}, got {n_steps!r}")


def quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights and points of ``method`` with ``n_steps`` points, float64 arrays.

    Raises:
        ValueError: for an unknown method or too few steps (an ``AssertionError`` too,
            as in Captum).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ArgumentValueError(f"`method` must be one of {', '.join(METHODS)}; got {method!r}")
    check_n_steps(n_steps, 2 if method == "riemann_trapezoid" else 1, f" for {method}")
    n = n_steps
    if method == "gausslegendre":
        points, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * weights, 0.5 * (1.0 + points)
    if method == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return weights, np.linspace(0.0, 1.0, n)
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return np.full(n, 1.0 / n), (np.arange(n) + offset) / n
