"""Errors that are both precise and what Captum raises.

Where Captum checks an argument with ``assert`` (a target out of range, a neuron selector
that does not fit the layer, a malformed sliding window, ...), code written against Captum
catches :class:`AssertionError`. attrkit raises the precise built-in type that names the
argument (:class:`TypeError`, :class:`ValueError`, :class:`IndexError`) *and* an
:class:`AssertionError`, through classes that subclass both, as NumPy's ``AxisError`` is
both a :class:`ValueError` and an :class:`IndexError`::

    try:
        explainer.attribute(x, target=10)
    except IndexError:       # attrkit's contract
        ...
    except AssertionError:   # what Captum's users already catch
        ...
"""

from __future__ import annotations

__all__ = ["ArgumentIndexError", "ArgumentTypeError", "ArgumentValueError"]


class ArgumentTypeError(TypeError, AssertionError):
    """An argument of the wrong kind, where Captum asserts on it."""


class ArgumentValueError(ValueError, AssertionError):
    """An argument with a wrong value or shape, where Captum asserts on it."""


class ArgumentIndexError(IndexError, AssertionError):
    """An index (a target, a neuron) out of range, where Captum asserts on it."""
