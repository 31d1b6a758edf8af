"""Markdown layout of the board: pipe tables of the already formatted cells of
:class:`rmxbench.board.table.Table` (every string escaped with :func:`md_escape`; no number
formatting, no cell decisions)."""

from __future__ import annotations

import re

from rmxbench.board.table import Cell, Table
from rmxbench.board.text import md_escape

_LIST_MARKER = re.compile(r"^([-+]|\d+[.)])(?=\s|$)")


def _item(text: object) -> str:
    """A Markdown bullet of ``text`` (escaped); a leading list marker of its own (a row named
    "+ GRPO", "1. ...") is escaped, else it renders as a nested list."""
    return "- " + _LIST_MARKER.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], md_escape(text))


_STYLE = {"": "{}", "b": "**{}**", "i": "*{}*", "tag": "\\[{}\\]"}


def _segment(style: str, text: str) -> str:
    """A legend segment: escaped (keeping the spaces at its edges, which join it to the next) and styled."""
    core = _STYLE[style].format(md_escape(text))
    return (" " if text[:1] == " " else "") + core + (" " if text[-1:] == " " else "")


def _styled(text: str, bold: bool, italic: bool) -> str:
    s = md_escape(text)
    if bold:
        s = f"**{s}**"
    return f"*{s}*" if italic else s


def _md_cell(c: Cell) -> str:
    """A cell on one line: value [CI] (note) (paper P, paper note); a paired cell: Δ [CI] p. CIs and
    paired cells are generated numeric text (digits, signs, brackets, ``p<``) and stand as they are."""
    if c.kind == "paired":
        return " ".join(x for x in (c.display_value, c.ci, c.note) if x)
    parts = []
    if c.display_value:
        parts.append(_styled(c.display_value, c.bold, c.italic))
    if c.ci:
        parts.append(c.ci)
    if c.spread:
        parts.append(md_escape(c.spread))
    if c.note:
        parts.append(f"({md_escape(c.note)})")
    if c.paper:
        p = _styled(c.paper, False, c.paper_italic)
        parts.append(f"(paper {p}, {md_escape(c.paper_note)})" if c.paper_note else f"(paper {p})")
    return " ".join(parts)


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def render_markdown(table: Table, chart: str | None = None, sections: str = "") -> str:
    """The board as GitHub-flavoured Markdown (pipe tables only); ``chart``: PNG file name to link;
    ``sections``: Markdown of the spec's analyses (already escaped), shown under their own heading."""
    L: list[str] = [f"# {md_escape(table.heading)}", ""]
    if table.description:
        L += [md_escape(table.description), ""]
    L += [f"- **{md_escape(k)}**: {md_escape(v)}" for k, v in table.meta]
    L += ["", "## Results", ""]
    heads = [md_escape(h) for h in table.columns]
    L.append(_row(heads))
    L.append("|" + "|".join([":---"] + ["---:"] * (len(heads) - 1)) + "|")
    for fam, lines in table.groups.items():
        L.append(f"| **{md_escape(fam)}** |" + " |" * (len(heads) - 1))
        for ln in lines:
            n = ln.name
            label = md_escape(n.label)
            if n.tag:
                label += f" \\[{md_escape(n.tag)}\\]"
            if n.note_mark:
                label += f" ({md_escape(n.note_mark)})"
            L.append(_row([label, *map(_md_cell, ln.cells)]))
    L += ["", "".join(_segment(st, tx) for st, tx in table.legend), ""]
    if table.notes:
        L += ["### Notes", ""]
        for i, ln in enumerate(table.notes, 1):
            L.append(f"{i}. {md_escape(ln.name.note_title)} (`{ln.row_id}`): {md_escape(ln.name.note)}")
        L.append("")
    if chart:
        L += [f"![{md_escape(table.chart_title)}]({chart})", ""]
    if table.cost_ratios:
        L += [_item(r) for r in table.cost_ratios] + [""]
    for f in table.figures:
        L += [f"![{md_escape(f.caption)}]({f.file})", ""]
    L += [f"## {md_escape(table.paired_title)}", ""]
    if table.paired:
        heads2 = [md_escape(h) for h in table.paired_columns]
        L.append(_row(heads2))
        L.append("|" + "|".join([":---", ":---"] + ["---:"] * (len(heads2) - 2)) + "|")
        for p in table.paired:
            L.append(_row([md_escape(p.row), md_escape(p.vs), *map(_md_cell, p.cells)]))
        L += ["", table.paired_legend, ""]
    else:
        L += [table.no_paired, ""]
    if sections:
        L += [f"## {md_escape(table.analyses_title)}", "", sections, ""]
    if table.warnings:
        L += ["## Warnings", ""] + [_item(w) for w in table.warnings] + [""]
    return "\n".join(L)
