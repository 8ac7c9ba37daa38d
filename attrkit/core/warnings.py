"""Warnings that point at the caller's line, not at attrkit's internals."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

__all__ = ["warn_at_caller"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # attrkit/
_INTERNAL = (_PACKAGE, os.path.abspath(contextlib.__file__))


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` with the stack level of the first frame outside attrkit."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _INTERNAL
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level + 1)
