"""The arm tasks: a 7-joint arm with a two-finger gripper reaches, pushes or carries a cube (paper.md §8).

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
  and evaluates with 1,000-step episodes (paper.md §6-§7), the default here.
- The goal is not a body in the simulation (the reference moves a ghost cube in qpos); renderers draw
  it with `goal_marker`. The reference drops the cube from z = 0.07; here it starts at rest.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.mujoco.base import MjxTask, import_mujoco

# ---------------------------------------------------------------------------------------- geometry
SHOULDER_HEIGHT = 0.33  # joint 2 above the table
BASE_HEIGHT = 0.10  # joint 1 (yaw) above the table
UPPER_ARM = (0.20, 0.30)  # shoulder -> roll joint 3 -> elbow
FOREARM = (0.20, 0.25)  # elbow -> roll joint 5 -> wrist
WRIST_TO_HAND = 0.04  # wrist pitch joint 6 -> hand roll joint 7
PALM_BOTTOM = 0.045  # hand frame: the fingers hang from here
PAD_RADIUS = 0.008
PAD_SPAN = (0.01, 0.05)  # finger frame: the pad capsule's segment along the hand axis
TIP_RADIUS = 0.009
TIP_AT = 0.052  # finger frame: the tip sphere's centre
GRIP_AT = PALM_BOTTOM + 0.03  # hand frame: the grip point, halfway down the pads
FINGER_TRAVEL = 0.04  # each finger closes this far; open gap = 2 * FINGER_TRAVEL (the cube is 0.06)
CUBE_HALF = 0.03
TABLE_Z = 0.0

UPPER = sum(UPPER_ARM)
FORE = sum(FOREARM)
HAND = WRIST_TO_HAND + GRIP_AT  # wrist pitch joint -> grip point

# Target-angle ranges (rad) of the four controlled joints: the action maps linearly onto them.
# Angles: joint 1 is the yaw from +y (positive towards -x); joints 2, 4, 6 pitch the next link
# forward (0 = straight on from the previous link, joint 2: 0 = upper arm vertical).
CONTROLLED_RANGES = {
    "j1": (-math.radians(70), math.radians(70)),
    "j2": (-math.radians(20), math.radians(100)),
    "j4": (0.0, math.radians(160)),
    "j6": (-math.radians(40), math.radians(100)),
}
# The roll joints the agent does not command, welded at these angles. Joint 7 turns the fingers so
# that they close square onto a cube 26.6 degrees left of the arm's forward axis (the centre of bin A,
# where binpick cubes start; push cubes start 0-51 degrees left), so most grasps need no re-orientation.
HELD = {"j3": 0.0, "j5": 0.0, "j7": math.pi / 2 - math.atan2(0.3, 0.6)}

# servo gains (N m / rad, N m s / rad) and torque limit (N m): overdamped, about 0.3 s to settle on a
# new target and 3-4 rad/s at most under random actions (stiffer servos fling the cube off the table)
SERVO = {"j1": (400, 120), "j2": (400, 120), "j4": (300, 90), "j6": (100, 30)}
SERVO_TORQUE = 60
GRIP_KP, GRIP_DAMPING, GRIP_FORCE = 600, 100, 20  # closing speed ~ kp * travel / damping

PAD_FRICTION = 1.5
PAD_CONDIM = 3
PAD_SOLIMP = "0.95 0.99 0.001"  # stiffer than the default (0.9 0.95): the held cube creeps less
TABLE_FRICTION = 0.5

# ---------------------------------------------------------------------------------------- regions
START_GRIP = (0.0, 0.45, 0.25)  # the grip point at the start of every episode (pointing down)
REACH_GOAL = ((-0.2, 0.3, 0.1), (0.2, 0.7, 0.5))
PUSH = {  # hard -> (cube start centre, half width, goal centre, half width)
    False: ((-0.1, 0.6), 0.1, (0.1, 0.6), 0.1),
    True: ((-0.25, 0.65), 0.25, (0.25, 0.65), 0.25),
}
BIN_A, BIN_B = (-0.3, 0.6), (0.3, 0.6)
BIN_HALF, BIN_WALL, BIN_HEIGHT = 0.19, 0.005, 0.066  # wall centre line, half thickness, height
BINPICK = {
    False: (BIN_A, 0.07, (0.17, 0.6), 0.005),
    True: (BIN_A, 0.15, BIN_B, 0.15),
}
MAX_GEOM_PAIRS = 2

# physics
TIMESTEP = 0.01
ITERATIONS = 4
LS_ITERATIONS = 3


def grip_ik(x: float, y: float, z: float) -> dict[str, float]:
    """Joint angles that put the grip point at (x, y, z) with the hand pointing straight down (elbow up)."""
    yaw = math.atan2(-x, y)
    r = math.hypot(x, y)
    wx, wz = r, z + HAND - SHOULDER_HEIGHT  # the wrist joint, in the arm's plane, from the shoulder
    d = math.hypot(wx, wz)
    if not abs(UPPER - FORE) <= d <= UPPER + FORE:
        raise ValueError(f"grip point {(x, y, z)} is out of reach")
    elbow = math.acos((d * d - UPPER**2 - FORE**2) / (2 * UPPER * FORE))
    shoulder = math.atan2(wx, wz) - math.atan2(FORE * math.sin(elbow), UPPER + FORE * math.cos(elbow))
    wrist = math.pi - shoulder - elbow
    return {"j1": yaw, "j2": shoulder, "j3": HELD["j3"], "j4": elbow, "j5": HELD["j5"], "j6": wrist, "j7": HELD["j7"]}


# ---------------------------------------------------------------------------------------- MJCF text
def _fmt(*v: float) -> str:
    return " ".join(f"{x:.5g}" for x in v)


def _finger_xml(name: str, side: int) -> str:
    x0 = side * (PAD_RADIUS + FINGER_TRAVEL)  # finger position when fully open
    return f"""
                <body name="{name}" pos="{_fmt(x0, 0, PALM_BOTTOM)}" gravcomp="1">
                  <joint name="{name}" type="slide" axis="{-side} 0 0" armature="0.05" damping="{GRIP_DAMPING}"/>
                  <geom name="{name}_link" type="box" pos="{_fmt(side * 0.008, 0, 0.006)}" size="0.006 0.012 0.006" rgba="0.3 0.3 0.3 1"/>
                  <geom name="{name}_pad" type="capsule" fromto="{_fmt(0, 0, PAD_SPAN[0], 0, 0, PAD_SPAN[1])}" size="{PAD_RADIUS}" mass="0.02" rgba="0.2 0.2 0.2 1"/>
                  <geom name="{name}_tip" type="sphere" pos="{_fmt(0, 0, TIP_AT)}" size="{TIP_RADIUS}" mass="0.005" rgba="0.2 0.2 0.2 1"/>
                </body>"""


def _arm_xml() -> str:
    fingers = _finger_xml("finger_a", 1) + _finger_xml("finger_b", -1)
    pitch = 'axis="-1 0 0"'
    roll = 'axis="0 0 1"'
    # the roll "joints" 3, 5 and 7 are welded at their held angles: joint-less bodies that the
    # compiler fuses into their parents (fusestatic), so the kinematic chain stays 4 hinges deep
    return f"""
    <geom name="pedestal" type="cylinder" pos="0 0 {BASE_HEIGHT / 2}" size="0.08 {BASE_HEIGHT / 2}" rgba="0.25 0.25 0.3 1"/>
    <body name="link1" pos="0 0 {BASE_HEIGHT}" gravcomp="1">
      <joint name="j1" {roll}/>
      <geom type="capsule" fromto="0 0 0 0 0 {SHOULDER_HEIGHT - BASE_HEIGHT}" size="0.055"/>
      <body name="link2" pos="0 0 {SHOULDER_HEIGHT - BASE_HEIGHT}" gravcomp="1">
        <joint name="j2" {pitch}/>
        <geom type="capsule" fromto="0 0 0 0 0 {UPPER_ARM[0]}" size="0.045"/>
        <body name="link3" pos="0 0 {UPPER_ARM[0]}" euler="0 0 {HELD['j3']}" gravcomp="1">
          <geom type="capsule" fromto="0 0 0 0 0 {UPPER_ARM[1]}" size="0.04"/>
          <body name="link4" pos="0 0 {UPPER_ARM[1]}" gravcomp="1">
            <joint name="j4" {pitch}/>
            <geom type="capsule" fromto="0 0 0 0 0 {FOREARM[0]}" size="0.038"/>
            <body name="link5" pos="0 0 {FOREARM[0]}" euler="0 0 {HELD['j5']}" gravcomp="1">
              <geom type="capsule" fromto="0 0 0 0 0 {FOREARM[1]}" size="0.034"/>
              <body name="link6" pos="0 0 {FOREARM[1]}" gravcomp="1">
                <joint name="j6" {pitch}/>
                <geom name="wrist" type="sphere" size="0.035"/>
                <geom type="capsule" fromto="0 0 0 0 0 {WRIST_TO_HAND}" size="0.028"/>
                <body name="hand" pos="0 0 {WRIST_TO_HAND}" euler="0 0 {HELD['j7']}" gravcomp="1">
                  <geom name="palm" type="box" pos="0 0 {PALM_BOTTOM - 0.015}" size="{PAD_RADIUS + FINGER_TRAVEL + 0.016} 0.022 0.015"/>
                  <site name="grip" pos="0 0 {GRIP_AT}" size="0.006" rgba="1 0.8 0 1"/>
                  {fingers}
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>"""


def _square_xml(name: str, centre, half: float, rgba: str) -> str:
    """A flat, non-colliding marker of a start or goal region on the table."""
    return f'<geom name="{name}" type="box" pos="{_fmt(*centre, 0.0005)}" size="{_fmt(half + CUBE_HALF, half + CUBE_HALF, 0.0005)}" rgba="{rgba}"/>'


def _bin_walls(prefix: str, centre) -> list[tuple[str, str]]:
    cx, cy = centre
    h = BIN_HEIGHT / 2
    long = BIN_HALF + BIN_WALL
    walls = [
        (f"{prefix}_south", _fmt(cx, cy - BIN_HALF, h), _fmt(long, BIN_WALL, h)),
        (f"{prefix}_north", _fmt(cx, cy + BIN_HALF, h), _fmt(long, BIN_WALL, h)),
        (f"{prefix}_west", _fmt(cx - BIN_HALF, cy, h), _fmt(BIN_WALL, BIN_HALF - BIN_WALL, h)),
        (f"{prefix}_east", _fmt(cx + BIN_HALF, cy, h), _fmt(BIN_WALL, BIN_HALF - BIN_WALL, h)),
    ]
    return walls


def arm_xml(scene: str, hard: bool = False) -> str:
    """The MJCF text of an arm task: scene 'reach' (arm and table), 'push' (and a cube) or 'binpick' (and two bins)."""
    if scene not in ("reach", "push", "binpick"):
        raise ValueError(f"unknown arm scene {scene!r}")
    extras, pairs = [], []
    contact = 'condim="1" friction="0 0 0 0 0"'
    for g in ("finger_a_tip", "finger_b_tip", "wrist"):
        pairs.append(f'<pair geom1="{g}" geom2="table" {contact}/>')
    if scene != "reach":
        extras.append(f"""
    <body name="cube" pos="{_fmt(0, 0.6, CUBE_HALF)}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{_fmt(CUBE_HALF, CUBE_HALF, CUBE_HALF)}" density="500" rgba="0.1 0.6 0.2 1"/>
    </body>""")
        pairs.append(f'<pair geom1="cube" geom2="table" condim="3" friction="{_fmt(TABLE_FRICTION, TABLE_FRICTION)} 0.005 0.0001 0.0001"/>')
        for f in ("finger_a_pad", "finger_b_pad"):
            pairs.append(f'<pair geom1="{f}" geom2="cube" condim="{PAD_CONDIM}" friction="{_fmt(PAD_FRICTION, PAD_FRICTION)} 0.01 0.0001 0.0001" solimp="{PAD_SOLIMP}"/>')
    if scene == "push":
        start, s_half, goal, g_half = PUSH[hard]
        extras.append(_square_xml("start_region", start, s_half, "0.2 0.35 0.8 1"))
        extras.append(_square_xml("goal_region", goal, g_half, "0.8 0.25 0.2 1"))
    if scene == "binpick":
        for prefix, centre, rgba in (("bin_a", BIN_A, "0.2 0.35 0.8 1"), ("bin_b", BIN_B, "0.8 0.25 0.2 1")):
            for name, pos, size in _bin_walls(prefix, centre):
                extras.append(f'<geom name="{name}" type="box" pos="{pos}" size="{size}" rgba="{rgba}"/>')
                for g in ("cube", "finger_a_tip", "finger_b_tip"):
                    pairs.append(f'<pair geom1="{g}" geom2="{name}" {contact}/>')
    custom = f'<custom><numeric name="max_geom_pairs" data="{MAX_GEOM_PAIRS}"/></custom>' if scene == "binpick" else ""

    servos = "".join(
        f'<position name="{j}" joint="{j}" kp="{SERVO[j][0]}" kv="{SERVO[j][1]}" ctrlrange="{_fmt(*CONTROLLED_RANGES[j])}" forcerange="-{SERVO_TORQUE} {SERVO_TORQUE}"/>'
        for j in ("j1", "j2", "j4", "j6")
    )
    gripper = (
        f'<position name="gripper" joint="finger_a" kp="{GRIP_KP}" ctrlrange="0 {FINGER_TRAVEL}" '
        f'forcerange="-{GRIP_FORCE} {GRIP_FORCE}"/>'
    )
    return f"""
