"""Which layer and activation applications of a model Captum's and zennit's LRP hooks reach.

:func:`audit_lrp` runs one forward pass and lists every application of an op that LRP
gives a rule (linear layers, convolutions, pooling, batch-norm, sums of two tensors that
carry relevance, activations), where it happens, in which spelling, how often its module
runs, and a verdict for each library (captum 0.9, zennit 0.5):

* **Captum's** ``LRP`` puts its rules on the model's *leaf modules* of the types it knows
  (``nn.Conv2d``, ``nn.Linear``, ``nn.MaxPool1d/2d/3d``, ``nn.AvgPool2d``,
  ``nn.AdaptiveAvgPool2d``, ``nn.BatchNorm2d``, its ``Addition_Module``; ``nn.ReLU``,
  ``nn.Tanh`` and ``nn.Dropout`` pass the relevance on) or that hold a ``rule``. It
  raises ``TypeError`` for any other leaf module (``nn.Flatten``, ``nn.Sigmoid``,
  ``nn.Conv1d``, ...) and ``RuntimeError`` for a module applied twice; a functional layer
  (``F.conv2d``, ``F.linear``, ``x + y``) keeps its plain gradient, without a word.
* **zennit's** composites put their rules on modules by type (``nn.Linear``, the
  convolutions, the average poolings, batch-norm, the activations); a functional layer
  keeps its plain gradient, and a module applied twice gets, at every application, the
  rule computed from its last application's input.

A functional ReLU keeps its gradient in both, which under these rules changes nothing:
where the gradient masks, the relevance is zero already.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from attrkit.core.attribution import _CallScope
from attrkit.core.call import prepare_call
from attrkit.core.docs import fill_doc
from attrkit.engine.composites import calling_module
from attrkit.engine.ops import (
    ADAPTIVE_AVG_POOL,
    ADAPTIVE_MAX_POOL,
    ADD,
    AVG_POOL,
    BATCH_NORM,
    CONVOLUTION,
    ELEMENTWISE,
    LINEAR,
    MAX_POOL,
    MEAN,
    RELU,
    TRANSPOSED_CONVOLUTION,
    Op,
)
from attrkit.engine.reach import check_overridable
from attrkit.validation.auditing import LIBRARIES, ROOT, LibraryVerdict, group_paths
from attrkit.validation.rendering import Heading, Notes, Report, Section, Table, Title
from attrkit.validation.trace import spelling

__all__ = ["LayerFinding", "LrpAuditReport", "audit_lrp"]

OK = LibraryVerdict("ok")
_ACTIVATION = nn.modules.activation

#: The module types whose own forward applies each op (the module spelling).
_MODULES: dict[str, tuple[type[nn.Module], ...]] = {
    LINEAR.name: (nn.Linear,),
    CONVOLUTION.name: (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    TRANSPOSED_CONVOLUTION.name: (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
    AVG_POOL.name: (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
    ADAPTIVE_AVG_POOL.name: (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
    BATCH_NORM.name: (nn.modules.batchnorm._BatchNorm,),
    MAX_POOL.name: (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
    ADAPTIVE_MAX_POOL.name: (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
}
_OPS: tuple[Op, ...] = (
    LINEAR,
    CONVOLUTION,
    TRANSPOSED_CONVOLUTION,
    AVG_POOL,
    ADAPTIVE_AVG_POOL,
    MEAN,
    BATCH_NORM,
    MAX_POOL,
    ADAPTIVE_MAX_POOL,
    ADD,
    *ELEMENTWISE,
)
_BY_SPELLING: dict[Callable[..., Any], Op] = {f: op for op in _OPS for f in op.spellings}

_CAPTUM_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Dropout)
_REASONS = {
    "functional": "a functional call keeps its plain gradient (the hooks sit on modules)",
    "functional_activation": "a functional activation keeps its gradient, which scales the "
    "relevance",
    "reused": "a module applied more than once",
    "reused_zennit": "a module applied more than once gets, at every application, the rule "
    "computed from its last application's input",
    "unsupported_module": "a leaf module of a type Captum's LRP has no rule for: it raises "
    "TypeError",
    "sum": "a sum of two tensors that carry relevance keeps its gradient, which gives each "
    "of them all of it (Captum needs its Addition_Module, zennit its Sum layer)",
}


def _verdict(status: str, issue: str) -> LibraryVerdict:
    reason = _REASONS[issue]
    if issue == "reused" and status == "crash":
        reason += ": Captum's LRP raises RuntimeError"
    return LibraryVerdict(status, issue, reason)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LayerFinding:
    """One application of an op LRP has a rule for.

    Attributes:
        index: Its position among the applications.
        location: The module that applies it (its path), or the module whose forward
            calls the functional spelling (``"(root)"`` for the model itself).
        op: The op, in words (``"convolution"``).
        spelling: ``"nn.Conv2d"`` for a module, else the functional spelling
            (``"F.conv2d"``, ``"Tensor.add"``).
        applications: How often its module ran in the forward pass (1 for a functional
            call).
        captum: How Captum's ``LRP`` handles it.
        zennit: How zennit's composites handle it.
    """

    index: int
    location: str
    op: str
    spelling: str
    applications: int
    captum: LibraryVerdict
    zennit: LibraryVerdict

    def verdict(self, library: str) -> LibraryVerdict:
        return self.captum if library == "captum" else self.zennit


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


@dataclass(frozen=True)
class LrpAuditReport(Report):
    """The result of :func:`audit_lrp`.

    Attributes:
        model: The model's class name.
        layers: Every application, in forward order.
        captum_refuses: The leaf modules Captum's LRP has no rule for (it raises
            ``TypeError`` before anything runs), as paths.
    """

    model: str
    layers: tuple[LayerFinding, ...]
    captum_refuses: tuple[str, ...] = ()

    def issues(self, library: str) -> list[LayerFinding]:
        """The applications ``library`` does not give LRP's rule."""
        return [f for f in self.layers if f.verdict(library).status != "ok"]

    def follows_definition(self, library: str) -> bool:
        """Whether ``library`` gives every application its rule."""
        return not self.issues(library) and not (library == "captum" and self.captum_refuses)

    def library_summary(self, library: str) -> str:
        """One clause on ``library``, e.g. ``"Captum misses 3 functional layers in
        (root)"``."""
        name = LIBRARIES[library]
        clauses = []
        if library == "captum" and self.captum_refuses:
            clauses.append(
                f"raises TypeError: no rule for the leaf module{_plural(len(self.captum_refuses))}"
                f" {group_paths(self.captum_refuses)}"
            )
        by_issue: dict[str, list[LayerFinding]] = {}
        for finding in self.issues(library):
            by_issue.setdefault(finding.verdict(library).issue, []).append(finding)
        for issue, found in by_issue.items():
            where = group_paths(f.location for f in found)
            n, s = len(found), _plural(len(found))
            clauses.append(
                {
                    "functional": f"misses {n} functional layer{s} in {where}",
                    "functional_activation": f"misses {n} functional activation{s} in {where}",
                    "reused": f"refuses {n} application{s} of reused modules in {where}",
                    "reused_zennit": f"gets {n} application{s} of reused modules wrong in {where}",
                    "unsupported_module": f"raises on {n} module{s} in {where}",
                    "sum": f"gives {n} sum{s} of relevance-carrying tensors their gradient in "
                    f"{where}",
                }[issue]
            )
        if not clauses:
            count = len(self.layers)
            return f"{name} reaches all {count} application{_plural(count)}"
        return f"{name} " + ", and ".join(clauses)

    def summary(self) -> str:
        """One line on both libraries."""
        return "; ".join(self.library_summary(library) for library in LIBRARIES) + "."

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``model``, ``summary``, ``layers``, ``captum_refuses``."""
        return {
            "model": self.model,
            "summary": self.summary(),
            "layers": [asdict(f) for f in self.layers],
            "captum_refuses": list(self.captum_refuses),
        }

    def _sections(self) -> list[Section]:
        title = Title(
            f"attrkit.audit_lrp of {self.model}: {len(self.layers)} application"
            f"{_plural(len(self.layers))} of ops with an LRP rule",
            markdown=f"attrkit.audit_lrp of `{self.model}`",
        )
        sections: list[Section] = [[title, self.summary()]]
        if self.layers:
            rows = [
                [
                    str(f.index),
                    f.location,
                    f.op,
                    f.spelling,
                    str(f.applications),
                    f.captum.status,
                    f.zennit.status,
                ]
                for f in self.layers
            ]
            headers = ("#", "location", "op", "spelling", "applications", "Captum", "zennit")
            sections.append([Heading("Applications"), Table(headers, rows)])
        notes = [
            f"{LIBRARIES[lib]} {status} (rows {', '.join(map(str, rows))}): {reason}"
            for (lib, status, reason), rows in self._reasons().items()
        ]
        if notes:
            sections.append([Notes(notes)])
        return sections

    def _reasons(self) -> dict[tuple[str, str, str], list[int]]:
        found: dict[tuple[str, str, str], list[int]] = {}
        for finding in self.layers:
            for library in LIBRARIES:
                v = finding.verdict(library)
                if v.status != "ok":
                    found.setdefault((library, v.status, v.reason), []).append(finding.index)
        return found


@dataclass
class _Application:
    op: Op
    func: Callable[..., Any]
    module: nn.Module | None


class _LayerTrace(TorchFunctionMode):
    """Record every application of an op LRP rules whose input requires grad."""

    def __init__(self) -> None:
        super().__init__()
        self.applications: list[_Application] = []

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        op = _BY_SPELLING.get(func)
        if op is not None:
            call = op.read(func, args, kwargs)
            other = args[1] if len(args) > 1 else (kwargs or {}).get("other")
            carries = op is not ADD or (isinstance(other, Tensor) and other.requires_grad)
            if call.input.requires_grad and carries:
                self.applications.append(_Application(op, func, calling_module()))
        return func(*args, **(kwargs or {}))


def _captum_supported() -> tuple[tuple[type[nn.Module], ...], tuple[type[nn.Module], ...]]:
    from captum.attr._core import lrp

    return tuple(lrp.SUPPORTED_LAYERS_WITH_RULES), tuple(lrp.SUPPORTED_NON_LINEAR_LAYERS)


def _zennit_activations() -> tuple[type[nn.Module], ...]:
    try:
        from zennit.types import Activation
    except ImportError:  # the verdicts do not need zennit installed
        return tuple(
            cls
            for cls in vars(_ACTIVATION).values()
            if isinstance(cls, type) and issubclass(cls, nn.Module)
        )
    return (Activation,)


def _module_spelling(application: _Application) -> bool:
    module, op = application.module, application.op
    if module is None:
        return False
    if op in ELEMENTWISE:
        return type(module).__module__ == _ACTIVATION.__name__
    return isinstance(module, _MODULES.get(op.name, ()))


def _captum_verdict(application: _Application, module_form: bool, runs: int) -> LibraryVerdict:
    with_rules, passing = _captum_supported()
    module, op = application.module, application.op
    if op in ELEMENTWISE:
        if module_form:
            return OK if isinstance(module, passing) else _verdict("crash", "unsupported_module")
        return OK if op is RELU else _verdict("missed", "functional_activation")
    if op is ADD:
        hooked = module is not None and (
            type(module).__name__ == "Addition_Module" or hasattr(module, "rule")
        )
        return OK if hooked else _verdict("missed", "sum")
    hooked = module_form and (type(module) in with_rules or hasattr(module, "rule"))
    if not hooked:
        return _verdict("missed", "functional")
    return _verdict("crash", "reused") if runs > 1 else OK


def _zennit_verdict(application: _Application, module_form: bool, runs: int) -> LibraryVerdict:
    op = application.op
    if op in (MAX_POOL, ADAPTIVE_MAX_POOL):
        return OK  # zennit's composites leave max-pooling with its gradient: their convention
    if op in ELEMENTWISE:
        if op is RELU or (module_form and isinstance(application.module, _zennit_activations())):
            return OK
        return _verdict("missed", "functional_activation")
    if op is ADD:
        return _verdict("missed", "sum")
    if not module_form:
        return _verdict("missed", "functional")
    return _verdict("wrong", "reused_zennit") if runs > 1 else OK


@fill_doc
def audit_lrp(model: nn.Module, inputs: Any, additional_forward_args: Any = None) -> LrpAuditReport:
    """List every application of an op LRP has a rule for (linear layers, convolutions,
    pooling, batch-norm, sums of two relevance-carrying tensors, activations) and whether
    Captum's and zennit's LRP hooks reach it. attrkit gives every one of them its rule.

    One forward pass runs, watched on the calling thread only; nothing is left on the
    model. An application whose input does not require grad (a constant branch) is not
    listed.

    Args:
        model (torch.nn.Module): The model.
        %(inputs)s
        %(additional_forward_args)s

    Returns:
        LrpAuditReport: one :class:`LayerFinding` per application; ``str(report)`` is a
        table, ``report.summary()`` one line.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``inputs`` are not tensors.

    Example:
        >>> import torch, attrkit
        >>> from attrkit.validation import audit_lrp
        >>> class Net(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1, self.fc2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         return torch.nn.functional.linear(self.fc1(x).relu(), self.fc2.weight)
        >>> report = audit_lrp(Net(), torch.randn(2, 3))
        >>> [(f.location, f.spelling, f.captum.status) for f in report.layers]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('fc1', 'nn.Linear', 'ok'), ('(root)', 'Tensor.relu', 'ok'),
         ('(root)', 'F.linear', 'missed')]
        >>> report.summary()
        'Captum misses 1 functional layer in (root); zennit misses 1 functional layer in (root).'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    check_overridable(model)
    original = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
    if isinstance(original, nn.Module):
        model = original
    call = prepare_call(inputs, None, additional_forward_args)
    paths = {id(m): name for name, m in reversed(list(model.named_modules(remove_duplicate=False)))}
    trace = _LayerTrace()
    with _CallScope(), trace:
        model(*call.model_inputs(), *call.additional_forward_args)
    runs = Counter(id(a.module) for a in trace.applications if _module_spelling(a))
    findings = []
    for index, application in enumerate(trace.applications):
        module_form = _module_spelling(application)
        module = application.module
        count = runs[id(module)] if module_form else 1
        location = paths.get(id(module), ROOT) if module is not None else ROOT
        findings.append(
            LayerFinding(
                index=index,
                location=location or ROOT,
                op=application.op.title,
                spelling=f"nn.{type(module).__name__}"
                if module_form
                else spelling(application.func),
                applications=count,
                captum=_captum_verdict(application, module_form, count),
                zennit=_zennit_verdict(application, module_form, count),
            )
        )
    with_rules, passing = _captum_supported()
    refuses = tuple(
        name or ROOT
        for name, module in model.named_modules()
        if not list(module.children())
        and type(module) not in with_rules
        and type(module) not in passing
        and not hasattr(module, "rule")
    )
    return LrpAuditReport(type(model).__name__, tuple(findings), refuses)
