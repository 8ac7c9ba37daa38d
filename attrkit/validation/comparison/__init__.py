"""Run one attribution method through attrkit, Captum and zennit and report how well they
agree: :func:`compare`.

For every pair of libraries and every attributed tensor the report gives the metrics of
:mod:`~attrkit.validation.comparison.metrics` (maximum and relative L2 difference, cosine
similarity, Spearman rank correlation, top-k overlap) and a verdict against
:class:`Tolerances`. For methods that override ReLU's backward (Deconvolution, Guided
Backpropagation and their neuron and Grad-CAM variants) the report includes
:func:`attrkit.audit`'s verdict, which explains where Captum's or zennit's module hooks
depart from the definition.

The parts: :mod:`~attrkit.validation.comparison.metrics` (the metrics of two tensors),
:mod:`~attrkit.validation.comparison.report` (the report and its rendering),
:mod:`~attrkit.validation.comparison.run` (:func:`compare` and its steps).
"""

from attrkit.validation.comparison.metrics import (
    TensorComparison,
    average_ranks,
    compare_tensors,
    spearman,
    top_k_overlap,
)
from attrkit.validation.comparison.report import (
    CompareReport,
    LibraryRun,
    PairComparison,
    Tolerances,
)
from attrkit.validation.comparison.run import DEFAULT_LIBRARIES, compare

__all__ = [
    "DEFAULT_LIBRARIES",
    "CompareReport",
    "LibraryRun",
    "PairComparison",
    "TensorComparison",
    "Tolerances",
    "average_ranks",
    "compare",
    "compare_tensors",
    "spearman",
    "top_k_overlap",
]
