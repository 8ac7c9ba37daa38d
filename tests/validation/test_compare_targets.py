"""``attrkit.compare`` parses the target once per request and hands it to every library,
and the zennit adapter builds its one-hot output gradient from it: here the target forms
of a model with one output value per example, for each library (the forms of 1-d and
3-d outputs: tests/validation/test_compare.py)."""

from __future__ import annotations

import pytest

import attrkit
from tests.cases import PARITY_CASES, target_forms

CASE = next(c for c in PARITY_CASES if c.id == "captum-linear-relu-linear")


@pytest.mark.parametrize(("form", "target"), target_forms(CASE.output_shape))
def test_every_target_form_of_a_one_value_output(form, target):
    report = attrkit.compare("guided_backprop", CASE.build(), CASE.inputs()[0], target=target)
    assert report.run("zennit").status == "ok", report.run("zennit").reason
    for pair in (("attrkit", "captum"), ("attrkit", "zennit"), ("captum", "zennit")):
        assert report.pair(*pair).verdict == "agree", pair
