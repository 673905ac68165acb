"""The arm tasks (envs/mujoco/arm.py): sizes, start and goal regions, resets, random steps, success, and
scripted grasps in plain MuJoCo that make the model's graspability a tested fact.

The MJX checks read the one compiled program per task that tests/test_mujoco_tasks.py also reads
(tests/mujoco_helpers.py: random actions, and copies holding their pose whose goal is the achieved goal
or 0.5 m away), for two of the five tasks, reach and binpick hard (whose contacts include all of
push's): compiling costs 30-200 s on a small CPU, running milliseconds. Region checks sample the
tasks' start and goal functions directly, without physics; grasps run in plain MuJoCo (the same model
and solver settings).
"""

from __future__ import annotations

import jax
import mujoco
import numpy as np
import pytest

from deepcrl.envs.mujoco import arm
from mujoco_helpers import NUM_ENVS, probe, task

TASKS = ("arm_reach", "arm_push_easy", "arm_push_hard", "arm_binpick_easy", "arm_binpick_hard")
# binpick hard has every contact of push (test_mujoco_tasks checks every task); each probed task's tests
# share the pytest-xdist worker of its test_mujoco_tasks tests, so that its program compiles once
PROBED = [pytest.param(n, marks=pytest.mark.xdist_group(n)) for n in ("arm_reach", "arm_binpick_hard")]
ARM_GROUPS = ("random", "at_goal", "far")  # the groups of an arm task's probe: random actions, and two holding their pose


# ------------------------------------------------------------------------------ sizes and regions
@pytest.mark.parametrize("name", TASKS)
def test_sizes_match_the_paper(name):
    env = task(name)
    assert env.name == name
    assert (env.state_size, env.goal_size, env.action_size) == (17, 3, 5)
    assert env.goal_indices == (0, 1, 2) and env.obs_size == 20
    assert env.goal_threshold == 0.1 and env.episode_length == 1000
    assert env.mj_model.nu == 5 and env.dt == pytest.approx(0.05)
    assert env.mj_model.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON


def _samples(fn, n=512):
    return np.asarray(jax.vmap(fn)(jax.random.split(jax.random.PRNGKey(1), n)))


def _assert_in_square(xy, centre, half, tol=1e-6):
    assert (np.abs(xy - np.asarray(centre)) <= half + tol).all(), (xy.min(0), xy.max(0), centre, half)
    # and the samples fill the square (not a point or a line)
    assert (xy.max(0) - xy.min(0) > 1.5 * half).all()


@pytest.mark.parametrize("hard", [False, True])
def test_push_starts_and_goals_come_from_their_squares(hard):
    env = task("arm_push_hard" if hard else "arm_push_easy")
    start_c, start_h, goal_c, goal_h = arm.PUSH[hard]
    assert (start_h, goal_h) == ((0.25, 0.25) if hard else (0.1, 0.1))
    goals = _samples(env._train_goal)
    _assert_in_square(goals[:, :2], goal_c, goal_h)
    np.testing.assert_allclose(goals[:, 2], arm.CUBE_HALF)  # the cube resting on the table
    np.testing.assert_array_equal(_samples(env._eval_goal), goals)  # evaluation uses the same squares
    cube = _samples(lambda k: env._start(k)[0][env._cube_q : env._cube_q + 3])
    _assert_in_square(cube[:, :2], start_c, start_h)
    np.testing.assert_allclose(cube[:, 2], arm.CUBE_HALF)


@pytest.mark.parametrize("hard", [False, True])
def test_binpick_cubes_start_in_bin_a_and_goals_lie_in_bin_b(hard):
    env = task("arm_binpick_hard" if hard else "arm_binpick_easy")
    start_c, start_h, goal_c, goal_h = arm.BINPICK[hard]
    goals = _samples(env._train_goal)
    _assert_in_square(goals[:, :2], goal_c, goal_h)
    inner = arm.BIN_HALF - arm.BIN_WALL - arm.CUBE_HALF  # a cube centred here fits inside the walls
    assert (np.abs(goals[:, :2] - np.asarray(arm.BIN_B)) <= inner).all()
    assert (goals[:, 2] >= arm.CUBE_HALF - 1e-6).all() and (goals[:, 2] < arm.BIN_HEIGHT).all()  # on the bin floor
    cube = _samples(lambda k: env._start(k)[0][env._cube_q : env._cube_q + 3])
    _assert_in_square(cube[:, :2], start_c, start_h)
    assert (np.abs(cube[:, :2] - np.asarray(arm.BIN_A)) <= inner).all()
    spread = goals[:, :2].max(0) - goals[:, :2].min(0)
    assert (spread > 0.2).all() if hard else (spread < 0.011).all()  # hard: the whole bin; easy: one spot


