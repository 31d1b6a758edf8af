"""The board's analyses sections: Markdown and HTML of finished analysis results (issue 12).

One renderer for all four analyses: each analysis module supplies ``tables(result, pair_title)``
(header + rows of display strings); this module lays out title, settings line, tables and
figures. Every string that can come from a spec (row labels, model names, captions) is escaped:
HTML with :func:`html.escape`, Markdown by HTML-escaping and backslash-escaping Markdown syntax.
In HTML the PNGs are embedded as base64 ``data:`` URIs (self-contained page); in Markdown they
are linked relative to the board file.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Sequence

from rmxbench.analysis.common import AnalysisResult, read_result
from rmxbench.board.text import md_escape


def _module(analysis: str):
    from rmxbench.analysis import distillation, interventions, reranking, tau_curve

    return {"reranking": reranking, "interventions": interventions, "distillation": distillation,
            "tau_curve": tau_curve}[analysis]


def pair_title(result: AnalysisResult) -> str:
    """``base vs other`` from the result's pair labels (only the base for a τ curve without reference)."""
    p = result.pair
    other = p.get("other") or {}
    return f"{p['base']['label']} vs {other['label']}" if other else p["base"]["label"]


def _settings_line(r: AnalysisResult) -> str:
    return f"task {r.task}, n = {r.n} problems, pair {pair_title(r)}"


def render_markdown(result: AnalysisResult, *, figure_prefix: str = "", level: int = 3) -> str:
    """A Markdown section: heading, settings, the analysis' tables, linked figures with captions.

    Args:
        figure_prefix: path from the Markdown file to the folder holding the result's PNGs
            (e.g. ``tiny-analyses/reranking-tiny-vs-tiny-rmx/``).
    """
    out = [f"{'#' * level} {md_escape(result.title)}: {md_escape(pair_title(result))}", "",
           f"_{md_escape(_settings_line(result))}_", ""]
    for header, rows in _module(result.analysis).tables(result, pair_title(result)):
        out.append("| " + " | ".join(md_escape(h) for h in header) + " |")
        out.append("|" + "---|" * len(header))
        out += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
        out.append("")
    for f in result.figures:
        out += [f"![{md_escape(f.file)}]({figure_prefix}{f.file})", "", f"*{md_escape(f.caption)}*", ""]
    return "\n".join(out)


def render_html(result: AnalysisResult, figure_dir: Path, *, level: int = 3) -> str:
    """An HTML ``<section>``: escaped heading, tables, figures embedded as base64 PNGs with captions."""
    e = html.escape
    parts = [f'<section class="analysis analysis-{e(result.analysis)}">',
             f"<h{level}>{e(result.title)}: {e(pair_title(result))}</h{level}>",
             f"<p class=\"settings\">{e(_settings_line(result))}</p>"]
    for header, rows in _module(result.analysis).tables(result, pair_title(result)):
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</tbody></table>")
    for f in result.figures:
        data = base64.b64encode((Path(figure_dir) / f.file).read_bytes()).decode("ascii")
        parts.append(f'<figure><img alt="{e(f.file)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{e(f.caption)}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def publish_sections(folders: Sequence[Path], out_dir: Path, link_prefix: str) -> tuple[str, str]:
    """Copy the figures of finished analyses next to a board and render their sections.

    Each result folder's PNGs go to ``out_dir/<folder name>/`` (atomic per file); the Markdown
    links them as ``<link_prefix><folder name>/<file>``, the HTML embeds them.

    Returns:
        ``(markdown, html)`` fragments (see :func:`render_sections`).
    """
    import os
    import shutil

    pairs = []
    for folder in folders:
        folder = Path(folder)
        dest = Path(out_dir) / folder.name
        dest.mkdir(parents=True, exist_ok=True)
        for f in read_result(folder).figures:
            tmp = dest / f".{f.file}.tmp"
            shutil.copyfile(folder / f.file, tmp)
            os.replace(tmp, dest / f.file)
        pairs.append((folder, f"{link_prefix}{folder.name}/"))
    return render_sections(pairs)


def render_sections(folders: Sequence[tuple[Path, str]], *, level: int = 3) -> tuple[str, str]:
    """Markdown and HTML of finished analyses.

    Args:
        folders: ``(result folder, figure link prefix for the Markdown)`` per analysis, in order.
    Returns:
        ``(markdown, html)`` fragments (empty strings for no folders).
    """
    md, page = [], []
    for folder, prefix in folders:
        r = read_result(folder)
        md.append(render_markdown(r, figure_prefix=prefix, level=level))
        page.append(render_html(r, folder, level=level))
    return "\n".join(md), "\n".join(page)
