"""The built-in demo: every registered method on held-out digits, and attrkit next to Captum.

:func:`run_demo` loads the built-in :class:`DigitsCNN` (trained on scikit-learn's 8x8
digits, shipped in the package), and runs every method in :func:`attrkit.available_methods`
on a few held-out digits through :func:`attrkit.compare`, which attributes them with attrkit
and with Captum and reports how well the two agree.
:func:`demo_figure` draws the digits x methods grid and :func:`format_agreement` the table;
``attrkit demo`` prints and saves both.

The model's convolutions use ``nn.ReLU`` modules and its hidden linear layer a functional
``F.relu``. Captum's module hooks never see the functional one, so for the methods that
change ReLU's backward rule (Deconvolution, Guided Backpropagation and the methods built on
them) Captum departs from the definition there and the two libraries differ; the other
methods agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from attrkit.core.registry import (
    available_methods,
    built_from_model,
    method_info,
    takes_argument,
    takes_inputs,
)
from attrkit.core.targets import predicted_target
from attrkit.demo.model import DigitsCNN, load_demo_model, load_heldout_digits
from attrkit.methods.perturbation import patch_arguments
from attrkit.validation import CompareReport, compare
from attrkit.validation.rendering import text_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DemoResult",
    "demo_arguments",
    "demo_figure",
    "demo_methods",
    "figure_methods",
    "format_agreement",
    "run_demo",
]

#: Held-out digits that form the baseline distribution of DeepLiftShap and GradientShap.
BACKGROUND = 8


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` computed.

    Attributes:
        images: ``N x 1 x 8 x 8`` digits.
        labels: True classes.
        predicted: The model's predictions (the attributed target).
        attributions: Method name -> attrkit's attributions of ``images``.
        reports: Method name -> the :class:`attrkit.CompareReport` of attrkit
            and Captum.
    """

    images: Tensor
    labels: Tensor
    predicted: Tensor
    attributions: dict[str, Tensor]
    reports: dict[str, CompareReport]