def test_reach_goals_fill_the_reference_box():
    env = task("arm_reach")
    goals = _samples(env._train_goal)
    lo, hi = (np.asarray(v) for v in arm.REACH_GOAL)
    assert (goals >= lo - 1e-6).all() and (goals <= hi + 1e-6).all()
    assert ((goals.max(0) - goals.min(0)) > 0.75 * (hi - lo)).all()


def test_every_start_and_goal_is_within_the_arms_reach():
    """Every point of every start and goal square (corners included) can be touched at cube height by
    the grip point, in some pose within the servos' control ranges, with the finger tips above the table."""
    model = mujoco.MjModel.from_xml_string(arm.arm_xml("push", True))
    data = mujoco.MjData(model)
    q_adr = [model.jnt_qposadr[model.joint(j).id] for j in arm.CONTROLLED]
    # poses in the arm's plane (joint 1 at 0, facing +y): the distances from the base they reach
    grids = [np.linspace(*arm.CONTROLLED_RANGES[j], 30) for j in ("j2", "j4", "j6")]
    reach = []
    for q2, q4, q6 in np.stack(np.meshgrid(*grids), -1).reshape(-1, 3):
        data.qpos[q_adr] = (0.0, q2, q4, q6)
        mujoco.mj_kinematics(model, data)
        tips = min(data.geom("finger_a_tip").xpos[2], data.geom("finger_b_tip").xpos[2]) - arm.TIP_RADIUS
        grip = data.site("grip").xpos
        if 0.01 < grip[2] < 0.06 and tips > -0.002:
            reach.append(grip[1])
    reach = np.sort(reach)
    yaw_lo, yaw_hi = arm.CONTROLLED_RANGES["j1"]
    squares = [r[i : i + 2] for r in (arm.PUSH[False], arm.PUSH[True], arm.BINPICK[True]) for i in (0, 2)]
    for centre, half in squares:
        for x in np.linspace(centre[0] - half, centre[0] + half, 6):
            for y in np.linspace(centre[1] - half, centre[1] + half, 6):
                assert yaw_lo < np.arctan2(-x, y) < yaw_hi
                assert np.min(np.abs(reach - np.hypot(x, y))) < 0.03, (x, y, reach.min(), reach.max())


# ------------------------------------------------------------------------------ MJX: resets and steps
@pytest.mark.parametrize("name", PROBED)
def test_goals_differ_across_resets(name):
    goals = probe(name)["reset_goal"]
    assert len({tuple(np.round(g, 5)) for g in goals}) == NUM_ENVS


@pytest.mark.parametrize("name", PROBED)
def test_reset_observation_layout(name):
    r = probe(name)
    obs = r["reset_obs"]
    np.testing.assert_allclose(obs[:, 10:13], np.broadcast_to(arm.START_GRIP, (NUM_ENVS, 3)), atol=2e-3)  # start pose
    np.testing.assert_allclose(obs[:, 13:16], np.zeros((NUM_ENVS, 3)), atol=1e-6)  # at rest
    np.testing.assert_allclose(obs[:, 16], np.full(NUM_ENVS, 2 * arm.FINGER_TRAVEL), atol=1e-6)  # fingers open
    held = np.broadcast_to([arm.HELD[j] for j in ("j3", "j5", "j7")], (NUM_ENVS, 3))
    np.testing.assert_allclose(obs[:, [5, 7, 9]], held, atol=1e-6)  # the welded roll joints
    if name == "arm_reach":
        np.testing.assert_array_equal(obs[:, :3], obs[:, 10:13])  # the achieved goal is the grip point
    else:
        np.testing.assert_allclose(obs[:, 2], np.full(NUM_ENVS, arm.CUBE_HALF), atol=1e-6)  # the cube on the table


@pytest.mark.parametrize("name", PROBED)
def test_random_steps_keep_everything_finite_and_the_cube_on_the_table(name):
    r = probe(name)
    obs = r["obs"]
    assert np.isfinite(obs).all()
    for group in ARM_GROUPS:
        assert (r[group]["terminated"] == 0).all()  # arm tasks never fail (holding environments included)
        assert (r[group]["truncated"] == 0).all()  # 120 steps < 1,000
    assert (obs[..., 12] > 0.0).all()  # the grip point stays above the table
    if name != "arm_reach":
        cube = obs[..., :3]
        assert (cube[..., 2] > arm.CUBE_HALF - 0.015).all()  # above the floor (contacts are soft)
        assert (cube[..., 2] < 0.6).all()
        assert (np.linalg.norm(cube[..., :2], axis=-1) < 1.1).all()  # within the arm's reach


