"""Time and peak memory of attrkit's methods against a plain gradient and against Captum.

Run from a clean checkout (the checkout's ``attrkit`` is imported, installed or not)::

    python benchmarks/run.py                  # the full table (the longest run)
    python benchmarks/run.py --quick          # small images, fewer repetitions
    python benchmarks/run.py --device cuda    # on a GPU (add --quick for a short run)
    python benchmarks/run.py --clock cpu      # on a machine other processes share
    python benchmarks/run.py --quick --sections catalogue   # one section (see --sections)

What is measured, per model and batch size, in one process:

* ``plain``: one forward pass and one ``torch.autograd.grad`` of the selected outputs
  (``grad_outputs=ones``) -- the floor of any gradient method;
* every registered attrkit method that can be built from the model alone and has a
  Captum class of the same name, and that Captum class: Deconvolution and GuidedBackprop
  (the performance contract) everywhere; Saliency, InputXGradient and IntegratedGradients
  (at ``--ig-steps`` steps) on the small models;
* DeepLift, DeepLiftShap (``--shap-baselines`` reference rows) and GradientShap
  (``--shap-samples`` samples per example) everywhere, each against its own floor
  ``floor:<method>``: one forward and one backward pass over the rows the method runs
  (DeepLift: the inputs and their baselines; DeepLiftShap: every input with every
  baseline, and those baselines; GradientShap: its samples). A Captum variant that
  raises on a model (its DeepLift refuses a module used twice, as in ResNet) is reported
  as such;
* the section "Layer, neuron and perturbation methods" (``--sections catalogue``, see
  :mod:`benchmarks.catalogue`): on the models that name a layer and a neuron (the tiny
  MLP and the small CNN), every registered method of the path, activation, gradient and
  perturbation families that the tables above do not time, against Captum's class of the
  same name, with small fixed options. The perturbation family runs Captum's own
  computation behind attrkit's argument checks, so there the ratio is attrkit's overhead.

``--sections main`` runs the tables of the methods built from the model alone (the
contract, the DeepLift family, the other methods, LRP, and the overhead by depth);
``--sections catalogue`` the section above alone; by default, both.

Timing: after warm-up, ``--repeats`` repetitions; each repetition runs every variant once
(a fixed number of calls, at least ``--min-time`` seconds), round-robin, starting at a
different variant each time. A ratio is the median over repetitions of the ratio of two
variants' times *in the same repetition*, so drifting machine load cancels; its spread is
the interquartile range of those per-repetition ratios. The clock is the wall clock, or
with ``--clock cpu`` the process's CPU time, which time spent waiting for a core shared
with other processes does not inflate. On CUDA the device is synchronized before and
after each timed block. On CPU, one intra-op thread by default (``--threads``): with
more, a busy machine stalls the threads' barriers and the timings scatter.

Peak memory: on CPU, each (model, batch) runs in a fresh subprocess whose allocator returns
every block of 64 KiB or more to the system when it is freed (``MALLOC_MMAP_THRESHOLD_``),
so that the resident set tracks the live tensors; for each call the peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident set before the call
is recorded, the median of ``--memory-repeats`` calls. This counts everything the call
allocates (tensors, autograd graph, Python objects), as a user would see it. On CUDA,
``torch.cuda.max_memory_allocated`` minus the allocation before the call, in-process.

Captum 0.9's Deconvolution and GuidedBackprop warn on every call; the benchmark ignores
Captum's warnings (the report lists them).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmark the checkout's attrkit

import torch  # noqa: E402

import attrkit  # noqa: E402
from attrkit.validation.rendering import markdown_table  # noqa: E402
from benchmarks import _models, catalogue  # noqa: E402
from benchmarks import lrp as lrp_rows  # noqa: E402

#: The methods of the performance contract (docs/performance.rst).
CONTRACT = tuple(
    name
    for name in attrkit.available_methods()
    if attrkit.method_info(name).family == "relu_rules"
    and not attrkit.method_info(name).init_arguments
)
#: Methods that cost several passes per call (compared with Captum only).
EXPENSIVE = ("integrated_gradients",)
#: The DeepLift family's methods that are built from the model alone, each compared with
#: its floor (``floor:<method>``, see :func:`_floor`).
FAMILY = tuple(
    name
    for name in attrkit.available_methods()
    if attrkit.method_info(name).family == "deeplift"
    and "layer" not in attrkit.method_info(name).init_arguments
)
#: What ``--sections`` selects: the tables of the methods built from the model alone, and
#: the section "Layer, neuron and perturbation methods" (:mod:`benchmarks.catalogue`).
SECTIONS = ("main", "catalogue")
MAIN_MODELS = ("tiny-mlp", "small-cnn", "resnet18", "vgg11", "densenet121")
DEPTH_MODELS = (
    "mlp-depth2",
    "mlp-depth8",
    "mlp-depth32",
    "cnn-depth2",
    "cnn-depth8",
    "cnn-depth16",
)
#: Below this peak, a memory ratio is allocator noise, not a measurement.
MIN_MEMORY = 1 << 20


# --------------------------------------------------------------------------- variants


@dataclass
class Setup:
    """One (model, batch size) configuration with its callables."""

    model_name: str
    batch: int
    variants: dict[str, Callable[[], Any]]
    relu_count: int
    description: str
    captum_warnings: dict[str, list[str]] = field(default_factory=dict)
    captum_errors: dict[str, str] = field(default_factory=dict)
    #: The section "Layer, neuron and perturbation methods": method -> its options, and
    #: method -> why it does not run on this setup.
    catalogue: dict[str, str] = field(default_factory=dict)
    catalogue_skipped: dict[str, str] = field(default_factory=dict)


def _methods(selected: Sequence[str] | None) -> list[str]:
    """Registered methods that are built from the model alone and have a Captum namesake,
    but for the perturbation family (timed in its own section, :mod:`benchmarks.catalogue`:
    on every model, ShapleyValues' cost is exponential in the features)."""
    import captum.attr

    names = []
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        if info.family == "perturbation":
            continue
        factory = info.factory or info.cls
        parameters = list(inspect.signature(factory).parameters.values())[1:]
        if any(p.default is p.empty for p in parameters):
            continue  # needs a layer or a base method
        if not hasattr(captum.attr, info.cls.__name__):
            continue
        if selected is None or name in selected:
            names.append(name)
    return names


def _attribute_kwargs(name: str, args: argparse.Namespace, x: torch.Tensor) -> dict[str, Any]:
    """The options of method ``name`` besides the target (a baseline distribution drawn
    from its own generator)."""
    if name == "integrated_gradients":
        return {"n_steps": args.ig_steps}
    if name not in ("deep_lift_shap", "gradient_shap"):
        return {}
    generator = torch.Generator().manual_seed(2)
    rows = args.shap_baselines if name == "deep_lift_shap" else 2 * args.shap_baselines
    baselines = torch.randn(rows, *x.shape[1:], generator=generator).to(x.device)
    if name == "gradient_shap":
        return {"baselines": baselines, "n_samples": args.shap_samples}
    return {"baselines": baselines}


def _floor_rows(name: str, args: argparse.Namespace) -> int:
    """How many rows per example the DeepLift family's method ``name`` runs."""
    if name == "deep_lift":
        return 2
    if name == "deep_lift_shap":
        return 2 * int(args.shap_baselines)
    return int(args.shap_samples)


def _count_relus(model: torch.nn.Module, x: torch.Tensor) -> int:
    from attrkit.engine.override import RuleOverride
    from attrkit.engine.rule import RuleSet
    from attrkit.engine.rules.relu import DECONVOLUTION

    override = RuleOverride(RuleSet([DECONVOLUTION]))
    with torch.no_grad(), override:
        model(x)
    return override.applications


def make_setup(
    model_name: str,
    batch: int,
    args: argparse.Namespace,
    methods: Sequence[str],
    contract_only: bool = False,
    catalogue_methods: Sequence[str] = (),
) -> Setup:
    """Build the model, the inputs and one callable per variant of ``methods`` (see
    :func:`_methods`): every method on the small models, the contract's methods only on the
    large ones (and with ``contract_only``); and of ``catalogue_methods`` on the models
    that name a layer (:mod:`benchmarks.catalogue`)."""
    import captum.attr

    spec, model = _models.build(model_name, use_torchvision=not args.no_torchvision)
    device = torch.device(args.device)
    model = model.to(device)
    shape = spec.input_shape or (3, args.image_size, args.image_size)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, *shape, generator=generator).to(device)
    with torch.no_grad():
        classes = model(x[:1]).shape[1]
    labels = torch.randint(classes, (batch,), generator=generator).to(device)
    target: int | torch.Tensor = 1 if spec.int_target else labels
    variants: dict[str, Callable[[], Any]] = {"plain": _plain_gradient(model, x, target)}
    setup = Setup(model_name, batch, variants, _count_relus(model, x), spec.description)
    for name in methods:
        if name not in (*CONTRACT, *FAMILY) and (contract_only or not spec.cheap):
            continue
        if name in FAMILY and contract_only:
            continue
        kwargs = _attribute_kwargs(name, args, x)
        ours = attrkit.create(name, model)
        theirs = getattr(captum.attr, attrkit.method_info(name).cls.__name__)(model)
        if name in FAMILY:
            variants[f"floor:{name}"] = _floor(model, x, target, _floor_rows(name, args))
        variants[f"attrkit:{name}"] = _bind(ours, x, target, kwargs)
        if lrp_rows.captum_runs(name, model):
            variants[f"captum:{name}"] = _bind(theirs, x, target, kwargs)
        if name == "lrp":
            variants.update(lrp_rows.zennit_variants(model, x, target))
    if spec.layer is not None and not contract_only:
        cases, setup.catalogue_skipped = catalogue.cases(
            spec, model, x, target, catalogue_methods, args.ig_steps
        )
        for case in cases:
            variants[f"attrkit:{case.name}"] = case.ours
            variants[f"captum:{case.name}"] = case.theirs
            setup.catalogue[case.name] = case.description
    _check(setup, model, x, target)
    return setup


