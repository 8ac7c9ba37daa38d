"""Which ReLUs of a model Captum's and zennit's module hooks override correctly.

:func:`audit` runs one forward pass and lists every ReLU application (where it happens, in
which spelling, whether in place, whether its module is reused, whether its input is also
used elsewhere or does not require grad) with a verdict for each library, plus the other
activations that no ReLU-override method touches.

The verdicts follow how the two libraries work (captum 0.9, zennit 0.5):

* **Captum** registers, on every ``nn.ReLU`` module reachable with ``model.apply``, a
  forward pre-hook that puts a tensor hook on the module's *input* and a forward hook that
  stores the *output* gradient in one slot per module. So it misses functional ReLUs and
  modules created inside ``forward``; it replaces the *total* gradient of the input
  (wrong when the input also feeds another operation); its Deconvolution reads the slot,
  which holds another application's gradient when the same module ran again between the
  creation of this application's input and this application (parallel branches), or
  when the module's output is itself the input of another hooked ``nn.ReLU`` (the two
  modules' hooks on that one tensor run in registration order, so the first stores the
  second's input gradient before the second rewrites it); and the tensor hook raises on
  inputs that do not require grad. An in-place functional ReLU on
  the input raises too (Captum passes its leaf tensors to the model unchanged).
* **zennit** (``DeconvNet`` / ``GuidedBackprop`` composites) hooks the same modules
  (``isinstance(module, torch.nn.ReLU)`` over ``model.named_modules()``), but wraps the
  module's input in an identity function and rewrites only that function's gradient, and
  stores the output gradient right before it is used: reused modules, inputs used
  elsewhere and inputs without grad are handled as defined. It misses functional ReLUs
  and modules created inside ``forward``; its canonizers restructure some torchvision
  blocks but never turn a functional ReLU into a module. An in-place functional ReLU on
  the input raises (its attributors make the input a leaf view that requires grad).
* Neither reaches the ReLUs that torch applies inside its own functions (``nn.RNN``'s
  ``torch.rnn_relu``, ``F.lp_pool2d``), nor ReLU modules applied under ``torch.vmap``
  (Captum's tensor hook raises on the batched input; zennit's rule does not apply).

ReLU look-alikes (``clamp(min=0)``, ``x * (x > 0)``, ...) are not ReLUs for any library:
:mod:`~attrkit.validation.lookalikes`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from torch import nn

from attrkit.core.attribution import _CallScope
from attrkit.core.call import prepare_call
from attrkit.core.docs import fill_doc
from attrkit.core.registry import method_info
from attrkit.engine.reach import check_overridable
from attrkit.validation.lookalikes import LOOKALIKE_NOTE
from attrkit.validation.rendering import Heading, Notes, Report, Section, Table, Title
from attrkit.validation.trace import ActivationEvent, ForwardTrace, ReluEvent

__all__ = [
    "LIBRARIES",
    "ActivationFinding",
    "AuditReport",
    "LibraryVerdict",
    "ReluFinding",
    "audit",
    "group_paths",
    "relu_rule",
]

Status = Literal["ok", "missed", "wrong", "crash"]

#: The libraries whose ReLU handling the audit judges, with their display names.
LIBRARIES = {"captum": "Captum", "zennit": "zennit"}
ROOT = "(root)"
DECONVOLUTION_ONLY = ("deconvolution",)


@dataclass(frozen=True)
class LibraryVerdict:
    """How one library handles one ReLU application.

    Attributes:
        status: ``"ok"`` (the method's rule is applied as defined), ``"missed"`` (the ReLU
            keeps its plain gradient), ``"wrong"`` (hooked, but the gradient differs from
            the definition) or ``"crash"`` (the library raises).
        issue: A short key for the cause (``"functional"``, ``"created_in_forward"``,
            ``"input_used_elsewhere"``, ``"reused_interleaved"``, ``"feeds_relu_module"``,
            ``"input_without_grad"``, ``"inplace_on_input"``); empty when ``status`` is
            ``"ok"``.
        reason: One sentence on the cause.
        only_for: The ReLU rules (``"deconvolution"``, ``"guided_backprop"``) the verdict
            applies to; empty: every rule.
    """

    status: Status
    issue: str = ""
    reason: str = ""
    only_for: tuple[str, ...] = ()

    def applies_to(self, rule: str | None) -> bool:
        """Whether this verdict holds for methods with ReLU rule ``rule`` (``None``: any)."""
        return rule is None or not self.only_for or rule in self.only_for


OK = LibraryVerdict("ok")

# issue key -> (status, phrase for the summary: count, plural-s, where)
_PHRASES: dict[str, tuple[Status, str]] = {
    "functional": ("missed", "misses {n} functional ReLU{s} in {where}"),
    "created_in_forward": (
        "missed",
        "misses {n} nn.ReLU module{s} created inside forward in {where}",
    ),
    "input_used_elsewhere": (
        "wrong",
        "gets {n} ReLU{s} wrong whose input is also used elsewhere, in {where}",
    ),
    "reused_interleaved": (
        "wrong",
        "mixes up the gradients of {n} reused nn.ReLU application{s} in {where} "
        "(Deconvolution rule)",
    ),
    "feeds_relu_module": (
        "wrong",
        "gets {n} nn.ReLU module{s} wrong whose output goes straight into another nn.ReLU "
        "module, in {where} (Deconvolution rule)",
    ),
    "input_without_grad": (
        "crash",
        "crashes on {n} nn.ReLU module{s} whose input does not require grad, in {where}",
    ),
    "inplace_on_input": (
        "crash",
        "crashes on {n} in-place functional ReLU{s} applied to the model's input, in {where}",
    ),
    "inside_function": (
        "missed",
        "misses {n} ReLU{s} that torch applies inside a function (nn.RNN, F.lp_pool2d, ...), "
        "in {where}",
    ),
    "under_transform_crash": (
        "crash",
        "crashes on {n} nn.ReLU module{s} applied under torch.vmap, in {where}",
    ),
    "under_transform": ("missed", "misses {n} ReLU{s} applied under torch.vmap, in {where}"),
}

_REASONS = {
    "functional": "a functional ReLU call: only nn.ReLU modules are hooked, so it keeps its "
    "plain gradient",
    "created_in_forward": "an nn.ReLU created inside forward is not a submodule, so it is "
    "never hooked and keeps its plain gradient",
    "input_used_elsewhere": "its input also feeds {n} other operation(s); Captum's hook "
    "replaces the input's total gradient and loses the other paths' gradients",
    "reused_interleaved": "the same module ran again after this application's input was "
    "computed; Captum's Deconvolution then reads the other application's output gradient",
    "feeds_relu_module": "its output is the input of another nn.ReLU module; Captum's "
    "hooks on that tensor run in the order they were registered, so this module stores "
    "the other module's plain input gradient before that module rewrites it",
    "input_without_grad": "Captum puts a tensor hook on the module's input, which raises "
    "when the input does not require grad",
    "inplace_on_input_captum": "Captum hands its leaf input tensors to the model, and an "
    "in-place ReLU on a leaf that requires grad raises",
    "inplace_on_input_zennit": "zennit's attributors make the input a leaf view that "
    "requires grad, and an in-place ReLU on it raises",
    "inside_function": "a ReLU that torch applies inside {inside}, where no module hook "
    "reaches, so it keeps its plain gradient ({attrkit})",
    "under_transform_crash": "under torch.vmap (a functorch transform) the module's input "
    "is a batched tensor that says it does not require grad, and Captum's tensor hook on "
    "it raises",
    "under_transform": "under torch.vmap (a functorch transform) the hooks see batched "
    "tensors, and the ReLU keeps its plain gradient",
}

#: What attrkit does with a ReLU inside a torch function, by whether it reaches it.
_ATTRKIT_INSIDE = {
    True: "attrkit reaches it by running the function's decomposition",
    False: "attrkit refuses the model there: torch runs it in a fused kernel",
}


def _verdict(issue: str, reason_key: str | None = None, **fields: Any) -> LibraryVerdict:
    status = _PHRASES[issue][0]
    reason = _REASONS[reason_key or issue].format(**fields)
    only_for = DECONVOLUTION_ONLY if issue in ("reused_interleaved", "feeds_relu_module") else ()
    return LibraryVerdict(status, issue, reason, only_for)


@dataclass(frozen=True)
class ReluFinding:
    """One ReLU application of the audited forward pass.

    Attributes:
        index: Its position among the ReLU applications.
        location: The module path of the ``nn.ReLU`` module, or for a functional call (and
            a module created inside ``forward``) the path of the module whose ``forward``
            made the call; ``"(root)"`` is the model itself.
        form: ``"module"`` (an ``nn.ReLU`` submodule), ``"created_in_forward"`` (an
            ``nn.ReLU`` that is not a submodule) or ``"functional"``.
        spelling: ``nn.ReLU``, ``F.relu``, ``torch.relu_``, ``Tensor.relu``, ...
        file: The file of the call (the line that calls the module or the function).
        line: Its line number.
        inplace: Whether the ReLU runs in place.
        applications: How many times its module was applied in this forward pass (1 for
            a functional call); more than 1 means the module is reused.
        call_sites: How many distinct lines applied its module.
        input_used_elsewhere: How many other operations read the ReLU's input and pass a
            gradient back to it (e.g. ``relu(z) + z``: 1).
        input_requires_grad: Whether the ReLU's input requires grad.
        input_is_model_input: Whether the ReLU is applied to a tensor the model received
            as an input.
        on_gradient_path: Whether a gradient flows from the model's output back through
            the ReLU (a ReLU whose result is unused, or whose input does not require grad,
            makes no difference to any attribution).
        captum: Captum's verdict.
        zennit: zennit's verdict.
        inside: The torch function that applies it inside (``torch.rnn_relu`` for
            ``nn.RNN``, ``F.lp_pool2d``), or ``""``; such a finding stands for every ReLU
            that one call of the function applies (``applications`` of them).
        under_transform: Whether it is applied under ``torch.vmap`` (a functorch
            transform).
    """

    index: int
    location: str
    form: Literal["module", "created_in_forward", "functional"]
    spelling: str
    file: str
    line: int
    inplace: bool
    applications: int
    call_sites: int
    input_used_elsewhere: int
    input_requires_grad: bool
    input_is_model_input: bool
    on_gradient_path: bool
    captum: LibraryVerdict
    zennit: LibraryVerdict
    inside: str = ""
    under_transform: bool = False

    @property
    def reused(self) -> bool:
        """Whether its ``nn.ReLU`` module is applied more than once."""
        return self.applications > 1

    def verdict(self, library: str) -> LibraryVerdict:
        """The verdict of ``library`` (``"captum"`` or ``"zennit"``)."""
        if library not in LIBRARIES:
            raise ValueError(f"`library` must be one of {', '.join(LIBRARIES)}; got {library!r}")
        verdict: LibraryVerdict = getattr(self, library)
        return verdict


@dataclass(frozen=True)
class ActivationFinding:
    """One application of an activation that is not ReLU (GELU, SiLU, Tanh, ...): no
    ReLU-override method changes its gradient, in any library.

    Attributes:
        index: Its position among these activations.
        location: Module path of the activation module, or of the module whose
            ``forward`` made the functional call.
        name: ``nn.GELU``, ``F.silu``, ``torch.tanh``, ...
        file: File of the call.
        line: Line of the call.
    """

    index: int
    location: str
    name: str
    file: str
    line: int


def group_paths(paths: Iterable[str], limit: int = 4) -> str:
    """Module paths as a short list with wildcards: ``features.denseblock1.denselayer2``
    and ``features.denseblock3.denselayer1`` become ``features.denseblock*``.

    A path is cut at its first numbered component (``denseblock1``, ``0``), whose number
    becomes ``*``; paths cut to the same pattern are shown once, and a pattern that stands
    for a single path shows the path itself.

    Example:
        >>> group_paths(["features.denseblock1.denselayer1", "features.denseblock2.denselayer4",
        ...              "(root)", "classifier"])
        '(root), classifier, features.denseblock*'
    """
    members: dict[str, set[str]] = {}
    for path in paths:
        parts = path.split(".")
        key = path
        for position, part in enumerate(parts):
            match = re.fullmatch(r"(.*?)\d+", part)
            if match is not None:
                key = ".".join([*parts[:position], match.group(1) + "*"])
                break
        members.setdefault(key, set()).add(path)
    shown = sorted(next(iter(group)) if len(group) == 1 else key for key, group in members.items())
    if len(shown) > limit:
        shown = [*shown[:limit], f"{len(shown) - limit} more"]
    return ", ".join(shown)


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


@dataclass(frozen=True)
class AuditReport(Report):
    """The result of :func:`audit`.

    Attributes:
        model: The model's class name.
        relus: Every ReLU application, in forward order.
        activations: Every other activation applied, in forward order.
        lookalikes: Every ReLU look-alike (``clamp(min=0)``, ``torch.where(x > 0, x, 0)``,
            ``maximum(x, 0)``, ``x * (x > 0)``, ``threshold(x, 0, 0)``,
            ``hardtanh(x, 0, inf)``), in forward order, its expression as ``name``: not a
            ReLU, so the plain gradient in every library (:mod:`~attrkit.validation.lookalikes`).
    """

    model: str
    relus: tuple[ReluFinding, ...]
    activations: tuple[ActivationFinding, ...]
    lookalikes: tuple[ActivationFinding, ...] = ()

    def issues(self, library: str, rule: str | None = None) -> list[ReluFinding]:
        """The ReLUs that ``library`` does not override as defined, for methods with ReLU
        rule ``rule`` (``"deconvolution"`` or ``"guided_backprop"``; ``None``: either)."""
        return [
            f
            for f in self.relus
            if f.verdict(library).status != "ok" and f.verdict(library).applies_to(rule)
        ]

    def follows_definition(self, library: str, rule: str | None = None) -> bool:
        """Whether ``library`` overrides every ReLU as defined (for ``rule``)."""
        return not self.issues(library, rule)

    def library_summary(self, library: str, rule: str | None = None) -> str:
        """One clause on ``library``, e.g. ``"Captum misses 2 functional ReLUs in layers*"``."""
        name = LIBRARIES[library]
        issues = self.issues(library, rule)
        if not issues:
            count = len(self.relus)
            return f"{name} overrides " + (
                "the 1 ReLU as defined" if count == 1 else f"all {count} ReLUs as defined"
            )
        by_issue: dict[str, list[ReluFinding]] = {}
        for finding in issues:
            by_issue.setdefault(finding.verdict(library).issue, []).append(finding)
        clauses = [
            _PHRASES[issue][1].format(
                n=len(found), s=_plural(len(found)), where=group_paths(f.location for f in found)
            )
            for issue, found in by_issue.items()
        ]
        return f"{name} " + ", and ".join(clauses)

    def summary(self, rule: str | None = None, libraries: Iterable[str] = tuple(LIBRARIES)) -> str:
        """One line on how ``libraries`` handle this model's ReLUs (for ``rule``), e.g.
        ``"Captum misses 58 functional ReLUs in features.denseblock*; zennit ..."``."""
        if not self.relus:
            text = "No ReLU: every ReLU-override method equals the plain gradient here."
        else:
            text = "; ".join(self.library_summary(lib, rule) for lib in libraries) + "."
        if self.activations:
            names = sorted(Counter(a.name for a in self.activations))
            text += (
                f" {len(self.activations)} other activation{_plural(len(self.activations))} "
                f"({', '.join(names)}) keep{'s' if len(self.activations) == 1 else ''} "
                "their plain gradient under every ReLU-override method."
            )
        if self.lookalikes:
            names = sorted(Counter(a.name for a in self.lookalikes))
            text += (
                f" {len(self.lookalikes)} ReLU look-alike{_plural(len(self.lookalikes))} "
                f"({', '.join(names)}): {LOOKALIKE_NOTE}."
            )
        return text

    # ------------------------------------------------------------------ exports
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``model``, ``summary``, ``relus``, ``activations``,
        ``counts`` (per library, how many ReLUs have each status)."""
        return {
            "model": self.model,
            "summary": self.summary(),
            "relus": [asdict(f, dict_factory=_json_dict) for f in self.relus],
            "activations": [asdict(a, dict_factory=_json_dict) for a in self.activations],
            "lookalikes": [asdict(a, dict_factory=_json_dict) for a in self.lookalikes],
            "counts": {
                lib: {
                    status: sum(f.verdict(lib).status == status for f in self.relus)
                    for status in ("ok", "missed", "wrong", "crash")
                }
                for lib in LIBRARIES
            },
        }

    def _sections(self) -> list[Section]:
        title = Title(
            f"attrkit.audit of {self.model}: {len(self.relus)} ReLU application"
            f"{_plural(len(self.relus))}, {len(self.activations)} other activation"
            f"{_plural(len(self.activations))}",
            markdown=f"attrkit.audit of `{self.model}`",
        )
        sections: list[Section] = [[title, self.summary()]]
        if self.relus:
            sections.append([Heading("ReLU applications"), self._relu_table()])
        reasons = self._reasons()
        if reasons:
            sections.append([Notes(reasons)])
        if self.activations:
            heading = "Activations no ReLU-override method touches"
            sections.append([Heading(heading, text=f"{heading}:"), self._activation_table()])
        if self.lookalikes:
            heading = f"ReLU look-alikes ({LOOKALIKE_NOTE})"
            table = self._activation_table(self.lookalikes, "expression")
            sections.append([Heading(heading, text=f"{heading}:"), table])
        return sections

    def _relu_table(self) -> Table:
        def verdict(v: LibraryVerdict) -> str:
            only = f" ({'/'.join(v.only_for)})" if v.only_for else ""
            return v.status + only

        headers = (
            "#",
            "location",
            "spelling",
            "call site",
            "in-place",
            "applications",
            "input used elsewhere",
            "input requires grad",
            "on gradient path",
            "Captum",
            "zennit",
        )
        rows = [
            [
                str(f.index),
                f.location,
                f.spelling + (" (created in forward)" if f.form == "created_in_forward" else ""),
                f"{_short_path(f.file)}:{f.line}",
                "yes" if f.inplace else "no",
                str(f.applications) if f.form != "functional" or f.inside else "-",
                str(f.input_used_elsewhere),
                "yes" if f.input_requires_grad else "no",
                "yes" if f.on_gradient_path else "no",
                verdict(f.captum),
                verdict(f.zennit),
            ]
            for f in self.relus
        ]
        return Table(headers, rows)

    def _activation_table(
        self, findings: tuple[ActivationFinding, ...] | None = None, what: str = "activation"
    ) -> Table:
        rows = [
            [str(a.index), a.location, a.name, f"{_short_path(a.file)}:{a.line}"]
            for a in (self.activations if findings is None else findings)
        ]
        return Table(("#", "location", what, "call site"), rows)

    def _reasons(self) -> list[str]:
        """``Captum missed (rows 3, 5): <reason>`` for each distinct non-ok verdict."""
        rows: dict[tuple[str, str, str], list[int]] = {}
        for finding in self.relus:
            for lib in LIBRARIES:
                v = finding.verdict(lib)
                if v.status != "ok":
                    rows.setdefault((LIBRARIES[lib], v.status, v.reason), []).append(finding.index)
        return [
            f"{name} {status} (row{_plural(len(found))} {', '.join(map(str, found))}): {reason}"
            for (name, status, reason), found in rows.items()
        ]