@pytest.mark.parametrize("name", PROBED)
def test_success_when_the_goal_is_the_achieved_goal_and_not_half_a_metre_away(name):
    # one step after a reset, holding the pose: goal on the achieved goal, and 0.5 m along x from it
    r = probe(name)
    assert (r["at_goal_success"] == 1.0).all(), r["at_goal_distance"]
    assert (r["far_success"] == 0.0).all()


# ------------------------------------------------------------------------------ plain MuJoCo: grasps
class Scripted:
    """Drives the arm in plain MuJoCo through grip-point waypoints (hand pointing down), as targets of
    the four position servos, one target per 0.05 s environment step, like a policy would."""

    def __init__(self, scene: str, hard: bool, cube_xy):
        self.model = mujoco.MjModel.from_xml_string(arm.arm_xml(scene, hard))
        self.data = mujoco.MjData(self.model)
        self.q = [self.model.jnt_qposadr[self.model.joint(j).id] for j in arm.CONTROLLED]
        self.cube = self.model.jnt_qposadr[self.model.joint("cube").id]
        pose = arm.grip_ik(*arm.START_GRIP)
        self.data.qpos[self.q] = [pose[j] for j in arm.CONTROLLED]
        self.data.qpos[self.cube : self.cube + 3] = [*cube_xy, arm.CUBE_HALF]
        mujoco.mj_forward(self.model, self.data)
        self.at = arm.START_GRIP

    def go(self, point, close: bool, seconds: float):
        steps = max(1, round(seconds / 0.05))
        start = np.asarray(self.at)
        for k in range(1, steps + 1):
            pose = arm.grip_ik(*(start + (np.asarray(point) - start) * k / steps))
            self.data.ctrl[:4] = [pose[j] for j in arm.CONTROLLED]
            self.data.ctrl[4] = arm.FINGER_TRAVEL if close else 0.0
            for _ in range(5):
                mujoco.mj_step(self.model, self.data)
        self.at = point

    def cube_pos(self):
        return self.data.qpos[self.cube : self.cube + 3].copy()


def test_scripted_grasp_lifts_the_cube():
    s = Scripted("push", False, (0.0, 0.6))
    s.go((0.0, 0.6, 0.15), False, 1.0)
    s.go((0.0, 0.6, 0.035), False, 1.0)
    s.go((0.0, 0.6, 0.035), True, 0.5)
    s.go((0.0, 0.6, 0.25), True, 1.5)
    s.go((0.0, 0.6, 0.25), True, 0.5)
    cube = s.cube_pos()
    assert cube[2] > 0.18, cube  # lifted by 15 cm or more
    assert np.linalg.norm(cube - s.data.site("grip").xpos) < 0.04  # and held between the pads
    s.go((0.25, 0.5, 0.25), True, 1.5)  # carried sideways
    assert np.linalg.norm(s.cube_pos() - s.data.site("grip").xpos) < 0.05


@pytest.mark.parametrize("cube_xy, goal_xy", [((-0.3, 0.6), (0.17, 0.6)), ((-0.4, 0.5), (0.3, 0.6)), ((-0.2, 0.45), (0.4, 0.75))])
def test_scripted_binpick_moves_the_cube_into_bin_b(cube_xy, goal_xy):
    s = Scripted("binpick", True, cube_xy)
    above, lift = (*cube_xy, 0.18), (*goal_xy, 0.18)
    s.go(above, False, 1.5)
    s.go((*cube_xy, 0.035), False, 1.0)
    s.go((*cube_xy, 0.035), True, 0.5)
    s.go(above, True, 1.3)
    assert s.cube_pos()[2] > 0.12  # lifted over the walls
    s.go(lift, True, 2.5)
    s.go((*goal_xy, 0.05), True, 0.8)
    s.go((*goal_xy, 0.05), False, 0.5)
    s.go(lift, False, 1.0)
    cube = s.cube_pos()
    assert np.linalg.norm(cube - np.array([*goal_xy, arm.CUBE_HALF])) < 0.03, cube  # within success distance


def test_scripted_push_moves_the_cube_towards_the_goal():
    s = Scripted("push", False, (-0.1, 0.6))
    s.go((-0.18, 0.6, 0.12), True, 1.0)
    s.go((-0.18, 0.6, 0.035), True, 0.5)
    s.go((0.06, 0.6, 0.035), True, 2.5)  # the closed fingers sweep along the table through the cube
    cube = s.cube_pos()
    assert cube[0] > 0.0 and abs(cube[2] - arm.CUBE_HALF) < 0.01, cube  # pushed 10+ cm, still on the table
