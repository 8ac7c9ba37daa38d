"""Which nonlinearity applications of a model Captum's DeepLift hooks reach.

:func:`audit_deeplift` runs one forward pass and lists every application of an op DeepLift
gives a rule (every elementwise nonlinearity, max-pooling, softmax), where it happens, in
which spelling, how often its module runs, and how Captum's ``DeepLift`` (0.9, and with it
DeepLiftShap and the layer and neuron variants) handles it. Captum's rules are hooks on
the model's modules of the types ``nn.ReLU``, ``nn.ELU``, ``nn.LeakyReLU``,
``nn.Sigmoid``, ``nn.Tanh``, ``nn.Softplus``, ``nn.MaxPool1d/2d/3d`` and ``nn.Softmax``,
registered before the forward pass. So:

* a functional spelling (``F.relu``, ``torch.sigmoid``, ``x.tanh()``, ``F.max_pool2d``),
  a module created inside ``forward``, and a module of another type (``nn.GELU``,
  ``nn.SiLU``, ``nn.ReLU6``, ``nn.AdaptiveMaxPool2d``, ...) keep their plain gradient
  (``"missed"``);
* a hooked module applied twice makes Captum raise (``"crash"``);
* a hooked module whose input comes straight from another hooked module, whose input is
  used by another operation too, a max-pooling whose windows overlap, and a softmax in a
  batch of several examples get a gradient other than the rule's (``"wrong"``).

attrkit gives every application its rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from attrkit.core.attribution import _CallScope
from attrkit.core.call import prepare_call
from attrkit.core.docs import fill_doc
from attrkit.engine.composites import calling_module
from attrkit.engine.ops import ADAPTIVE_MAX_POOL, MAX_POOL, SOFTMAX, Op
from attrkit.engine.reach import check_overridable
from attrkit.engine.rules.deeplift import elementwise_ops
from attrkit.validation.auditing import ROOT, LibraryVerdict, group_paths
from attrkit.validation.rendering import Heading, Notes, Report, Section, Table, Title
from attrkit.validation.trace import gradient_nodes, spelling

__all__ = ["DeepLiftAuditReport", "NonlinearityFinding", "audit_deeplift"]

OK = LibraryVerdict("ok")

#: issue -> (status, reason, phrase of the summary: count, plural ending, where).
_ISSUES: dict[str, tuple[str, str, str]] = {
    "functional": (
        "missed",
        "a functional call keeps its plain gradient (Captum's hooks sit on modules)",
        "misses {n} functional nonlinearit{ies} in {where}",
    ),
    "created_in_forward": (
        "missed",
        "a module created inside forward is never hooked",
        "misses {n} nonlinearit{ies} created inside forward in {where}",
    ),
    "no_rule": (
        "missed",
        "a module of a type Captum's DeepLift has no rule for keeps its plain gradient",
        "has no rule for {n} nonlinearit{ies} in {where}",
    ),
    "reused": (
        "crash",
        "a hooked module applied more than once: Captum's DeepLift raises RuntimeError",
        "raises on {n} application{s} of reused modules in {where}",
    ),
    "after_hooked_module": (
        "wrong",
        "its input comes straight from another hooked module: both modules' backward hooks "
        "act on the one tensor between them",
        "gets {n} nonlinearit{ies} right after another hooked module wrong in {where}",
    ),
    "input_used_elsewhere": (
        "wrong",
        "its input is used by another operation too, whose gradient the hook replaces",
        "gets {n} nonlinearit{ies} whose input is used elsewhere wrong in {where}",
    ),
    "overlapping_windows": (
        "wrong",
        "the max-pooling windows overlap: Captum's unpooling overwrites the shares of a "
        "position instead of adding them",
        "gets {n} overlapping max-pooling{s} wrong in {where}",
    ),
    "batch_softmax": (
        "wrong",
        "Captum's softmax rule subtracts one mean over the whole batch (attrkit: over each "
        "example's softmax dimension)",
        "normalizes {n} softmax{es} over the whole batch in {where}",
    ),
}


def _verdict(issue: str) -> LibraryVerdict:
    status, reason, _ = _ISSUES[issue]
    return LibraryVerdict(status, issue, reason)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NonlinearityFinding:
    """One application of an op DeepLift has a rule for.

    Attributes:
        index: Its position among the applications.
        location: The module that applies it (its path), or the module whose forward calls
            the functional spelling (``"(root)"`` for the model itself).
        op: The op, in words (``"ReLU"``, ``"max-pool"``).
        spelling: ``"nn.ReLU"`` for a module, else the functional spelling
            (``"F.relu"``, ``"Tensor.sigmoid"``).
        applications: How often its module ran in the forward pass (1 for a functional
            call).
        captum: How Captum's ``DeepLift`` handles it.
    """

    index: int
    location: str
    op: str
    spelling: str
    applications: int
    captum: LibraryVerdict


def _plural(n: int, many: str, one: str = "") -> str:
    return one if n == 1 else many


@dataclass(frozen=True)
class DeepLiftAuditReport(Report):
    """The result of :func:`audit_deeplift`.

    Attributes:
        model: The model's class name.
        applications: Every application, in forward order.
    """

    model: str
    applications: tuple[NonlinearityFinding, ...]

    def issues(self) -> list[NonlinearityFinding]:
        """The applications Captum does not give DeepLift's rule."""
        return [f for f in self.applications if f.captum.status != "ok"]

    def follows_definition(self) -> bool:
        """Whether Captum gives every application its rule."""
        return not self.issues()

    def summary(self) -> str:
        """One line, e.g. ``"Captum's DeepLift misses 2 functional nonlinearities in
        (root)."``."""
        by_issue: dict[str, list[NonlinearityFinding]] = {}
        for finding in self.issues():
            by_issue.setdefault(finding.captum.issue, []).append(finding)
        clauses = []
        for issue, found in by_issue.items():
            n = len(found)
            clauses.append(
                _ISSUES[issue][2].format(
                    n=n,
                    ies=_plural(n, "ies", "y"),
                    s=_plural(n, "s"),
                    es=_plural(n, "es"),
                    where=group_paths(f.location for f in found),
                )
            )
        if not clauses:
            n = len(self.applications)
            return f"Captum's DeepLift reaches all {n} nonlinearit{_plural(n, 'ies', 'y')}."
        return "Captum's DeepLift " + ", and ".join(clauses) + "."

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``model``, ``summary``, ``applications``."""
        return {
            "model": self.model,
            "summary": self.summary(),
            "applications": [asdict(f) for f in self.applications],
        }

    def _sections(self) -> list[Section]:
        n = len(self.applications)
        title = Title(
            f"attrkit.audit_deeplift of {self.model}: {n} application{_plural(n, 's')} of "
            "ops with a DeepLift rule",
            markdown=f"attrkit.audit_deeplift of `{self.model}`",
        )
        sections: list[Section] = [[title, self.summary()]]
        if self.applications:
            rows = [
                [str(f.index), f.location, f.op, f.spelling, str(f.applications), f.captum.status]
                for f in self.applications
            ]
            headers = ("#", "location", "op", "spelling", "applications", "Captum")
            sections.append([Heading("Applications"), Table(headers, rows)])
        reasons: dict[tuple[str, str], list[int]] = {}
        for finding in self.issues():
            reasons.setdefault((finding.captum.status, finding.captum.reason), []).append(
                finding.index
            )
        if reasons:
            notes = [
                f"Captum {status} (rows {', '.join(map(str, rows))}): {reason}"
                for (status, reason), rows in reasons.items()
            ]
            sections.append([Notes(notes)])
        return sections


@dataclass
class _Application:
    op: Op
    func: Callable[..., Any]
    module: nn.Module | None
    input: Tensor
    version: int  # the input's version when the op read it
    step: int
    outputs: tuple[Tensor, ...] = ()


class _Trace(TorchFunctionMode):
    """Record every application of an op DeepLift rules whose input requires grad, and
    which operations read which tensor (at which version) on a gradient path."""

    def __init__(self, ops: dict[Callable[..., Any], Op]) -> None:
        super().__init__()
        self.ops = ops
        self.applications: list[_Application] = []
        self.reads: dict[int, list[tuple[int, int]]] = {}  # id -> [(version, step)]
        self._alive: list[Tensor] = []  # (so that no id is recycled during the pass)
        self._step = 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        step = self._step
        self._step += 1
        op = self.ops.get(func)
        application = None
        if op is not None:
            x = op.read(func, args, kwargs).input
            if x.requires_grad:
                application = _Application(op, func, calling_module(), x, x._version, step)
        read = [(t, t._version) for t in tree_leaves((args, kwargs)) if isinstance(t, Tensor)]
        output = func(*args, **kwargs)
        produced = tuple(t for t in tree_leaves(output) if isinstance(t, Tensor))
        # An operation that hands back one of its inputs (eval-mode dropout, a flatten
        # with nothing to do) is no other use; one that records no gradient neither.
        passed_through = any(t is r for t in produced for r, _ in read)
        if gradient_nodes(produced) and not passed_through:
            for tensor, version in read:
                self.reads.setdefault(id(tensor), []).append((version, step))
                self._alive.append(tensor)
        if application is not None:
            application.outputs = produced
            self.applications.append(application)
        return output

    def other_uses(self, application: _Application) -> int:
        """How many other operations read the application's input as it read it."""
        return sum(
            version == application.version and step != application.step
            for version, step in self.reads.get(id(application.input), [])
        )


