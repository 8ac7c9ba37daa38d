"""Say where the applications that escaped the rule override were made, and what to do.

Only on the way to an error: the forward pass runs once more with autograd's anomaly
mode recording, for every node, the Python stack that created it (on any thread, and
for ops run by TorchScript or C++: the Python line that called them). Anomaly mode is
process-wide, so these re-runs take a lock and restore it afterwards; meanwhile other
threads' nodes record their stacks too (slower, not different).
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from attrkit.engine.reach import is_internal_file
from attrkit.engine.rule import RuleSet
from attrkit.engine.verify import Escape

__all__ = ["Location", "creation_stacks", "describe", "location_of"]

_LOCK = threading.Lock()
_FRAME = re.compile(
    r'\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>[^\n]+)\n'
    r"(?:\s*(?P<code>[^\n]*)\n?)?"
)


@contextmanager
def creation_stacks() -> Iterator[None]:
    """Within the block, every autograd node records the stack that created it
    (``node.metadata["traceback_"]``)."""
    with _LOCK:
        enabled, check_nan = torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()
        torch.set_anomaly_enabled(True, False)
        try:
            yield
        finally:
            torch.set_anomaly_enabled(enabled, check_nan)


@dataclass(frozen=True)
class Location:
    """Where a node was made: the innermost frame of the caller's own code.

    Attributes:
        file: Its file (``""`` when no frame is the caller's own: the innermost frame).
        line: Its line.
        function: Its function.
        code: The line's code.
        other_thread: Whether the node was made on another thread than the caller's.
    """

    file: str
    line: int
    function: str
    code: str
    other_thread: bool

    def __str__(self) -> str:
        text = f"{self.file}:{self.line} in {self.function}"
        if self.code:
            text += f": `{self.code.strip()}`"
        if self.other_thread:
            text += " (on another thread than the caller's)"
        return text


def location_of(node: Any) -> Location | None:
    """Where ``node`` was made, if it recorded its stack (see :func:`creation_stacks`)."""
    stack = getattr(node, "metadata", {}).get("traceback_")
    if not stack:
        return None
    frames = [match for entry in stack for match in _FRAME.finditer(entry)]
    if not frames:
        return None
    own = [f for f in frames if not is_internal_file(f["file"])]
    frame = (own or frames)[-1]
    here = traceback.extract_stack()
    other_thread = bool(here) and (here[0].filename, here[0].lineno) != (
        frames[0]["file"],
        int(frames[0]["line"]),
    )
    return Location(
        frame["file"], int(frame["line"]), frame["function"], frame["code"] or "", other_thread
    )


def _own_frame(error: BaseException) -> str:
    """``file:line`` of the innermost frame of the caller's own code where ``error`` (or
    the error it was raised from, deepest first) was raised, or ``""``."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for raised in reversed(chain):
        own = [
            frame
            for frame in traceback.extract_tb(raised.__traceback__)
            if not is_internal_file(frame.filename)
        ]
        if own:
            return f"{own[-1].filename}:{own[-1].lineno}"
    return ""


def _title(escape: Escape, rules: RuleSet) -> str:
    for rule in rules.rules:
        for op in rule.ops:
            if escape.name in op.native_nodes:
                return op.title
    return escape.name


def describe(
    escapes: Sequence[Escape], rules: RuleSet, locate: Callable[[], Sequence[Escape]] | None
) -> str:
    """The error message for ``escapes``: what escaped, where (from ``locate``: the
    escapes of a re-run forward pass that recorded the creation stacks), and what to do."""
    located: Sequence[Escape] = ()
    failed_at = ""  # where the re-run failed, if it did
    if locate is not None:
        try:
            located = locate()
        except Exception as error:  # the re-run is only for the message
            failed_at = _own_frame(error)
    shown = located or escapes
    rule_names = ", ".join(rule.name for rule in rules.rules)
    lines: dict[str, int] = {}  # line -> how many escapes it stands for
    for escape in shown:
        where = location_of(escape.node)
        at = f" made at {where}" if where is not None else ""
        if not at and failed_at:
            at = f" (the forward pass reaches it at {failed_at})"
        if escape.hidden:
            line = f"`{escape.name}`{at}: {escape.hidden}."
        else:
            line = f"a {_title(escape, rules)} (`{escape.name}`){at}"
        lines[line] = lines.get(line, 0) + 1
    plain = [e for e in shown if not e.hidden]
    text = (
        f"{len(shown)} part{'' if len(shown) == 1 else 's'} of the forward pass on the "
        f"gradient path escaped the method's rules ({rule_names}), so the result would "
        "silently not be the method's:\n"
        + "\n".join(f"  - {f'{n} times: ' if n > 1 else ''}{line}" for line, n in lines.items())
    )
    if plain:
        text += (
            "\nattrkit's override reaches the Python code that the forward pass runs on "
            "the calling thread (modules, functional calls, checkpointed blocks, "
            "torch.vmap, nn.RNN, F.lp_pool2d); the ops above ran where it cannot: inside "
            "TorchScript, on another thread, or inside a C++ function. Run them as "
            "Python code on the calling thread."
        )
    return text
