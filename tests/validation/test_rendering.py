"""The renderer both validation reports share: plain text and Markdown from one
description, against hand-written expectations."""

from __future__ import annotations

import json
from typing import Any

from attrkit.validation.rendering import Heading, Notes, Report, Section, Table, Title, render

SECTIONS: list[Section] = [
    [Title("Report of m", markdown="Report of `m`"), "One line."],
    [Heading("Numbers"), Table(["a", "bb"], [["1", "x|y"], ["333", "4"]])],
    [Notes(["first note", "second note"])],
    [Heading("More", text="More:"), Table(["c"], [["5"]])],
]


def test_plain_text_puts_a_section_on_consecutive_lines():
    assert render(SECTIONS) == (
        "Report of m\n"
        "One line.\n"
        "\n"
        "a    bb\n"
        "---  ---\n"
        "1    x|y\n"
        "333  4\n"
        "\n"
        "first note\n"
        "second note\n"
        "\n"
        "More:\n"
        "c\n"
        "-\n"
        "5"
    )


def test_markdown_puts_a_blank_line_between_parts():
    assert render(SECTIONS, markdown=True) == (
        "## Report of `m`\n"
        "\n"
        "One line.\n"
        "\n"
        "### Numbers\n"
        "\n"
        "| a | bb |\n"
        "| --- | --- |\n"
        "| 1 | x\\|y |\n"
        "| 333 | 4 |\n"
        "\n"
        "- first note\n"
        "- second note\n"
        "\n"
        "### More\n"
        "\n"
        "| c |\n"
        "| --- |\n"
        "| 5 |\n"
    )


class _Tiny(Report):
    def _sections(self) -> list[Section]:
        return [[Title("tiny")], [Notes(["n"])]]

    def to_dict(self) -> dict[str, Any]:
        return {"value": float("1.5"), "items": [1, 2]}


def test_report_renders_its_description_in_every_format():
    report = _Tiny()
    assert str(report) == "tiny\n\nn"
    assert report.to_markdown() == "## tiny\n\n- n\n"
    assert json.loads(report.to_json()) == {"value": 1.5, "items": [1, 2]}
    assert report.to_json(indent=None) == '{"value": 1.5, "items": [1, 2]}'