def _json_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """``dataclasses.asdict`` factory that stores tuples as lists, as JSON does."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in items}


def _short_path(path: str) -> str:
    """``path`` relative to the current directory when it lies inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


# ------------------------------------------------------------------------ verdicts
def _inplace_on_input(event: ReluEvent) -> bool:
    """An in-place functional ReLU on a model input that requires grad."""
    return (
        event.module is None
        and event.inplace
        and event.input_is_model_input
        and event.input_requires_grad
    )


def _captum_verdict(
    event: ReluEvent,
    on_path: bool,
    created: bool,
    other_uses: int,
    interleaved: bool,
    feeds_relu_module: bool,
) -> LibraryVerdict:
    # The crashes happen in the forward pass, whether or not a gradient reaches the ReLU.
    if _inplace_on_input(event):
        return _verdict("inplace_on_input", "inplace_on_input_captum")
    if event.inside:
        return _inside_verdict(event) if on_path else OK
    if event.transformed and event.module is not None and not created:
        return _verdict("under_transform_crash")
    if event.module is not None and not created and not event.input_requires_grad:
        return _verdict("input_without_grad")
    if not on_path:
        return OK
    if event.module is None:
        return _verdict("functional")
    if created:
        return _verdict("created_in_forward")
    if other_uses:
        return _verdict("input_used_elsewhere", n=other_uses)
    if interleaved:
        return _verdict("reused_interleaved")
    if feeds_relu_module:
        return _verdict("feeds_relu_module")
    return OK


