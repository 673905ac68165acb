"""The pusher: a seven-joint arm over a table pushes a puck to a goal on the table (a small check).

State (19), indices:

    0-6    arm joint angles (rad): shoulder pan, shoulder lift, upper-arm roll, elbow flex,
           forearm roll, wrist flex, wrist roll
    7-9    hand tip x, y, z (m): the point midway between the two prongs' ends
    10-11  puck x, y (m)                    the achieved goal, goal_indices = (10, 11)
    12-18  arm joint angular velocities (rad/s)

Goal (2): the puck's (x, y). Action (7): joint torques (control range +-2, gear 1). Threshold 0.1 m;
1,000 steps of 0.05 s (five physics steps of 0.01 s); never ends early. No gravity (the classic
model's choice: the arm floats, the table carries nothing).

Starts: the arm at its zero pose (straight out along +x, 0.6 m to the right of the table's middle),
joint velocities uniform in +-0.005 rad/s, the puck resting, its centre uniform in
x in [0.25, 0.65], y in [-0.35, -0.05]. Goals (easy, the default): x in [0.25, 0.65],
y in [-0.60, -0.30]; hard (`hard=True`, not registered): x in [-0.10, 0.90], y in [-0.70, 0.30].
A puck drawn closer than 0.17 m to its goal is moved straight away from the goal to 0.17 m.
Evaluation uses the same distributions.

The model is written here (no file is read at run time). It follows the classic pusher's
kinematics: shoulder at (0, -0.6, 0), a 0.1 m shoulder offset, a 0.4 m upper arm, a 0.321 m forearm,
and a U-shaped hand (a 0.2 m bar across the wrist and two 0.1 m prongs) that cups the puck; the same
joint axes, ranges, damping (1 at the shoulder, 0.1 elsewhere) and armature (0.04). The puck is a
vertical capsule of radius 0.05 whose centre is 0.05 m above the table (z = -0.275), moving on two
slide joints (x, y) with damping 0.5, so it stops soon after the hand lets go. Contacts: only the
hand's three capsules against the puck (3 possible contacts, condim 3); the rest of the arm passes
through the puck, and the arm, the puck and the table never touch anything else (as in the
reference, where the table had no collision partner either). Solver: Newton with one iteration and
four line-search steps, Euler integration, Euler damping off.

Joints that sit at the same point share a body (shoulder lift + upper-arm roll, elbow flex +
forearm roll, wrist flex + wrist roll): the same kinematics as seven one-joint bodies, but a
kinematic tree four bodies deep instead of seven. On the CPU this matters a lot: XLA's CPU fusion
emitters recompute a chain of joint rotations once per use, so the cost of MJX's forward kinematics
grows about 15x with every further body in a chain (measured: 0.9 ms per 256 environments for 4
one-joint bodies, 9 ms for 5, 143 ms for 6, 1.7 s for 7). With this grouping kinematics costs about
48 ms per physics step at 256 environments, about 50x less than the seven-body chain, but still
roughly 20x more than without the problem: env steps/s at 256 environments on a 2-core CPU were
about 500 with default flags and about 10,000 when the program is compiled with the XLA option
`xla_cpu_use_fusion_emitters=False` (`XLA_FLAGS=--xla_cpu_use_fusion_emitters=false`, or
`jax.jit(..., compiler_options={"xla_cpu_use_fusion_emitters": False})` on the outermost jit).
The option is global to a compiled program, so it is not set here. GPUs use other emitters.

Differences from the reference (JaxGCRL `envs/pusher.py` on Brax's `pusher.xml`, kind "easy"):

- goal (x, y), not (x, y, z): the puck's height never changes (slide joints in x and y only), and
  the reference's goal body sat 4.8 cm below the puck's centre, so its 3-D distance could never fall
  below 0.048 m and its 0.1 m threshold was 0.088 m in the plane; here the goal is the puck's own
  (x, y) and the threshold 0.1 m is planar (pass goal_threshold=0.088 for the reference's effective
  value);
- the state drops the puck's constant z (19 values instead of 20);
- the "tip" is the hand's tip (midway between the prong ends); the reference observed the wrist
  link's centre of mass, 0.1 m behind it (Brax fused the hand into the wrist body);
- the puck weighs 0.02 kg (the reference's Brax model about 0.002 kg, gym's 1e-5 density): with
  explicit Euler and damping 0.5 on its slide joints a lighter puck would be unstable; its velocity
  still decays in 0.04 s, under one step;
- the puck-to-goal minimum distance: the reference scaled the puck's offset from its base position
  by 0.17 / distance, which does not reliably give 0.17 m; here the puck is moved along the
  goal-to-puck line to exactly 0.17 m;
- the goal is not a body of the simulation (the reference moved a goal body on two slide joints);
  rendering draws it from `goal_marker`;
- a fresh goal at every reset (the library-wide rule, docs/tasks.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.mujoco.base import MjxTask, import_mujoco, mjcf_footer, mjcf_header

TABLE_Z = -0.325
PUCK_RADIUS = 0.05
PUCK_Z = TABLE_Z + PUCK_RADIUS  # the puck's centre: its capsule's lower half sinks into the table
PUCK_HOME = (0.45, -0.05)  # the puck's slide joints are measured from here
PUCK_START = ((0.25, 0.65), (-0.35, -0.05))  # (x range, y range) of the puck's start
GOALS_EASY = ((0.25, 0.65), (-0.60, -0.30))
GOALS_HARD = ((-0.10, 0.90), (-0.70, 0.30))
MIN_PUCK_GOAL = 0.17
START_VEL_NOISE = 0.005

# (name, axis, range, damping) of the seven arm joints, shoulder to wrist
ARM_JOINTS = (
    ("shoulder_pan", "0 0 1", (-2.2854, 1.714602), 1.0),
    ("shoulder_lift", "0 1 0", (-0.5236, 1.3963), 1.0),
    ("upper_arm_roll", "1 0 0", (-1.5, 1.7), 0.1),
    ("elbow_flex", "0 1 0", (-2.3213, 0.0), 0.1),
    ("forearm_roll", "1 0 0", (-1.5, 1.5), 0.1),
    ("wrist_flex", "0 1 0", (-1.094, 0.0), 0.1),
    ("wrist_roll", "1 0 0", (-1.5, 1.5), 0.1),
)


# the MJCF <default> attributes of joints and geoms
JOINT_DEFAULTS = 'type="hinge" limited="true" armature="0.04"'
GEOM_DEFAULTS = 'contype="0" conaffinity="0" condim="3" friction="0.8 0.1 0.1" density="300" rgba="0.55 0.45 0.35 1"'


def _joint(i: int) -> str:
    name, axis, (lo, hi), damping = ARM_JOINTS[i]
    return f'<joint name="{name}" axis="{axis}" range="{lo} {hi}" damping="{damping}"/>'


def pusher_xml() -> str:
    """The MJCF text of the pusher."""
    hx, hy = PUCK_HOME
    # the hand: contype 0 / conaffinity 1 against the puck's contype 1 / conaffinity 0, and nothing else
    hand = "".join(
        f'<geom name="hand_{n}" type="capsule" fromto="{a}" size="0.02" contype="0" conaffinity="1" rgba="0.3 0.3 0.3 1"/>'
        for n, a in (("bar", "0 -0.1 0 0 0.1 0"), ("left", "0 0.1 0 0.1 0.1 0"), ("right", "0 -0.1 0 0.1 -0.1 0"))
    )
    motors = "".join(f'<motor name="{n}" joint="{n}" gear="1" ctrlrange="-2 2" ctrllimited="true"/>' for n, *_ in ARM_JOINTS)
    return f"""
{mjcf_header("pusher", angle="radian", option='timestep="0.01" gravity="0 0 0"', joint=JOINT_DEFAULTS, geom=GEOM_DEFAULTS)}
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" directional="true"/>
    <camera name="front" pos="2.0 -0.3 0.6" xyaxes="0 1 0 -0.45 0 0.89"/>
    <geom name="table" type="plane" pos="0 0.5 {TABLE_Z}" size="1 1 0.1" rgba="0.95 0.95 0.95 1"/>
    <body name="shoulder" pos="0 -0.6 0">
      {_joint(0)}
      <geom name="torso" type="capsule" fromto="0 0 -0.4 0 0 0.2" size="0.1"/>
      <body name="upper_arm" pos="0.1 0 0">
        {_joint(1)}
        {_joint(2)}
        <geom name="shoulder_knob" type="capsule" fromto="0 -0.1 0 0 0.1 0" size="0.1"/>
        <geom name="upper_arm" type="capsule" fromto="0 0 0 0.4 0 0" size="0.06"/>
        <body name="forearm" pos="0.4 0 0">
          {_joint(3)}
          {_joint(4)}
          <geom name="elbow" type="capsule" fromto="0 -0.02 0 0 0.02 0" size="0.06"/>
          <geom name="forearm" type="capsule" fromto="0 0 0 0.291 0 0" size="0.05"/>
          <body name="hand" pos="0.321 0 0">
            {_joint(5)}
            {_joint(6)}
            <geom name="wrist" type="capsule" fromto="0 -0.02 0 0 0.02 0" size="0.01"/>
            {hand}
            <site name="tip" pos="0.1 0 0" size="0.01"/>
          </body>
        </body>
      </body>
    </body>
    <body name="puck" pos="{hx} {hy} {PUCK_Z}">
      <joint name="puck_x" type="slide" axis="1 0 0" limited="false" armature="0" damping="0.5"/>
      <joint name="puck_y" type="slide" axis="0 1 0" limited="false" armature="0" damping="0.5"/>
      <geom name="puck" type="capsule" size="{PUCK_RADIUS} 0.05" mass="0.02" contype="1" conaffinity="0" rgba="0.9 0.9 0.9 1"/>
    </body>
{mjcf_footer(motors)}"""


def _uniform_box(key, box) -> jax.Array:
    (x0, x1), (y0, y1) = box
    return jax.random.uniform(key, (2,), jnp.float32, jnp.array([x0, y0]), jnp.array([x1, y1]))


class Pusher(MjxTask):
    state_size = 19
    goal_size = 2
    action_size = 7
    goal_indices = (10, 11)

    def __init__(self, *, episode_length: int = 1000, goal_threshold: float = 0.1, hard: bool = False):
        mujoco, _ = import_mujoco()
        self.name = "pusher_hard" if hard else "pusher"
        self.hard = bool(hard)
        model = mujoco.MjModel.from_xml_string(pusher_xml())
        self._tip_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "tip")
        self._puck_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "puck")
        super().__init__(model, episode_length=episode_length, goal_threshold=goal_threshold)

    def _observe(self, data):
        return jnp.concatenate([data.qpos[:7], data.site_xpos[self._tip_site], data.xpos[self._puck_body, :2], data.qvel[:7]]).astype(
            jnp.float32
        )

    def _goal(self, key):
        return _uniform_box(key, GOALS_HARD if self.hard else GOALS_EASY)

    def _train_goal(self, key):
        return self._goal(key)

    def _start(self, key):
        # the puck's start depends on the goal, which MjxTask draws from another key: _place_goal
        # moves the puck away from the goal once both are known
        k_puck, k_vel = jax.random.split(key)
        puck = _uniform_box(k_puck, PUCK_START) - jnp.asarray(PUCK_HOME, jnp.float32)
        qpos = self._init_qpos.at[7:9].set(puck)
        qvel = jnp.zeros(9, jnp.float32).at[:7].set(jax.random.uniform(k_vel, (7,), jnp.float32, -START_VEL_NOISE, START_VEL_NOISE))
        return qpos, qvel

    def _place_goal(self, qpos, goal):
        home = jnp.asarray(PUCK_HOME, jnp.float32)
        puck = qpos[7:9] + home
        away = puck - goal
        dist = jnp.linalg.norm(away)
        # a puck on the goal itself is moved along +y
        direction = jnp.where(dist > 1e-6, away / jnp.maximum(dist, 1e-6), jnp.array([0.0, 1.0], jnp.float32))
        puck = jnp.where(dist < MIN_PUCK_GOAL, goal + MIN_PUCK_GOAL * direction, puck)
        return qpos.at[7:9].set(puck - home)

    def goal_marker(self, goal) -> np.ndarray:
        goal = np.asarray(goal, np.float64).reshape(-1)
        return np.array([goal[0], goal[1], PUCK_Z])
