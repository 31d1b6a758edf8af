"""The board's layers (issue 17 item 4): the spec is read once into a BoardView, every cell is
formatted once into a format-neutral Cell (board/table.py), and Markdown / HTML only lay those
strings out: no number formatting, no cell decisions, nothing read from the model or the spec."""

from __future__ import annotations

import ast
import html as htmllib
import re
from pathlib import Path

import pytest
from test_board import NOTES, make_costs, make_records, make_reference, make_spec, md_table, row_named

from rmxbench.board import render as B
from rmxbench.board.markdown import render_markdown
from rmxbench.board.table import build_table
from rmxbench.board.text import md_escape
from rmxbench.board.view import board_view

BOARD = Path(__file__).resolve().parents[1] / "rmxbench" / "board"


@pytest.fixture(scope="module")
def built():
    return B.build_board(make_spec(), make_records(), make_costs(), NOTES, make_reference())


@pytest.fixture(scope="module")
def table(built):
    return build_table(built)


def lines_by_id(table):
    return {ln.row_id: ln for lines in table.groups.values() for ln in lines}


def test_board_view_is_what_the_board_reads_from_the_spec(built):
    view = board_view(make_spec())
    assert view.tasks == ("gsm8k", "math500", "aime24")
    assert view.metrics == {"gsm8k": "pass@1", "math500": "pass@1", "aime24": "avg@4"}  # Protocol.metric
    assert view.task_labels == {"gsm8k": "GSM8K", "math500": "MATH-500", "aime24": "AIME24"}
    rows = {r.id: r for r in view.rows}
    assert [r.id for r in view.rows] == ["base-a", "rl-a", "rl-gone", "rl-same", "rmx-a", "base-b", "rmx-b"]
    assert rows["rl-a"].model_items == (("model ref", "org/rl-a@" + "a" * 40),)
    assert rows["rmx-a"].model_items == (("base model", "/models/base-a"), ("recipe", "paper"))
    assert (rows["rmx-b"].label, rows["rmx-b"].title) == ("↪ + RMX small", "Base B + RMX small")
    assert rows["rl-gone"].unavailable == "weights never released" and rows["rl-a"].cost.usd == 200
    assert dict(view.meta)["avg@4 decoding"].startswith("4 samples")
    # Nothing after the view holds the Spec.
    assert not hasattr(built, "spec") and built.view == view


def test_score_cells_are_formatted_once(table):
    lines = lines_by_id(table)
    gsm = lines["rmx-a"].cells[0]
    assert (gsm.kind, gsm.display_value, gsm.bold, gsm.paper, gsm.paper_note) == ("score", "0.700", True, "0.690", "+0.010")
    assert re.fullmatch(r"\[0\.\d{3}, 0\.\d{3}\]", gsm.ci) and gsm.sort_key == "0.700000"
    assert (gsm.key, gsm.title) == ("rmx-a/gsm8k", "Evil<script>alert(1)</script> & Co + ReasonMaxxer / GSM8K")
    assert dict(gsm.provenance)["paper"] == "0.690" and "grader_version: g1" in gsm.description
    gone = lines["rl-gone"].cells[0]
    assert (gone.display_value, gone.paper_only, gone.paper, gone.paper_note, gone.sort_key) == ("—", True, "0.650", "", "0.650000")
    small_avg = lines["rmx-b"].cells[3]
    assert small_avg.note == "incomplete: 1/3 tasks" and not small_avg.bold and small_avg.paper_note == ""
    assert lines["rl-same"].cells[3].paper == ""  # no reference pointer: no paper value


def test_cost_cells_are_formatted_once(table):
    lines = lines_by_id(table)
    rl = lines["rl-a"].cells[4]
    assert (rl.kind, rl.display_value, rl.italic, rl.note, rl.paper) == ("cost", "$200", True, "estimated", "")
    rmx = lines["rmx-a"].cells[4]
    assert (rmx.display_value, rmx.note, rmx.paper, rmx.paper_note, rmx.sort_key) == ("$4.12", "measured", "$4", "measured", "4.120000")
    assert dict(rmx.provenance)["rollouts seconds"] == "3000.0"
    assert lines["rmx-b"].cells[4].display_value == "0.0123 CPU-h"
    assert (lines["base-a"].cells[4].display_value, lines["base-a"].cells[4].sort_key) == ("—", "")


