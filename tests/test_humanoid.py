"""The humanoid (src/deepcrl/envs/mujoco/humanoid.py): sizes, goals, falls, walls, success.

Compiling MJX on a small CPU costs tens of seconds, so every physics check below reads the results of
one jitted program on `humanoid_u_maze`, compiled once for the module: a batch of environments stepped
with automatic resets, where some get zero actions (they fall), some random actions, and some random
actions after a shove towards the walls; plus one step from states whose goal is on the torso or 2 m
away. Goal sampling alone needs no physics and is checked on the open-field task directly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepcrl.envs import make_env
from deepcrl.envs.base import step_autoreset
from deepcrl.envs.mujoco import maze
from deepcrl.envs.mujoco.humanoid import GOAL_HEIGHT, Humanoid

STEPS = 120  # 1.8 s of simulated time
ZERO, RANDOM = (0, 1), (2, 3)  # environments with zero / random actions
SHOVES = np.array([[-4.0, 0.0], [0.0, -4.0], [0.0, 4.0], [-3.0, -3.0]], np.float32)  # m/s; the rest are shoved
NUM_ENVS = len(ZERO) + len(RANDOM) + len(SHOVES)

# with pytest-xdist (--dist loadgroup) every test here runs on one worker, so the program compiles once
pytestmark = pytest.mark.xdist_group("humanoid_u_maze")


@pytest.fixture(scope="module")
def u_maze():
    env = make_env("humanoid_u_maze")
    assert isinstance(env, Humanoid)

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        states = jax.vmap(env.reset)(jax.random.split(k_reset, NUM_ENVS))
        shove = jnp.zeros((NUM_ENVS, 2)).at[NUM_ENVS - len(SHOVES) :].set(SHOVES)
        qvel = states.physics.qvel.at[:, :2].add(shove)
        pushed = states.replace(physics=states.physics.replace(qvel=qvel))
        act = jnp.ones((NUM_ENVS, 1)).at[jnp.array(ZERO)].set(0.0)

        def one_step(s, k):
            actions = act * jax.random.uniform(k, (NUM_ENVS, env.action_size), jnp.float32, -1.0, 1.0)
            s, stepped = jax.vmap(lambda s, a: step_autoreset(env, s, a))(s, actions)
            return s, (stepped.obs, stepped.goal, stepped.terminated)

        _, (obs, goal, terminated) = jax.lax.scan(one_step, pushed, jax.random.split(k_steps, STEPS))
        torso = states.obs[:, :3]
        far = torso + jnp.array([2.0, 0.0, 0.0])
        goals = jnp.concatenate([torso, far])
        twice = jax.tree_util.tree_map(lambda x: jnp.concatenate([x, x]), states).replace(goal=goals)
        checked = jax.vmap(env.step)(twice, jnp.zeros((2 * NUM_ENVS, env.action_size)))
        return dict(
            obs=obs, goal=goal, terminated=terminated, reset_obs=states.obs, reset_goal=states.goal, checked_success=checked.success
        )

    out = jax.jit(run)(jax.random.PRNGKey(0))
    return env, {k: np.asarray(v) for k, v in out.items()}


def test_sizes_and_goals(u_maze):
    env, r = u_maze
    assert (env.goal_size, env.action_size, env.goal_indices, env.goal_threshold) == (3, 17, (0, 1, 2), 0.5)
    assert env.healthy_z == (1.0, 2.0) and env.cell_size == 2.0 and env.episode_length == 1000
    assert env.dt == pytest.approx(0.015)
    assert r["reset_obs"].shape == (NUM_ENVS, env.state_size) and r["obs"].shape[-1] == env.state_size
    assert np.isfinite(r["obs"]).all()
    # obs[0:3] is the torso position; a fresh humanoid stands 1.4 m high
    np.testing.assert_allclose(r["reset_obs"][:, 2], 1.4, atol=0.05)
    for goals in (r["reset_goal"], r["goal"].reshape(-1, 3)):  # first resets and automatic resets
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
    z, term = r["obs"][..., 2], r["terminated"]
    for i in ZERO:  # with zero actions the humanoid collapses within the scan
        first = int(np.argmax(term[:, i] > 0))
        assert term[first, i] == 1.0, f"env {i} never terminated; torso z ran {z[:, i].min():.2f}..{z[:, i].max():.2f}"
        assert z[first, i] < env.healthy_z[0]
        assert (z[:first, i] >= env.healthy_z[0]).all()
    # every termination is a torso outside [1, 2], and every such torso terminates
    outside = (z < env.healthy_z[0]) | (z > env.healthy_z[1])
    np.testing.assert_array_equal(term > 0, outside)


def test_torso_never_inside_a_wall(u_maze):
    env, r = u_maze
    xy = r["obs"][..., :2]
    assert not maze.in_wall(env.layout, env.cell_size, xy).any()
    # the shoves drove the humanoids against the walls of the start cell (x, y in [2, 4] m; walls at
    # x = 2, y = 2 and y = 4), where only the walls stopped them
    for j, (vx, vy) in enumerate(SHOVES):
        path = xy[:, NUM_ENVS - len(SHOVES) + j]
        reach = f"shove {vx, vy}: x {path[:, 0].min():.2f}..{path[:, 0].max():.2f}, y {path[:, 1].min():.2f}..{path[:, 1].max():.2f}"
        if vx < 0:
            assert path[:, 0].min() < 2.4, reach
        if vy < 0:
            assert path[:, 1].min() < 2.4, reach
        if vy > 0:
            assert path[:, 1].max() > 3.6, reach


def test_success_on_the_torso_and_not_2m_away(u_maze):
    _, r = u_maze
    np.testing.assert_array_equal(r["checked_success"], np.r_[np.ones(NUM_ENVS), np.zeros(NUM_ENVS)])