def _floor(
    model: torch.nn.Module, x: torch.Tensor, target: int | torch.Tensor, rows: int
) -> Callable[[], Any]:
    """The floor of a method that runs ``rows`` rows per example: the plain gradient of
    that many copies of the batch (the first copy's targets selected)."""
    repeated = x.repeat(rows, *([1] * (x.dim() - 1)))
    return _plain_gradient(model, repeated, target, rows=len(x))


def _plain_gradient(
    model: torch.nn.Module, x: torch.Tensor, target: int | torch.Tensor, rows: int | None = None
) -> Callable[[], Any]:
    """The ``plain`` variant: forward, select the target (of the first ``rows`` rows),
    ``torch.autograd.grad``."""

    def plain() -> Any:
        leaf = x.detach().requires_grad_()
        output = model(leaf)[:rows]
        if isinstance(target, int):
            selected = output[:, target]
        else:
            selected = output.gather(1, target[:, None]).squeeze(1)
        return torch.autograd.grad(selected, leaf, grad_outputs=torch.ones_like(selected))[0]

    return plain


def _bind(method: Any, x: torch.Tensor, target: Any, kwargs: dict[str, Any]) -> Callable[[], Any]:
    def call() -> Any:
        return method.attribute(x, target=target, **kwargs)

    return call