def test_both_formats_lay_out_the_same_strings(tmp_path, table):
    md, page = (p.read_text(encoding="utf-8") for p in B.render(
        make_spec(), make_records(), make_costs(), NOTES, make_reference(), tmp_path))
    rows = md_table(md, "## Results")
    assert rows[0] == list(table.columns)
    n_shown = 0
    for ln in (ln for lines in table.groups.values() for ln in lines):
        md_row = row_named(rows, md_escape(ln.name.label))
        tr = re.search(rf'<tr [^>]*data-row="{ln.row_id}">(.*?)</tr>', page, re.S).group(1)
        assert htmllib.escape(ln.name.label) in tr
        for c, md_cell in zip(ln.cells, md_row[1:], strict=True):
            assert c.ci in md_cell and htmllib.escape(c.ci) in tr
            for text in (c.display_value, c.paper, c.note, c.paper_note):
                assert md_escape(text) in md_cell and htmllib.escape(text) in tr, (ln.row_id, text)
                n_shown += bool(text)
    assert n_shown > 40
    paired = md_table(md, "## Paired comparisons")
    assert paired[0] == list(table.paired_columns)
    for p, md_row in zip(table.paired, paired[2:], strict=True):
        assert md_row[:2] == [md_escape(p.row), md_escape(p.vs)]
        assert md_row[2:] == [" ".join(x for x in (c.display_value, c.ci, c.note) if x) for c in p.cells]
        for c in p.cells:
            assert htmllib.escape(c.note) in page


def test_row_note_on_a_scored_row_is_marked_in_both_formats(tmp_path):
    """A run note on a row WITH scores (e.g. a warning from the run summary) marks that row in the
    Markdown table and lists the note below it, and shows it in the row's name cell in the HTML."""
    notes = {**NOTES, "rmx-a": "eval warning: 3 problems <timed out> & were scored wrong"}
    board = B.build_board(make_spec(), make_records(), make_costs(), notes, make_reference())
    ln = lines_by_id(build_table(board))["rmx-a"]
    assert ln.cells[0].display_value == "0.700"  # the row has scores
    assert ln.name.note_mark == "note 2" and ln.name.note == notes["rmx-a"]  # rl-gone's note is 1
    md, page = (p.read_text(encoding="utf-8") for p in B.render(
        make_spec(), make_records(), make_costs(), notes, make_reference(), tmp_path))
    rows = md_table(md, "## Results")
    assert row_named(rows, "↪ + ReasonMaxxer")[0] == "↪ + ReasonMaxxer (note 2)"
    assert row_named(rows, "↪ + RMX small")[0] == "↪ + RMX small (note 3)"
    assert ("2. Evil&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co ↪ + ReasonMaxxer (`rmx-a`): eval warning: "
            "3 problems &lt;timed out&gt; &amp; were scored wrong") in md
    tr = re.search(r'<tr [^>]*data-row="rmx-a">(.*?)</tr>', page, re.S).group(1)
    assert '<span class="note">eval warning: 3 problems &lt;timed out&gt; &amp; were scored wrong</span>' in tr


def test_legend_is_one_text_in_both_formats(tmp_path):
    board = B.build_board(make_spec(), make_records(), make_costs(), NOTES, make_reference(), n_resamples=300)
    table = build_table(board)
    assert any("(300 resamples, seeded)" in tx for _, tx in table.legend)
    md = render_markdown(table)
    from rmxbench.board.html import render_html

    page = render_html(table)
    styles = {st for st, _ in table.legend}
    assert styles == {"", "b", "i", "tag"}
    for st, tx in table.legend:
        assert tx.strip().replace("'", "&#x27;") in page, tx
        assert tx.strip() in md, tx
    assert "**Bold**" in md and "<b>Bold</b>" in page and "\\[paper only\\]" in md
    assert '<span class="tag">no checkpoint</span>' in page


def _renderer_tree(name: str) -> ast.Module:
    return ast.parse((BOARD / f"{name}.py").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["markdown", "html"])
def test_renderers_only_lay_out(name):
    """Acceptance (issue 17): board/markdown.py and board/html.py contain no number formatting or
    cell decisions: they import only the formatted table (and Markdown's escaper), use no format
    spec, ``round`` or ``%``, and never read a number."""
    tree = _renderer_tree(name)
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                for a in n.names if n.module.startswith("rmxbench")}
    allowed = {("rmxbench.board.table", x) for x in ("Cell", "NameCell", "Table")} | {("rmxbench.board.text", "md_escape")}
    assert imported <= allowed, imported - allowed
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import) and any(a.name.startswith("rmxbench") for a in n.names)]
    specs = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.FormattedValue) and n.format_spec is not None]
    assert not specs, specs
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & {"round", "format", "float", "int", "abs", "min", "max", "sum"}, calls
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod)]
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    numbers = {"value", "score", "reported", "best", "diff", "usd", "cost", "avg", "per_task", "delta", "p"}
    assert not attrs & numbers, attrs & numbers
