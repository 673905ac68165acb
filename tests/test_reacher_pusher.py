"""The two small manipulation checks, `reacher` and `pusher` (src/deepcrl/envs/mujoco/reacher.py, pusher.py).

Every MJX check reads the one compiled probe per task that tests/test_mujoco_tasks.py also uses
(tests/mujoco_helpers.py: a few environments reset and stepped 100 times with random actions), and
shares its pytest-xdist group, so each task compiles once per test session. Facts about the models
(where the fingertip is, that the puck can be pushed) are checked with plain MuJoCo on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepcrl.envs import make_env
from deepcrl.envs.mujoco import pusher as pusher_mod
from deepcrl.envs.mujoco import reacher as reacher_mod
from deepcrl.envs.mujoco.base import import_mujoco
from mujoco_helpers import NUM_ENVS, STEPS, probe, task

mujoco, _ = import_mujoco()

reacher_group = pytest.mark.xdist_group("reacher")
pusher_group = pytest.mark.xdist_group("pusher")

# name -> (state, goal, action, threshold, episode length, goal indices)
SIZES = {"reacher": (10, 2, 2, 0.05, 1000, (4, 5)), "pusher": (19, 2, 7, 0.1, 1000, (10, 11))}


def _check_probe(name: str):
    env = task(name)
    r = probe(name)
    state, goal, action, threshold, length, indices = SIZES[name]
    assert (env.state_size, env.goal_size, env.action_size) == (state, goal, action)
    assert (env.goal_threshold, env.episode_length, tuple(env.goal_indices)) == (threshold, length, indices)
    assert env.obs_size == state + goal
    assert r["obs"].shape == (STEPS, NUM_ENVS, state) and r["goal"].shape == (STEPS, NUM_ENVS, goal)
    for key in ("obs", "goal", "distance", "reset_obs", "reset_goal", "eval_goal"):
        assert np.isfinite(r[key]).all(), f"{name}: non-finite {key}"
    assert not r["terminated"].any(), f"{name} never terminates"
    # fresh goals at every reset
    for goals in (r["reset_goal"], r["eval_goal"]):
        assert len({tuple(np.round(g, 6)) for g in goals}) == NUM_ENVS
    # success: 1 with the goal on the achieved goal slice, 0 far away
    # (measured one step after the reset: the reacher's fingertip moves by its start velocities, at most
    # START_VEL_NOISE x (LINK + 2 TIP) x dt = 3.2e-5 m; the pusher's achieved goal, the puck, is at rest)
    moved = reacher_mod.START_VEL_NOISE * (reacher_mod.LINK + 2 * reacher_mod.TIP) * env.dt if name == "reacher" else 0.0
    assert (r["at_goal_success"] == 1.0).all() and (r["at_goal_distance"] < moved + 1e-5).all()
    assert (r["far_success"] == 0.0).all()
    return env, r


@reacher_group
def test_reacher_sizes_goals_success_and_random_steps():
    env, r = _check_probe("reacher")
    assert env.dt == pytest.approx(0.02)
    for goals in (r["reset_goal"], r["eval_goal"]):
        assert (np.linalg.norm(goals, axis=-1) <= reacher_mod.GOAL_RADIUS + 1e-6).all()
    # every goal is reachable: the fingertip reaches LINK + TIP from the shoulder
    assert reacher_mod.GOAL_RADIUS < reacher_mod.LINK + reacher_mod.TIP
    obs = r["obs"]
    np.testing.assert_allclose(obs[..., :2] ** 2 + obs[..., 2:4] ** 2, 1.0, atol=1e-5)  # cos^2 + sin^2
    assert (np.linalg.norm(obs[..., 4:6], axis=-1) <= reacher_mod.LINK + reacher_mod.TIP + 1e-5).all()
    # starts: joint angles within +-0.1 rad of zero, fingertip near (0.21, 0)
    start_angles = np.arctan2(r["reset_obs"][:, 2:4], r["reset_obs"][:, 0:2])
    assert (np.abs(start_angles) <= reacher_mod.START_NOISE + 1e-6).all()


def test_reacher_model_has_no_contacts():
    model = mujoco.MjModel.from_xml_string(reacher_mod.reacher_xml())
    assert model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONTACT
    assert model.nu == 2 and model.nq == 2


@pusher_group
def test_pusher_sizes_goals_success_and_random_steps():
    env, r = _check_probe("pusher")
    assert env.dt == pytest.approx(0.05)
    (gx0, gx1), (gy0, gy1) = pusher_mod.GOALS_EASY
    for goals in (r["reset_goal"], r["eval_goal"]):
        assert ((goals[:, 0] >= gx0) & (goals[:, 0] <= gx1) & (goals[:, 1] >= gy0) & (goals[:, 1] <= gy1)).all(), goals
    # the puck starts in its box, or was moved straight away from the goal to MIN_PUCK_GOAL
    puck = r["reset_obs"][:, 10:12]
    gap = np.linalg.norm(puck - r["reset_goal"], axis=-1)
    (px0, px1), (py0, py1) = pusher_mod.PUCK_START
    in_box = (puck[:, 0] >= px0 - 1e-6) & (puck[:, 0] <= px1 + 1e-6) & (puck[:, 1] >= py0 - 1e-6) & (puck[:, 1] <= py1 + 1e-6)
    assert (in_box | np.isclose(gap, pusher_mod.MIN_PUCK_GOAL, atol=1e-5)).all()
    assert (gap >= pusher_mod.MIN_PUCK_GOAL - 1e-5).all()
    # the arm starts at rest in its zero pose
    np.testing.assert_allclose(r["reset_obs"][:, :7], 0.0, atol=1e-6)
    assert (np.abs(r["reset_obs"][:, 12:19]) <= pusher_mod.START_VEL_NOISE + 1e-6).all()


def test_pusher_only_the_hand_touches_the_puck():
    model = mujoco.MjModel.from_xml_string(pusher_mod.pusher_xml())
    pairs = set()
    for a in range(model.ngeom):
        for b in range(a + 1, model.ngeom):
            if model.geom_bodyid[a] == model.geom_bodyid[b]:
                continue
            if (model.geom_contype[a] & model.geom_conaffinity[b]) or (model.geom_contype[b] & model.geom_conaffinity[a]):
                pairs.add(tuple(sorted((model.geom(a).name, model.geom(b).name))))
    assert pairs == {("hand_bar", "puck"), ("hand_left", "puck"), ("hand_right", "puck")}


def test_pusher_arm_pushes_the_puck():
    """Scripted with plain MuJoCo: lower the flat hand to the puck's height, put the puck beside it,
    swing the shoulder (joint PD control through the motors); the puck must be pushed along."""
    model = mujoco.MjModel.from_xml_string(pusher_mod.pusher_xml())
    data = mujoco.MjData(model)
    pose = np.array([0.0, 0.79, 0.0, -0.8, 0.0, 0.0, 0.0])  # shoulder lift down, elbow up: hand flat, tip at z ~ -0.28
    data.qpos[:7] = pose
    mujoco.mj_kinematics(model, data)
    tip = data.site(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "tip")).xpos.copy()
    assert abs(tip[2] - pusher_mod.PUCK_Z) < 0.02
    shoulder = np.array([0.0, -0.6])
    reach = np.linalg.norm(tip[:2] - shoulder)
    start = shoulder + reach * np.array([np.cos(0.3), np.sin(0.3)])  # in the hand's path, 0.3 rad ahead
    data.qpos[7:9] = start - np.asarray(pusher_mod.PUCK_HOME)
    mujoco.mj_forward(model, data)
    puck = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "puck")
    np.testing.assert_allclose(data.xpos[puck][:2], start, atol=1e-9)
    target = pose.copy()
    target[0] = 0.8  # swing the shoulder pan towards +y, through the puck
    touched = False
    for _ in range(300):
        data.ctrl[:] = np.clip(20 * (target - data.qpos[:7]) - 2 * data.qvel[:7], -2, 2)
        mujoco.mj_step(model, data)
        touched |= data.ncon > 0
    moved = data.xpos[puck][:2] - start
    assert touched
    assert np.linalg.norm(moved) > 0.2, moved
    assert moved[1] > 0.2  # pushed the way the hand swept
    assert np.all(np.isfinite(data.qpos))
    # the puck stays where the hand left it (damped slide joints, no drift)
    before = data.xpos[puck].copy()
    data.ctrl[:] = 0
    for _ in range(50):
        mujoco.mj_step(model, data)
    assert np.linalg.norm(data.xpos[puck] - before) < 0.05


def test_constructors_take_episode_length_and_threshold():
    reacher = make_env("reacher", episode_length=50, goal_threshold=0.02)
    assert (reacher.name, reacher.episode_length, reacher.goal_threshold) == ("reacher", 50, 0.02)
    pusher = pusher_mod.Pusher(episode_length=200, goal_threshold=0.088)
    assert (pusher.name, pusher.episode_length, pusher.goal_threshold) == ("pusher", 200, 0.088)
    hard = pusher_mod.Pusher(hard=True)
    assert hard.name == "pusher_hard"
    assert reacher_mod.Reacher().goal_marker(np.array([0.1, -0.1])).tolist() == [0.1, -0.1, reacher_mod.HEIGHT]