def _check(setup: Setup, model: torch.nn.Module, x: torch.Tensor, target: Any) -> None:
    """Run every variant once; the plain gradient must equal attrkit's Saliency without
    ``abs`` (so that the floor computes the same gradient); record Captum's warnings, and
    Captum's errors (a Captum variant that raises is dropped)."""
    expected = attrkit.Saliency(model).attribute(x, target=target, abs=False)
    # Loose: GPU kernels may sum in a different order from one call to the next.
    torch.testing.assert_close(setup.variants["plain"](), expected, rtol=1e-3, atol=1e-4)
    for name, call in list(setup.variants.items()):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                call()
            except (RuntimeError, AssertionError) as error:
                if not name.startswith("captum:"):
                    raise
                setup.captum_errors[name] = f"{type(error).__name__}: {error}".split("\n")[0]
                del setup.variants[name]
                continue
        if caught:
            setup.captum_warnings[name] = sorted({str(w.message).split("\n")[0] for w in caught})
        if caught and not name.startswith(("captum:", "zennit:")):
            raise RuntimeError(f"{name} warned: {[str(w.message) for w in caught]}")


# ----------------------------------------------------------------------------- timing


def _synchronize(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def _warm_up(calls: Iterable[Callable[[], Any]], number: int) -> None:
    """Call each of ``calls`` ``number`` times."""
    for call in calls:
        for _ in range(number):
            call()


def _timed(
    call: Callable[[], Any],
    number: int,
    synchronize: Callable[[], None],
    clock: Callable[[], float],
) -> float:
    """Seconds per call of ``number`` calls of ``call``, timed by ``clock``."""
    synchronize()
    start = clock()
    for _ in range(number):
        call()
    synchronize()
    return (clock() - start) / number


def time_setup(setup: Setup, args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per call of every variant, one entry per repetition."""
    synchronize = _synchronize(args.device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    _warm_up(setup.variants.values(), args.warmup)
    slowest = max(_timed(call, 1, synchronize, clock) for call in setup.variants.values())
    number = max(1, math.ceil(args.min_time / max(slowest, 1e-9)))
    names = list(setup.variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(args.repeats):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            times[name].append(_timed(setup.variants[name], number, synchronize, clock))
    return times


# ----------------------------------------------------------------------------- memory


def _rss_kib(field_name: str) -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field_name}:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field_name}")
    return int(match.group(1))


def _peak_cpu(call: Callable[[], Any]) -> int:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _rss_kib("VmRSS")
    result = call()
    peak = _rss_kib("VmHWM")
    del result
    return (peak - before) * 1024


def _peak_cuda(call: Callable[[], Any]) -> int:
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = call()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del result
    return peak - before


def measure_memory(setup: Setup, args: argparse.Namespace) -> dict[str, int]:
    """Median peak bytes per call of every variant (in this process, after
    :func:`make_setup` ran each variant once)."""
    peak = _peak_cuda if args.device.startswith("cuda") else _peak_cpu
    samples: dict[str, list[int]] = {name: [] for name in setup.variants}
    for _ in range(args.memory_repeats):
        for name, call in setup.variants.items():
            samples[name].append(peak(call))
    return {name: int(statistics.median(values)) for name, values in samples.items()}


def memory_in_subprocess(model_name: str, batch: int, args: argparse.Namespace) -> dict[str, int]:
    """:func:`measure_memory` in a fresh process whose allocator unmaps freed blocks."""
    command = [sys.executable, str(Path(__file__).resolve()), *_forwarded(args)]
    command += ["--memory-worker", model_name, str(batch)]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker for {model_name} x{batch} failed:\n{done.stderr}")
    return {name: int(value) for name, value in json.loads(done.stdout).items()}


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The options a memory worker needs to build the same setup."""
    options = ["--device", args.device, "--image-size", str(args.image_size)]
    options += ["--ig-steps", str(args.ig_steps), "--memory-repeats", str(args.memory_repeats)]
    options += ["--shap-baselines", str(args.shap_baselines)]
    options += ["--shap-samples", str(args.shap_samples)]
    options += ["--threads", str(args.threads), "--sections", *args.sections]
    if args.methods:
        options += ["--methods", *args.methods]
    if args.no_torchvision:
        options.append("--no-torchvision")
    return options


# ----------------------------------------------------------------------------- report


@dataclass
class Measured:
    setup: Setup
    times: dict[str, list[float]]
    memory: dict[str, int]


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _ratio(m: Measured, a: str, b: str) -> tuple[float, float] | None:
    """Median and half-IQR of the per-repetition time ratio ``a / b``."""
    if a not in m.times or b not in m.times:
        return None
    q1, q2, q3 = _quartiles([x / y for x, y in zip(m.times[a], m.times[b], strict=True)])
    return q2, (q3 - q1) / 2


def _format_ratio(value: tuple[float, float] | None) -> str:
    return "—" if value is None else f"{value[0]:.3f} ± {value[1]:.3f}"


def _memory_ratio(m: Measured, a: str, b: str) -> float | None:
    if a not in m.memory or b not in m.memory or m.memory[b] < MIN_MEMORY:
        return None
    return m.memory[a] / m.memory[b]


def _format_time(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.1 else f"{seconds:.3f} s"


def _format_bytes(value: int) -> str:
    return f"{value / 2**20:.1f} MiB" if value >= MIN_MEMORY else f"{value / 1024:.0f} KiB"


def _median(m: Measured, name: str) -> float:
    return statistics.median(m.times[name])


def _met(m: Measured, method: str) -> str:
    """Whether a contract row meets its targets (docs/performance.rst)."""
    ours, theirs = f"attrkit:{method}", f"captum:{method}"
    faster = (_ratio(m, ours, theirs) or (math.inf, 0))[0] < 1
    if not _models.SPECS[m.setup.model_name].large or m.setup.batch < 8:
        return "yes" if faster else "no (vs Captum)"
    time_ok = (_ratio(m, ours, "plain") or (math.inf, 0))[0] <= 1.03
    memory = _memory_ratio(m, ours, "plain")
    memory_ok = memory is None or memory <= 1.05
    missed = [
        w for w, ok in (("time", time_ok), ("memory", memory_ok), ("vs Captum", faster)) if not ok
    ]
    return "yes" if not missed else "no (" + ", ".join(missed) + ")"


def _rows(
    results: list[Measured],
    methods: Sequence[str],
    met: Callable[[Measured, str], str] | None = None,
    floor: Callable[[str], str] = lambda method: "plain",
) -> list[list[str]]:
    """One row per (result, method): times and peak memory against the method's floor
    (``floor(method)``, a variant) and Captum; ``met`` adds the targets column."""
    rows = []
    for m in results:
        for method in methods:
            ours, theirs = f"attrkit:{method}", f"captum:{method}"
            if ours not in m.times:
                continue
            base = floor(method)
            vs_plain = method not in EXPENSIVE
            memory = _memory_ratio(m, ours, base) if vs_plain else None
            captum_memory = _memory_ratio(m, theirs, base) if vs_plain else None
            error = m.setup.captum_errors.get(theirs)
            row = [
                m.setup.model_name,
                str(m.setup.batch),
                attrkit.method_info(method).display_name,
                _format_time(_median(m, base)),
                _format_ratio(_ratio(m, ours, base) if vs_plain else None),
                "raises" if error else _format_ratio(_ratio(m, theirs, base) if vs_plain else None),
                "—" if error else _format_ratio(_ratio(m, ours, theirs)),
                "—" if memory is None else f"{memory:.3f}",
                "—" if captum_memory is None else f"{captum_memory:.3f}",
            ]
            if met is not None:
                row.append(met(m, method))
            rows.append(row)
    return rows


def _family_met(m: Measured, method: str) -> str:
    """Whether a DeepLift-family row meets its targets: faster than Captum (where Captum
    runs), and within 1.05 x its floor in time and peak memory."""
    ours, theirs = f"attrkit:{method}", f"captum:{method}"
    missed = []
    if theirs in m.times and (_ratio(m, ours, theirs) or (math.inf, 0))[0] >= 1:
        missed.append("vs Captum")
    if (_ratio(m, ours, f"floor:{method}") or (math.inf, 0))[0] > 1.05:
        missed.append("time")
    memory = _memory_ratio(m, ours, f"floor:{method}")
    if memory is not None and memory > 1.05:
        missed.append("memory")
    return "yes" if not missed else "no (" + ", ".join(missed) + ")"


RATIO_HEADER = [
    "model",
    "batch",
    "method",
    "plain time",
    "attrkit ÷ plain",
    "Captum ÷ plain",
    "attrkit ÷ Captum",
    "attrkit ÷ plain memory",
    "Captum ÷ plain memory",
]


ZENNIT_HEADER = [
    "model",
    "batch",
    "composite",
    "plain time",
    "attrkit ÷ plain",
    "zennit ÷ plain",
    "attrkit ÷ zennit",
    "attrkit ÷ plain memory",
    "zennit ÷ plain memory",
]


def _zennit_rows(results: list[Measured]) -> list[list[str]]:
    rows = []
    for m in results:
        for composite in lrp_rows.COMPOSITES:
            ours, theirs = f"attrkit:lrp[{composite}]", f"zennit:lrp[{composite}]"
            if ours not in m.times:
                continue
            memory = _memory_ratio(m, ours, "plain")
            zennit_memory = _memory_ratio(m, theirs, "plain")
            rows.append(
                [
                    m.setup.model_name,
                    str(m.setup.batch),
                    composite,
                    _format_time(_median(m, "plain")),
                    _format_ratio(_ratio(m, ours, "plain")),
                    _format_ratio(_ratio(m, theirs, "plain")),
                    _format_ratio(_ratio(m, ours, theirs)),
                    "—" if memory is None else f"{memory:.3f}",
                    "—" if zennit_memory is None else f"{zennit_memory:.3f}",
                ]
            )
    return rows


CATALOGUE_HEADER = [
    "model",
    "batch",
    "method",
    "options",
    "Captum time",
    "attrkit ÷ Captum",
    "attrkit ÷ Captum memory",
]


def _catalogue_rows(results: list[Measured]) -> list[list[str]]:
    """The section "Layer, neuron and perturbation methods": one row per (result, method)."""
    rows = []
    for m in results:
        for method, description in m.setup.catalogue.items():
            ours, theirs = f"attrkit:{method}", f"captum:{method}"
            error = m.setup.captum_errors.get(theirs)
            memory = _memory_ratio(m, ours, theirs)
            rows.append(
                [
                    m.setup.model_name,
                    str(m.setup.batch),
                    attrkit.method_info(method).display_name,
                    description,
                    "raises" if error else _format_time(_median(m, theirs)),
                    "—" if error else _format_ratio(_ratio(m, ours, theirs)),
                    "—" if memory is None else f"{memory:.3f}",
                ]
            )
    return rows


def _catalogue_skipped(results: list[Measured]) -> list[str]:
    """ "<method> on <model> at batch <n> (<reason>)" for each case that did not run."""
    return [
        f"{attrkit.method_info(method).display_name} on {m.setup.model_name} at batch "
        f"{m.setup.batch} ({reason})"
        for m in results
        for method, reason in m.setup.catalogue_skipped.items()
    ]


def _overhead_rows(results: list[Measured]) -> list[list[str]]:
    rows = []
    for m in results:
        plain = _median(m, "plain")
        row = [m.setup.model_name, str(m.setup.batch), str(m.setup.relu_count)]
        row.append(_format_time(plain))
        for method in CONTRACT:
            for library in ("attrkit", "captum"):
                name = f"{library}:{method}"
                if name not in m.times:
                    row.append("—")
                    continue
                extra = statistics.median(
                    a - b for a, b in zip(m.times[name], m.times["plain"], strict=True)
                )
                row.append(f"{extra * 1e6:+.0f} µs")
        rows.append(row)
    return rows


def _raw_rows(results: list[Measured]) -> list[list[str]]:
    rows = []
    for m in results:
        for name, values in m.times.items():
            q1, q2, q3 = _quartiles(values)
            memory = m.memory.get(name)
            rows.append(
                [
                    m.setup.model_name,
                    str(m.setup.batch),
                    name,
                    _format_time(q2),
                    f"{_format_time(q1)} to {_format_time(q3)}",
                    "—" if memory is None else _format_bytes(memory),
                ]
            )
    return rows


class Document:
    """Headings, paragraphs and tables, written as Markdown or reStructuredText."""

    def __init__(self, markdown: bool) -> None:
        self.markdown = markdown
        self.lines: list[str] = []

    def heading(self, text: str) -> None:
        self.lines += [f"### {text}" if self.markdown else f"{text}\n{'-' * len(text)}", ""]

    def paragraph(self, text: str) -> None:
        self.lines += [text if self.markdown else text.replace("`", "``"), ""]

    def bullets(self, items: Sequence[str]) -> None:
        for item in items:
            self.paragraph_line(f"- {item}")
        self.lines.append("")

    def paragraph_line(self, text: str) -> None:
        self.lines.append(text if self.markdown else text.replace("`", "``"))

    def code(self, text: str) -> None:
        if self.markdown:
            self.lines += ["```", text, "```", ""]
        else:
            self.lines += [
                ".. code-block:: console",
                "",
                *("   " + t for t in text.splitlines()),
                "",
            ]

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.markdown:
            self.lines.append(markdown_table(header, rows))
        else:
            self.lines += [".. list-table::", "   :header-rows: 1", ""]
            for row in [header, *rows]:
                self.lines.append(f"   * - {row[0]}")
                self.lines += [f"     - {cell}" for cell in row[1:]]
        self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> str:
    import captum

    parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}"]
    parts.append(f"captum {captum.__version__}")
    try:
        import torchvision

        parts.append(f"torchvision {torchvision.__version__}")
    except ImportError:
        parts.append("no torchvision (built-in model definitions)")
    return ", ".join(parts)


def _machine(args: argparse.Namespace, load: tuple[float, float]) -> list[str]:
    if args.device.startswith("cuda"):
        device = f"GPU: {torch.cuda.get_device_name(torch.device(args.device))}"
    else:
        device = f"CPU only, {torch.get_num_threads()} intra-op threads"
    return [
        f"machine: {_cpu_model()}, {os.cpu_count()} logical cores; {device}",
        f"software: {_versions()}",
        f"load average (1 min) at start and end: {load[0]:.2f}, {load[1]:.2f} "
        "(other processes shared the machine when this is above 0)",
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
    ]


def render(
    results: list[Measured],
    depth: list[Measured],
    args: argparse.Namespace,
    load: tuple[float, float],
    markdown: bool,
    methods: Sequence[str],
) -> str:
    doc = Document(markdown)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    doc.heading("Benchmark setup")
    doc.bullets(
        [
            *_machine(args, load),
            f"image size for ResNet-18, VGG-11, DenseNet-121: {args.image_size}x{args.image_size}; "
            f"{args.repeats} interleaved repetitions of at least {args.min_time:g} s per variant, "
            f"timed by the {'process CPU time' if args.clock == 'cpu' else 'wall clock'}; "
            f"Integrated Gradients at n_steps={args.ig_steps}",
        ]
    )
    doc.paragraph("Command:")
    doc.code(command.strip())
    doc.paragraph(
        "Ratios are medians over repetitions of per-repetition time ratios, ± half their "
        "interquartile range; below 1 is faster. Memory ratios compare the peak memory of "
        "one call (the peak resident set of a fresh process on CPU, the CUDA allocator's "
        "peak on GPU); — where the plain call's peak is under 1 MiB or the ratio does not "
        "apply. Captum's Deconvolution and GuidedBackprop warn on every call (ignored here)."
    )
    contract = [m for m in CONTRACT if m in methods]
    if contract:
        doc.heading("Deconvolution and Guided Backpropagation (the performance contract)")
        doc.paragraph(
            "Targets, at batch ≥ 8 on the ResNet-18 / VGG-11 / DenseNet-121 sizes: time ≤ "
            "1.03 x plain and peak memory ≤ 1.05 x plain; on every row, faster than Captum. "
            "The last column says whether the row meets the targets that apply to it."
        )
        doc.table([*RATIO_HEADER, "targets met"], _rows(results, contract, met=_met))
    family = [m for m in FAMILY if m in methods]
    if family:
        doc.heading("DeepLift, DeepLiftShap and GradientShap")
        doc.paragraph(
            "Each against its floor: one forward and one backward pass over the rows the "
            f"method runs (DeepLift: 2 per example; DeepLiftShap with {args.shap_baselines} "
            f"baselines: {2 * args.shap_baselines}; GradientShap with {args.shap_samples} "
            f"samples: {args.shap_samples}); the plain-time and ÷ plain columns refer to that "
            "floor. Targets: faster than Captum, and within 1.05 x the floor in time and "
            "peak memory. Captum raises where it says so."
        )
        floor_header = [h.replace("plain", "floor") for h in RATIO_HEADER]
        doc.table(
            [*floor_header, "targets met"],
            _rows(results, family, met=_family_met, floor=lambda method: f"floor:{method}"),
        )
        errors = sorted({e for m in results for e in m.setup.captum_errors.values()})
        if errors:
            doc.paragraph("Captum's errors: " + "; ".join(f'"{e}"' for e in errors))
    others = [m for m in methods if m not in (*CONTRACT, *FAMILY)]
    if others:
        doc.heading("Other methods (not in the contract)")
        doc.paragraph(
            "On the small models only. Integrated Gradients runs n_steps forward and "
            "backward passes, so it is compared with Captum only."
        )
        doc.table(RATIO_HEADER, _rows(results, others))
    zennit = _zennit_rows(results)
    if zennit:
        doc.heading("LRP against zennit's composites")
        doc.paragraph(
            "attrkit's LRP with a composite against zennit's Gradient attributor with the "
            "same composite (and its batch-norm canonizer), the output gradient being the "
            "target output's value; each call enters the composite's context, as a "
            "per-batch call does."
        )
        doc.table(ZENNIT_HEADER, zennit)
    layered = _catalogue_rows(results)
    if layered:
        doc.heading("Layer, neuron and perturbation methods")
        doc.paragraph(
            "Every registered method of the path, activation, gradient and perturbation "
            "families that the tables above do not time, against Captum's class of the same "
            "name, on the models that name a layer (the tiny MLP: its second hidden ReLU, "
            "neuron 5; the small CNN: its last convolution's ReLU, neuron (3, 4, 4)); path "
            f"methods at n_steps={args.ig_steps}, sampling methods at {catalogue.SAMPLES} "
            f"samples, perturbation masks of {catalogue.GROUPS} features. The perturbation "
            "family runs Captum's own computation behind attrkit's argument checks: there "
            "the ratio is the cost of those checks. Memory: — where Captum's peak is under "
            "1 MiB."
        )
        doc.table(CATALOGUE_HEADER, layered)
        errors = sorted(
            {
                error
                for m in results
                for name, error in m.setup.captum_errors.items()
                if name.removeprefix("captum:") in m.setup.catalogue
            }
        )
        if errors:
            doc.paragraph("Captum's errors: " + "; ".join(f'"{e}"' for e in errors))
        skipped = _catalogue_skipped(results)
        if skipped:
            doc.paragraph("Not run: " + "; ".join(skipped) + ".")
    overhead_header = ["model", "batch", "ReLUs", "plain time"]
    overhead_header += [f"{lib} {m} - plain" for m in contract for lib in ("attrkit", "Captum")]
    if contract:
        doc.heading("Overhead over plain, by batch size and depth")
        doc.paragraph(
            "Median per-repetition difference from the plain call. The fixed part (the "
            "tiny MLP) is the Python cost of one call; the depth family shows the cost "
            "per ReLU."
        )
        doc.table(overhead_header, _overhead_rows(results + depth))
    doc.heading("All measurements")
    doc.table(
        ["model", "batch", "variant", "median time", "interquartile range", "peak memory"],
        _raw_rows(results + depth),
    )
    warned = sorted({w for m in results for ws in m.setup.captum_warnings.values() for w in ws})
    if warned:
        doc.paragraph("Captum's warnings, per call: " + "; ".join(f'"{w}"' for w in warned))
    return doc.text()


# ------------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes")
    parser.add_argument("--models", nargs="+", choices=sorted(_models.SPECS), default=None)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None)
    parser.add_argument("--methods", nargs="+", default=None, help="attrkit method names")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="main: the tables of the methods built from the model alone (and the depth "
        "family); catalogue: layer, neuron and perturbation methods; default: both",
    )
    parser.add_argument("--no-depth", action="store_true", help="skip the depth family")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=1, help="calls per variant")
    parser.add_argument("--min-time", type=float, default=None, help="seconds per variant")
    parser.add_argument("--memory-repeats", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--ig-steps", type=int, default=4)
    parser.add_argument(
        "--shap-baselines", type=int, default=4, help="DeepLiftShap's reference rows"
    )
    parser.add_argument("--shap-samples", type=int, default=5, help="GradientShap's samples")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time the calls by the wall clock, or by the process's CPU time (steadier on "
        "a machine that other processes share; CPU only, with --threads 1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads (default 1: stable on a shared machine; 0: torch's default)",
    )
    parser.add_argument("--no-torchvision", action="store_true", help="built-in models only")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "performance_table.rst",
        help="written as Markdown if it ends in .md, else reStructuredText",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write raw numbers")
    parser.add_argument(
        "--memory-worker", nargs=2, metavar=("MODEL", "BATCH"), help=argparse.SUPPRESS
    )
    return parser


