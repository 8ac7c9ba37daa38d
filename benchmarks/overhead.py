"""Where the fixed per-call cost of a ReLU-override attribution goes, on a small model.

Adds attrkit's machinery to a plain gradient one layer at a time and times each step,
interleaved, so that the differences between consecutive steps attribute the overhead:

1. ``plain``: forward, select the target, ``torch.autograd.grad``;
2. ``+ call machinery``: attrkit's Saliency without ``abs`` (argument normalization, the
   random-state guard, the copy of the inputs the model may modify in place, the target
   selection) -- the same gradient;
3. ``+ ReLU override, native rule``: the same, with the forward pass and the gradient
   inside attrkit's :class:`~torch.overrides.TorchFunctionMode` whose rule is the
   ordinary ReLU (the cost of intercepting every torch call, of ``F.relu``'s Python
   dispatch to a mode, and of running the backward pass with the mode active), without
   the check of the graph;
4. ``+ escape check``: the same with the check, before the backward pass, that every
   ReLU on the gradient path got its rule (:mod:`attrkit.engine.verify`: one walk over
   the autograd graph) -- the cost of the "never silently wrong" guarantee;
5. ``Deconvolution`` / ``GuidedBackprop``: the methods (adds the rule itself: a Python
   ``autograd.Function``, or a hook on the native ReLU node).

Run from the repository root::

    python benchmarks/overhead.py                      # the tiny MLP of benchmarks/run.py
    python benchmarks/overhead.py --model mlp-depth8
    python benchmarks/overhead.py --model resnet18 --batch 8 --number 3 --repeats 10

Times are the calling thread's CPU time (one intra-op thread), which waiting for a core
that other processes hold does not inflate; each step's figure is the median over
repetitions of its difference from the previous step in the same repetition.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import attrkit  # noqa: E402
from attrkit.engine.override import RuleOverride  # noqa: E402
from attrkit.engine.rule import RuleSet  # noqa: E402
from attrkit.engine.rules.relu import ReluRule  # noqa: E402
from attrkit.engine.verify import find_escapes  # noqa: E402
from benchmarks import _models  # noqa: E402
from benchmarks.run import _plain_gradient, _timed, _warm_up  # noqa: E402


class _NativeRelu(ReluRule):
    """ReLU with its own backward: the override's cost without a rule's."""

    name = "native"
    backward = "ReLU's own"
    paper = ""

    def relu(self, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        return torch.relu_(x) if inplace else torch.relu(x)


_NATIVE = RuleSet([_NativeRelu()])


class _SaliencyInsideOverride(attrkit.Saliency):
    """Saliency computed inside the ReLU override with the native rule, with or without
    the check of the graph."""

    def __init__(self, model: torch.nn.Module, verify: bool) -> None:
        super().__init__(model)
        self.verify = verify

    def _compute_context(self, call: Any) -> Any:
        return RuleOverride(_NATIVE, verify=self.verify)


def steps(model: torch.nn.Module, x: torch.Tensor, target: int) -> dict[str, Callable[[], Any]]:
    saliency = attrkit.Saliency(model)
    inside = _SaliencyInsideOverride(model, verify=False)
    checked = _SaliencyInsideOverride(model, verify=True)
    deconvolution = attrkit.Deconvolution(model)
    guided = attrkit.GuidedBackprop(model)
    return {
        "plain": _plain_gradient(model, x, target),
        "+ call machinery": lambda: saliency.attribute(x, target=target, abs=False),
        "+ ReLU override, native rule": lambda: inside.attribute(x, target=target, abs=False),
        "+ escape check": lambda: checked.attribute(x, target=target, abs=False),
        "Deconvolution": lambda: deconvolution.attribute(x, target=target),
        "GuidedBackprop": lambda: guided.attribute(x, target=target),
    }


def check_alone(
    model: torch.nn.Module, x: torch.Tensor, target: int, repeats: int
) -> tuple[float, int]:
    """The escape check by itself on this model's graph: median thread CPU time of one
    :func:`~attrkit.engine.verify.find_escapes` over ``repeats`` runs, and the number of
    autograd nodes it walks."""
    leaf = x.detach().clone().requires_grad_()
    override = RuleOverride(_NATIVE)
    with override:
        selected = model(leaf.clone())[:, target]
    args = ((selected,), (leaf,), _NATIVE.native_nodes, override.made, _NATIVE.node_kinds)
    assert find_escapes(*args) == []
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        find_escapes(*args)
        times.append(time.thread_time() - start)
    nodes, stack = set(), [selected.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in nodes:
            nodes.add(node)
            stack += [n for n, _ in node.next_functions]
    return statistics.median(times), len(nodes)


def measure(
    calls: dict[str, Callable[[], Any]], repeats: int, number: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    _warm_up(calls.values(), number)
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(_timed(call, number, lambda: None, time.thread_time))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny-mlp", choices=sorted(_models.SPECS))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--number", type=int, default=300, help="calls per measurement")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    spec, model = _models.build(args.model)
    shape = spec.input_shape or (3, args.image_size, args.image_size)
    x = torch.randn(args.batch, *shape, generator=torch.Generator().manual_seed(1))
    times = measure(steps(model, x, target=1), args.repeats, args.number)
    base = times["plain"]
    previous = {
        "+ call machinery": "plain",
        "+ ReLU override, native rule": "+ call machinery",
        "+ escape check": "+ ReLU override, native rule",
        "Deconvolution": "+ escape check",
        "GuidedBackprop": "+ escape check",
    }
    print(
        f"{args.model}, batch {args.batch}, thread CPU time per call, median of {args.repeats}:\n"
    )
    print("| step | time | over plain | over the previous step |")
    print("|---|---|---|---|")
    for name, values in times.items():
        over_plain = statistics.median(a - b for a, b in zip(values, base, strict=True))
        row = f"| {name} | {statistics.median(values) * 1e6:.1f} µs | {over_plain * 1e6:+.1f} µs |"
        if name in previous:
            earlier = times[previous[name]]
            step = statistics.median(a - b for a, b in zip(values, earlier, strict=True))
            row += f" {step * 1e6:+.1f} µs |"
        else:
            row += " |"
        print(row)
    alone, nodes = check_alone(model, x, 1, max(args.repeats * 10, 100))
    print(
        f"\nThe escape check alone (one walk over the graph's {nodes} autograd nodes): "
        f"{alone * 1e6:.1f} µs per call."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
