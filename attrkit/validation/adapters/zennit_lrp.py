"""zennit's composites for attrkit's ``lrp`` (a row of the zennit adapter's table).

attrkit's ``lrp`` with ``composite=<name>`` is zennit's composite of that name with the same
parameters, through zennit's ``Gradient`` attributor with the target output's value as the
output gradient (``one_hot * output``, the initial relevance), and with zennit's
``SequentialMergeBatchNorm`` canonizer (attrkit's composites merge a batch-norm into the
linear layer before it). Captum's rules (no ``composite``) have no zennit counterpart.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from attrkit.validation.adapters.base import MethodRequest, Support

__all__ = ["check_lrp", "lrp_composite"]

#: The composite parameters attrkit's ``lrp`` takes (zennit's names).
_PARAMETERS = ("epsilon", "gamma", "stabilizer", "low", "high", "zero_params", "beta_smooth")


def check_lrp(request: MethodRequest) -> Support:
    """zennit computes ``lrp`` with one of its composites, not with Captum's rules; its
    batch-norm canonizer merges only a batch-norm that follows a linear layer inside an
    ``nn.Sequential``, and keeps the batch-norm's ``eps`` in the identity it leaves (the
    output is scaled by ``1 / sqrt(1 + eps)``)."""
    composite = request.init_kwargs.get("composite")
    if composite is None:
        return Support.no(
            "zennit has no Captum rules (EpsilonRule on every layer); pass composite=... "
            "to compare zennit's composites"
        )
    model = request.model
    if isinstance(model, nn.Module) and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
    ):
        return Support(
            True,
            deviation=(
                "zennit's batch-norm canonizer merges only a batch-norm right after a linear "
                "layer inside nn.Sequential, and scales the merged output by "
                "1/sqrt(1 + eps)"
            ),
        )
    return Support(True)


def lrp_composite(request: MethodRequest) -> Any:
    """zennit's composite named by the request's ``composite``, with its parameters."""
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import COMPOSITES

    name = str(request.init_kwargs["composite"]).strip().lower().replace("-", "_")
    parameters = {
        key: value
        for key, value in request.init_kwargs.items()
        if key in _PARAMETERS and value is not None
    }
    return COMPOSITES[name](canonizers=[SequentialMergeBatchNorm()], **parameters)
