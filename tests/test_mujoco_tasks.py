"""Every MuJoCo task (the paper's tasks): sizes, resets, random steps, goals, success, falls, walls, registry.

Each physics model is compiled once (tests/mujoco_helpers.py) and the checks below read the same results;
the tasks that re-arrange a probed model (other mazes, the arm's easy regions) are checked against it
without compiling MJX again: their MJCF, their start and goal samplers, and their walls in plain MuJoCo.
"""

from __future__ import annotations

import re

import mujoco
import numpy as np
import pytest
from flax import serialization

from deepcrl.build import build_task as make_env_from_config, validate
from deepcrl.checkpoints import train_state as checkpoint
from deepcrl.config import Config
from deepcrl.envs import MUJOCO_TASK_NAMES, get_layout, make_env
from deepcrl.envs.mujoco import maze
from deepcrl.envs.mujoco.ant import ant_xml
from deepcrl.envs.mujoco.arm_model import arm_xml
from deepcrl.envs.mujoco.humanoid import humanoid_xml
from deepcrl.errors import ConfigError
from mujoco_helpers import NUM_ENVS, PROBED, SHARES_PHYSICS_WITH, STEPS, probe, sampled, task

# The paper's table (the paper's tasks) and each model's documented sizes: (state, goal, action, threshold)
EXPECTED = {
    "ant": (29, 2, 8, 0.5),
    "humanoid": (246, 3, 17, 0.5),  # the paper says 268: its model simulates the goal marker (humanoid.py)
    "arm": (17, 3, 5, 0.1),
}
MAZES = tuple(n for n in MUJOCO_TASK_NAMES if n.split("_")[0] in ("ant", "humanoid") and "_" in n)
ANT_MAZES = tuple(n for n in MAZES if n.startswith("ant_"))


def family(name: str) -> str:
    return name.split("_")[0]


def by_task(names):
    """Parameters that keep every test of one task on one pytest-xdist worker (one compile per task)."""
    return [pytest.param(n, marks=pytest.mark.xdist_group(n)) for n in names]


def resets(name: str) -> dict:
    """`reset_goal` and `eval_goal` of NUM_ENVS resets: from the compiled program where the task has
    one, else from the task's own samplers."""
    r = probe(name) if name in PROBED else sampled(name)
    return {k: r[k][:NUM_ENVS] for k in ("reset_goal", "eval_goal")}


@pytest.mark.parametrize("name", MUJOCO_TASK_NAMES)
def test_task_sizes(name):
    env = task(name)
    assert env.name == name
    assert len(env.goal_indices) == env.goal_size and env.obs_size == env.state_size + env.goal_size
    assert env.mj_model.nu == env.action_size and env.episode_length >= 100
    expected = EXPECTED.get(family(name))
    if expected is not None:
        state, goal, action, threshold = expected
        assert (env.state_size, env.goal_size, env.action_size, env.goal_threshold) == (state, goal, action, threshold)


