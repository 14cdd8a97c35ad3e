"""The report as plain data: sections of tables, figures, notes and lists.

Sections build this structure once; `markdown` and `html` each render it. Every string in it
is plain text (never markup), so each renderer escapes everything it writes — an architecture
name from a plugin cannot inject HTML or break a Markdown table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str | None = None
    numeric: list[bool] | None = None  # right-align these columns (default: none)


@dataclass
class Figure:
    path: Path  # the PNG under figures/
    title: str
    caption: str


@dataclass
class Skipped:
    """A figure or check that the records cannot support, and why."""

    title: str
    reason: str


Block = Paragraph | Bullets | Table | Figure | Skipped


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass
class Document:
    title: str
    intro: list[Block]
    sections: list[Section]

    def figures(self) -> list[Figure]:
        found: list[Figure] = []

        def walk(section: Section) -> None:
            found.extend(b for b in section.blocks if isinstance(b, Figure))
            for sub in section.subsections:
                walk(sub)

        for section in self.sections:
            walk(section)
        return found
