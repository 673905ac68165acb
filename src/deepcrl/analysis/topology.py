"""Does a critic know the maze? Its values over the maze for one goal, against path and straight-line distance.

A critic that has learned the maze's topology ranks states by how far the goal is *along the
corridors* (the shortest-path, or geodesic, distance), not by how far it is in a straight line
(Euclidean). The paper's Figure (Q heatmap of an ant U-maze) shows this by eye; here it is a number:

    grid = value_grid(critic, layout, goal_xy)      # critic over every free cell's centre
    scores = topology_scores(grid)                  # Spearman rank correlations
    scores["spearman_geodesic"]                     # with minus the shortest-path distance: 1 = perfect
    scores["spearman_euclidean"]                    # with minus the straight-line distance

A critic equal to minus the shortest-path distance scores 1 on the first; a critic equal to minus the
straight-line distance scores 1 on the second and less on the first wherever walls make the two
disagree (tests/test_topology.py). Their difference, `topology_gap` = geodesic - euclidean, is positive
when the critic follows the corridors more than the straight line.

Everything here works from positions in the maze and a critic function `(positions [N, 2], goal [2])
-> values [N]`, so the same score applies to any agent (`critic_fn` builds one from a trained agent).
Distances are in cells; the geodesic distance of a cell is the BFS distance (4-connected) from the goal's
cell, which is what "cells along the corridor" means on these grid mazes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.layouts import Layout

Critic = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (positions [N, 2], goal [2]) -> values [N]
CRITIC_ACTIONS = ("policy", "zero", "best")  # the action the critic scores at each position


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N of the entries of x, ties given the mean of the ranks they span (as scipy's 'average')."""
    x = np.asarray(x, np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    sorted_x = x[order]
    # Runs of equal values share the average of their positions.
    boundaries = np.flatnonzero(np.diff(sorted_x) != 0) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = 0.5 * (s + e - 1) + 1.0
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of x and y (Pearson's correlation of their average ranks); NaN if
    either is constant or they have fewer than 2 entries."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman: x has {x.size} entries and y {y.size}; they must match")
    if x.size < 2:
        return float("nan")
    rx, ry = rankdata(x) - (x.size + 1) / 2, rankdata(y) - (y.size + 1) / 2
    denom = np.sqrt(np.sum(rx * rx) * np.sum(ry * ry))
    return float(np.sum(rx * ry) / denom) if denom > 0 else float("nan")


@dataclass(frozen=True)
class ValueGrid:
    """A critic's values at the centres of a maze's free cells, for one goal."""

    layout: Layout
    goal: np.ndarray  # [2] the goal (x, y), in world units
    goal_cell: tuple[int, int]  # (row, col) of the goal
    cells: np.ndarray  # [N, 2] (row, col) of each free cell reachable from the goal
    positions: np.ndarray  # [N, 2] (x, y) of each cell's centre, in world units
    values: np.ndarray  # [N] the critic's value at each position for the goal
    geodesic: np.ndarray  # [N] shortest-path distance from the cell to the goal's cell, in cells
    euclidean: np.ndarray  # [N] straight-line distance from the cell's centre to the goal, in cells

    def as_image(self) -> np.ndarray:
        """The values as a [height, width] array (NaN on walls and unreachable cells), for a heatmap."""
        image = np.full((self.layout.height, self.layout.width), np.nan)
        image[self.cells[:, 0], self.cells[:, 1]] = self.values
        return image


def cell_of(layout: Layout, xy: np.ndarray, cell_size: float = 1.0) -> tuple[int, int]:
    """(row, col) of the cell holding world position (x, y); ValueError outside the grid."""
    x, y = (float(v) for v in np.asarray(xy, np.float64).ravel()[:2])
    row, col = int(np.floor(y / cell_size)), int(np.floor(x / cell_size))
    if not (0 <= row < layout.height and 0 <= col < layout.width):
        raise ValueError(f"position ({x:g}, {y:g}) lies outside the {layout.height}x{layout.width} maze")
    return row, col


def value_grid(critic: Critic, layout: Layout, goal: np.ndarray, cell_size: float = 1.0, exclude_goal_cell: bool = True) -> ValueGrid:
    """The critic at the centre of every free cell connected to the goal (the goal's own cell left out
    unless `exclude_goal_cell` is False: its distances are 0 by definition and say nothing of topology)."""
    goal = np.asarray(goal, np.float64).ravel()[:2]
    goal_cell = cell_of(layout, goal, cell_size)
    if layout.walls[goal_cell[0]][goal_cell[1]]:
        raise ValueError(f"goal ({goal[0]:g}, {goal[1]:g}) lies in a wall cell {goal_cell}")
    geodesic = layout.geodesic_distances([goal_cell])
    cells = np.argwhere(geodesic >= 0)  # row-major (row, col)
    if exclude_goal_cell:
        cells = cells[geodesic[cells[:, 0], cells[:, 1]] > 0]
    positions = (cells[:, ::-1].astype(np.float64) + 0.5) * cell_size  # (col, row) -> (x, y)
    values = np.asarray(critic(positions.astype(np.float32), goal.astype(np.float32)), np.float64).ravel()
    if values.shape != (len(cells),):
        raise ValueError(f"critic returned {values.shape} values for {len(cells)} positions")
    return ValueGrid(
        layout=layout,
        goal=goal,
        goal_cell=goal_cell,
        cells=cells,
        positions=positions,
        values=values,
        geodesic=geodesic[cells[:, 0], cells[:, 1]].astype(np.float64),
        euclidean=np.linalg.norm(positions - goal[None], axis=-1) / cell_size,
    )


def topology_scores(grid: ValueGrid) -> dict[str, float]:
    """Spearman correlations of the critic's values with minus the geodesic and minus the straight-line
    distance to the goal, and their difference (positive: the critic follows the corridors)."""
    geo = spearman(grid.values, -grid.geodesic)
    euc = spearman(grid.values, -grid.euclidean)
    return {"spearman_geodesic": geo, "spearman_euclidean": euc, "topology_gap": geo - euc}


def critic_fn(
    agent: Any,
    params: dict[str, Any],
    state_size: int,
    action: str = "policy",
    samples: int = 16,
    key: jax.Array | None = None,
    template: np.ndarray | None = None,
) -> Critic:
    """A `Critic` over point-mass positions from a trained agent with a critic (CRL; SAC and TD3 by their
    twin Q's minimum), with the state at rest (velocity 0) at each position, or, given `template` (a
    [state_size] state, e.g. an ant standing), that state moved to each position (its entries 0 and 1).

    `params`: the agent's exported parameters (`actor_params`, `critic_params`). The critic scores an
    action at each position: `action="policy"` the actor's deterministic action (a value V(s, g) = Q(s,
    pi(s, g), g)), `"zero"` the zero action, `"best"` the best of `samples` actions sampled from the policy
    (what best-of-K action selection would see).
    """
    if action not in CRITIC_ACTIONS:
        raise ValueError(f"action={action!r}; allowed: {', '.join(CRITIC_ACTIONS)}")
    base = jnp.zeros((state_size,), jnp.float32) if template is None else jnp.asarray(template, jnp.float32).reshape(state_size)
    key = jax.random.PRNGKey(0) if key is None else key

    @jax.jit
    def values(positions: jax.Array, goal: jax.Array) -> jax.Array:
        n = positions.shape[0]
        obs = jnp.broadcast_to(base, (n, state_size)).at[:, : positions.shape[1]].set(positions)
        goals = jnp.broadcast_to(goal, (n, goal.shape[-1]))
        policy_obs = jnp.concatenate([obs, goals], axis=-1)
        if action in ("policy", "zero"):
            act = agent.act(params["actor_params"], policy_obs, deterministic=True)
            act = jnp.zeros_like(act) if action == "zero" else act
            return agent.q_value(params["critic_params"], obs, act, goals)
        _, q = agent.best_of_samples(params["actor_params"], params["critic_params"], policy_obs, key, samples)
        return q

    return lambda positions, goal: np.asarray(values(jnp.asarray(positions), jnp.asarray(goal)))
