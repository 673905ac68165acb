"""The humanoid (src/deepcrl/envs/mujoco/humanoid.py): sizes, goals, falls, walls, success.

Compiling MJX on a small CPU costs tens of seconds, so every physics check below reads the one
compiled program on `humanoid_u_maze` that tests/test_mujoco_tasks.py also reads (tests/mujoco_helpers.py):
environments stepped with automatic resets, where some hold still (zero actions: they fall), some take
random actions, and some take random actions after a shove towards the walls; the first step of those
whose goal is on the torso or 2 m away decides success. Goal sampling alone needs no physics and is
checked on the open-field task directly.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from deepcrl.envs import make_env
from deepcrl.envs.mujoco import maze
from deepcrl.envs.mujoco.humanoid import GOAL_HEIGHT, Humanoid
from mujoco_helpers import NUM_ENVS, SHOVES, probe, task

# with pytest-xdist (--dist loadgroup) these tests run on the worker that runs test_mujoco_tasks.py's
# humanoid_u_maze tests, so the program compiles once
pytestmark = pytest.mark.xdist_group("humanoid_u_maze")


@pytest.fixture(scope="module")
def u_maze():
    env = task("humanoid_u_maze")
    assert isinstance(env, Humanoid)
    return env, probe("humanoid_u_maze")


def every_group(r, key):
    """[STEPS, all environments, ...]: `key` of every group of the probe side by side."""
    return np.concatenate([r[g][key] for g in ("random", "at_goal", "far", "lifted", "shoved")], axis=1)


def test_sizes_and_goals(u_maze):
    env, r = u_maze
    assert (env.goal_size, env.action_size, env.goal_indices, env.goal_threshold) == (3, 17, (0, 1, 2), 0.5)
    assert env.healthy_z == (1.0, 2.0) and env.cell_size == 2.0 and env.episode_length == 1000
    assert env.dt == pytest.approx(0.015)
    assert r["reset_obs"].shape == (NUM_ENVS, env.state_size) and r["obs"].shape[-1] == env.state_size
    assert np.isfinite(every_group(r, "obs")).all()
    # obs[0:3] is the torso position; a fresh humanoid stands 1.4 m high
    np.testing.assert_allclose(r["reset_obs"][:, 2], 1.4, atol=0.05)
    sampled = np.concatenate([r[g]["goal"] for g in ("random", "lifted", "shoved")], axis=1)  # the groups whose goals were not edited
    for goals in (r["reset_goal"], sampled.reshape(-1, 3)):  # first resets and automatic resets
        assert goals.shape[-1] == 3
        np.testing.assert_array_equal(goals[:, 2], np.float32(GOAL_HEIGHT))
    assert len({tuple(g) for g in np.round(r["reset_goal"], 5)}) == NUM_ENVS
    # training goals lie in the layout's goal cells
    cells = {(int(y // env.cell_size), int(x // env.cell_size)) for x, y in r["reset_goal"][:, :2]}
    assert cells <= set(env.layout.goal_cells)


def test_open_field_goals():
    env = make_env("humanoid")
    goals = np.asarray(jax.vmap(env._train_goal)(jax.random.split(jax.random.PRNGKey(1), 2000)))
    assert goals.shape == (2000, 3) and (goals[:, 2] == np.float32(GOAL_HEIGHT)).all()
    dist = np.linalg.norm(goals[:, :2], axis=1)
    assert dist.min() >= 1.0 - 1e-5 and dist.max() <= 5.0 + 1e-5
    assert abs(np.median(dist) - 3.0) < 0.2  # distance uniform in [1, 5]
    assert len(np.unique(np.round(goals, 5), axis=0)) == 2000


def test_a_fall_terminates(u_maze):
    env, r = u_maze
    z, term = r["at_goal"]["obs"][..., 2], r["at_goal"]["terminated"]
    for i in range(NUM_ENVS):  # holding still (zero actions) the humanoid collapses within the scan
        first = int(np.argmax(term[:, i] > 0))
        assert term[first, i] == 1.0, f"env {i} never terminated; torso z ran {z[:, i].min():.2f}..{z[:, i].max():.2f}"
        assert z[first, i] < env.healthy_z[0]
        assert (z[:first, i] >= env.healthy_z[0]).all()
    # in every group, every termination is a torso outside [1, 2], and every such torso terminates
    z, term = every_group(r, "obs")[..., 2], every_group(r, "terminated")
    outside = (z < env.healthy_z[0]) | (z > env.healthy_z[1])
    np.testing.assert_array_equal(term > 0, outside)


def test_torso_never_inside_a_wall(u_maze):
    env, r = u_maze
    assert not maze.in_wall(env.layout, env.cell_size, every_group(r, "obs")[..., :2]).any()
    xy = r["shoved"]["obs"][..., :2]
    # the shoves drove the humanoids against the walls of the start cell (x, y in [2, 4] m; walls at
    # x = 2, y = 2 and y = 4), where only the walls stopped them
    for j, (vx, vy) in enumerate(SHOVES):
        path = xy[:, j]
        reach = f"shove {vx, vy}: x {path[:, 0].min():.2f}..{path[:, 0].max():.2f}, y {path[:, 1].min():.2f}..{path[:, 1].max():.2f}"
        if vx < 0:
            assert path[:, 0].min() < 2.4, reach
        if vy < 0:
            assert path[:, 1].min() < 2.4, reach
        if vy > 0:
            assert path[:, 1].max() > 3.6, reach


def test_success_on_the_torso_and_not_2m_away(u_maze):
    _, r = u_maze
    # one step after a reset, zero actions: the goal on the torso is reached, a goal 2 m ahead is not
    np.testing.assert_array_equal(r["at_goal_success"], np.ones(NUM_ENVS))
    np.testing.assert_array_equal(r["far_success"], np.zeros(NUM_ENVS))
