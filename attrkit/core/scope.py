"""Which attribution call runs on this thread: one object per call, innermost last.

A call made inside another call's forward pass (an attribution computed by the model
itself) is its own call: whatever the outer call installed for its forward pass (its rule
override) must leave the inner call's operations alone, and compares
:func:`current_call` with the call it was made for to tell them apart.
"""

from __future__ import annotations

import threading

__all__ = ["CallToken", "current_call"]


class _Stack(threading.local):
    current: CallToken | None = None


_stack = _Stack()


class CallToken:
    """One attribution call on this thread, current while it is entered (calls nest)."""

    __slots__ = ("_outer",)

    def __enter__(self) -> CallToken:
        self._outer = _stack.current
        _stack.current = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        _stack.current = self._outer


def current_call() -> CallToken | None:
    """The innermost attribution call running on this thread, or ``None``."""
    return _stack.current
