"""attrkit itself, the reference every other library is compared with."""

from __future__ import annotations

from torch import Tensor

from attrkit.core.registry import create
from attrkit.validation.adapters.base import Adapter, MethodRequest, Support, as_tuple

__all__ = ["AttrkitAdapter"]


class AttrkitAdapter(Adapter):
    """attrkit itself: ``attrkit.create(method, model, **init).attribute(...)``."""

    name = "attrkit"
    module = "attrkit"

    def supports(self, request: MethodRequest) -> Support:
        return Support(True)

    def attribute(self, request: MethodRequest) -> tuple[Tensor, ...]:
        explainer = create(request.info.name, request.model, **request.init_kwargs)
        result = explainer.attribute(
            request.fresh_inputs(),
            **request.common_kwargs(),
            **request.attribute_kwargs,
        )
        return as_tuple(result)