def _defaults(args: argparse.Namespace) -> None:
    quick = args.quick
    if args.models is None:
        args.models = ["tiny-mlp", "small-cnn", "resnet18"] if quick else list(MAIN_MODELS)
        args.models.insert(2, "lrp-cnn")
    if args.batch_sizes is None:
        args.batch_sizes = [1, 8] if quick else [1, 8, 32]
    if args.repeats is None:
        args.repeats = 3 if quick else 5
    if args.min_time is None:
        args.min_time = 0.05 if quick else 0.2
    if args.image_size is None:
        args.image_size = 64 if quick else 112
    if quick:
        args.no_depth = True


def _batches(model_name: str, args: argparse.Namespace) -> list[int]:
    if _models.SPECS[model_name].int_target:
        return [1]  # the fixed-overhead models: one example
    return [int(b) for b in args.batch_sizes]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _defaults(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module=r"captum(\.|$)")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and args.clock == "cpu":
        print("--clock cpu: a GPU's work is not the process's CPU time", file=sys.stderr)
        return 2
    main_section = "main" in args.sections
    methods = _methods(args.methods) if main_section else []
    layered = (
        catalogue.methods(_methods(None), args.methods) if "catalogue" in args.sections else []
    )
    if args.memory_worker:
        model_name, batch = args.memory_worker[0], int(args.memory_worker[1])
        setup = make_setup(model_name, batch, args, methods, catalogue_methods=layered)
        print(json.dumps(measure_memory(setup, args)))
        return 0
    load_start = os.getloadavg()[0]
    results: list[Measured] = []
    depth: list[Measured] = []
    models = [n for n in args.models if main_section or _models.SPECS[n].layer is not None]
    configs = [(name, batch, False) for name in models for batch in _batches(name, args)]
    if main_section and not args.no_depth:
        configs += [
            (name, 1 if _models.SPECS[name].int_target else 8, True) for name in DEPTH_MODELS
        ]
    for model_name, batch, is_depth in configs:
        print(f"{model_name} batch {batch} ...", file=sys.stderr, flush=True)
        setup = make_setup(
            model_name, batch, args, methods, contract_only=is_depth, catalogue_methods=layered
        )
        times = time_setup(setup, args)
        memory: dict[str, int] = {}
        if not args.no_memory and not is_depth:
            if args.device.startswith("cuda"):
                memory = measure_memory(setup, args)
            else:
                memory = memory_in_subprocess(model_name, batch, args)
        (depth if is_depth else results).append(Measured(setup, times, memory))
    load = (load_start, os.getloadavg()[0])
    markdown = render(results, depth, args, load, True, methods)
    print(markdown)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = (
        markdown
        if args.output.suffix == ".md"
        else render(results, depth, args, load, False, methods)
    )
    args.output.write_text(text)
    if args.json:
        raw = [
            {
                "model": m.setup.model_name,
                "batch": m.setup.batch,
                "times": m.times,
                "memory": m.memory,
            }
            for m in results + depth
        ]
        args.json.write_text(json.dumps(raw, indent=1))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
