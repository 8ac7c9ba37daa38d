"""Shared docstring paragraphs are substituted everywhere they are used."""

from __future__ import annotations

import inspect

import pytest

import attrkit
from attrkit.core.docs import DOCS, fill_doc


def _public_docstrings():
    for name in attrkit.__all__:
        obj = getattr(attrkit, name)
        if inspect.isclass(obj) or callable(obj):
            yield name, inspect.getdoc(obj) or ""
            for member_name, member in inspect.getmembers(obj):
                if not member_name.startswith("_") and callable(member):
                    yield f"{name}.{member_name}", inspect.getdoc(member) or ""


@pytest.mark.parametrize(("name", "doc"), list(_public_docstrings()))
def test_no_placeholder_left(name, doc):
    assert "%(" not in doc, name


def test_attribute_documents_the_common_arguments():
    doc = inspect.getdoc(attrkit.Deconvolution.attribute)
    for paragraph in ("inputs", "target", "additional_forward_args"):
        assert doc.count(f"    {paragraph} (") == 1
    assert "Returns:" in doc


def test_unknown_placeholder_is_an_error():
    def documented():
        """Summary.

        Args:
            %(no_such_paragraph)s
        """

    with pytest.raises(KeyError, match="no_such_paragraph"):
        fill_doc(documented)


def test_paragraph_is_indented_like_its_placeholder():
    def documented():
        """Summary.

        Args:
            %(inputs)s
        """

    lines = fill_doc(documented).__doc__.splitlines()
    first = DOCS["inputs"].strip().splitlines()[0]
    assert f"    {first}" in lines
