"""A point mass in a grid maze: a cheap, pure-JAX stand-in for the paper's ant mazes.

Cell (row, col) occupies x in [col, col + 1) * cell_size and y in [row, row + 1) * cell_size. The agent
is an axis-aligned square of half-size `radius` centred at (x, y). An action in [-1, 1]^2 commands a
displacement of `max_speed * action`; the agent moves along x first, then along y, and a move that
would make the square overlap a wall cell (or leave the grid) stops it a hair short of the wall face,
so it slides along walls. Because `max_speed < cell_size - 2 * radius`, a step's leading edge crosses
at most one cell boundary per axis, so checking the one new column (row) it enters, over the one or
two rows (columns) the square spans, is exact.

State observation: (x, y, vx, vy), where (vx, vy) is the displacement achieved in the last step.
Goal: (x, y). Success: L2 distance to the goal below `goal_threshold`. Never terminates; truncates
after `episode_length` steps.

Stitching (the paper's finding 7): `train_max_goal_cells=K` draws each training episode's start and
goal cells as a pair at most K cells apart along the corridors, the distances 1..K equally likely (then
a pair uniformly among those at the distance drawn); `eval_max_goal_cells=M` evaluates on pairs at
every distance 1..M alike, and `eval_distances` tells the evaluation to report success per distance,
so "trained on pairs up to 3 cells apart, evaluated on 4 to 6" is one run.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from deepcrl.envs.base import Env, EnvState
from deepcrl.envs.layouts import Layout
from deepcrl.errors import ConfigError

TRAIN_STARTS = ("free", "start_cells")  # where training episodes start: any free cell, or the layout's start cells
TRAIN_GOALS = ("free", "goal_cells")  # where training goals are drawn: any free cell, or the layout's goal cells


@struct.dataclass
class PointPhysics:
    pos: jax.Array  # [2] float32 (x, y) centre of the agent's square
    vel: jax.Array  # [2] float32 displacement achieved in the last step


def _check_number(name: str, value, *, low: float, low_inclusive: bool = False, high: float | None = None, high_text: str = "") -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v >= low if low_inclusive else v > low) and (high is None or v < high)
    if not ok:
        need = f"{'>=' if low_inclusive else '>'} {low:g}"
        if high is not None:
            need += f" and < {high_text or f'{high:g}'}"
        raise ConfigError(f"{name}={value!r} is not allowed: need a finite number {need}")
    return float(value)


class PointMaze(Env):
    state_size = 4
    goal_size = 2
    action_size = 2
    goal_indices = (0, 1)

    def __init__(
        self,
        layout: Layout,
        *,
        cell_size: float = 1.0,
        max_speed: float = 0.5,
        radius: float = 0.1,
        episode_length: int = 100,
        goal_threshold: float = 0.5,
        train_starts: str = "free",
        train_goals: str = "free",
        start_noise: float = 0.25,
        train_max_goal_cells: int | None = None,
        eval_max_goal_cells: int | None = None,
    ):
        if not isinstance(layout, Layout):
            raise ConfigError(f"layout={layout!r} is not allowed: need a Layout (see deepcrl.envs.get_layout)")
        for what in ("start_cells", "goal_cells", "eval_goal_cells"):
            if not getattr(layout, what):
                raise ConfigError(f"layout {layout.name!r} has no {what}: need at least one (see parse_layout)")
        self.layout = layout
        self.cell_size = _check_number("cell_size", cell_size, low=0.0)
        self.radius = _check_number("radius", radius, low=0.0, high=self.cell_size / 2, high_text=f"cell_size/2 = {self.cell_size / 2:g}")
        limit = self.cell_size - 2 * self.radius
        self.max_speed = _check_number("max_speed", max_speed, low=0.0, high=limit, high_text=f"cell_size - 2*radius = {limit:g}")
        if isinstance(episode_length, bool) or not isinstance(episode_length, (int, np.integer)) or episode_length < 1:
            raise ConfigError(f"episode_length={episode_length!r} is not allowed: need an integer >= 1")
        self.episode_length = int(episode_length)
        self.goal_threshold = _check_number("goal_threshold", goal_threshold, low=0.0)
        self.start_noise = _check_number("start_noise", start_noise, low=0.0, low_inclusive=True)
        if train_starts not in TRAIN_STARTS:
            raise ConfigError(f"train_starts={train_starts!r} is not allowed: choose one of {', '.join(TRAIN_STARTS)}")
        if train_goals not in TRAIN_GOALS:
            raise ConfigError(f"train_goals={train_goals!r} is not allowed: choose one of {', '.join(TRAIN_GOALS)}")
        self.train_starts = train_starts
        self.train_goals = train_goals
        self.name = "point_" + layout.name
        self.train_max_goal_cells = self._max_cells("train_max_goal_cells", train_max_goal_cells, layout)
        self.eval_max_goal_cells = self._max_cells("eval_max_goal_cells", eval_max_goal_cells, layout)
        if self.train_max_goal_cells is not None and (train_starts, train_goals) != ("free", "free"):
            raise ConfigError(
                f"train_max_goal_cells={train_max_goal_cells} draws training starts and goals together; leave train_starts and train_goals unset"
            )
        # every distance up to M alike: (None: the layout's evaluation, start cells -> far goal cells)
        self.eval_distances = None if self.eval_max_goal_cells is None else tuple(range(1, self.eval_max_goal_cells + 1))
        self._train_pairs = self._pair_table(layout, self.train_max_goal_cells)
        self._eval_pairs = self._pair_table(layout, self.eval_max_goal_cells)
        table = np.full((layout.height, layout.width, layout.height, layout.width), -1, np.int32)
        for r, c in layout.reachable_cells:
            table[r, c] = layout.geodesic_distances([(r, c)])
        self._path_table = jnp.asarray(table)  # [H, W, H, W] cells along the corridors between two cells

        # Precomputed constants. The wall grid is padded by one wall cell on every side, so cells just
        # outside the grid read as walls.
        walls = np.ones((layout.height + 2, layout.width + 2), dtype=bool)
        walls[1:-1, 1:-1] = layout.wall_array
        self._walls = jnp.asarray(walls)
        reachable = layout.reachable_cells  # "free" sampling: free cells connected to the starts

        def cells(cs):
            return jnp.asarray(np.array(cs, dtype=np.int32).reshape(-1, 2))

        self._start_cells = cells(layout.start_cells)
        self._goal_cells = cells(layout.goal_cells)
        self._eval_goal_cells = cells(layout.eval_goal_cells)
        self._free_cells = cells(reachable)
        self._train_start_cells = self._start_cells if train_starts == "start_cells" else self._free_cells
        self._train_goal_cells = self._goal_cells if train_goals == "goal_cells" else self._free_cells
        # Gap left between the agent and a wall face it is stopped at, so that float32 rounding never
        # turns contact into overlap: 1e-4 cell or 64 float32 ulps of the largest coordinate, but at most
        # a quarter of the room the square has in a cell.
        ulp = 2.0**-23 * self.cell_size * max(layout.height, layout.width, 1)
        slack = self.cell_size / 2 - self.radius
        self._eps = min(max(1e-4 * self.cell_size, 64 * ulp), slack / 4)
        if self._eps < 8 * ulp:
            raise ConfigError(
                f"radius={radius!r} is not allowed: too close to cell_size/2 for float32 positions on this "
                f"{layout.height}x{layout.width} layout; need radius <= {self.cell_size / 2 - 32 * ulp:.6g}"
            )

    @staticmethod
    def _max_cells(name: str, value, layout: Layout) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive number of cells along the corridors")
        longest = max(int(layout.geodesic_distances([rc]).max()) for rc in layout.reachable_cells)
        if value > longest:
            raise ConfigError(f"{name}={value} is not allowed; no two cells of layout {layout.name!r} are farther apart than {longest}")
        return int(value)

    @staticmethod
    def _pair_table(layout: Layout, most: int | None):
        """(pairs [N, 4], log-probabilities [N]: each distance 1..most alike, pairs alike within one), or None."""
        if most is None:
            return None
        pairs, dists = layout.pairs_within(1, most)
        counts = np.bincount(dists, minlength=most + 1)
        probs = 1.0 / (most * counts[dists])
        return jnp.asarray(pairs), jnp.asarray(np.log(probs), jnp.float32)

    def path_distance(self, state: EnvState) -> jax.Array:
        """Cells along the corridors from the cell of the state's position to the cell of its goal (int32)."""
        start = jnp.floor(state.physics.pos[::-1] / self.cell_size).astype(jnp.int32)  # (row, col)
        goal = jnp.floor(state.goal[::-1] / self.cell_size).astype(jnp.int32)
        return self._path_table[start[0], start[1], goal[0], goal[1]]

    # ---------------------------------------------------------------- sampling
    def _uniform_in_cell(self, key: jax.Array, cells: jax.Array, half_width: float) -> jax.Array:
        """(x, y) = centre of a random cell of `cells` plus uniform noise in [-half_width, half_width]^2."""
        k_cell, k_off = jax.random.split(key)
        rc = cells[jax.random.randint(k_cell, (), 0, cells.shape[0])]
        centre = (rc[::-1].astype(jnp.float32) + 0.5) * self.cell_size  # (col, row) -> (x, y)
        off = jax.random.uniform(k_off, (2,), jnp.float32, -half_width, half_width)
        return centre + off

    @property
    def _inside_half_width(self) -> float:
        """Largest offset from a cell centre that keeps the square inside the cell (with the eps gap)."""
        return self.cell_size / 2 - self.radius - self._eps

    def _make_state(self, key: jax.Array, pos: jax.Array, goal: jax.Array) -> EnvState:
        vel = jnp.zeros(2, jnp.float32)
        distance = jnp.linalg.norm(pos - goal)
        zero = jnp.zeros((), jnp.float32)
        return EnvState(
            physics=PointPhysics(pos=pos, vel=vel),
            obs=jnp.concatenate([pos, vel]),
            goal=goal,
            distance=distance,
            success=(distance < self.goal_threshold).astype(jnp.float32),
            terminated=zero,
            truncated=zero,
            step=jnp.zeros((), jnp.int32),
            key=key,
        )

    def _reset(self, key: jax.Array, start_cells, start_half_width, goal_cells) -> EnvState:
        next_key, k_start, k_goal = jax.random.split(key, 3)
        pos = self._uniform_in_cell(k_start, start_cells, start_half_width)
        goal = self._uniform_in_cell(k_goal, goal_cells, self._inside_half_width)
        return self._make_state(next_key, pos, goal)

    def _reset_pair(self, key: jax.Array, table, start_half_width: float) -> EnvState:
        pairs, log_probs = table
        next_key, k_pair, k_start, k_goal = jax.random.split(key, 4)
        pair = pairs[jax.random.categorical(k_pair, log_probs)]
        pos = self._uniform_in_cell(k_start, pair[None, :2], start_half_width)
        goal = self._uniform_in_cell(k_goal, pair[None, 2:], self._inside_half_width)
        return self._make_state(next_key, pos, goal)

    def reset(self, key: jax.Array) -> EnvState:
        if self._train_pairs is not None:
            return self._reset_pair(key, self._train_pairs, self._inside_half_width)
        if self.train_starts == "start_cells":
            half = min(self.start_noise * self.cell_size, self._inside_half_width)
        else:
            half = self._inside_half_width
        return self._reset(key, self._train_start_cells, half, self._train_goal_cells)

    def eval_reset(self, key: jax.Array) -> EnvState:
        half = min(self.start_noise * self.cell_size, self._inside_half_width)
        if self._eval_pairs is not None:
            return self._reset_pair(key, self._eval_pairs, half)
        return self._reset(key, self._start_cells, half, self._eval_goal_cells)

    # ---------------------------------------------------------------- dynamics
    def _is_wall(self, row: jax.Array, col: jax.Array) -> jax.Array:
        shape = self._walls.shape
        return self._walls[jnp.clip(row + 1, 0, shape[0] - 1), jnp.clip(col + 1, 0, shape[1] - 1)]

    def _span(self, lo: jax.Array, hi: jax.Array) -> tuple[jax.Array, jax.Array]:
        """First and last cell index whose open interval meets the open interval (lo, hi)."""
        cs = self.cell_size
        return jnp.floor(lo / cs).astype(jnp.int32), (jnp.ceil(hi / cs) - 1).astype(jnp.int32)

    def _move_axis(self, p: jax.Array, d: jax.Array, q: jax.Array, axis: int) -> jax.Array:
        """Move coordinate `p` by `d` along `axis` (0: x, 1: y); `q` is the other coordinate.

        Returns the new coordinate, stopped `eps` short of the first wall face it would cross. The
        square counts as `eps / 2` larger than it is when looking for walls, so that an edge that ends
        up within rounding of a wall face is treated as touching it.
        """
        cs, r, eps = self.cell_size, self.radius, self._eps
        m = r + eps / 2
        side_lo, side_hi = self._span(q - m, q + m)  # the 1 or 2 cells spanned across the motion
        target = p + d
        fwd_cell = self._span(target + m, target + m)[1]  # column/row the leading edge enters (d >= 0)
        back_cell = self._span(target - m, target - m)[0]  # same for d < 0
        lead = jnp.where(d >= 0, fwd_cell, back_cell)
        if axis == 0:  # cells are (row, col): moving in x scans columns over the spanned rows
            blocked = self._is_wall(side_lo, lead) | self._is_wall(side_hi, lead)
        else:
            blocked = self._is_wall(lead, side_lo) | self._is_wall(lead, side_hi)
        stop_fwd = jnp.maximum(p, lead.astype(jnp.float32) * cs - r - eps)
        stop_back = jnp.minimum(p, (lead + 1).astype(jnp.float32) * cs + r + eps)
        return jnp.where(blocked, jnp.where(d >= 0, stop_fwd, stop_back), target)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        action = jnp.clip(jnp.nan_to_num(jnp.asarray(action, jnp.float32)), -1.0, 1.0)
        disp = self.max_speed * action
        pos = state.physics.pos
        x = self._move_axis(pos[0], disp[0], pos[1], axis=0)
        y = self._move_axis(pos[1], disp[1], x, axis=1)
        new_pos = jnp.stack([x, y])
        vel = new_pos - pos
        distance = jnp.linalg.norm(new_pos - state.goal)
        step = state.step + 1
        return state.replace(
            physics=PointPhysics(pos=new_pos, vel=vel),
            obs=jnp.concatenate([new_pos, vel]),
            distance=distance,
            success=(distance < self.goal_threshold).astype(jnp.float32),
            terminated=jnp.zeros((), jnp.float32),
            truncated=(step >= self.episode_length).astype(jnp.float32),
            step=step,
        )
