"""The reacher: a two-link planar arm whose fingertip must reach a point in a disc (a small check).

State (10), indices:

    0-1  cos(shoulder), cos(elbow)          joint angles, as cosines
    2-3  sin(shoulder), sin(elbow)          ... and sines
    4-5  fingertip x, y (m)                 the achieved goal, goal_indices = (4, 5)
    6-7  fingertip velocity x, y (m/s)
    8-9  shoulder and elbow angular velocity (rad/s)

Goal (2): the fingertip's (x, y). Action (2): the two joint torques. Threshold 0.05 m; 1,000 steps of
0.02 s (two physics steps of 0.01 s); never ends early. Starts: both joint angles uniform in
+-0.1 rad, joint velocities uniform in +-0.005 rad/s. Goals: angle uniform in [0, 2 pi), distance from
the shoulder 0.2 * U(0, 1), i.e. uniform in the *radius* (as the reference: goals are denser near
the centre than an area-uniform draw would make them); the fingertip reaches 0.21 m, so every goal is
reachable. Evaluation uses the same starts and goals.

The model is written here (no file is read at run time). It follows the classic reacher: a 0.1 m
upper link and a 0.1 m lower link (capsules of radius 0.01), the fingertip 0.11 m past the elbow,
the arm 0.01 m above the ground, a free shoulder and an elbow limited to +-3 rad, joint armature 1
and damping 1, motors with gear 200 on control range [-1, 1]. Nothing touches anything: contacts are
disabled in the model (`<flag contact="disable"/>`), so MJX never runs collision detection; the only
constraint is the elbow's limit. Solver: Newton with one iteration and four line-search steps, Euler
integration (the classic model used RK4), Euler damping off.

Differences from the reference (JaxGCRL `envs/reacher.py` on Brax's `reacher.xml`):

- goal (x, y), not (x, y, z): the fingertip and the target are always 0.01 m above the ground, so z
  carries nothing and the distance is unchanged; the threshold stays 0.05 m;
- the state drops the fingertip's constant z and z velocity and adds the two joint velocities
  (the reference observes no joint velocity; its "tip velocity" was the elbow link's velocity moved
  by a frame offset, here it is the fingertip's true velocity, computed from the joint velocities);
- the target is not a body of the simulation (the reference moved a target body on two slide
  joints); rendering draws it from `goal_marker`;
- the arena's border is drawn but, as in the reference, touches nothing;
- a fresh goal at every reset (the library-wide rule, docs/tasks.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.mujoco.base import MjxTask, import_mujoco, mjcf_footer, mjcf_header

LINK = 0.1  # length of each link (m)
TIP = 0.11  # fingertip distance past the elbow (m)
HEIGHT = 0.01  # height of the arm above the ground (m)
GOAL_RADIUS = 0.2  # goals lie within this distance of the shoulder
START_NOISE = 0.1  # start joint angles uniform in +-START_NOISE (rad)
START_VEL_NOISE = 0.005


MOTORS = "".join(f'<motor name="{j}" joint="{j}" gear="200" ctrlrange="-1 1" ctrllimited="true"/>' for j in ("shoulder", "elbow"))


# the MJCF <default> attributes of joints and geoms
JOINT_DEFAULTS = 'type="hinge" axis="0 0 1" armature="1" damping="1"'
GEOM_DEFAULTS = 'contype="0" conaffinity="0" density="1000" rgba="0.0 0.4 0.6 1"'


def reacher_xml() -> str:
    """The MJCF text of the reacher."""
    side = 0.3
    corners = [(-side, -side), (side, -side), (side, side), (-side, side)]
    border = "".join(
        f'<geom name="border{i}" type="capsule" size="0.02" rgba="0.9 0.4 0.6 1" fromto="{x0} {y0} {HEIGHT} {x1} {y1} {HEIGHT}"/>'
        for i, ((x0, y0), (x1, y1)) in enumerate(zip(corners, corners[1:] + corners[:1]))
    )
    return f"""
{mjcf_header("reacher", angle="radian", option='timestep="0.01"', flags='contact="disable" eulerdamp="disable"', joint=JOINT_DEFAULTS, geom=GEOM_DEFAULTS)}
  <worldbody>
    <light pos="0 0 2" dir="0 0 -1" directional="true"/>
    <camera name="top" pos="0 0 0.75" xyaxes="1 0 0 0 1 0"/>
    <geom name="ground" type="plane" size="0.4 0.4 0.1" rgba="0.9 0.9 0.9 1"/>
    {border}
    <geom name="base" type="cylinder" fromto="0 0 0 0 0 {2 * HEIGHT}" size="0.011" rgba="0.3 0.3 0.3 1"/>
    <body name="upper" pos="0 0 {HEIGHT}">
      <joint name="shoulder" limited="false"/>
      <geom name="upper" type="capsule" fromto="0 0 0 {LINK} 0 0" size="0.01"/>
      <body name="lower" pos="{LINK} 0 0">
        <joint name="elbow" limited="true" range="-3 3"/>
        <geom name="lower" type="capsule" fromto="0 0 0 {LINK} 0 0" size="0.01"/>
        <geom name="fingertip" type="sphere" pos="{TIP} 0 0" size="0.01" rgba="0.0 0.8 0.6 1"/>
        <site name="fingertip" pos="{TIP} 0 0" size="0.005"/>
      </body>
    </body>
{mjcf_footer(MOTORS)}"""


class Reacher(MjxTask):
    name = "reacher"
    state_size = 10
    goal_size = 2
    action_size = 2
    goal_indices = (4, 5)
    n_frames = 2

    def __init__(self, *, episode_length: int = 1000, goal_threshold: float = 0.05):
        mujoco, _ = import_mujoco()
        model = mujoco.MjModel.from_xml_string(reacher_xml())
        self._tip_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "fingertip")
        self._lower_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "lower")
        super().__init__(model, episode_length=episode_length, goal_threshold=goal_threshold)

    def _observe(self, data):
        angle, omega = data.qpos[:2], data.qvel[:2]
        tip = data.site_xpos[self._tip_site, :2]
        elbow = data.xpos[self._lower_body, :2]
        # planar rigid-body velocity: each joint spins everything past it about the z axis
        perp = lambda v: jnp.stack([-v[1], v[0]])  # noqa: E731  (z x v)
        tip_vel = omega[0] * perp(tip) + omega[1] * perp(tip - elbow)
        return jnp.concatenate([jnp.cos(angle), jnp.sin(angle), tip, tip_vel, omega]).astype(jnp.float32)

    def _start(self, key):
        k_pos, k_vel = jax.random.split(key)
        qpos = self._init_qpos + jax.random.uniform(k_pos, (2,), jnp.float32, -START_NOISE, START_NOISE)
        qvel = jax.random.uniform(k_vel, (2,), jnp.float32, -START_VEL_NOISE, START_VEL_NOISE)
        return qpos, qvel

    def _train_goal(self, key):
        k_dist, k_angle = jax.random.split(key)
        dist = GOAL_RADIUS * jax.random.uniform(k_dist, (), jnp.float32)
        angle = jax.random.uniform(k_angle, (), jnp.float32, 0.0, 2 * jnp.pi)
        return dist * jnp.stack([jnp.cos(angle), jnp.sin(angle)])

    def goal_marker(self, goal) -> np.ndarray:
        goal = np.asarray(goal, np.float64).reshape(-1)
        return np.array([goal[0], goal[1], HEIGHT])
