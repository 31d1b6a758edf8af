"""Chart renderer of the board: score vs cost scatter (matplotlib PNG)."""


from __future__ import annotations


from rmxbench.board.model import Board

#: What the chart shows (image alt text / link text) and how to read its markers (caption).
TITLE = "Avg score vs training cost (log scale)"
CAPTION = "Avg vs training cost: filled = reproduced, hollow = paper; square = RL baseline, star = ReasonMaxxer."


# --------------------------------------------------------------------------- chart


def chart_points(board: Board) -> list[dict]:
    """Points of the Avg-vs-cost chart: one per row and source (reproduced / paper) with a USD cost.

    Reproduced points need a complete reproduced Avg and a USD cost (measured or published);
    paper points need the paper's Avg and cost. Base rows have no training cost and are not drawn.
    """
    pts = []
    for r in board.rows():
        label = f"{r.base_name} {r.display_name}"
        if r.avg.score is not None and r.complete and r.cost is not None and r.cost.usd is not None and r.cost.usd > 0:
            pts.append({"family": r.family, "kind": r.kind, "label": label, "usd": float(r.cost.usd),
                        "avg": r.avg.score, "source": "reproduced"})
        if r.avg.reported is not None and r.reported_cost is not None and r.reported_cost[0] > 0:
            pts.append({"family": r.family, "kind": r.kind, "label": label, "usd": r.reported_cost[0],
                        "avg": r.avg.reported, "source": "paper"})
    return pts


def render_chart(board: Board) -> bytes | None:
    """PNG bytes of Avg score vs training cost (USD, log x), coloured by family; None if no point.

    Filled markers: reproduced Avg at the row's cost; hollow: the paper's Avg and cost. Square:
    RL baseline; star: ReasonMaxxer. Uses matplotlib's object API (no pyplot state) and strips
    the PNG's software metadata so the bytes depend only on the inputs (and matplotlib version).
    """
    pts = chart_points(board)
    if not pts:
        return None
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(8.5, 4.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fams = list(board.families)
    colors = {f: f"C{i % 10}" for i, f in enumerate(fams)}
    for p in pts:
        c = colors[p["family"]]
        marker = "*" if p["kind"] == "reasonmaxxer" else "s"
        size = 140 if marker == "*" else 50
        if p["source"] == "reproduced":
            ax.scatter([p["usd"]], [p["avg"]], marker=marker, s=size, color=c, zorder=3)
        else:
            ax.scatter([p["usd"]], [p["avg"]], marker=marker, s=size, facecolors="none", edgecolors=c, zorder=2)
        ax.annotate(p["label"].replace("$", r"\$"), (p["usd"], p["avg"]), xytext=(4, 3),
                    textcoords="offset points", fontsize=6, color="#444")
    ax.set_xscale("log")
    ax.set_xlabel("training cost (USD, log scale)")
    ax.set_ylabel("Avg score")
    ax.set_title(f"{board.view.suite}: Avg vs training cost".replace("$", r"\$"), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[f], label=f.replace("$", r"\$"))
               for f in fams if any(p["family"] == f for p in pts)]
    handles += [
        Line2D([], [], marker="s", linestyle="", color="#666", label="RL baseline"),
        Line2D([], [], marker="*", linestyle="", color="#666", markersize=10, label="ReasonMaxxer"),
        Line2D([], [], marker="o", linestyle="", color="#666", label="reproduced"),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="#666", label="paper"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
