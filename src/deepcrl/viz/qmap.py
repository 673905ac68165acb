"""`deepcrl qmap`'s figure: a critic's value over the maze for one goal, drawn over the walls, with its
topology scores (deepcrl.analysis.value_map)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepcrl.analysis.embedding import Embedding
from deepcrl.analysis.value_map import ValueMap
from deepcrl.render.maze import draw_maze

ACTION_TEXT = {"policy": "the policy's action", "zero": "the zero action", "best": "the best of 16 policy actions"}


def draw_value_map(fig, ax, vmap: ValueMap, colorbar: bool = True) -> None:
    """A value map on `ax`: values as colours on the free cells, walls grey, the goal a star, starts circled."""
    layout = vmap.layout
    draw_maze(ax, layout, vmap.cell_size)
    extent = (0.0, layout.width * vmap.cell_size, 0.0, layout.height * vmap.cell_size)
    image = ax.imshow(vmap.values, extent=extent, origin="lower", cmap="viridis", interpolation="nearest", zorder=1)
    ax.plot(*vmap.goal, marker="*", color="red", markersize=16, markeredgecolor="white", zorder=3, label="goal")
    for row, col in layout.start_cells:
        ax.plot((col + 0.5) * vmap.cell_size, (row + 0.5) * vmap.cell_size, "o", mfc="none", mec="white", ms=10, zorder=3)
    if colorbar:
        fig.colorbar(image, ax=ax, label=f"critic value of {ACTION_TEXT[vmap.action]} (higher: closer to the goal)")


def qmap_figure(vmap: ValueMap):
    """The matplotlib Figure of a value map, titled with its topology scores."""
    from matplotlib.figure import Figure

    aspect = vmap.layout.height / max(vmap.layout.width, 1)
    fig = Figure(figsize=(6.4, max(3.0, 5.2 * aspect) + 1.0), dpi=110, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    draw_value_map(fig, ax, vmap)
    s = vmap.scores
    ax.set_title(
        f"{vmap.label}\ngoal ({vmap.goal[0]:g}, {vmap.goal[1]:g}); Spearman with minus the path distance {s['spearman_geodesic']:.2f}, "
        f"with minus the straight line {s['spearman_euclidean']:.2f}" + (f"\n{vmap.direction}" if vmap.direction else ""),
        fontsize=8,
    )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return fig


def pca_figure(emb: Embedding):
    """phi(s_t, a_t) along the episode in 3-D (coloured by step), psi(g) a red star: the paper's embedding plot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.6), dpi=110, layout="constrained")
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    c = emb.components
    steps = np.arange(len(c))
    ax.plot(c[:, 0], c[:, 1], c[:, 2], color="grey", linewidth=0.6, alpha=0.6)
    points = ax.scatter(c[:, 0], c[:, 1], c[:, 2], c=steps, cmap="viridis", s=10, depthshade=False)
    ax.scatter(*c[0], marker="o", s=60, facecolors="none", edgecolors="black", label="start phi(s_0, a_0)")
    ax.scatter(*emb.goal, marker="*", s=200, color="red", edgecolors="white", label="psi(goal)")
    reached = np.flatnonzero(emb.success > 0)
    if len(reached):
        ax.scatter(*c[reached[0]], marker="D", s=40, color="orange", label=f"goal first reached (step {reached[0]})")
    fig.colorbar(points, ax=ax, label="step of the episode", shrink=0.7)
    ex = emb.explained
    ax.set_xlabel(f"PC 1 ({ex[0]:.0%})")
    ax.set_ylabel(f"PC 2 ({ex[1]:.0%})")
    ax.set_zlabel(f"PC 3 ({ex[2]:.0%})" if len(ex) > 2 else "PC 3")
    ax.set_title(
        f"{emb.label}\nphi(s, a) along one evaluation episode on its first three principal components\n"
        f"goal ({emb.goal_xy[0]:.2g}, {emb.goal_xy[1]:.2g}); distance to it {emb.distance[0]:.2f} -> {emb.distance[-1]:.2f}",
        fontsize=8,
    )
    ax.legend(fontsize=7, loc="upper left")
    return fig


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lstrip(".").lower() or "png"
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, format=suffix)
    tmp.replace(out)
    return out


def write_qmap(vmap: ValueMap, out: str | Path) -> Path:
    return _save(qmap_figure(vmap), out)


def write_pca(emb: Embedding, out: str | Path) -> Path:
    return _save(pca_figure(emb), out)
