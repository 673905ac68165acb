"""The arm tasks: a 7-joint arm with a two-finger gripper reaches, pushes or carries a cube (the paper's tasks).

Tasks: `arm_reach`, `arm_push_easy`, `arm_push_hard`, `arm_binpick_easy`, `arm_binpick_hard`.

State (17), the same layout for every arm task:

    0:3    the achieved goal: the cube's centre (x, y, z); for reach, the grip point
    3:10   the seven joint angles, joints 1-7 from base to hand (3, 5 and 7 are welded: constants)
    10:13  the grip point (x, y, z): between the finger pads, halfway down them
    13:16  the grip point's velocity (its average over the last 0.01 s physics step)
    16     the gap between the finger pads (m): 0.08 open, 0.06 closed on the cube, 0 closed empty

Goal (3): indices (0, 1, 2). Action (5): target angles of joints 1, 2, 4 and 6 (base yaw, shoulder,
elbow and wrist pitch), each in [-1, 1] mapped linearly onto `CONTROLLED_RANGES`, and a gripper
command (-1 open, +1 closed, a position target in between). Success: distance < 0.1 m (the reference
also logs 0.3 and 0.03). Episodes never terminate; 1,000 steps of 0.05 s.

Start and goal regions (metres; the arm's base is at the origin and it faces +y; the table is z = 0).
Cube starts and goals are uniform in x, y over the squares below (centre +- half width), with the cube
resting on the table (z = 0.03, its half size). The arm always starts in the same pose, its grip
point at (0, 0.45, 0.25) pointing down, fingers open. Evaluation draws from the same distributions.

| task | cube start | goal |
|---|---|---|
| reach | no cube | grip point uniform in x [-0.2, 0.2], y [0.3, 0.7], z [0.1, 0.5] |
| push easy | (-0.1, 0.6) +- 0.1 | (0.1, 0.6) +- 0.1, z 0.03: two adjacent 0.2 m squares |
| push hard | (-0.25, 0.65) +- 0.25 | (0.25, 0.65) +- 0.25, z 0.03: two adjacent 0.5 m squares |
| binpick easy | bin A, (-0.3, 0.6) +- 0.07 | a spot on bin B's near side, (0.17, 0.6) +- 0.005, z 0.03 |
| binpick hard | bin A, (-0.3, 0.6) +- 0.15 | anywhere in bin B, (0.3, 0.6) +- 0.15, z 0.03 |

The bins are squares of low walls (inside 0.37 m, walls 0.066 m high; the cube is 0.06 m) with the
table as their floor, so a goal at z = 0.03 is the cube resting on the floor of bin B.

The model is MJCF text written here (no file is read at run time), built from capsules, spheres and
boxes. A pedestal carries the base yaw joint (1); the shoulder pitch (2) is 0.33 m above the table;
upper arm 0.5 m with a roll (3) halfway; elbow pitch (4); forearm 0.45 m with a roll (5); wrist pitch
(6); then the hand roll (7), a box palm and two fingers on slide joints, each a vertical capsule pad
with a small sphere at its tip; the grip point is 0.115 m beyond the wrist. The four controlled joints
have position servos (kp 400/400/300/100 N m/rad, overdamped: kv 120/120/90/30, torque <= 60 N m;
a new target takes about 0.3 s, random actions move joints at 3-4 rad/s). The roll joints 3, 5, 7
are welded at 0, 0 and 63.4 degrees (the last turns the fingers to close square on a cube at the
centre of bin A, 26.6 degrees left of the arm's forward axis; push cubes start 0-51 degrees left).
One position servo (kp 600 N/m, force <= 20 N, joint damping 100 N s/m) drives finger 1 and an
equality constraint makes finger 2 mirror it. Every arm body is gravity-compensated (`gravcomp`).
The cube weighs 0.11 kg.

Physics, tuned for MJX: 0.01 s steps x 5 per environment step, implicitfast integration, Newton
solver with 4 iterations and 3 line-search steps (with 1-3, held cubes shoot off or explode), pyramidal
friction cones, no joint limits (the servos' control ranges bound the joints). The only contacts are
explicit `<pair>`s (every geom has contype = conaffinity = 0): cube-table (condim 3, friction 0.5),
finger pads-cube (condim 3, friction 1.5, solimp 0.95 0.99: a held cube creeps about 2 mm/s), finger
tips and wrist-table (frictionless), and for binpick cube-walls and finger tips-walls (frictionless;
`max_geom_pairs` = 2 keeps the two closest pairs of each kind). Arm links pass through each other,
the cube and the walls (only the finger tips stop at walls); the palm does not touch the cube, but
the fingers reach 1 mm further below the palm than the cube is tall, so a cube on the table does
not get into the palm. MJX on CPU: kinematic chains of 7 or more hinges compiled into very slow code
here (MJX kinematics of 4 environments: 0.5 ms for a 5-hinge chain, 38 ms for 7, 476 ms for 9), one
more reason the three roll joints are welded and their bodies fused into their parents.

Known properties of the tasks (as in the reference): the gripper cannot turn, so a cube lying
within about 1 cm of a bin wall along the fingers' closing direction must be slid away before it
can be grasped; pushing with the closed fingers (a narrow pusher) makes the cube turn.

Where this model necessarily differs from the paper's code (JaxGCRL, `jaxgcrl/envs/manipulation`),
whose arm is a Franka Panda model file that cannot be shipped:
- Our own arm: other link lengths (longer: every start and goal square is reachable, the far corners
  of push hard only with a tilted hand), masses, gains, joint conventions and control ranges. The
  reference maps the 4 actions onto Panda joints 1, 2, 4, 6 over [0.35, 2.79], [0, 1.48],
  [-3.07, -0.07], [2.36, 3.75] rad and holds joints 3, 5, 7 at 0, 0, 1.45 rad with servos; here the
  ranges are our joints' and joints 3, 5, 7 are welded (so their observed angles are constants).
- Observation: the reference code's state has 18 entries, the paper's table says 17; the reference's
  extra entry is a "gripper force" (a scaled mean of the arm's actuator forces), dropped here. Its
  end-effector is the hand's base (Panda link 7), ours is the grip point between the pads.
- Reach: the reference's reach has a 13-entry state and 4 actions (no gripper, no cube). Here it
  keeps the 17-entry layout and 5 actions of the other arm tasks (the gripper command only moves the
  fingers); there is no cube, entries 0:3 repeat the grip point (entries 10:13), so the goal slice is
  (0, 1, 2) for every arm task. The goal box is the reference's.
- Gripper: the reference's command is binary (a positive action closes fully, otherwise it opens);
  here it is a linear position target (-1 open, +1 closed).
- Physics: the reference steps 0.002 s x 25 with 6 solver iterations and 12 line-search steps; here
  0.01 s x 5 (the same 0.05 s per environment step), Newton with 4 and 3.
- Episode length: the reference's env files suggest 100 (reach) and 150 steps, but the paper trains
  and evaluates with 1,000-step episodes (the paper's training and evaluation settings), the default here.
- The goal is not a body in the simulation (the reference moves a ghost cube in qpos); renderers draw
  it with `goal_marker`. The reference drops the cube from z = 0.07; here it starts at rest.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.mujoco.arm_model import (
    BINPICK,
    BIN_A,
    BIN_B,
    BIN_HALF,
    BIN_HEIGHT,
    BIN_WALL,
    CONTROLLED_RANGES,
    CUBE_HALF,
    FINGER_TRAVEL,
    HELD,
    PUSH,
    REACH_GOAL,
    START_GRIP,
    TIP_RADIUS,
    arm_xml,
    grip_ik,
)
from deepcrl.envs.mujoco.base import MjxTask, import_mujoco


# ---------------------------------------------------------------------------------------- the tasks
CONTROLLED = ("j1", "j2", "j4", "j6")  # the joints with servos, in action order


class _Arm(MjxTask):
    state_size = 17
    goal_size = 3
    action_size = 5
    goal_indices = (0, 1, 2)
    n_frames = 5  # 0.01 s physics steps: 0.05 s per environment step, as in the reference

    def __init__(self, name: str, scene: str, hard: bool, *, episode_length: int, goal_threshold: float):
        mujoco, _ = import_mujoco()
        self.name = name
        self.scene = scene
        self.hard = bool(hard)
        model = mujoco.MjModel.from_xml_string(arm_xml(scene, self.hard))
        super().__init__(model, episode_length=episode_length, goal_threshold=goal_threshold)

        def qadr(joint):
            return int(model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint)])

        self._arm_q = np.array([qadr(j) for j in CONTROLLED])
        self._finger_q = np.array([qadr("finger_a"), qadr("finger_b")])
        self._cube_q = qadr("cube") if scene != "reach" else None
        self._grip_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "grip")
        pose = grip_ik(*START_GRIP)
        qpos = np.array(model.qpos0, np.float64)
        qpos[self._arm_q] = [pose[j] for j in CONTROLLED]
        qpos[self._finger_q] = 0.0  # open
        self._start_qpos = jnp.asarray(qpos, jnp.float32)
        self._held = jnp.asarray([HELD[j] for j in ("j3", "j5", "j7")], jnp.float32)

    # -------------------------------------------------------------- observation
    def grip_point(self, data) -> jax.Array:
        """The grip point of an mjx.Data, from its current joint angles."""
        _, mjx = import_mujoco()
        return mjx.kinematics(self.mjx_model, data).site_xpos[self._grip_site]

    def _observe(self, data):
        # after mjx.step, data.site_xpos still holds the positions before the last physics step's
        # integration; recomputing kinematics gives the current grip point, and the difference the
        # grip point's velocity over that step (0 right after a reset, where qvel = 0 too)
        grip = self.grip_point(data)
        grip_vel = (grip - data.site_xpos[self._grip_site]) / self.mj_model.opt.timestep
        fingers = data.qpos[self._finger_q]
        gap = 2 * FINGER_TRAVEL - fingers[0] - fingers[1]
        achieved = grip if self._cube_q is None else data.qpos[self._cube_q : self._cube_q + 3]
        q = data.qpos[self._arm_q]
        angles = jnp.stack([q[0], q[1], self._held[0], q[2], self._held[1], q[3], self._held[2]])
        obs = jnp.concatenate([achieved, angles, grip, grip_vel, gap[None]])
        return obs.astype(jnp.float32)

    # -------------------------------------------------------------- starts and goals
    @staticmethod
    def _uniform_square(key, centre, half) -> jax.Array:
        return jnp.asarray(centre, jnp.float32) + jax.random.uniform(key, (2,), jnp.float32, -half, half)

    def _cube_start(self, key) -> jax.Array:
        raise NotImplementedError

    def _start(self, key):
        qpos = self._start_qpos
        if self._cube_q is not None:
            qpos = qpos.at[self._cube_q : self._cube_q + 2].set(self._cube_start(key))
        return qpos, jnp.zeros(self.mj_model.nv, jnp.float32)


class ArmReach(_Arm):
    """Move the grip point to a goal in a box in front of the arm."""

    def __init__(self, *, episode_length: int = 1000, goal_threshold: float = 0.1):
        super().__init__("arm_reach", "reach", False, episode_length=episode_length, goal_threshold=goal_threshold)

    def _train_goal(self, key):
        lo, hi = (jnp.asarray(v, jnp.float32) for v in REACH_GOAL)
        return jax.random.uniform(key, (3,), jnp.float32, lo, hi)


class _CubeArm(_Arm):
    """A task about the cube: it starts uniform over a square, goals are uniform over another square."""

    regions: dict  # hard -> (start centre, start half width, goal centre, goal half width)

    def __init__(self, family: str, hard: bool, *, episode_length: int, goal_threshold: float):
        name = f"arm_{family}_{'hard' if hard else 'easy'}"
        super().__init__(name, family, hard, episode_length=episode_length, goal_threshold=goal_threshold)
        self.start_region, self.goal_region = self.regions[self.hard][:2], self.regions[self.hard][2:]

    def _cube_start(self, key):
        return self._uniform_square(key, *self.start_region)

    def _train_goal(self, key):
        xy = self._uniform_square(key, *self.goal_region)
        return jnp.concatenate([xy, jnp.full((1,), CUBE_HALF, jnp.float32)])  # the cube resting on the table


class ArmPush(_CubeArm):
    """Push (or carry) the cube from its start square (blue) to a goal in the adjacent square (red)."""

    regions = PUSH

    def __init__(self, hard: bool, *, episode_length: int = 1000, goal_threshold: float = 0.1):
        super().__init__("push", hard, episode_length=episode_length, goal_threshold=goal_threshold)


class ArmBinpick(_CubeArm):
    """Carry the cube from bin A (blue, x < 0) into bin B (red, x > 0)."""

    regions = BINPICK

    def __init__(self, hard: bool, *, episode_length: int = 1000, goal_threshold: float = 0.1):
        super().__init__("binpick", hard, episode_length=episode_length, goal_threshold=goal_threshold)


__all__ = [  # the tasks, and the geometry and regions they are built from (arm_model.py)
    "ArmBinpick",
    "ArmPush",
    "ArmReach",
    "BINPICK",
    "BIN_A",
    "BIN_B",
    "BIN_HALF",
    "BIN_HEIGHT",
    "BIN_WALL",
    "CONTROLLED",
    "CONTROLLED_RANGES",
    "CUBE_HALF",
    "FINGER_TRAVEL",
    "HELD",
    "PUSH",
    "REACH_GOAL",
    "START_GRIP",
    "TIP_RADIUS",
    "arm_xml",
    "grip_ik",
]