def _module_form(application: _Application) -> bool:
    """Whether the application is the running module's own op (``nn.ReLU`` applying
    ``relu``, not a module calling ``F.relu`` in its ``forward``)."""
    module = application.module
    if module is None:
        return False
    if application.op in (MAX_POOL, ADAPTIVE_MAX_POOL):
        return isinstance(
            module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
        )
    if application.op is SOFTMAX:
        return isinstance(module, (nn.Softmax, nn.Softmax2d))
    return type(module).__module__ == nn.modules.activation.__name__


def _captum_rules() -> tuple[type[nn.Module], ...]:
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    return tuple(SUPPORTED_NON_LINEAR)


def _overlapping(module: nn.Module) -> bool:
    def pair(value: Any) -> tuple[int, ...]:
        return tuple(value) if isinstance(value, (tuple, list)) else (value,)

    kernel = pair(getattr(module, "kernel_size", 1))
    stride = pair(getattr(module, "stride", None) or kernel)
    return any(s < k for s, k in zip(stride * len(kernel), kernel, strict=False))


def _captum_verdict(
    application: _Application,
    module_form: bool,
    runs: int,
    in_model: bool,
    hooked_outputs: set[int],
    uses: int,
    batch: int,
) -> LibraryVerdict:
    module = application.module
    if not module_form:
        return _verdict("functional")
    if not in_model:
        return _verdict("created_in_forward")
    if type(module) not in _captum_rules():
        return _verdict("no_rule")
    if runs > 1:
        return _verdict("reused")
    if id(application.input) in hooked_outputs:
        return _verdict("after_hooked_module")
    if uses:
        return _verdict("input_used_elsewhere")
    if application.op is MAX_POOL and _overlapping(module):  # type: ignore[arg-type]
        return _verdict("overlapping_windows")
    if application.op is SOFTMAX and batch > 1:
        return _verdict("batch_softmax")
    return OK


