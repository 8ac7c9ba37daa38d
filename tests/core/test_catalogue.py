"""Every attribution class of ``captum.attr`` is reachable through attrkit by its Captum
name (base classes and Captum's LLM wrappers aside), and ``attrkit methods`` lists every
registered method under its family."""

from __future__ import annotations

import inspect

import captum.attr
import pytest

import attrkit
from attrkit.cli.methods import grouped
from attrkit.core.registry import FAMILIES

BASE_CLASSES = {
    "Attribution",
    "GradientAttribution",
    "LayerAttribution",
    "NeuronAttribution",
    "PerturbationAttribution",
}
LLM_WRAPPERS = {"LLMAttribution", "LLMGradientAttribution", "RemoteLLMAttribution"}
#: Built on another branch of the project (the DeepLift family's own issue).
DEEPLIFT_FAMILY = {
    "DeepLift",
    "DeepLiftShap",
    "GradientShap",
    "LayerDeepLift",
    "LayerDeepLiftShap",
    "LayerGradientShap",
    "NeuronDeepLift",
    "NeuronDeepLiftShap",
    "NeuronGradientShap",
}
CAPTUM_CLASSES = sorted(
    name
    for name in captum.attr.__all__
    if inspect.isclass(getattr(captum.attr, name))
    and issubclass(getattr(captum.attr, name), captum.attr.Attribution)
)


def test_every_captum_class_is_reachable_by_its_name():
    registered = {attrkit.method_info(n).captum_name for n in attrkit.available_methods()}
    missing = set(CAPTUM_CLASSES) - registered
    assert missing <= BASE_CLASSES | LLM_WRAPPERS | DEEPLIFT_FAMILY


@pytest.mark.parametrize("name", sorted(set(CAPTUM_CLASSES) - BASE_CLASSES - LLM_WRAPPERS))
def test_the_captum_name_finds_the_class_of_that_name(name):
    try:
        info = attrkit.method_info(name)
    except attrkit.UnknownMethodError:
        assert name in DEEPLIFT_FAMILY
        return
    assert info.cls.__name__ == name
    assert getattr(attrkit, name) is info.cls
    assert isinstance(info.cls, type)
    assert issubclass(info.cls, captum.attr.Attribution)


def test_methods_are_grouped_by_family():
    groups = grouped()
    listed = [name for names in groups.values() for name in names]
    assert sorted(listed) == attrkit.available_methods()
    assert list(groups) == [h for h in FAMILIES.values() if h in groups]
    for heading, names in groups.items():
        for name in names:
            assert FAMILIES[attrkit.method_info(name).family] == heading
