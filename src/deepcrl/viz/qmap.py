"""`deepcrl qmap`'s figure: a critic's value over the maze for one goal, drawn over the walls, with its
topology scores (deepcrl.analysis.value_map)."""

from __future__ import annotations

from pathlib import Path

from deepcrl.analysis.value_map import ValueMap
from deepcrl.render.maze import draw_maze

ACTION_TEXT = {"policy": "the policy's action", "zero": "the zero action", "best": "the best of 16 policy actions"}


def qmap_figure(vmap: ValueMap):
    """The matplotlib Figure of a value map: values as colours on the free cells, walls grey, the goal a star."""
    from matplotlib.figure import Figure

    layout = vmap.layout
    aspect = layout.height / max(layout.width, 1)
    fig = Figure(figsize=(6.4, max(3.0, 5.2 * aspect) + 1.0), dpi=110, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    draw_maze(ax, layout, vmap.cell_size)
    extent = (0.0, layout.width * vmap.cell_size, 0.0, layout.height * vmap.cell_size)
    image = ax.imshow(vmap.values, extent=extent, origin="lower", cmap="viridis", interpolation="nearest", zorder=1)
    ax.plot(*vmap.goal, marker="*", color="red", markersize=16, markeredgecolor="white", zorder=3, label="goal")
    for row, col in layout.start_cells:
        ax.plot((col + 0.5) * vmap.cell_size, (row + 0.5) * vmap.cell_size, "o", mfc="none", mec="white", ms=10, zorder=3)
    fig.colorbar(image, ax=ax, label=f"critic value of {ACTION_TEXT[vmap.action]} (higher: closer to the goal)")
    s = vmap.scores
    ax.set_title(
        f"{vmap.label}\ngoal ({vmap.goal[0]:g}, {vmap.goal[1]:g}); Spearman with minus the path distance {s['spearman_geodesic']:.2f}, "
        f"with minus the straight line {s['spearman_euclidean']:.2f}",
        fontsize=8,
    )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return fig


def write_qmap(vmap: ValueMap, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lstrip(".").lower() or "png"
    tmp = out.with_name(f".{out.name}.tmp")
    qmap_figure(vmap).savefig(tmp, format=suffix)
    tmp.replace(out)
    return out
