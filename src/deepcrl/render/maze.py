"""Point mazes drawn with matplotlib (Agg, no display): the maze itself (`draw_maze`, reusable: value
maps draw over it) and the frames of an episode (`PointFrames`).

The picture shows the world from above with y upwards, so row 0 of the layout file is at the bottom
(the same view as the MuJoCo mazes from above). Walls are grey, the agent a blue square of its size,
its path so far a line, the goal a magenta disc of the success radius with a dot at its centre.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from deepcrl.render.common import AGENT_RGB, GOAL_RGB, TEXT_MIN_SIZE, caption

WALL_GREY, FLOOR_GREY = 0.45, 0.96


def draw_maze(
    ax: Any, layout: Any, cell_size: float = 1.0, *, wall: float = WALL_GREY, floor: float = FLOOR_GREY, zorder: float = 0
) -> tuple[float, float, float, float]:
    """Draw a layout's walls and floor on a matplotlib Axes in world coordinates (cell (row, col) covers
    x in [col, col + 1) * cell_size, y in [row, row + 1) * cell_size, y upwards), fit the axes to it with
    equal aspect, and return the extent (x0, x1, y0, y1)."""
    walls = np.asarray(layout.wall_array, bool)
    image = np.where(walls[..., None], wall, floor) * np.ones(3)
    extent = (0.0, layout.width * cell_size, 0.0, layout.height * cell_size)
    ax.imshow(image, extent=extent, origin="lower", interpolation="nearest", zorder=zorder)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal", adjustable="box", anchor="C")
    return extent


class PointFrames:
    """Frames of a point-mass maze, drawn with matplotlib (Agg, no display)."""

    def __init__(self, env, width: int, height: int):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Circle, Rectangle

        self.env = env
        self.width, self.height = width, height
        dpi = 100
        fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
        self._canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        cs = float(env.cell_size)
        draw_maze(ax, env.layout, cs)
        r, thr = float(env.radius), float(env.goal_threshold)
        self._goal = ax.add_patch(Circle((0, 0), thr, facecolor=(*GOAL_RGB, 0.3), edgecolor=GOAL_RGB, linewidth=1.5, zorder=2))
        self._goal_dot = ax.add_patch(Circle((0, 0), min(0.3 * thr, 0.15 * cs), facecolor=GOAL_RGB, edgecolor="none", zorder=3))
        self._path = ax.add_line(Line2D([], [], color=(*AGENT_RGB, 0.6), linewidth=max(1.0, height / 240), zorder=4))
        self._agent = ax.add_patch(Rectangle((0, 0), 2 * r, 2 * r, facecolor=AGENT_RGB, edgecolor="black", linewidth=0.5, zorder=5))
        self._text = None
        if width >= TEXT_MIN_SIZE[0] // 2 and height >= TEXT_MIN_SIZE[1] // 2:
            self._text = ax.text(
                0.01,
                0.99,
                "",
                transform=ax.transAxes,
                va="top",
                ha="left",
                fontsize=max(4.0, min(width, height) / 40),
                family="monospace",
                zorder=6,
                bbox=dict(facecolor="white", alpha=0.7, edgecolor="none", pad=2),
            )

    def _pixels(self) -> np.ndarray:
        self._canvas.draw()
        rgb = np.asarray(self._canvas.buffer_rgba())[..., :3]
        if rgb.shape[:2] != (self.height, self.width):  # a figure size that rounded to one pixel less
            out = np.full((self.height, self.width, 3), 255, np.uint8)
            h, w = min(self.height, rgb.shape[0]), min(self.width, rgb.shape[1])
            out[:h, :w] = rgb[:h, :w]
            return out
        return rgb.copy()

    def episode(self, data: dict, e: int) -> Iterator[np.ndarray]:
        steps = np.flatnonzero(data["drawn"][e])
        pos = data["pos"][e]
        goal = tuple(float(v) for v in data["goal"][e, 0])
        self._goal.center = goal
        self._goal_dot.center = goal
        r = float(self.env.radius)
        for t in steps:
            self._path.set_data(pos[: t + 1, 0], pos[: t + 1, 1])
            self._agent.set_xy((pos[t, 0] - r, pos[t, 1] - r))
            if self._text is not None:
                self._text.set_text("\n".join(caption(data, e, int(t))))
            yield self._pixels()

    def close(self) -> None:
        pass
