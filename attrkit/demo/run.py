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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from attrkit.core.registry import available_methods, method_info, takes_argument
from attrkit.core.targets import predicted_target
from attrkit.demo.model import DigitsCNN, load_demo_model, load_heldout_digits
from attrkit.validation import CompareReport, compare
from attrkit.validation.rendering import text_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DemoResult", "demo_arguments", "demo_figure", "format_agreement", "run_demo"]

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

    Layer methods (Grad-CAM) look at the last convolution's activations (``relu2``, the
    feature maps Grad-CAM is defined on); the other layer methods (Layer LRP, Layer
    DeepLift, ...), whose attributions have the layer's shape, at the first convolution's
    input (the image, seen from that layer: comparable with Captum, resamplable for
    evaluation); neuron methods attribute the largest
    output neuron of every row they run (``fc2``: on a digit, its predicted class; the
    methods that run several rows per digit, such as GradientShap's samples, take each
    row's largest); every other method takes the predicted class as ``target``. Methods
    that need a baseline distribution (DeepLiftShap, GradientShap) get ``background``:
    digits not attributed (by default, a blank and a uniformly grey image).

    Returns:
        ``(init_kwargs, attribute_kwargs)``.
    """
    info = method_info(name)
    init_kwargs: dict[str, Any] = {}
    attribute_kwargs: dict[str, Any] = {}
    if "layer" in info.init_arguments:
        init_kwargs["layer"] = model.relu2
    if "attribute_to_layer_input" in info.attribute_arguments and info.family != "cam":
        init_kwargs["layer"] = model.conv1
        attribute_kwargs["attribute_to_layer_input"] = True
    if "neuron_selector" in info.attribute_arguments:
        init_kwargs["layer"] = model.fc2
        attribute_kwargs["neuron_selector"] = _largest_output
    if takes_argument(info, "target"):  # neuron methods take none
        attribute_kwargs["target"] = predicted
    if "baselines" in info.required_arguments:
        if background is None:
            background = torch.stack([torch.zeros(1, 8, 8), torch.full((1, 8, 8), 0.5)])
        attribute_kwargs["baselines"] = background
    return init_kwargs, attribute_kwargs


def _largest_output(output: Tensor) -> Tensor:
    """Neuron selector: each row's largest output (on a digit, its predicted class)."""
    return output.max(dim=1).values


def run_demo(n_digits: int = 6, seed: int = 0) -> DemoResult:
    """Attribute the first ``n_digits`` held-out digits with every registered method,
    through attrkit and Captum (:func:`attrkit.compare`, random methods seeded ``seed``).

    Example:
        >>> result = run_demo(n_digits=2)
        >>> sorted(result.attributions) == available_methods()
        True
        >>> result.attributions["guided_backprop"].shape
        torch.Size([2, 1, 8, 8])
    """
    digits = load_heldout_digits()
    if not 1 <= n_digits <= len(digits.labels):
        raise ValueError(f"`n_digits` must be between 1 and {len(digits.labels)}; got {n_digits}")
    model = load_demo_model()
    images, labels = digits.images[:n_digits], digits.labels[:n_digits]
    background = digits.images[-BACKGROUND:]  # the end of the held-out set
    predicted = predicted_target(model, images)
    attributions: dict[str, Tensor] = {}
    reports: dict[str, CompareReport] = {}
    for name in available_methods():
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


def demo_figure(result: DemoResult) -> Figure:
    """The digits x methods grid of :func:`run_demo`'s attributions (needs matplotlib).

    Each method's column shares one colour scale; green is positive, red negative.
    """
    from attrkit.viz.figures import attribution_grid

    columns = {method_info(name).display_name: value for name, value in result.attributions.items()}
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
