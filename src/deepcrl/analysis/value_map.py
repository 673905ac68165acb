"""A trained critic's value over a maze for one goal: a fine grid of positions for the picture, the free
cells' centres for the topology score (`topology.topology_scores`).

    vmap = value_map_of_run("runs/point_u_maze-d8-s0-...")            # the far evaluation goal
    vmap = value_map_of_run(run_dir, goal=(4.5, 0.5), action="zero")
    vmap.values      # [ny, nx] the critic at each grid position (NaN inside walls)
    vmap.scores      # spearman_geodesic, spearman_euclidean, topology_gap

The state at each position: a point mass at rest there; a MuJoCo robot (the ant and humanoid mazes) in
the standing pose its evaluation episodes start from, moved there (its other entries unchanged). The
action: the policy's deterministic action (default), zero, or the best of 16 policy samples. CRL's
critic is its logit f(s, a, g); SAC's and TD3's the minimum of their twin Q's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from deepcrl.analysis.topology import CRITIC_ACTIONS, ValueGrid, critic_fn, topology_scores, value_grid
from deepcrl.errors import ConfigError


@dataclass(frozen=True)
class ValueMap:
    layout: Any  # the maze's Layout
    cell_size: float
    goal: np.ndarray  # [2] x, y
    xs: np.ndarray  # [nx] x of each grid column
    ys: np.ndarray  # [ny] y of each grid row (upwards)
    values: np.ndarray  # [ny, nx] the critic's value (NaN inside walls)
    cells: ValueGrid  # the value at each free cell's centre, with path and straight-line distances
    scores: dict[str, float]  # topology scores of `cells`
    action: str
    label: str  # what was mapped, for a title
    direction: str = ""  # which way an asymmetric critic measures (MRN: from (s, a) to the goal); "" for a symmetric one


def farthest_eval_goal(env: Any) -> np.ndarray:
    """(x, y) of the centre of the evaluation goal cell farthest along the corridors from the start cells."""
    layout = env.layout
    dist = layout.geodesic_distances(layout.start_cells)
    row, col = max(layout.eval_goal_cells, key=lambda rc: (dist[rc[0], rc[1]], rc))
    return (np.array([col, row], np.float64) + 0.5) * env.cell_size


def state_template(env: Any, key: jax.Array) -> np.ndarray | None:
    """The state moved over the maze: None (at rest) for a point mass; a MuJoCo robot's first evaluation state."""
    if hasattr(env, "max_speed"):  # the point mass: position and velocity
        return None
    return np.asarray(jax.jit(env.eval_reset)(key).obs)


def value_map(
    agent: Any, params: dict[str, Any], env: Any, goal=None, resolution: int = 8, action: str = "policy", label: str = ""
) -> ValueMap:
    """The critic of a trained agent (its exported parameters, one seed) over the maze of `env`."""
    if getattr(env, "layout", None) is None:
        raise ConfigError(f"task {env.name!r} has no maze; qmap maps point mazes and the ant and humanoid mazes")
    if action not in CRITIC_ACTIONS:
        raise ConfigError(f"action={action!r} is not allowed; choose one of: {', '.join(CRITIC_ACTIONS)}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 1 <= resolution <= 64:
        raise ConfigError(f"resolution={resolution!r} is not allowed; it must be an integer from 1 to 64 (positions per cell side)")
    if "critic_params" not in params:
        raise ConfigError(f"agent {agent.name!r} has no critic to map; qmap maps CRL's critic and SAC's and TD3's Q")
    layout, cs = env.layout, float(env.cell_size)
    goal = farthest_eval_goal(env) if goal is None else np.asarray(goal, np.float64).ravel()
    if goal.shape != (2,):
        raise ConfigError(f"goal={tuple(goal)} is not allowed; give it as X,Y (two numbers)")
    col, row = int(np.floor(goal[0] / cs)), int(np.floor(goal[1] / cs))
    if not (0 <= row < layout.height and 0 <= col < layout.width) or layout.wall_array[row, col]:
        raise ConfigError(
            f"goal={goal[0]:g},{goal[1]:g} is not allowed; it must lie in a free cell of the {layout.height}x{layout.width} maze "
            f"(x in [0, {layout.width * cs:g}), y in [0, {layout.height * cs:g}))"
        )
    template = state_template(env, jax.random.PRNGKey(0))
    critic = critic_fn(agent, params, env.state_size, action=action, template=template)
    step = cs / resolution
    xs = (np.arange(layout.width * resolution) + 0.5) * step
    ys = (np.arange(layout.height * resolution) + 0.5) * step
    gx, gy = np.meshgrid(xs, ys)
    walls = layout.wall_array[(gy // cs).astype(int), (gx // cs).astype(int)]
    positions = np.stack([gx[~walls], gy[~walls]], axis=-1)
    values = np.full(gx.shape, np.nan)
    values[~walls] = critic(positions.astype(np.float32), goal.astype(np.float32))
    cells = value_grid(critic, layout, goal, cs)
    direction = getattr(agent, "value_direction", "")
    return ValueMap(layout, cs, goal, xs, ys, values, cells, topology_scores(cells), action, label, direction)


def value_map_of_run(run_dir: str | Path, goal=None, run_seed: int | None = None, resolution: int = 8, action: str = "policy") -> ValueMap:
    """`value_map` of a finished run's policy checkpoint (`run_seed`: which seed of a --num-seeds run; None: its first)."""
    env, agent, params, label = load_run_agent(run_dir, run_seed)
    return value_map(agent, params, env, goal=goal, resolution=resolution, action=action, label=label)


def load_run_agent(run_dir: str | Path, run_seed: int | None = None):
    """(task, agent, one seed's exported parameters, a figure label) of a finished run's policy checkpoint."""
    from deepcrl.checkpoints import load_policy_checkpoint, seed_payload

    config, env, agent, payload = load_policy_checkpoint(run_dir)
    params = seed_payload(config, payload, run_seed)
    seed = config.seed if run_seed is None else run_seed
    return env, agent, params, f"{Path(run_dir).name}: {agent.label(config)} critic depth {config.resolved_critic_depth}, seed {seed}"
