"""Render a report Document as one self-contained HTML page (report.html).

Self-contained: figures are embedded as base64 PNG data URIs and the style sheet is inline,
so the file can be mailed or archived alone. Safe: every string is HTML-escaped (names and
reasons come from specs and plugins), and a Content-Security-Policy forbids scripts and any
network access, so even a string that slipped through could not run or phone home.
"""

from __future__ import annotations

import base64
from html import escape

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

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
VERDICT_CLASS = {"supported": "ok", "contradicted": "bad", "not measured": "none"}

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1.2rem; font-size: .9rem; }
caption { caption-side: top; text-align: left; font-style: italic; color: #555; padding: .3rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1rem 0 1.8rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
.skipped { color: #666; border-left: 3px solid #ccc; padding-left: .8rem; }
td.verdict { font-weight: 600; white-space: nowrap; }
td.verdict.ok { color: #17692c; } td.verdict.bad { color: #a11; } td.verdict.none { color: #777; }
"""


def render(doc: Document) -> str:
    nav = " ".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in doc.sections)
    body = [f"<h1>{escape(doc.title)}</h1>", *map(render_block, doc.intro), f"<nav>{nav}</nav>"]
    body += [render_section(s, 2) for s in doc.sections]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(doc.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def render_section(section: Section, level: int) -> str:
    parts = [f'<section id="{section.anchor}">', f"<h{level}>{escape(section.title)}</h{level}>"]
    parts += [render_block(b) for b in section.blocks]
    parts += [render_section(s, level + 1) for s in section.subsections]
    return "\n".join([*parts, "</section>"])


def render_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.path.read_bytes()).decode("ascii")
        return (
            f'<figure id="fig-{escape(block.path.stem)}">'
            f'<img class="figure" src="data:image/png;base64,{data}" alt="{escape(block.title)}">'
            f"<figcaption><b>{escape(block.title)}.</b> {escape(block.caption)}</figcaption>"
            "</figure>"
        )
    if isinstance(block, Skipped):
        return (
            f'<p class="skipped"><b>{escape(block.title)}</b> — not drawn: '
            f"{escape(block.reason)}.</p>"
        )
    raise TypeError(f"unknown block {type(block).__name__}")


def render_table(table: Table) -> str:
    numeric = table.numeric or [False] * len(table.headers)
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    rows = []
    for row in table.rows:
        cells = []
        for header, cell, num in zip(table.headers, row, numeric, strict=True):
            cls = "num" if num else ""
            if header == "verdict":
                cls = f"verdict {VERDICT_CLASS.get(cell, 'none')}"
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{escape(cell)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
