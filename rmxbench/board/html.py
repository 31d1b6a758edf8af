"""HTML layout of the board: one self-contained file (inline CSS/JS) laying out the already formatted
cells of :class:`rmxbench.board.table.Table`; every string is escaped (no number formatting, no cell
decisions)."""


from __future__ import annotations

import base64
import html
import json
from typing import Any

from rmxbench.board.table import Cell, NameCell, Table

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



_STYLE = {"": "{}", "b": "<b>{}</b>", "i": "<i>{}</i>", "tag": '<span class="tag">{}</span>'}
_INTERACTION = ("Click a header to sort within each family (descending, ascending, original); "
                "hover or click a cell for its provenance.")


def _h(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _script_json(obj: Any) -> str:
    """JSON safe to embed in ``<script type="application/json">`` (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _value(c: Cell) -> str:
    return f'<em class="est">{_h(c.display_value)}</em>' if c.italic else _h(c.display_value)


def _paper(c: Cell) -> str:
    return f'<em class="est">{_h(c.paper)}</em>' if c.paper_italic else _h(c.paper)


def _td(c: Cell, prov_map: dict) -> str:
    """A task, Avg or Cost cell: ``<td>`` with sort key, provenance key, details title and tooltip."""
    prov_map[c.key] = list(c.provenance)
    parts = []
    if c.kind == "cost":
        cls = ["cost"]
        if c.display_value:
            parts.append(f'<span class="v">{_value(c)}</span>')
            if c.note:
                parts.append(f'<span class="basis">{_h(c.note)}</span>')
        if c.paper:
            parts.append(f'<span class="paper">paper {_paper(c)} ({_h(c.paper_note)})</span>')
    else:
        cls = ["num"] + (["best"] if c.bold else []) + (["paper-only"] if c.paper_only else [])
        if c.paper_only:
            parts.append(f'<span class="paper">paper {_paper(c)}</span>')
        else:
            parts.append(f'<span class="v">{_value(c)}</span>')
            if c.ci:
                parts.append(f'<span class="ci">{_h(c.ci)}</span>')
            if c.spread:
                parts.append(f'<span class="ci spread">{_h(c.spread)}</span>')
            if c.note:
                parts.append(f'<span class="incomplete">{_h(c.note)}</span>')
            if c.paper:
                d = f' <span class="diff">{_h(c.paper_note)}</span>' if c.paper_note else ""
                parts.append(f'<span class="ref"><span class="paper">paper {_paper(c)}</span>{d}</span>')
    return (
        f'<td class="{" ".join(cls)}" data-sort="{_h(c.sort_key)}" data-prov="{_h(c.key)}" '
        f'data-label="{_h(c.title)}" title="{_h(c.description)}">{"".join(parts)}</td>'
    )


def _paired_td(c: Cell) -> str:
    if not c.description:  # no comparison: the bare placeholder
        return f'<td class="num">{_h(c.display_value)}</td>'
    return (f'<td class="num" title="{_h(c.description)}"><span class="v">{_h(c.display_value)}</span>'
            f'<span class="ci">{_h(c.ci)}</span><span class="diff">{_h(c.note)}</span></td>')


def _name_td(n: NameCell) -> str:
    name = f'<span class="base">{_h(n.base)}</span>' if n.base else ""
    name += _h(n.label)
    if n.tag:
        name += f'<span class="tag">{_h(n.tag)}</span>'
    if n.note:
        name += f'<span class="note">{_h(n.note)}</span>'
    return f'<td class="name" data-sort="{_h(n.sort_key)}" title="{_h(n.description)}">{name}</td>'


def _img(alt: str, png: bytes) -> str:
    return f'<img alt="{_h(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def render_html(table: Table, chart_png: bytes | None = None, sections: str = "") -> str:
    """The board as one self-contained HTML document (inline CSS/JS, no external resources);
    ``chart_png`` is embedded as a ``data:`` URI; ``sections``: HTML of the spec's analyses
    (already escaped, figures embedded), shown under their own heading."""
    prov_map: dict[str, list[tuple[str, str]]] = {}
    H: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rmxbench: {_h(table.suite)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{_h(table.heading)}</h1>",
    ]
    if table.description:
        H.append(f"<p>{_h(table.description)}</p>")
    H.append('<ul class="meta">' + "".join(f"<li><b>{_h(k)}</b>: {_h(v)}</li>" for k, v in table.meta) + "</ul>")
    H.append('<table id="board" class="board sortable-table">')
    H.append("<thead><tr>" + "".join(
        f'<th class="sortable" data-col="{i}" data-type="{"text" if i == 0 else "num"}" tabindex="0" '
        f'aria-sort="none" scope="col">{_h(h)}</th>'
        for i, h in enumerate(table.columns)
    ) + "</tr></thead>")
    ncol = len(table.columns)
    for fam, lines in table.groups.items():
        H.append(f'<tbody class="fam-head"><tr><th colspan="{ncol}" scope="rowgroup">{_h(fam)}</th></tr></tbody>')
        H.append(f'<tbody class="sortable" data-family="{_h(fam)}">')
        for idx, ln in enumerate(lines):
            tds = [_name_td(ln.name), *(_td(c, prov_map) for c in ln.cells)]
            H.append(f'<tr class="{ln.kind}" data-idx="{idx}" data-row="{_h(ln.row_id)}">' + "".join(tds) + "</tr>")
        H.append("</tbody>")
    H.append("</table>")
    legend = "".join(_STYLE[st].format(_h(tx)) for st, tx in table.legend)
    H.append(f'<p class="legend">{legend} {_INTERACTION}</p>')
    if chart_png is not None:
        H.append(
            f'<figure class="chart">{_img(table.chart_title, chart_png)}'
            f"<figcaption>{_h(table.chart_caption)}</figcaption></figure>"
        )
    if table.cost_ratios:
        H.append('<ul class="ratios">' + "".join(f"<li>{_h(r)}</li>" for r in table.cost_ratios) + "</ul>")
    for f in table.figures:
        H.append(f'<figure class="chart">{_img(f.caption, f.png)}<figcaption>{_h(f.caption)}</figcaption></figure>')
    H.append(f"<h2>{_h(table.paired_title)}</h2>")
    if table.paired:
        H.append('<table id="paired" class="paired"><thead><tr>'
                 + "".join(f'<th scope="col">{_h(h)}</th>' for h in table.paired_columns) + "</tr></thead><tbody>")
        for p in table.paired:
            tds = [f'<td class="name">{_h(p.row)}</td>', f'<td class="name">{_h(p.vs)}</td>', *map(_paired_td, p.cells)]
            H.append("<tr>" + "".join(tds) + "</tr>")
        H.append("</tbody></table>")
        H.append(f'<p class="legend">{_h(table.paired_legend)}</p>')
    else:
        H.append(f"<p>{_h(table.no_paired)}</p>")
    if sections:
        H.append(f"<h2>{_h(table.analyses_title)}</h2>\n{sections}")
    if table.warnings:
        H.append("<h2>Warnings</h2><ul class=\"warn\">" + "".join(f"<li>{_h(w)}</li>" for w in table.warnings) + "</ul>")
    H.append(
        '<div id="details" hidden><button type="button" id="details-close" aria-label="close">×</button>'
        '<b id="details-title"></b><dl id="details-dl"></dl></div>'
    )
    H.append(f'<script type="application/json" id="rmx-prov">{_script_json(prov_map)}</script>')
    H.append(f"<script>{_JS}</script>")
    H.append("</body></html>")
    return "\n".join(H) + "\n"
