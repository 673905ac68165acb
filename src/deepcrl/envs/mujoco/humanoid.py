"""The humanoid: a 17-motor biped that must walk upright to a 3-D goal, in the open or in a maze (the paper's tasks).

State (246): qpos (24: torso x, y, z, orientation quaternion, 17 joint angles), qvel (23), and for each
of the 11 bodies its inertia about the centre of mass (`cinert`, 10 numbers: 6 of the inertia matrix,
mass times offset, mass) and its spatial velocity (`cvel`, 6), then the actuator forces on every degree
of freedom (`qfrc_actuator`, 23). Body terms come from the last physics substep's forward pass, as in
the classic humanoid (the inertia terms equal MuJoCo's `cinert`, computed from public `mjx.Data`
fields). Goal: the torso's (x, y, z) (indices 0, 1, 2), with z fixed at 1.25 (about the
torso's height when standing), so reaching a goal means getting there upright. Action (17): torques of
abdomen y/z/x, each hip x/z/y and knee, each shoulder 1/2 and elbow. Threshold 0.5 m; an episode fails
when the torso's height leaves [1.0, 2.0]; 1,000 steps of 0.015 s (5 x 3 ms). Maze cells are 2 m.

Why 246 and not the paper's 268: the paper's code (JaxGCRL, jaxgcrl/envs/humanoid.py) observes the same
kinds of terms (q, qd, per-body inertia and velocity, actuator forces), but its model also holds the
goal marker as a simulated body with two slide joints. Those 22 extra numbers (marker x, y in qpos and
their zero velocities in qvel and in the actuator forces, the marker body's 10 inertia and 6 velocity
terms) describe the commanded goal, not the humanoid, and put the goal into the state that hindsight
relabelling treats as goal-free. Here the goal is not simulated (it is drawn by `goal_marker` only), so
the state is 268 - 22 = 246. (Brax merges each jointless foot into its shin, giving 11 bodies; this
model puts the feet in the shin bodies directly.) The body terms are MuJoCo's `cinert` / `cvel`, which
have the same sizes as Brax's 3x3-matrix-plus-mass inertia and mass-weighted velocity but not the same
numbers.

Starts and goals. Open field: start at the origin standing, with uniform noise of 0.01 on joint
positions and normal noise of std 0.01 on velocities (the classic humanoid's reset noise; JaxGCRL used
none); goals as in JaxGCRL: angle uniform in [0, 2 pi), distance from the origin uniform in [1, 5] m
(not uniform over the annulus: close goals are more likely), z = 1.25. Mazes: the `Locomotion` rules
shared with the ant (start cell with +-0.1 cells of noise, goals uniform over goal cells with +-0.25
cells of noise); JaxGCRL put starts and goals exactly on cell centres.

The model is written here (no file is read at run time), with the classic capsule humanoid's
proportions, masses (42 kg in all), joint ranges, joint stiffness / damping / armature, motor gears (100
for abdomen and hip x/z, 300 hip y, 200 knee, 25 arms) and control range +-0.4. JaxGCRL's default
backend (Brax "spring") instead used gears 350 / 100 and 1.5 ms x 10 steps; the MJX settings below are
the ones JaxGCRL and Brax use for their MJX humanoid.

Physics for MJX speed: Newton solver with 1 iteration and 4 line-search steps, Euler damping disabled,
3 ms timestep, no self-collisions. Only the two foot spheres touch the floor: while the torso is between
1 and 2 m high no other part can reach the floor (the arms and head are too short, a kneeling torso is
lower than 1 m), and a lower torso ends the episode (after a fall the
body sinks through the floor, which nothing observes). The walls (2 m high so that the torso always
meets them) touch spheres only: the feet, the hands, and two massless hidden proxies around torso
and pelvis; thighs, shins and arm shafts pass through walls, as the ant's leg shafts do. MJX's broad
phase keeps the 6 closest (sphere, wall) pairs for the exact test (`max_geom_pairs`): enough for torso
and pelvis against two walls each plus two more.

Speed (256 environments, random actions, `step_autoreset` in a jitted scan, best of 3 runs, on a
shared 2-core CPU, so noisy): open field 9.8k steps/s (7.6k per CPU-second), big maze 7.2k (5.3k);
the ant measured 11.2k and 7.1k in the same session. Per CPU-second the big maze ran 5.3k with 8
exact wall pairs, 5.6k with 6 and 5.9k with 4; 2 line-search steps instead of 4 gave +8%; a 5 ms x 3
step would give 12k and a 7.5 ms x 2 step 17.7k in the open (no NaNs in 200 random steps), but the
classic 3 ms x 5 is kept so that the dynamics stay those of the classic humanoid.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from deepcrl.envs.layouts import Layout
from deepcrl.envs.mujoco import maze
from deepcrl.envs.mujoco.base import import_mujoco, mjcf_footer, mjcf_header
from deepcrl.envs.mujoco.locomotion import Locomotion

CELL_SIZE = 2.0  # metres per maze cell (the paper's tasks)
WALL_HEIGHT = 2.0  # tall enough that the torso (healthy between 1 and 2 m) always meets the walls
GOAL_HEIGHT = 1.25  # z of every goal: about the torso's height when standing
GOAL_DISTANCE = (1.0, 5.0)  # open-field goals: distance from the origin uniform in this range
TIMESTEP = 0.003
N_FRAMES = 5  # 5 x 3 ms = 15 ms per environment step, as the classic humanoid
MAX_WALL_PAIRS = 6  # MJX broad phase: exact wall tests per step for the 6 closest (sphere, wall) pairs

# Collision bits. Floor: contype 1; walls: contype 2. A geom touches the floor when its conaffinity
# has bit 1 and the walls when it has bit 2. The humanoid's own geoms never touch each other.
_FLOOR, _WALLS = 1, 2


# the MJCF <default> attributes of joints and geoms
JOINT_DEFAULTS = 'limited="true"'
GEOM_DEFAULTS = 'contype="0" conaffinity="0" condim="3" friction="1 0.1 0.1" rgba="0.8 0.6 0.4 1"'


def _f(*values: float) -> str:
    return " ".join(f"{v:g}" for v in values)


def _hinge(name: str, axis, lo: float, hi: float, *, stiffness: float = 0, damping: float = 1, armature: float = 1, pos=(0, 0, 0)) -> str:
    return (
        f'<joint name="{name}" type="hinge" pos="{_f(*pos)}" axis="{_f(*axis)}" range="{_f(lo, hi)}" '
        f'stiffness="{stiffness:g}" damping="{damping:g}" armature="{armature:g}"/>'
    )


def _capsule(name: str, a, b, radius: float) -> str:
    return f'<geom name="{name}" type="capsule" fromto="{_f(*a, *b)}" size="{radius:g}"/>'


def _sphere(name: str, pos, radius: float, *, touches: int = 0, proxy: bool = False) -> str:
    """A sphere; `touches` says what it collides with (floor / walls bits). A proxy has no mass and is
    hidden (group 3): it only stands in for a capsule in collisions with the walls."""
    extra = ' mass="0" group="3" rgba="0.9 0.3 0.3 0.3"' if proxy else ""
    return f'<geom name="{name}" type="sphere" pos="{_f(*pos)}" size="{radius:g}" conaffinity="{touches}"{extra}/>'


def _leg(side: str, s: int) -> str:
    """One leg; s = -1 for the right (negative y), +1 for the left. The left hip's x and z axes are
    flipped so that the same joint angle moves both legs mirror-symmetrically."""
    return f"""
        <body name="{side}_thigh" pos="0 {0.1 * s:g} -0.04">
          {_hinge(f"{side}_hip_x", (-s, 0, 0), -25, 5, stiffness=10, damping=5, armature=0.01)}
          {_hinge(f"{side}_hip_z", (0, 0, -s), -60, 35, stiffness=10, damping=5, armature=0.01)}
          {_hinge(f"{side}_hip_y", (0, 1, 0), -110, 20, stiffness=20, damping=5, armature=0.008)}
          {_capsule(f"{side}_thigh", (0, 0, 0), (0, -0.01 * s, -0.34), 0.06)}
          <body name="{side}_shin" pos="0 {-0.01 * s:g} -0.403">
            {_hinge(f"{side}_knee", (0, -1, 0), -160, -2, stiffness=1, armature=0.006, pos=(0, 0, 0.02))}
            {_capsule(f"{side}_shin", (0, 0, 0), (0, 0, -0.3), 0.049)}
            {_sphere(f"{side}_foot", (0, 0, -0.35), 0.075, touches=_FLOOR | _WALLS)}
          </body>
        </body>"""


def _arm(side: str, s: int) -> str:
    """One arm; s = -1 for the right, +1 for the left (the left's axes and ranges mirror the right's)."""
    lo, hi = (-85, 60) if s < 0 else (-60, 85)
    reach = (0.16, 0.16 * s, -0.16)
    elbow = (0.18, 0.18 * s, -0.18)
    hand = (0.18, -0.18 * s, 0.18)
    return f"""
      <body name="{side}_upper_arm" pos="0 {0.17 * s:g} 0.06">
        {_hinge(f"{side}_shoulder1", (2, -s, 1), lo, hi, stiffness=1, armature=0.0068)}
        {_hinge(f"{side}_shoulder2", (0, s, 1), lo, hi, stiffness=1, armature=0.0051)}
        {_capsule(f"{side}_upper_arm", (0, 0, 0), reach, 0.04)}
        <body name="{side}_lower_arm" pos="{_f(*elbow)}">
          {_hinge(f"{side}_elbow", (0, -1, -s), -90, 50, armature=0.0028)}
          {_capsule(f"{side}_lower_arm", (0.01, -0.01 * s, 0.01), (0.17, -0.17 * s, 0.17), 0.031)}
          {_sphere(f"{side}_hand", hand, 0.04, touches=_WALLS)}
        </body>
      </body>"""


MOTORS = (  # (joint, gear), in the classic humanoid's actuator order
    ("abdomen_y", 100),
    ("abdomen_z", 100),
    ("abdomen_x", 100),
    ("right_hip_x", 100),
    ("right_hip_z", 100),
    ("right_hip_y", 300),
    ("right_knee", 200),
    ("left_hip_x", 100),
    ("left_hip_z", 100),
    ("left_hip_y", 300),
    ("left_knee", 200),
    ("right_shoulder1", 25),
    ("right_shoulder2", 25),
    ("right_elbow", 25),
    ("left_shoulder1", 25),
    ("left_shoulder2", 25),
    ("left_elbow", 25),
)


def humanoid_xml(layout: Layout | None = None, cell_size: float = CELL_SIZE, *, timestep: float = TIMESTEP) -> str:
    """The MJCF text of the humanoid, with the walls of `layout` (none for the open field)."""
    motors = "".join(f'<motor name="{j}" joint="{j}" gear="{g}" ctrlrange="-0.4 0.4" ctrllimited="true"/>' for j, g in MOTORS)
    header = mjcf_header(
        "humanoid", angle="degree", option=f'timestep="{timestep:g}" solver="Newton"', joint=JOINT_DEFAULTS, geom=GEOM_DEFAULTS
    )
    opening = maze.arena_xml(
        header, layout, cell_size, WALL_HEIGHT, wall_contype=_WALLS, floor_contype=_FLOOR, max_wall_pairs=MAX_WALL_PAIRS
    )
    return f"""{opening}
    <body name="torso" pos="0 0 1.4">
      <freejoint name="root"/>
      <camera name="track" mode="trackcom" pos="0 -4 1" xyaxes="1 0 0 0 0.2 1"/>
      {_capsule("torso", (0, -0.07, 0), (0, 0.07, 0), 0.07)}
      {_sphere("head", (0, 0, 0.19), 0.09)}
      {_capsule("upper_waist", (-0.01, -0.06, -0.12), (-0.01, 0.06, -0.12), 0.06)}
      {_sphere("torso_proxy", (0, 0, -0.04), 0.17, touches=_WALLS, proxy=True)}
      <body name="lower_waist" pos="-0.01 0 -0.26">
        {_hinge("abdomen_z", (0, 0, 1), -45, 45, stiffness=20, damping=5, armature=0.02, pos=(0, 0, 0.065))}
        {_hinge("abdomen_y", (0, 1, 0), -75, 30, stiffness=10, damping=5, armature=0.02, pos=(0, 0, 0.065))}
        {_capsule("lower_waist", (0, -0.06, 0), (0, 0.06, 0), 0.06)}
        <body name="pelvis" pos="0 0 -0.165">
          {_hinge("abdomen_x", (1, 0, 0), -35, 35, stiffness=10, damping=5, armature=0.02, pos=(0, 0, 0.1))}
          {_capsule("butt", (-0.02, -0.07, 0), (-0.02, 0.07, 0), 0.09)}
          {_sphere("pelvis_proxy", (-0.02, 0, 0), 0.16, touches=_WALLS, proxy=True)}
          {_leg("right", -1)}
          {_leg("left", 1)}
        </body>
      </body>
      {_arm("right", -1)}
      {_arm("left", 1)}
    </body>
{mjcf_footer(motors)}"""


class Humanoid(Locomotion):
    """The humanoid (module docstring): goals are the torso's (x, y) at standing height, in the open field or
    in the cells of `layout`; each step is `n_frames` physics substeps."""

    state_size = 246
    goal_size = 3
    action_size = 17
    goal_indices = (0, 1, 2)
    healthy_z = (1.0, 2.0)
    goal_height = GOAL_HEIGHT
    n_frames = N_FRAMES
    reset_noise = 0.01  # the classic humanoid's noise on joint positions and velocities

    def __init__(self, layout: Layout | None = None, *, episode_length: int = 1000, goal_threshold: float = 0.5):
        mujoco, _ = import_mujoco()
        self.name = "humanoid" if layout is None else f"humanoid_{layout.name}"
        model = mujoco.MjModel.from_xml_string(humanoid_xml(layout))
        super().__init__(model, layout, CELL_SIZE, episode_length=episode_length, goal_threshold=goal_threshold)
        if model.nbody - 1 != (self.state_size - model.nq - 2 * model.nv) // 16:
            raise AssertionError(f"{self.name}: {model.nbody - 1} bodies do not give state size {self.state_size}")

    def _open_goal(self, key):
        k_dist, k_angle = jax.random.split(key)
        dist = jax.random.uniform(k_dist, (), jnp.float32, *GOAL_DISTANCE)
        angle = jax.random.uniform(k_angle, (), jnp.float32, 0.0, 2 * jnp.pi)
        return dist * jnp.stack([jnp.cos(angle), jnp.sin(angle)])

    def _observe(self, data):
        return jnp.concatenate(
            [
                data.qpos,
                data.qvel,
                self._body_inertia(data).reshape(-1),
                data.cvel[1:].reshape(-1),  # every body but the world
                data.qfrc_actuator,
            ]
        ).astype(jnp.float32)

    def _body_inertia(self, data) -> jax.Array:
        """[11, 10] MuJoCo's `cinert` of every body but the world: inertia (xx, yy, zz, xy, xz, yz) about the
        humanoid's centre of mass in world axes, mass times the offset from that centre, mass. Computed
        from public `mjx.Data` fields (MJX keeps `cinert` itself in its implementation-private data)."""
        mass = jnp.asarray(self.mj_model.body_mass[1:], jnp.float32)[:, None]
        principal = jnp.asarray(self.mj_model.body_inertia[1:], jnp.float32)
        rot = data.ximat[1:]
        inertia = jnp.einsum("bij,bj,bkj->bik", rot, principal, rot)
        offset = data.xipos[1:] - data.subtree_com[1]  # every body hangs from the torso
        inertia = inertia + mass[..., None] * (
            jnp.sum(offset * offset, -1)[:, None, None] * jnp.eye(3) - offset[:, :, None] * offset[:, None, :]
        )
        six = jnp.stack(
            [inertia[:, 0, 0], inertia[:, 1, 1], inertia[:, 2, 2], inertia[:, 0, 1], inertia[:, 0, 2], inertia[:, 1, 2]], axis=-1
        )
        return jnp.concatenate([six, mass * offset, mass], axis=-1)
