"""The structural copy of a model (attrkit/core/replica.py): new module objects, the
model's own tensors (the same objects, the same memory), the caller's hooks, the
references between modules pointing into the copy, and the same forward pass; ``None``
where no copy can stand for the model."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

from attrkit.core.replica import model_replica
from benchmarks import _models
from tests import models

T = TypeVar("T")

pytestmark = [
    pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings(r"ignore:`torch\.nn\.utils\.weight_norm` is deprecated"),
]


def tensors(module: nn.Module) -> list[torch.Tensor]:
    """The parameters and buffers of ``module``, in order."""
    return [*module.parameters(), *module.buffers()]


class Tangled(nn.Module):
    """Every way a module refers to another that a copy must follow: a module registered
    under two names, a module in a plain list, a reference to the parent, a ``forward``
    bound to the module at instance level, a tensor that is an attribute and not a buffer,
    and a hook that is a method of a module."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.alias = self.conv
        self.norm = nn.BatchNorm2d(2)
        self.head = nn.Linear(32, 3)
        self.stages = [self.conv, self.norm]  # a plain list: not registered
        self.head.__dict__["owner"] = self  # a parent reference (not registered)
        self.scale = torch.tensor(2.0)  # a tensor attribute, not a buffer
        self.norm.forward = self.norm.forward  # bound at instance level
        self.head.register_forward_hook(self.record)
        self.records = 0

    def record(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self.records += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.head(torch.flatten(x.relu(), 1)) * self.scale


def test_new_modules_the_same_tensors_and_hooks():
    model = Tangled().eval()
    replica = model_replica(model, [model.alias])
    assert replica is not None
    copy = replica.model
    originals = list(model.modules())
    copies = list(copy.modules())
    assert len(copies) == len(originals)
    assert all(c is not o for c, o in zip(copies, originals, strict=True))
    assert all(type(c) is type(o) for c, o in zip(copies, originals, strict=True))
    # The same tensor objects, hence the same memory: no data was copied.
    for theirs, ours in zip(tensors(model), tensors(copy), strict=True):
        assert ours is theirs
        assert ours.data_ptr() == theirs.data_ptr()
    assert copy.scale is model.scale
    # The layer registered under two names is one module in the copy too.
    assert replica.layers == (copy.conv,)
    assert copy.alias is copy.conv
    # References between modules point into the copy.
    assert copy.stages[0] is copy.conv
    assert copy.stages[1] is copy.norm
    assert copy.head.__dict__["owner"] is copy
    assert copy.norm.forward.__self__ is copy.norm
    # The caller's hooks are in the copy, in dictionaries of its own.
    (hook,) = copy.head._forward_hooks.values()
    assert hook.__func__ is Tangled.record
    assert hook.__self__ is copy
    assert copy.head._forward_hooks is not model.head._forward_hooks


def test_the_copy_computes_what_the_model_does_and_hooks_stay_on_it():
    model = Tangled().eval()
    replica = model_replica(model, [model.conv])
    assert replica is not None
    x = torch.randn(2, 1, 4, 4)
    captured: list[torch.Tensor] = []
    replica.layers[0].register_forward_hook(lambda m, a, out: captured.append(out))
    torch.testing.assert_close(replica.model(x), model(x), rtol=0, atol=0)
    assert replica.layer_calls == 1
    assert len(captured) == 1
    assert not model.conv._forward_hooks
    assert not model.conv._forward_pre_hooks
    # A hook that is a method of the model ran on the copy.
    assert (model.records, replica.model.records) == (1, 1)


def test_containers_without_modules_are_the_models():
    """A list the forward pass appends to (recorded outputs) and a dict of settings hold
    no module: the copy uses the model's own, as a forward pass of the model does."""

    class Recording(nn.Sequential):
        def __init__(self) -> None:
            super().__init__(nn.Linear(2, 2), nn.ReLU())
            self.outputs: list[torch.Tensor] = []
            self.settings = {"scale": 2.0, "names": ("a", "b")}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.outputs.append(super().forward(x))
            return self.outputs[-1] * self.settings["scale"]

    model = Recording()
    replica = model_replica(model, [model[1]])
    assert replica is not None
    assert replica.model.outputs is model.outputs
    assert replica.model.settings is model.settings
    replica.model(torch.randn(3, 2))
    assert len(model.outputs) == 1


def test_a_method_bound_to_the_model_is_bound_to_the_copy():
    model = Tangled().eval()
    replica = model_replica(model.forward, [model.head])
    assert replica is not None
    assert replica.forward_func.__self__ is replica.model
    assert replica.forward_func.__func__ is Tangled.forward


def test_parametrized_weights_are_computed_from_the_models_tensors():
    """Weight normalization (a parametrization: the weight is a function of two
    parameters) and the legacy weight norm (a forward pre-hook that sets the weight)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        parametrizations.weight_norm(nn.Linear(4, 3)),
        nn.ReLU(),
        torch.nn.utils.weight_norm(nn.Linear(3, 2)),  # (deprecated, still common)
    )
    replica = model_replica(model, [model[0]])
    assert replica is not None
    for theirs, ours in zip(tensors(model), tensors(replica.model), strict=True):
        assert ours is theirs
    x = torch.randn(5, 4)
    torch.testing.assert_close(replica.model(x), model(x), rtol=0, atol=0)
    with torch.no_grad():
        model[0].parametrizations.weight.original1.mul_(2)  # the copy sees the change
    torch.testing.assert_close(replica.model(x), model(x), rtol=0, atol=0)


def test_the_copy_costs_no_tensor_memory():
    """The benchmark's ResNet-18-sized module tree: every tensor is shared."""
    model = _models.ResNet18().eval()
    replica = model_replica(model, [model.layers[2][1].conv2])
    assert replica is not None
    ours = {t.data_ptr() for t in tensors(replica.model)}
    assert ours == {t.data_ptr() for t in tensors(model)}
    assert all(a is b for a, b in zip(tensors(replica.model), tensors(model), strict=True))


def test_no_copy_where_none_can_stand_for_the_model():
    model = models.SmallCNN().eval()
    layer = model.features[4]
    assert model_replica(lambda x: model(x), [layer]) is None  # a function
    assert model_replica(model, [nn.Linear(2, 2)]) is None  # not a module of the model
    assert model_replica(model, [layer, "features.4"]) is None  # not a module
    scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    assert model_replica(scripted, [scripted[1]]) is None  # TorchScript
    wrapper = nn.Sequential(scripted, nn.Linear(2, 2))
    assert model_replica(wrapper, [wrapper[1]]) is None

    class Slotted(nn.Linear):
        __slots__ = ("extra",)  # state outside the attribute dictionary

    slotted = nn.Sequential(Slotted(2, 2), nn.ReLU())
    assert model_replica(slotted, [slotted[1]]) is None


def test_generic_modules_are_copied():
    """``typing.Generic`` declares empty ``__slots__``: no state outside ``__dict__``."""

    class Typed(nn.Linear, Generic[T]):
        pass

    model = nn.Sequential(Typed(2, 2), nn.ReLU())
    replica = model_replica(model, [model[0]])
    assert replica is not None
    assert type(replica.layers[0]) is Typed


def test_a_compiled_call_of_the_model_is_not_carried_over():
    """``module.compile()`` stores a compiled function of the module itself (here a
    stand-in): the copy runs its own eager forward pass."""
    model = models.SmallCNN().eval()
    x = torch.randn(2, 3, 8, 8)
    eager = model(x)
    model.head._compiled_call_impl = lambda *args, **kwargs: torch.zeros(1)
    assert model(x).shape == (1,)
    replica = model_replica(model, [model.features[4]])
    assert replica is not None
    torch.testing.assert_close(replica.model(x), eager, rtol=0, atol=0)