def _inside_verdict(event: ReluEvent) -> LibraryVerdict:
    return _verdict(
        "inside_function", inside=event.inside, attrkit=_ATTRKIT_INSIDE[event.reachable]
    )


def _zennit_verdict(event: ReluEvent, on_path: bool, created: bool) -> LibraryVerdict:
    if _inplace_on_input(event):
        return _verdict("inplace_on_input", "inplace_on_input_zennit")
    if not on_path:
        return OK
    if event.inside:
        return _inside_verdict(event)
    if event.transformed and event.module is not None and not created:
        return _verdict("under_transform")
    if event.module is None:
        return _verdict("functional")
    return _verdict("created_in_forward") if created else OK


def _path(paths: dict[int, str], module: nn.Module | None) -> str:
    """The module's path in the model (``ROOT`` for the model itself or no module)."""
    if module is None:
        return ROOT
    return paths.get(id(module), f"<{type(module).__name__} outside the model>") or ROOT


def _findings(
    relus: list[ReluEvent], paths: dict[int, str], live: set[Any]
) -> tuple[ReluFinding, ...]:
    applications: Counter[int] = Counter(id(e.module) for e in relus if e.module is not None)
    sites: dict[int, set[tuple[str, int]]] = {}
    for event in relus:
        if event.module is not None:
            sites.setdefault(id(event.module), set()).add((event.file, event.line))
    previous: dict[int, int] = {}  # module id -> step of its latest live application so far
    # The tensors (at a version) that a hooked nn.ReLU module receives as its input.
    hooked_inputs = {
        (id(e.input_record), e.input_version)
        for e in relus
        if e.module is not None and id(e.module) in paths
    }
    findings = []
    for index, event in enumerate(relus):
        on_path = event.on_gradient_path(live)
        other_uses = event.other_uses(live)
        created = event.module is not None and id(event.module) not in paths
        interleaved = False
        if event.module is not None and on_path:
            last = previous.get(id(event.module))
            # A model input is a leaf for Captum, and a leaf's hook runs as soon as its
            # gradient is complete: it cannot be interleaved.
            interleaved = (
                last is not None
                and event.input_written_at < last
                and not event.input_is_model_input
            )
            previous[id(event.module)] = event.step
        form: Literal["module", "created_in_forward", "functional"] = (
            "functional" if event.module is None else "created_in_forward" if created else "module"
        )
        module = event.module
        findings.append(
            ReluFinding(
                index=index,
                location=_path(paths, event.enclosing if form != "module" else module),
                form=form,
                spelling=event.spelling,
                file=event.file,
                line=event.line,
                inplace=event.inplace,
                applications=applications[id(module)]
                if module is not None
                else event.inner_applications,
                call_sites=len(sites[id(module)]) if module is not None else 1,
                input_used_elsewhere=other_uses,
                input_requires_grad=event.input_requires_grad,
                input_is_model_input=event.input_is_model_input,
                on_gradient_path=on_path,
                captum=_captum_verdict(
                    event,
                    on_path,
                    created,
                    other_uses,
                    interleaved,
                    feeds_relu_module=form == "module"
                    and (id(event.output_record), event.output_version) in hooked_inputs,
                ),
                zennit=_zennit_verdict(event, on_path, created),
                inside=event.inside,
                under_transform=event.transformed,
            )
        )
    return tuple(findings)


