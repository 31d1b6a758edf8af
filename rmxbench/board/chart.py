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


# --------------------------------------------------------------------------- per-seed scores (issue 19)


def seed_points(board: Board) -> list[dict]:
    """Points of the per-seed figure: one per (trained row, column, training seed) with a score.

    Trained rows are ReasonMaxxer rows and RL rows rmxbench trains (``train:``); columns are the task
    columns and ``avg``. A row without ``seeds:`` gives one point per column with ``seed`` None (its one
    run). Empty when no row of the board declares seeds (the figure is then not drawn).
    """
    from rmxbench.board.model import is_trained_rl

    if not board.has_seeds:
        return []
    pts = []
    for r in board.rows():
        if r.kind != "reasonmaxxer" and not is_trained_rl(r):
            continue
        for col, cell in [*r.cells.items(), ("avg", r.avg)]:
            if cell.seed_scores:
                pts += [{"row": r.row_id, "label": f"{r.base_name} {r.display_name}", "column": col, "seed": s,
                         "score": v, "mean": cell.score} for s, v in cell.seed_scores.items()]
            elif cell.score is not None:
                pts.append({"row": r.row_id, "label": f"{r.base_name} {r.display_name}", "column": col,
                            "seed": None, "score": cell.score, "mean": cell.score})
    return pts


def render_seed_chart(board: Board) -> bytes | None:
    """PNG bytes of every trained row's per-seed scores, one panel per task column and Avg: a dot per
    training seed (labelled with it), a bar at the mean over seeds (the board's value); a row without
    ``seeds:`` is one hollow dot. None when :func:`seed_points` is empty. Deterministic bytes (object
    API, no software metadata), like :func:`render_chart`."""
    pts = seed_points(board)
    if not pts:
        return None
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = [*board.view.tasks, "avg"]
    cols = [c for c in cols if any(p["column"] == c for p in pts)]
    rows = list(dict.fromkeys(p["row"] for p in pts))
    labels = {p["row"]: p["label"] for p in pts}
    fig = Figure(figsize=(max(4.0, 2.6 * len(cols)), 1.6 + 0.45 * len(rows)), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(cols), sharey=True, squeeze=False)[0]
    for ax, col in zip(axes, cols):
        for y, rid in enumerate(rows):
            mine = [p for p in pts if p["row"] == rid and p["column"] == col]
            if not mine:
                continue
            seeded = mine[0]["seed"] is not None
            xs = [p["score"] for p in mine]
            ax.scatter(xs, [y] * len(xs), s=28, color=f"C{y % 10}", facecolors=None if seeded else "none",
                       edgecolors=f"C{y % 10}", zorder=3)
            ax.plot([mine[0]["mean"]] * 2, [y - 0.18, y + 0.18], color="#333", lw=1.5, zorder=2)
            for p in mine if seeded else ():
                ax.annotate(str(p["seed"]), (p["score"], y), xytext=(0, 7), textcoords="offset points",
                            fontsize=6, ha="center", color="#444")
        title = "Avg" if col == "avg" else f"{board.view.task_labels[col]} {board.view.metrics[col]}"
        ax.set_title(title.replace("$", r"\$"), fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels([labels[r].replace("$", r"\$") for r in rows], fontsize=7)
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    axes[0].invert_yaxis()
    fig.suptitle(f"{board.view.suite}: per-seed scores of the trained rows".replace("$", r"\$"), fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