@pytest.mark.parametrize("name", by_task(PROBED))
def test_task_resets_and_steps_with_random_actions(name):
    env = task(name)
    r = probe(name)
    assert r["obs"].shape == (STEPS, NUM_ENVS, env.state_size)
    assert r["goal"].shape == (STEPS, NUM_ENVS, env.goal_size)
    for key in ("obs", "goal", "distance", "reset_obs", "reset_goal", "eval_goal"):
        assert np.isfinite(r[key]).all(), f"{name}: non-finite {key}"
    # the reported distance is the distance between the goal slice of the state and the goal
    achieved = r["obs"][..., list(env.goal_indices)]
    np.testing.assert_allclose(r["distance"], np.linalg.norm(achieved - r["goal"], axis=-1), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(r["success"], (r["distance"] < env.goal_threshold).astype(np.float32))


@pytest.mark.parametrize("name", by_task(MUJOCO_TASK_NAMES))
def test_goals_are_fresh_at_every_reset(name):
    r = resets(name)
    for goals in (r["reset_goal"], r["eval_goal"]):
        assert len({tuple(np.round(g, 5)) for g in goals}) == NUM_ENVS, f"{name}: goals repeat across resets: {goals}"


@pytest.mark.parametrize("name", by_task(PROBED))
def test_success_when_the_goal_slice_is_on_the_goal(name):
    r = probe(name)
    env = task(name)
    assert (r["at_goal_distance"] < env.goal_threshold).all(), r["at_goal_distance"]
    assert (r["at_goal_success"] == 1.0).all()
    assert (r["far_success"] == 0.0).all()


@pytest.mark.parametrize("name", by_task([n for n in PROBED if family(n) in ("ant", "humanoid")]))
def test_locomotion_falls_terminate(name):
    r = probe(name)
    assert r["low_failed"].all(), f"{name}: a torso below the healthy height must count as a fall"
    assert (r["high_terminated"] == 1.0).all(), f"{name}: a torso above the healthy height must end the episode"


@pytest.mark.parametrize("name", by_task([n for n in ANT_MAZES if n in PROBED]))
def test_ant_never_ends_inside_a_wall(name):
    env = task(name)
    xy = probe(name)["obs"][..., :2]
    assert not maze.in_wall(env.layout, env.cell_size, xy).any()


def _cells(env, points):
    return {(int(y // env.cell_size), int(x // env.cell_size)) for x, y in np.asarray(points)[..., :2].reshape(-1, 2)}


@pytest.mark.parametrize("name", by_task(MAZES))  # the u-mazes also read their probe: on its worker
def test_starts_and_goals_lie_in_their_maze_cells(name):
    """Starts in the start cells, training goals in the goal cells, evaluation goals in the far goal cells."""
    env = task(name)
    r = sampled(name)
    assert _cells(env, r["start_qpos"]) == set(env.layout.start_cells)
    assert _cells(env, r["reset_goal"]) == set(env.layout.goal_cells)
    assert _cells(env, r["eval_goal"]) == set(env.layout.eval_goal_cells)
    if name in PROBED:  # and the compiled reset puts the torso where the sampler said
        assert _cells(env, probe(name)["reset_obs"]) <= set(env.layout.start_cells)


@pytest.mark.parametrize("name", MAZES)
def test_walls_stop_a_torso_shoved_into_them(name):
    """Plain MuJoCo on the task's own model: a torso shoved at 6 m/s into a wall of its start cell touches
    the wall and never ends up inside it (the MJX physics of the u-mazes is checked by their probes)."""
    env = task(name)
    model, data = env.mj_model, mujoco.MjData(env.mj_model)
    walls = {g for g in range(model.ngeom) if (model.geom(g).name or "").startswith("wall")}
    layout, size = env.layout, env.cell_size
    shoves = 0
    for row, col in layout.start_cells:
        for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            if not layout.walls[row + dr][col + dc]:
                continue
            mujoco.mj_resetData(model, data)
            centre = (np.array([col, row], np.float64) + 0.5) * size
            direction = np.array([dc, dr], np.float64)
            data.qpos[:2] = centre + 0.15 * size * direction  # 0.35 cells from the wall's face
            data.qvel[:2] = 6.0 * direction
            touched = False
            for _ in range(60 * env.n_frames):
                mujoco.mj_step(model, data)
                touched |= any(c.geom1 in walls or c.geom2 in walls for c in data.contact[: data.ncon])
                assert not maze.in_wall(layout, size, data.qpos[:2]), (name, (row, col), (dr, dc), data.qpos[:2])
            assert touched, (name, (row, col), (dr, dc))
            shoves += 1
    assert shoves > 0


def _mjcf(env) -> str:
    if family(env.name) == "ant":
        return ant_xml(env.layout)
    if family(env.name) == "humanoid":
        return humanoid_xml(env.layout)
    return arm_xml(env.scene, env.hard)


def _without_placements(xml: str) -> tuple[list[str], set[str]]:
    """(the MJCF's lines but its walls, its walls' lines), with the walls' names, positions and sizes and
    the drawn regions' positions and sizes blanked out."""
    xml = re.sub(r'<geom name="wall\d+"( type="box") pos="[^"]*" size="[^"]*"', r'<geom name="wall"\1', xml)
    xml = re.sub(r'(<geom name="(?:start|goal)_region" type="box") pos="[^"]*" size="[^"]*"', r"\1", xml)
    lines = [line.strip() for line in xml.splitlines()]
    walls = {line for line in lines if line.startswith('<geom name="wall"')}
    return [line for line in lines if line not in walls], walls


@pytest.mark.parametrize("name", list(SHARES_PHYSICS_WITH))
def test_variants_differ_from_their_probed_task_only_in_walls_or_regions(name):
    """What lets a variant go without its own MJX compile: it is its probed task's class and settings, and
    its MJCF is the probed task's but for where its walls (mazes) or drawn region squares (arm) lie."""
    env, sibling = task(name), task(SHARES_PHYSICS_WITH[name])
    assert type(env) is type(sibling)
    for attr in ("episode_length", "goal_threshold", "n_frames", "goal_indices", "state_size", "action_size"):
        assert getattr(env, attr) == getattr(sibling, attr), attr
    mine, theirs = _mjcf(env), _mjcf(sibling)
    assert (mujoco.MjModel.from_xml_string(mine).ngeom, mujoco.MjModel.from_xml_string(theirs).ngeom) == (
        env.mj_model.ngeom,
        sibling.mj_model.ngeom,
    )
    (lines, walls), (sibling_lines, sibling_walls) = _without_placements(mine), _without_placements(theirs)
    assert lines == sibling_lines
    assert walls == sibling_walls and len(walls) == (1 if family(name) != "arm" else 0)


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