def demo_arguments(
    name: str, model: DigitsCNN, predicted: Tensor, background: Tensor | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Constructor and ``attribute`` arguments for method ``name`` on the demo model.

    Layer methods (Grad-CAM, the layer perturbation methods) look at the last
    convolution's activations (``relu2``: the feature maps Grad-CAM is defined on; the
    perturbation methods ablate or permute its channels); the other layer methods (Layer
    LRP, Layer DeepLift, layer conductance, ...), whose attributions have the layer's
    shape, at the first convolution's input (the image, seen from that layer: comparable
    with Captum, resamplable for evaluation); neuron methods attribute the largest output
    neuron of every row they run (``fc2``: on a digit, its predicted class; the methods
    that run several rows per digit, such as path methods' steps or GradientShap's
    samples, take each row's largest); every other method takes the predicted class as
    ``target``. The perturbation methods work on 2 x 2 pixel patches (a 4 x 4 grid on the
    8 x 8 digits; a 2 x 2 grid for exact Shapley values, which try every ordering of the
    patches). Methods that need a baseline distribution (DeepLiftShap, GradientShap) get
    ``background``: digits not attributed (by default, a blank and a uniformly grey
    image).

    Returns:
        ``(init_kwargs, attribute_kwargs)``.
    """
    info = method_info(name)
    init_kwargs: dict[str, Any] = {}
    patches = 2 if name == "shapley_values" else 4  # exact Shapley: 4! orderings, not 16!
    attribute_kwargs: dict[str, Any] = patch_arguments(info, (1, 8, 8), patches)
    if "layer" in info.init_arguments:
        init_kwargs["layer"] = model.relu2
    if "layer_mask" in info.attribute_arguments:  # the channels of relu2
        attribute_kwargs["layer_mask"] = torch.arange(model.conv2.out_channels).reshape(1, -1, 1, 1)
    elif "attribute_to_layer_input" in info.attribute_arguments and info.family != "cam":
        init_kwargs["layer"] = model.conv1
        attribute_kwargs["attribute_to_layer_input"] = True
    if "neuron_selector" in info.attribute_arguments:
        init_kwargs["layer"] = model.fc2
        attribute_kwargs["neuron_selector"] = _largest_output
    if takes_argument(info, "target"):  # the neuron methods but conductance take none
        attribute_kwargs["target"] = predicted
    if "baselines" in info.required_arguments:
        if background is None:
            background = torch.stack([torch.zeros(1, 8, 8), torch.full((1, 8, 8), 0.5)])
        attribute_kwargs["baselines"] = background
    return init_kwargs, attribute_kwargs


def _largest_output(output: Tensor) -> Tensor:
    """Neuron selector: each row's largest output (on a digit, its predicted class)."""
    return output.max(dim=1).values


def run_demo(n_digits: int = 6, seed: int = 0, methods: Sequence[str] | None = None) -> DemoResult:
    """Attribute the first ``n_digits`` held-out digits with ``methods`` (registered names;
    default: the representative set of :func:`figure_methods`, which runs in seconds;
    ``attrkit.available_methods()`` for every method), through attrkit and Captum
    (:func:`attrkit.compare`, random methods seeded ``seed``).

    Example:
        >>> result = run_demo(n_digits=2)
        >>> sorted(result.attributions) == sorted(figure_methods(demo_methods()))
        True
        >>> result.attributions["guided_backprop"].shape
        torch.Size([2, 1, 8, 8])
    """
    names = figure_methods(demo_methods()) if methods is None else methods
    names = list(dict.fromkeys(method_info(name).name for name in names))
    unusable = sorted(set(names) - set(demo_methods()))
    if unusable:
        raise ValueError(
            f"`methods`: the demo cannot run {', '.join(unusable)} (a DataLoader, or "
            "constructor arguments of its own; see demo_methods)"
        )
    digits = load_heldout_digits()
    if not 2 <= n_digits <= len(digits.labels):  # feature permutation shuffles across digits
        raise ValueError(f"`n_digits` must be between 2 and {len(digits.labels)}; got {n_digits}")
    model = load_demo_model()
    images, labels = digits.images[:n_digits], digits.labels[:n_digits]
    background = digits.images[-BACKGROUND:]  # the end of the held-out set
    predicted = predicted_target(model, images)
    attributions: dict[str, Tensor] = {}
    reports: dict[str, CompareReport] = {}
    for name in names:
        init_kwargs, attribute_kwargs = demo_arguments(name, model, predicted, background)
        report = compare(
            name, model, images, libraries=("attrkit", "captum"), seed=seed,
            **init_kwargs, **attribute_kwargs,
        )  # fmt: skip
        ours = report.run("attrkit").attributions
        assert ours is not None  # compare raises if attrkit fails
        attributions[name], reports[name] = ours[0].detach(), report
    return DemoResult(images, labels, predicted, attributions, reports)


def format_agreement(reports: dict[str, CompareReport]) -> str:
    """attrkit-vs-Captum agreement as a table, one row per method; what explains a
    difference (from :func:`attrkit.compare`) follows as numbered notes."""
    notes: list[str] = []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f" [{notes.index(text) + 1}]"

    rows = []
    for report in reports.values():
        captum = report.run("captum")
        if captum.status != "ok":
            rows.append(
                [report.display_name, "-", "-", f"Captum {captum.status}{note(captum.reason)}"]
            )
            continue
        pair = report.pair("attrkit", "captum")
        (tensor,) = pair.tensors
        verdict = pair.verdict + (note(pair.explanation) if pair.explanation else "")
        rows.append(
            [
                report.display_name,
                f"{tensor.max_abs_difference:.2e}",
                f"{tensor.relative_l2_error:.2e}",
                verdict,
            ]
        )
    table = text_table(["method", "max |diff|", "rel. L2", "attrkit vs Captum"], rows)
    return "\n".join([table, "", *(f"[{i}] {text}" for i, text in enumerate(notes, 1))])


def demo_methods() -> list[str]:
    """The registered methods the demo can run: those that attribute ``inputs`` and need no
    constructor argument but the layer (not ``DataLoaderAttribution``, which attributes a
    DataLoader, nor ``LimeBase``, whose interpretable model and transforms are the
    caller's)."""
    return [
        name
        for name in available_methods()
        if takes_inputs(method_info(name)) and built_from_model(method_info(name))
    ]


def figure_methods(names: Sequence[str], per_family: int = 2) -> list[str]:
    """The representative methods the demo runs by default and its figure shows: of each
    family, at most ``per_family`` of those that attribute to the inputs (not to a layer
    or a neuron), the first in the order of ``names`` (or, for a family with none, its
    first method), and Grad-CAM.

    Example:
        >>> figure_methods(["layer_grad_cam", "saliency", "neuron_gradient", "lime"])
        ['layer_grad_cam', 'saliency', 'lime']
    """
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(method_info(name).family, []).append(name)
    chosen: set[str] = set()
    for members in families.values():
        input_level = [
            name
            for name in members
            if not method_info(name).layer_output
            and "neuron_selector" not in method_info(name).attribute_arguments
        ]
        chosen.update(input_level[:per_family] or members[:1])
        chosen.update(name for name in members if name == "layer_grad_cam")
    return [name for name in names if name in chosen]


def demo_figure(result: DemoResult) -> Figure:
    """The digits x methods grid of :func:`run_demo`'s attributions for a representative
    set of methods (:func:`figure_methods`; needs matplotlib).

    Each method's column shares one colour scale; green is positive, red negative.
    """
    from attrkit.viz.figures import attribution_grid

    columns = {
        method_info(name).display_name: result.attributions[name]
        for name in figure_methods(list(result.attributions))
    }
    labels = [
        f"true {int(t)}, pred {int(p)}"
        for t, p in zip(result.labels, result.predicted, strict=True)
    ]
    return attribution_grid(
        result.images,
        columns,
        row_labels=labels,
        sign="all",
        title="attrkit on the built-in digits CNN (held-out digits)",
    )
