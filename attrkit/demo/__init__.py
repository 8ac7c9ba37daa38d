"""The built-in demo: a small CNN trained on scikit-learn's 8x8 digits that ships with the
package (:mod:`attrkit.demo.model`), and every registered method run on its held-out digits
through attrkit and Captum (:mod:`attrkit.demo.run`)."""

from attrkit.demo.model import (
    DigitsCNN,
    HeldoutDigits,
    load_demo_metadata,
    load_demo_model,
    load_heldout_digits,
)
from attrkit.demo.run import (
    DemoResult,
    demo_arguments,
    demo_figure,
    demo_methods,
    figure_methods,
    format_agreement,
    run_demo,
)

__all__ = [
    "DemoResult",
    "DigitsCNN",
    "HeldoutDigits",
    "demo_arguments",
    "demo_figure",
    "demo_methods",
    "figure_methods",
    "format_agreement",
    "load_demo_metadata",
    "load_demo_model",
    "load_heldout_digits",
    "run_demo",
]