@fill_doc
def audit_deeplift(
    model: nn.Module, inputs: Any, additional_forward_args: Any = None
) -> DeepLiftAuditReport:
    """List every application of an op DeepLift has a rule for (every elementwise
    nonlinearity, max-pooling, softmax) and whether Captum's DeepLift hooks reach it.
    attrkit gives every one of them its rule.

    One forward pass runs, watched on the calling thread only; nothing is left on the
    model. An application whose input does not require grad (a constant branch) is not
    listed.

    Args:
        model (torch.nn.Module): The model.
        %(inputs)s
        %(additional_forward_args)s

    Returns:
        DeepLiftAuditReport: one :class:`NonlinearityFinding` per application;
        ``str(report)`` is a table, ``report.summary()`` one line.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``inputs`` are not tensors.

    Example:
        >>> import torch
        >>> from attrkit.validation import audit_deeplift
        >>> class Net(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1, self.act, self.fc2 = torch.nn.Linear(3, 4), torch.nn.Tanh(), \\
        ...             torch.nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         return self.fc2(torch.relu(self.act(self.fc1(x))))
        >>> report = audit_deeplift(Net(), torch.randn(2, 3))
        >>> [(f.spelling, f.captum.status) for f in report.applications]
        [('nn.Tanh', 'ok'), ('torch.relu', 'missed')]
        >>> report.summary()
        "Captum's DeepLift misses 1 functional nonlinearity in (root)."
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    check_overridable(model)
    original = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
    if isinstance(original, nn.Module):
        model = original
    call = prepare_call(inputs, None, additional_forward_args)
    paths = {id(m): name for name, m in reversed(list(model.named_modules(remove_duplicate=False)))}
    ops = (*elementwise_ops(), MAX_POOL, ADAPTIVE_MAX_POOL, SOFTMAX)
    trace = _Trace({func: op for op in ops for func in op.spellings})
    with _CallScope(), trace:
        model(*call.model_inputs(), *call.additional_forward_args)
    applications = trace.applications
    forms = [_module_form(a) for a in applications]
    runs = Counter(id(a.module) for a, form in zip(applications, forms, strict=True) if form)
    hooked_outputs: set[int] = set()
    findings = []
    for index, (application, form) in enumerate(zip(applications, forms, strict=True)):
        module = application.module
        count = runs[id(module)] if form else 1
        verdict = _captum_verdict(
            application,
            form,
            count,
            id(module) in paths,
            hooked_outputs,
            trace.other_uses(application),
            call.batch_size,
        )
        if form and id(module) in paths and type(module) in _captum_rules():
            hooked_outputs.update(id(t) for t in application.outputs)
        findings.append(
            NonlinearityFinding(
                index=index,
                location=(paths.get(id(module), ROOT) if module is not None else ROOT) or ROOT,
                op=application.op.title,
                spelling=f"nn.{type(module).__name__}" if form else spelling(application.func),
                applications=count,
                captum=verdict,
            )
        )
    return DeepLiftAuditReport(type(model).__name__, tuple(findings))
