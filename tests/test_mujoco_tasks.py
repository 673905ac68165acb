"""Every MuJoCo task (the paper's tasks): sizes, resets, random steps, goals, success, falls, walls, registry.

Each task is compiled once (tests/mujoco_helpers.py) and the checks below read the same results.
"""

from __future__ import annotations

import numpy as np
import pytest
from flax import serialization

from deepcrl.checkpoints import train_state as checkpoint
from deepcrl.build import build_task as make_env_from_config, validate
from deepcrl.config import Config
from deepcrl.envs import MUJOCO_TASK_NAMES, get_layout, make_env
from deepcrl.envs.mujoco import maze
from deepcrl.errors import ConfigError
from mujoco_helpers import NUM_ENVS, STEPS, probe, task

# The paper's table (the paper's tasks) and each model's documented sizes: (state, goal, action, threshold)
EXPECTED = {
    "ant": (29, 2, 8, 0.5),
    "humanoid": (246, 3, 17, 0.5),  # the paper says 268: its model simulates the goal marker (humanoid.py)
    "arm": (17, 3, 5, 0.1),
}
ANT_MAZES = ("ant_u_maze", "ant_u4_maze", "ant_u5_maze", "ant_big_maze", "ant_hardest_maze")


def family(name: str) -> str:
    return name.split("_")[0]


def by_task(names):
    """Parameters that keep every test of one task on one pytest-xdist worker (one compile per task)."""
    return [pytest.param(n, marks=pytest.mark.xdist_group(n)) for n in names]


@pytest.mark.parametrize("name", by_task(MUJOCO_TASK_NAMES))
def test_task_resets_and_steps_with_random_actions(name):
    env = task(name)
    r = probe(name)
    assert env.name == name
    assert r["obs"].shape == (STEPS, NUM_ENVS, env.state_size)
    assert r["goal"].shape == (STEPS, NUM_ENVS, env.goal_size) and len(env.goal_indices) == env.goal_size
    assert env.obs_size == env.state_size + env.goal_size
    for key in ("obs", "goal", "distance", "reset_obs", "reset_goal", "eval_goal"):
        assert np.isfinite(r[key]).all(), f"{name}: non-finite {key}"
    expected = EXPECTED.get(family(name))
    if expected is not None:
        state, goal, action, threshold = expected
        assert (env.goal_size, env.action_size, env.goal_threshold) == (goal, action, threshold)
        if state is not None:
            assert env.state_size == state
    assert env.episode_length >= 100
    # the reported distance is the distance between the goal slice of the state and the goal
    achieved = r["obs"][..., list(env.goal_indices)]
    np.testing.assert_allclose(r["distance"], np.linalg.norm(achieved - r["goal"], axis=-1), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(r["success"], (r["distance"] < env.goal_threshold).astype(np.float32))


@pytest.mark.parametrize("name", by_task(MUJOCO_TASK_NAMES))
def test_goals_are_fresh_at_every_reset(name):
    r = probe(name)
    for goals in (r["reset_goal"], r["eval_goal"]):
        assert len({tuple(np.round(g, 5)) for g in goals}) == NUM_ENVS, f"{name}: goals repeat across resets: {goals}"


@pytest.mark.parametrize("name", by_task(MUJOCO_TASK_NAMES))
def test_success_when_the_goal_slice_is_on_the_goal(name):
    r = probe(name)
    env = task(name)
    assert (r["at_goal_distance"] < env.goal_threshold).all(), r["at_goal_distance"]
    assert (r["at_goal_success"] == 1.0).all()
    assert (r["far_success"] == 0.0).all()


@pytest.mark.parametrize("name", by_task([n for n in MUJOCO_TASK_NAMES if family(n) in ("ant", "humanoid")]))
def test_locomotion_falls_terminate(name):
    r = probe(name)
    assert r["low_failed"].all(), f"{name}: a torso below the healthy height must count as a fall"
    assert (r["high_terminated"] == 1.0).all(), f"{name}: a torso above the healthy height must end the episode"


@pytest.mark.parametrize("name", by_task(ANT_MAZES))
def test_ant_never_ends_inside_a_wall(name):
    env = task(name)
    r = probe(name)
    xy = r["obs"][..., :2]
    assert not maze.in_wall(env.layout, env.cell_size, xy).any()

    # starts are in the start cells, training goals in goal cells, evaluation goals in the far goal cells
    def cells(points):
        return {(int(y // env.cell_size), int(x // env.cell_size)) for x, y in points.reshape(-1, 2)}

    assert cells(r["reset_obs"][:, :2]) <= set(env.layout.start_cells)
    assert cells(r["reset_goal"]) <= set(env.layout.goal_cells)
    assert cells(r["eval_goal"]) <= set(env.layout.eval_goal_cells)


def test_maze_walls_cover_exactly_the_wall_cells():
    layout = get_layout("big_maze")
    boxes = maze.wall_boxes(layout, 4.0)
    assert len(boxes) == int(layout.wall_array.sum())
    centres = np.array([(x, y) for x, y, _, _ in boxes])
    assert maze.in_wall(layout, 4.0, centres).all()
    free = maze.cell_centres(layout.free_cells, 4.0)
    assert not maze.in_wall(layout, 4.0, np.asarray(free)).any()


@pytest.mark.xdist_group("ant")
def test_user_maze_file_works_for_the_ant(tmp_path):
    path = tmp_path / "corridor.txt"
    path.write_text("#####\n#r.G#\n#####\n")
    env = make_env("ant", layout=f"maze:{path}")
    assert env.layout.eval_goal_cells == ((1, 3),)
    assert env.mj_model.ngeom > task("ant").mj_model.ngeom  # the walls are in the model


def test_registry_errors_are_one_line():
    with pytest.raises(ConfigError, match="conflicts with env 'ant_u_maze'"):
        make_env("ant_u_maze", layout="big_maze")
    with pytest.raises(ConfigError, match="only point, ant and humanoid take a layout"):
        make_env("arm_reach", layout="u_maze")
    with pytest.raises(ConfigError, match="'max_speed' does not apply to env 'ant'"):
        validate(Config(env="ant", max_speed=0.3))
    with pytest.raises(ConfigError, match="episode_length=0"):
        make_env("ant", episode_length=0)


def test_config_takes_the_task_defaults():
    env = make_env_from_config(Config(env="ant_u4_maze"))
    assert (env.episode_length, env.goal_threshold) == (1000, 0.5)
    point = make_env_from_config(Config(env="point_u_maze"))
    assert (point.episode_length, point.goal_threshold, point.max_speed) == (100, 0.5, 0.5)
    with pytest.raises(ConfigError, match="buffer_size=500 is smaller than episode_length=1000"):
        validate(Config(env="ant", buffer_size=500))


@pytest.mark.xdist_group("ant_u_maze")
def test_mujoco_env_states_survive_a_checkpoint_round_trip():
    states = probe("ant_u_maze")["states"]
    payload = checkpoint._physics_payload(states.physics)
    restored = serialization.from_bytes(payload, serialization.to_bytes(payload))
    back = checkpoint._physics_restore(states.physics, restored)
    import jax

    for a, b in zip(jax.tree_util.tree_leaves(states.physics), jax.tree_util.tree_leaves(back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