<mujoco model="deepcrl_arm_{scene}">
  <compiler angle="radian" inertiafromgeom="true" autolimits="true" fusestatic="true"/>
  <option timestep="{TIMESTEP}" iterations="{ITERATIONS}" ls_iterations="{LS_ITERATIONS}" integrator="implicitfast"/>
  <default>
    <joint armature="0.1" damping="1"/>
    <geom contype="0" conaffinity="0" density="600" rgba="0.85 0.85 0.88 1"/>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.55 0.5 0.45" rgb2="0.5 0.45 0.4" width="256" height="256"/>
    <material name="table" texture="grid" texrepeat="8 8" reflectance="0.05"/>
  </asset>
  {custom}
  <worldbody>
    <light pos="0 0.5 2.5" dir="0 0 -1" directional="true"/>
    <camera name="front" pos="0 2.0 1.3" xyaxes="-1 0 0 0 -0.55 0.83"/>
    <geom name="table" type="plane" pos="0 0.4 {TABLE_Z}" size="1.4 1.0 0.05" material="table"/>
    {"".join(extras)}
    {_arm_xml()}
  </worldbody>
  <equality>
    <joint joint1="finger_b" joint2="finger_a" polycoef="0 1 0 0 0" solref="0.02 1"/>
  </equality>
  <contact>
    {"".join(pairs)}
  </contact>
  <actuator>{servos}{gripper}</actuator>
</mujoco>
"""


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
