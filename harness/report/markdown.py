"""Render a report Document as GitHub-flavoured Markdown (report.md).

All text is escaped: Markdown punctuation is backslash-escaped (CommonMark allows that for any
ASCII punctuation), so a name like `<script>` or `a|b` shows literally instead of becoming HTML
or breaking a table. Underscores inside words are left alone (they never emphasise), which
keeps names such as selective_copy readable in the raw file.
"""

from __future__ import annotations

import re
from pathlib import Path

from seqbench.harness.report.document import (
    Block,
    Bullets,
    Document,
    Figure,
    Paragraph,
    Section,
    Skipped,
    Table,
)

_SPECIAL = re.compile(r"([\\`*\[\]<>|#~&!])|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def escape(text: str) -> str:
    """Plain text -> Markdown that renders as exactly that text, on one line."""
    text = " ".join(str(text).split())
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def render(doc: Document, base: Path) -> str:
    """The document as Markdown; figure paths are written relative to `base` (the report folder)."""
    lines = [f"# {escape(doc.title)}", ""]
    for block in doc.intro:
        lines += render_block(block, base)
    lines += [
        "Contents: " + " · ".join(f"[{escape(s.title)}](#{s.anchor})" for s in doc.sections),
        "",
    ]
    for section in doc.sections:
        lines += render_section(section, base, 2)
    return "\n".join(lines).rstrip() + "\n"


def render_section(section: Section, base: Path, level: int) -> list[str]:
    lines = [f"{'#' * level} {escape(section.title)}", ""]
    for block in section.blocks:
        lines += render_block(block, base)
    for sub in section.subsections:
        lines += render_section(sub, base, level + 1)
    return lines


def render_block(block: Block, base: Path) -> list[str]:
    if isinstance(block, Paragraph):
        return [escape(block.text), ""]
    if isinstance(block, Bullets):
        return [f"- {escape(item)}" for item in block.items] + [""]
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        src = block.path.relative_to(base).as_posix()
        return [f"![{escape(block.title)}]({src})", "", f"*{escape(block.caption)}*", ""]
    if isinstance(block, Skipped):
        return [f"> **{escape(block.title)}** — not drawn: {escape(block.reason)}.", ""]
    raise TypeError(f"unknown block {type(block).__name__}")


def render_table(table: Table) -> list[str]:
    numeric = table.numeric or [False] * len(table.headers)
    lines = [f"*{escape(table.caption)}*", ""] if table.caption else []
    lines.append("| " + " | ".join(escape(h) or " " for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in table.rows]
    return [*lines, ""]
