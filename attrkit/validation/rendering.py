"""One renderer for the validation reports (:func:`attrkit.compare`'s and
:func:`attrkit.audit`'s): a report describes itself once, as sections of titles, headings,
paragraphs, tables and notes, and :class:`Report` turns that description into plain text
(``str(report)``) and Markdown (:meth:`Report.to_markdown`), and its :meth:`~Report.to_dict`
into JSON.

Plain text puts the parts of a section on consecutive lines and a blank line between
sections; Markdown puts a blank line between any two parts, titles as ``##`` and headings as
``###`` headings, notes as a bullet list, and ends with a newline.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Heading",
    "Notes",
    "Part",
    "Report",
    "Section",
    "Table",
    "Title",
    "markdown_table",
    "render",
    "text_table",
]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Columns padded to their widest cell, a rule under the header.

    Example:
        >>> print(text_table(["a", "bb"], [["1", "2"], ["333", "4"]]))
        a    bb
        ---  --
        1    2
        333  4
    """
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` in cells is escaped.

    Example:
        >>> print(markdown_table(["a", "b"], [["1", "x|y"]]))
        | a | b |
        | --- | --- |
        | 1 | x\\|y |
    """

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])


@dataclass(frozen=True)
class Title:
    """The report's title: a line of plain text, a ``##`` heading in Markdown (which may
    word it differently, e.g. with inline code)."""

    text: str
    markdown: str = ""


@dataclass(frozen=True)
class Heading:
    """A ``###`` heading in Markdown; in plain text the line ``text`` (none if empty)."""

    markdown: str
    text: str = ""


@dataclass(frozen=True)
class Table:
    """A table: aligned columns in plain text, a Markdown table in Markdown."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Notes:
    """Lines of plain text; a bullet list in Markdown."""

    lines: Sequence[str]


#: One part of a section; a ``str`` is a paragraph, the same in both formats.
Part = str | Title | Heading | Table | Notes
#: Parts shown together.
Section = Sequence[Part]


def _text(part: Part) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Title):
        return part.text
    if isinstance(part, Heading):
        return part.text
    if isinstance(part, Table):
        return text_table(part.headers, part.rows)
    return "\n".join(part.lines)


def _markdown(part: Part) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Title):
        return f"## {part.markdown or part.text}"
    if isinstance(part, Heading):
        return f"### {part.markdown}"
    if isinstance(part, Table):
        return markdown_table(part.headers, part.rows)
    return "\n".join(f"- {line}" for line in part.lines)


def render(sections: Sequence[Section], markdown: bool = False) -> str:
    """``sections`` as plain text or, with ``markdown``, as Markdown.

    Example:
        >>> sections = [[Title("Report"), "All good."], [Table(["a"], [["1"]])], [Notes(["n"])]]
        >>> print(render(sections))
        Report
        All good.
        <BLANKLINE>
        a
        -
        1
        <BLANKLINE>
        n
        >>> print(render(sections, markdown=True))
        ## Report
        <BLANKLINE>
        All good.
        <BLANKLINE>
        | a |
        | --- |
        | 1 |
        <BLANKLINE>
        - n
        <BLANKLINE>
    """
    if markdown:
        return "\n\n".join(_markdown(part) for section in sections for part in section) + "\n"
    blocks = ("\n".join(text for text in map(_text, section) if text) for section in sections)
    return "\n\n".join(blocks)


class Report(ABC):
    """A report that describes itself once (:meth:`_sections`, :meth:`to_dict`) and is
    rendered as plain text (``str(report)``), Markdown and JSON."""

    @abstractmethod
    def _sections(self) -> list[Section]:
        """The report's content, in order."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole report."""

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        """The report as Markdown: its title, summary, tables and notes."""
        return render(self._sections(), markdown=True)

    def __str__(self) -> str:
        return render(self._sections())
