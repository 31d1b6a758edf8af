"""HTML renderer of the board: one self-contained file (inline CSS/JS, every spec string escaped)."""


from __future__ import annotations

import html
import json
import warnings

from rmxbench.board import statistics as stats


#: Column labels of the tasks (paper Table 3 headers), from the benchmark registry.
from rmxbench.evaluation.benchmarks import LABELS as TASK_LABELS  # noqa: E402

from rmxbench.board.model import Board, Row, Score
from rmxbench.board.text import (NO_PAIRED, PAIRED_LEGEND, PAIRED_TITLE, _cost_prov, _h, _missing_tag, _script_json,
                                 cost_ratio_text, cost_sort_key, cost_text, figure_caption, paper_cost_shown, fmt_ci, fmt_diff, fmt_p, fmt_usd,
                                 provenance)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .5em}
.meta{font-size:.9em;color:#444;margin:.4em 0 1em;padding-left:1.2em}
table{border-collapse:collapse;margin:.3em 0}
th,td{padding:.3em .55em;border-bottom:1px solid #e3e3e3;vertical-align:top}
thead th{position:sticky;top:0;background:#f7f7f7;border-bottom:2px solid #999;text-align:right;white-space:nowrap}
thead th:first-child{text-align:left}
th.sortable{cursor:pointer;user-select:none}th.sortable:hover{background:#ececec}
th.sortable::after{content:" \\2195";color:#aaa}
th[aria-sort=descending]::after{content:" \\2193";color:#333}th[aria-sort=ascending]::after{content:" \\2191";color:#333}
tbody.fam-head th{text-align:left;background:#eef2f7;font-size:1.02em;border-top:2px solid #999}
td.name{text-align:left;white-space:nowrap}
td.name .base{color:#888;font-size:.85em;margin-right:.35em}
td.num,td.cost{text-align:right;cursor:pointer}
tr.rl_baseline{background:#f6f6f6}tr.reasonmaxxer{background:#fdf7e6}
.v{font-variant-numeric:tabular-nums;display:block}
.best .v{font-weight:700}
.ci,.ref,.incomplete,.basis{display:block;font-size:.78em;color:#666;font-variant-numeric:tabular-nums}
.ref .paper,.ref .diff{display:inline}.diff{color:#333}
td.cost .paper,.paper-only .paper{display:block}
.paper-only .paper{color:#555;font-style:italic;font-size:.9em}
.tag{font-size:.75em;background:#eee;border-radius:3px;padding:0 .3em;margin-left:.3em;color:#555}
.note{font-size:.78em;color:#8a5a00;display:block;white-space:normal;max-width:22em}
em.est{font-style:italic}
#details{position:fixed;right:1em;bottom:1em;max-width:34em;max-height:60vh;overflow:auto;background:#fff;
border:1px solid #999;box-shadow:0 2px 8px rgba(0,0,0,.2);padding:.6em .8em;font-size:.85em}
#details dl{display:grid;grid-template-columns:auto 1fr;gap:.15em .8em;margin:.3em 0}
#details dt{color:#666}#details dd{margin:0;word-break:break-all}
#details button{float:right}
td.selected{outline:2px solid #3a7bd5}
.chart img{max-width:100%;height:auto}.chart figcaption{font-size:.8em;color:#666}
.legend,.warn{font-size:.85em;color:#555;max-width:70em}
""".strip()

_JS = r"""
(function(){
"use strict";
var prov=JSON.parse(document.getElementById("rmx-prov").textContent);
function key(td,text){
  if(!td){return null;}
  var s=td.getAttribute("data-sort");
  if(s===null||s===""){return null;}
  if(text){return s;}
  var f=parseFloat(s);return isNaN(f)?null:f;
}
function sortTable(table,col,th){
  var cur=th.getAttribute("aria-sort");
  var next=cur==="descending"?"ascending":(cur==="ascending"?"none":"descending");
  var heads=table.querySelectorAll("thead th");
  for(var i=0;i<heads.length;i++){heads[i].setAttribute("aria-sort","none");}
  th.setAttribute("aria-sort",next);
  var text=th.getAttribute("data-type")==="text";
  var groups=table.querySelectorAll("tbody.sortable");
  for(var g=0;g<groups.length;g++){
    var body=groups[g];
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var ia=+a.getAttribute("data-idx"),ib=+b.getAttribute("data-idx");
      if(next==="none"){return ia-ib;}
      var x=key(a.cells[col],text),y=key(b.cells[col],text);
      if(x===null&&y===null){return ia-ib;}
      if(x===null){return 1;}if(y===null){return -1;}
      var c;
      if(text){c=x<y?-1:(x>y?1:0);}else{c=x-y;}
      if(next==="descending"){c=-c;}
      return c!==0?c:ia-ib;
    });
    for(var r=0;r<rows.length;r++){body.appendChild(rows[r]);}
  }
}
var tables=document.querySelectorAll("table.sortable-table");
Array.prototype.forEach.call(tables,function(table){
  var heads=table.querySelectorAll("thead th.sortable");
  Array.prototype.forEach.call(heads,function(th){
    var col=+th.getAttribute("data-col");
    th.addEventListener("click",function(){sortTable(table,col,th);});
    th.addEventListener("keydown",function(ev){if(ev.key==="Enter"||ev.key===" "){ev.preventDefault();sortTable(table,col,th);}});
  });
});
var panel=document.getElementById("details");
var dl=document.getElementById("details-dl");
var title=document.getElementById("details-title");
var selected=null;
function show(td){
  var key=td.getAttribute("data-prov");var items=prov[key];
  if(!items){return;}
  if(selected){selected.classList.remove("selected");}
  selected=td;td.classList.add("selected");
  while(dl.firstChild){dl.removeChild(dl.firstChild);}
  title.textContent=td.getAttribute("data-label")||key;
  for(var i=0;i<items.length;i++){
    var dt=document.createElement("dt");dt.textContent=items[i][0];
    var dd=document.createElement("dd");dd.textContent=items[i][1];
    dl.appendChild(dt);dl.appendChild(dd);
  }
  panel.hidden=false;
}
document.addEventListener("click",function(ev){
  var td=ev.target.closest?ev.target.closest("td[data-prov]"):null;
  if(td){show(td);}
});
document.getElementById("details-close").addEventListener("click",function(){
  panel.hidden=true;if(selected){selected.classList.remove("selected");selected=null;}
});
})();
""".strip()


def _title(items: list[tuple[str, str]]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in items)


def _html_cell(board: Board, row: Row, cell: Score, prov_map: dict, label: str) -> str:
    key = f"{row.row_id}/{cell.task}"
    items = provenance(board, row, cell)
    prov_map[key] = items
    cls = ["num"]
    if cell.best:
        cls.append("best")
    sort = cell.score if cell.score is not None else cell.reported
    parts = []
    if cell.score is not None:
        parts.append(f'<span class="v">{cell.score:.3f}</span>')
        if cell.ci is not None:
            parts.append(f'<span class="ci">{fmt_ci(cell.ci)}</span>')
        if cell.reported is not None:
            parts.append(
                f'<span class="ref"><span class="paper">paper {cell.reported:.3f}</span> '
                f'<span class="diff">{fmt_diff(cell.diff)}</span></span>'
            )
    elif cell.reported is not None:
        cls.append("paper-only")
        parts.append(f'<span class="paper">paper {cell.reported:.3f}</span>')
    else:
        parts.append('<span class="v">—</span>')
    return (
        f'<td class="{" ".join(cls)}" data-sort="{"" if sort is None else f"{sort:.6f}"}" '
        f'data-prov="{_h(key)}" data-label="{_h(label)}" title="{_h(_title(items))}">{"".join(parts)}</td>'
    )


def _html_avg(board: Board, row: Row, prov_map: dict, label: str) -> str:
    c = row.avg
    key = f"{row.row_id}/avg"
    items = [("row", row.row_id), ("tasks averaged", f"{row.avg_tasks}/{len(board.view.tasks)}")]
    if c.score is not None:
        items.append(("avg", f"{c.score:.4f}"))
        items.append(("95% CI", fmt_ci(c.ci) or "n/a"))
        items.append(("CI method", "stratified percentile bootstrap (each task's problems resampled)"))
    if c.reported is not None:
        items.append(("paper", f"{c.reported:.3f}"))
    prov_map[key] = items
    cls = ["num"] + (["best"] if c.best else [])
    parts = []
    if c.score is not None:
        parts.append(f'<span class="v">{c.score:.3f}</span>')
        if c.ci is not None:
            parts.append(f'<span class="ci">{fmt_ci(c.ci)}</span>')
        if not row.complete:
            parts.append(f'<span class="incomplete">incomplete: {row.avg_tasks}/{len(board.view.tasks)} tasks</span>')
        if c.reported is not None:
            d = f' <span class="diff">{fmt_diff(c.score - c.reported)}</span>' if row.complete else ""
            parts.append(f'<span class="ref"><span class="paper">paper {c.reported:.3f}</span>{d}</span>')
    elif c.reported is not None:
        cls.append("paper-only")
        parts.append(f'<span class="paper">paper {c.reported:.3f}</span>')
    else:
        parts.append('<span class="v">—</span>')
    sort = c.score if c.score is not None else c.reported
    return (
        f'<td class="{" ".join(cls)}" data-sort="{"" if sort is None else f"{sort:.6f}"}" '
        f'data-prov="{_h(key)}" data-label="{_h(label)}" title="{_h(_title(items))}">{"".join(parts)}</td>'
    )


def _html_cost(row: Row, prov_map: dict, label: str) -> str:
    key = f"{row.row_id}/cost"
    items = _cost_prov(row)
    prov_map[key] = items
    c = row.cost
    txt = cost_text(c)
    parts = []
    if txt is not None:
        v = f'<em class="est">{_h(txt)}</em>' if c.basis == "estimated" else _h(txt)
        parts.append(f'<span class="v">{v}</span><span class="basis">{_h(c.basis)}</span>')
    if (paper := paper_cost_shown(row)) is not None:
        usd, basis = paper
        ptxt = f'<em class="est">{_h(fmt_usd(usd))}</em>' if basis == "estimated" else _h(fmt_usd(usd))
        parts.append(f'<span class="paper">paper {ptxt} ({_h(basis or "basis not given")})</span>')
    if not parts:
        parts.append('<span class="v">—</span>')
    sort = cost_sort_key(c)
    if sort is None and row.reported_cost is not None:
        sort = row.reported_cost[0]
    return (
        f'<td class="cost" data-sort="{"" if sort is None else f"{sort:.6f}"}" data-prov="{_h(key)}" '
        f'data-label="{_h(label)}" title="{_h(_title(items))}">{"".join(parts)}</td>'
    )


def render_html(board: Board, chart_png: bytes | None = None, sections: str = "") -> str:
    """The board as one self-contained HTML document (inline CSS/JS, no external resources);
    ``chart_png`` is embedded as a ``data:`` URI; ``sections``: HTML of the spec's analyses
    (already escaped, figures embedded), shown under their own heading."""
    prov_map: dict[str, list[tuple[str, str]]] = {}
    heads = ["Model", *[f"{TASK_LABELS.get(t, t)} {board.view.metrics[t]}" for t in board.view.tasks], "Avg", "Cost"]
    H: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rmxbench: {_h(board.view.suite)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>rmxbench leaderboard: {_h(board.view.suite)}</h1>",
    ]
    if board.view.description:
        H.append(f"<p>{_h(board.view.description)}</p>")
    H.append('<ul class="meta">' + "".join(f"<li><b>{_h(k)}</b>: {_h(v)}</li>" for k, v in board.view.meta) + "</ul>")
    H.append('<table id="board" class="board sortable-table">')
    H.append("<thead><tr>" + "".join(
        f'<th class="sortable" data-col="{i}" data-type="{"text" if i == 0 else "num"}" tabindex="0" '
        f'aria-sort="none" scope="col">{_h(h)}</th>'
        for i, h in enumerate(heads)
    ) + "</tr></thead>")
    ncol = len(heads)
    for fam, blocks in board.families.items():
        H.append(f'<tbody class="fam-head"><tr><th colspan="{ncol}" scope="rowgroup">{_h(fam)}</th></tr></tbody>')
        H.append(f'<tbody class="sortable" data-family="{_h(fam)}">')
        idx = 0
        for b in blocks:
            for r in b.rows:
                label = r.view.label if r.kind == "base" else f"{r.base_name} {r.display_name}"
                name = ""
                if r.kind != "base":
                    name += f'<span class="base">{_h(r.base_name)}</span>'
                name += _h(r.view.label)
                if not r.reproduced:
                    name += f'<span class="tag">{_missing_tag(r)}</span>'
                if r.note:
                    name += f'<span class="note">{_h(r.note)}</span>'
                sort_name = f"{r.base_name} {r.display_name}" if r.kind != "base" else r.display_name
                cells = [
                    f'<td class="name" data-sort="{_h(sort_name)}" title="{_h(r.row_id)}">{name}</td>',
                    *[_html_cell(board, r, r.cells[t], prov_map, f"{label} / {TASK_LABELS.get(t, t)}") for t in board.view.tasks],
                    _html_avg(board, r, prov_map, f"{label} / Avg"),
                    _html_cost(r, prov_map, f"{label} / Cost"),
                ]
                H.append(f'<tr class="{r.kind}" data-idx="{idx}" data-row="{_h(r.row_id)}">' + "".join(cells) + "</tr>")
                idx += 1
        H.append("</tbody>")
    H.append("</table>")
    H.append(
        '<p class="legend">Cells: reproduced score, 95% percentile-bootstrap CI over problems '
        f"({stats.N_RESAMPLES} resamples, seeded), the paper's value and reproduced − paper. "
        "<b>Bold</b>: best reproduced value in the column among a base model's rows. "
        "<i>Italic</i> cost: estimated (as in the paper). Avg: mean of the task columns the row has. "
        "Click a header to sort within each family (descending, ascending, original); "
        "hover or click a cell for its provenance.</p>"
    )
    import base64

    if chart_png is not None:
        H.append(
            '<figure class="chart"><img alt="Avg score vs training cost (log scale)" '
            f'src="data:image/png;base64,{base64.b64encode(chart_png).decode("ascii")}">'
            "<figcaption>Avg vs training cost: filled = reproduced, hollow = paper; "
            "square = RL baseline, star = ReasonMaxxer.</figcaption></figure>"
        )
    if board.cost_ratios:
        H.append('<ul class="ratios">' + "".join(f"<li>{_h(cost_ratio_text(r))}</li>" for r in board.cost_ratios) + "</ul>")
    for f in board.figures:
        H.append(f'<figure class="chart"><img alt="{_h(figure_caption(f))}" '
                 f'src="data:image/png;base64,{base64.b64encode(f.png).decode("ascii")}">'
                 f"<figcaption>{_h(figure_caption(f))}</figcaption></figure>")
    H.append(f"<h2>{_h(PAIRED_TITLE)}</h2>")
    if board.comparisons:
        heads2 = ["Row", "vs", *[f"{TASK_LABELS.get(t, t)} {board.view.metrics[t]}" for t in board.view.tasks], "Avg"]
        H.append('<table id="paired" class="paired"><thead><tr>' + "".join(f'<th scope="col">{_h(h)}</th>' for h in heads2) + "</tr></thead><tbody>")
        for c in board.comparisons:
            tds = [
                f'<td class="name">{_h(c.rmx.base_name)} {_h(c.rmx.display_name)}</td>',
                f'<td class="name">{_h(c.other.display_name + " (base)" if c.other.kind == "base" else c.other.view.label)}</td>',
            ]
            for t, res in [*[(t, c.per_task.get(t)) for t in board.view.tasks], ("avg", c.avg)]:
                if res is None:
                    tds.append('<td class="num">—</td>')
                    continue
                tip = (f"Δ {res.delta:+.4f}\n95% CI [{res.ci[0]:+.4f}, {res.ci[1]:+.4f}]\n"
                       f"p {res.p:.4g} ({res.test})\nshared problems {res.n}")
                tds.append(
                    f'<td class="num" title="{_h(tip)}"><span class="v">{fmt_diff(res.delta)}</span>'
                    f'<span class="ci">[{fmt_diff(res.ci[0])}, {fmt_diff(res.ci[1])}]</span>'
                    f'<span class="diff">{fmt_p(res.p)}</span></td>'
                )
            H.append("<tr>" + "".join(tds) + "</tr>")
        H.append("</tbody></table>")
        H.append(f'<p class="legend">{_h(PAIRED_LEGEND.format(n=stats.N_RESAMPLES))}</p>')
    else:
        H.append(f"<p>{_h(NO_PAIRED)}</p>")
    if sections:
        H.append(f"<h2>Analyses (paper §3, §4, §6.3)</h2>\n{sections}")
    if board.warnings:
        H.append("<h2>Warnings</h2><ul class=\"warn\">" + "".join(f"<li>{_h(w)}</li>" for w in board.warnings) + "</ul>")
    H.append(
        '<div id="details" hidden><button type="button" id="details-close" aria-label="close">×</button>'
        '<b id="details-title"></b><dl id="details-dl"></dl></div>'
    )
    H.append(f'<script type="application/json" id="rmx-prov">{_script_json(prov_map)}</script>')
    H.append(f"<script>{_JS}</script>")
    H.append("</body></html>")
    return "\n".join(H) + "\n"