def _activation_findings(
    events: list[ActivationEvent], paths: dict[int, str]
) -> tuple[ActivationFinding, ...]:
    return tuple(
        ActivationFinding(
            i,
            _path(paths, e.module if e.module is not None else e.enclosing),
            e.name,
            e.file,
            e.line,
        )
        for i, e in enumerate(events)
    )


@fill_doc
def audit(model: nn.Module, inputs: Any, additional_forward_args: Any = None) -> AuditReport:
    """List every ReLU the model applies on ``inputs`` and whether Captum's and zennit's
    module hooks override it as defined.

    One forward pass runs (in the model's current train/eval mode, with autograd on and
    the random number generators restored afterwards), watched on the calling thread only;
    nothing is left on the model. A ``torch.compile``'d model is audited through the
    module it wraps (the same forward, run eagerly). The ReLUs that torch applies inside
    its own functions (``nn.RNN(nonlinearity="relu")``, ``nn.LPPool2d``), which no
    module hook reaches, are listed one row per call of the function. The report also
    lists the activations that are not ReLU (GELU, SiLU, Tanh, ...), and the ReLU
    look-alikes (``clamp(min=0)``, ``torch.where(x > 0, x, 0)``, ...), where every
    ReLU-override method, in every library, equals the plain gradient.

    Args:
        model (torch.nn.Module): The model.
        %(inputs)s
        %(additional_forward_args)s

    Returns:
        AuditReport: one :class:`ReluFinding` per ReLU application and one
        :class:`ActivationFinding` per other activation; ``str(report)`` is a table,
        ``report.summary()`` one line.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``inputs`` are not tensors.

    Example:
        >>> import torch, attrkit
        >>> class Net(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1, self.fc2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
        ...         self.relu = torch.nn.ReLU()
        ...     def forward(self, x):
        ...         return self.fc2(torch.relu(self.relu(self.fc1(x))))
        >>> report = attrkit.audit(Net(), torch.randn(2, 3))
        >>> [(f.location, f.spelling, f.captum.status) for f in report.relus]
        [('relu', 'nn.ReLU', 'ok'), ('(root)', 'torch.relu', 'missed')]
        >>> report.summary()
        'Captum misses 1 functional ReLU in (root); zennit misses 1 functional ReLU in (root).'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    check_overridable(model)
    original = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
    if isinstance(original, nn.Module):
        model = original
    call = prepare_call(inputs, None, additional_forward_args)
    paths = {id(m): name for name, m in reversed(list(model.named_modules(remove_duplicate=False)))}
    with _CallScope():
        model_inputs = call.model_inputs()
        trace = ForwardTrace(model_inputs)
        with trace:
            output = model(*model_inputs, *call.additional_forward_args)
        live = trace.live_nodes(output)
    return AuditReport(
        model=type(model).__name__,
        relus=_findings(trace.relus, paths, live),
        activations=_activation_findings(trace.activations, paths),
        lookalikes=_activation_findings(trace.lookalikes, paths),
    )


def relu_rule(method: str) -> str | None:
    """The name of the ReLU rule of the registered method ``method`` (or of the method
    ``noise_tunnel`` wraps: pass its ``base_method``): ``"deconvolution"``,
    ``"guided_backprop"``, ... or ``None`` (the method keeps ReLU's gradient).

    Example:
        >>> relu_rule("neuron_deconvolution"), relu_rule("guided_grad_cam"), relu_rule("saliency")
        ('deconvolution', 'guided_backprop', None)
    """
    rule = method_info(method).rule_for("relu")
    return None if rule is None else str(rule.name)
