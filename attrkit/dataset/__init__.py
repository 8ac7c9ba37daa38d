"""Dataset-scale attribution: a dataset or data loader in, attributions on disk out, on one
process or many (``torchrun``), resumable, readable back with NumPy alone.

:func:`attribute_dataset` writes a folder of ``.npy`` shards and a JSON manifest;
:func:`load_attributions` opens it lazily. The format is described in
:mod:`attrkit.dataset._store` and in the guide (``docs/dataset.rst``).
"""

from attrkit.dataset._identity import model_fingerprint
from attrkit.dataset._reader import AttributionSet, ShardedArray, load_attributions
from attrkit.dataset._run import attribute_dataset

__all__ = [
    "AttributionSet",
    "ShardedArray",
    "attribute_dataset",
    "load_attributions",
    "model_fingerprint",
]
