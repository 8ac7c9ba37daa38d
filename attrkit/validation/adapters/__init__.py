"""One adapter per library that :func:`attrkit.compare` can run a method through.

An adapter answers two questions: :meth:`Adapter.supports` (can this library compute
this method with these arguments, exactly or only up to noise, and with which known
difference of definition?) and :meth:`Adapter.attribute` (compute it). Every adapter gets
the same :class:`MethodRequest`; :func:`attrkit.compare` seeds the random number
generators identically before each call and times it.

What each library computes for attrkit's methods:

* **attrkit** (:mod:`~attrkit.validation.adapters.attrkit`): the method itself.
* **Captum** (:mod:`~attrkit.validation.adapters.captum`): the ``captum.attr`` class named
  by the method's :attr:`~attrkit.MethodInfo.captum_name`, built and called with the same
  arguments; ``noise_tunnel`` wraps the Captum class of ``base_method``.
* **zennit** (:mod:`~attrkit.validation.adapters.zennit`, optional,
  ``pip install "attrkit[zennit]"``), for a single input tensor: the attributor its table
  :data:`~attrkit.validation.adapters.zennit.ZENNIT_METHODS` names, with the composite
  that is zennit's equivalent of the method's backward rule.
"""

from attrkit.validation.adapters.attrkit import AttrkitAdapter
from attrkit.validation.adapters.base import Adapter, MethodRequest, Support, as_tuple
from attrkit.validation.adapters.captum import CaptumAdapter
from attrkit.validation.adapters.zennit import ZENNIT_METHODS, ZennitAdapter, ZennitMethod

__all__ = [
    "ADAPTERS",
    "ZENNIT_METHODS",
    "Adapter",
    "AttrkitAdapter",
    "CaptumAdapter",
    "MethodRequest",
    "Support",
    "ZennitAdapter",
    "ZennitMethod",
    "as_tuple",
]

#: Library name -> adapter class, in the order reports list them.
ADAPTERS: dict[str, type[Adapter]] = {
    AttrkitAdapter.name: AttrkitAdapter,
    CaptumAdapter.name: CaptumAdapter,
    ZennitAdapter.name: ZennitAdapter,
}
