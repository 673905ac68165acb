"""Maze walls for MuJoCo tasks, built from the same `Layout`s as the point mazes.

Cell (row, col) covers x in [col, col + 1) * cell_size and y in [row, row + 1) * cell_size, exactly as
in `PointMaze`, so a layout, its start/goal cells and any `maze:PATH` file mean the same place for the
point mass, the ant and the humanoid. Walls become static boxes, one per wall cell.

MJX tests every pair of colliding geoms at every physics step, so a maze with 38 wall boxes would
make the ant 7x slower than in the open. `walls_xml` therefore also sets MJX's broad phase
(`max_geom_pairs`): per pair of geom types only the k pairs whose bounding spheres are closest go on
to the exact test. Boxes are kept one per cell (not merged into long runs) so that bounding-sphere
distance ranks walls by how close they really are.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.layouts import Layout
from deepcrl.envs.mujoco.base import FLOOR_ASSETS


def wall_boxes(layout: Layout, cell_size: float) -> list[tuple[float, float, float, float]]:
    """One box per wall cell: (centre x, centre y, half x, half y)."""
    half = cell_size / 2
    return [
        ((c + 0.5) * cell_size, (r + 0.5) * cell_size, half, half)
        for r in range(layout.height)
        for c in range(layout.width)
        if layout.walls[r][c]
    ]


def walls_xml(layout: Layout, cell_size: float, height: float, *, contype: int = 1, conaffinity: int = 0) -> str:
    """MJCF <geom> elements (for the worldbody) of the layout's walls, `height` metres tall."""
    return "\n".join(
        f'<geom name="wall{i}" type="box" pos="{x:g} {y:g} {height / 2:g}" size="{hx:g} {hy:g} {height / 2:g}" '
        f'contype="{contype}" conaffinity="{conaffinity}" condim="1" priority="1" material="wall" rgba="0.7 0.7 0.7 1"/>'
        for i, (x, y, hx, hy) in enumerate(wall_boxes(layout, cell_size))
    )


def arena_xml(
    header: str, layout: Layout | None, cell_size: float, wall_height: float, *, wall_contype: int, floor_contype: int, max_wall_pairs: int
) -> str:
    """A locomotion task's MJCF up to its first body: `header` (base.mjcf_header), the floor's textures
    and, with walls, MJX's cap on the geom pairs it tests exactly per step, then the opened worldbody with
    a light, the floor and the walls of `layout` (`layout=None` is the open field)."""
    custom = "" if layout is None else f'<custom><numeric name="max_geom_pairs" data="{max_wall_pairs}"/></custom>'
    walls = "" if layout is None else walls_xml(layout, cell_size, wall_height, contype=wall_contype)
    return f"""
{header}
  {FLOOR_ASSETS}
  {custom}
  <worldbody>
    <light pos="0 0 30" dir="0 0 -1" directional="true"/>
    <geom name="floor" type="plane" size="0 0 0.1" material="grid" contype="{floor_contype}" conaffinity="0"/>
    {walls}"""


def cell_centres(cells, cell_size: float) -> jax.Array:
    """[n, 2] float32 (x, y) centres of (row, col) cells."""
    rc = np.array(cells, dtype=np.float32).reshape(-1, 2)
    return jnp.asarray((rc[:, ::-1] + 0.5) * cell_size)


def sample_in_cells(key: jax.Array, centres: jax.Array, half_width: float) -> jax.Array:
    """(x, y): the centre of a random cell of `centres` plus uniform noise in [-half_width, half_width]^2."""
    k_cell, k_off = jax.random.split(key)
    centre = centres[jax.random.randint(k_cell, (), 0, centres.shape[0])]
    return centre + jax.random.uniform(k_off, (2,), jnp.float32, -half_width, half_width)


def in_wall(layout: Layout, cell_size: float, xy: np.ndarray) -> np.ndarray:
    """bool [...]: whether points (x, y) lie inside a wall cell or outside the grid (a CPU check for tests)."""
    xy = np.asarray(xy)
    col = np.floor(xy[..., 0] / cell_size).astype(int)
    row = np.floor(xy[..., 1] / cell_size).astype(int)
    outside = (row < 0) | (row >= layout.height) | (col < 0) | (col >= layout.width)
    walls = layout.wall_array
    return outside | walls[np.clip(row, 0, layout.height - 1), np.clip(col, 0, layout.width - 1)]
