"""The ant: a four-legged robot, in the open or in a maze (the paper's tasks).

State (29): qpos (15: torso x, y, z, orientation quaternion, 8 joint angles) and qvel (14). Goal: the
torso's (x, y), indices (0, 1). Action (8): torques of the hip and ankle joints. Threshold 0.5 m;
episodes fail when the torso height leaves [0.2, 1.0]; 1,000 steps of 0.05 s. Maze cells are 4 m.

The model is written here (no file is read at run time). It follows the classic ant: a 0.25 m
sphere torso, four two-segment legs on the diagonals, hips swinging +-30 degrees about the vertical,
ankles bending 30-70 degrees, motors with gear 150. For MJX speed the solver is Newton with one
iteration and four line-search steps, and the ant's own parts never collide with each other. The
lower legs and the torso touch the floor; the torso and a small sphere at each foot tip touch the
walls (frictionless, one constraint row each). Leg shafts pass through walls: testing capsules
against boxes made the big maze 2x slower (3.5k vs 7.6k steps/s at 256 environments on this CPU),
and the torso and feet alone keep the ant out of the walls.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from deepcrl.envs.layouts import Layout
from deepcrl.envs.mujoco import maze
from deepcrl.envs.mujoco.base import import_mujoco, mjcf_footer, mjcf_header
from deepcrl.envs.mujoco.locomotion import Locomotion

CELL_SIZE = 4.0  # metres per maze cell (the paper's tasks)
WALL_HEIGHT = 2.0
GOAL_DISTANCE = 10.0  # open-field goals lie on a circle of this radius around the start
MAX_WALL_PAIRS = 8  # MJX broad phase: exact wall tests per step for the 8 closest (sphere, wall) pairs


# the MJCF <default> attributes of joints and geoms
JOINT_DEFAULTS = 'limited="true" armature="1" damping="1"'
GEOM_DEFAULTS = 'contype="0" conaffinity="0" condim="3" friction="1 0.5 0.5" density="5" rgba="0.8 0.6 0.4 1"'


def _leg_xml(name: str, angle_deg: float, ankle_range: str) -> str:
    a = math.radians(angle_deg)
    dx, dy = math.cos(a), math.sin(a)
    hip = 0.2 * math.sqrt(2)  # horizontal reach of each segment
    thigh_end = f"{hip * dx:.4f} {hip * dy:.4f} 0"
    shin_end = f"{2 * hip * dx:.4f} {2 * hip * dy:.4f} 0"
    return f"""
      <body name="{name}_hip" pos="0 0 0">
        <geom name="{name}_aux" type="capsule" fromto="0 0 0 {thigh_end}" size="0.08"/>
        <body name="{name}_thigh" pos="{thigh_end}">
          <joint name="{name}_hip" type="hinge" axis="0 0 1" range="-30 30"/>
          <geom name="{name}_thigh" type="capsule" fromto="0 0 0 {thigh_end}" size="0.08"/>
          <body name="{name}_shin" pos="{thigh_end}">
            <joint name="{name}_ankle" type="hinge" axis="{-dy:.4f} {dx:.4f} 0" range="{ankle_range}"/>
            <geom name="{name}_foot" type="capsule" fromto="0 0 0 {shin_end}" size="0.08" contype="0" conaffinity="1"/>
            <geom name="{name}_tip" type="sphere" pos="{shin_end}" size="0.08" contype="0" conaffinity="2" mass="0"/>
          </body>
        </body>
      </body>"""


def ant_xml(layout: Layout | None = None, cell_size: float = CELL_SIZE) -> str:
    """The MJCF text of the ant, with the walls of `layout` (none for the open field)."""
    legs = "".join(
        [
            _leg_xml("front_left", 45, "30 70"),
            _leg_xml("front_right", 135, "-70 -30"),
            _leg_xml("back_left", 225, "-70 -30"),
            _leg_xml("back_right", 315, "30 70"),
        ]
    )
    motors = "".join(
        f'<motor joint="{leg}_{j}" gear="150" ctrlrange="-1 1" ctrllimited="true"/>'
        for leg in ("front_left", "front_right", "back_left", "back_right")
        for j in ("hip", "ankle")
    )
    header = mjcf_header("ant", angle="degree", option='timestep="0.01"', joint=JOINT_DEFAULTS, geom=GEOM_DEFAULTS)
    opening = maze.arena_xml(header, layout, cell_size, WALL_HEIGHT, wall_contype=2, floor_contype=1, max_wall_pairs=MAX_WALL_PAIRS)
    return f"""{opening}
    <body name="torso" pos="0 0 0.75">
      <camera name="track" mode="trackcom" pos="0 -6 6" xyaxes="1 0 0 0 0.7 0.7"/>
      <freejoint name="root"/>
      <geom name="torso" type="sphere" size="0.25" contype="0" conaffinity="3"/>
      {legs}
    </body>
{mjcf_footer(motors)}"""


class Ant(Locomotion):
    """The ant (module docstring): goals are the torso's (x, y), in the open field or in the cells of `layout`."""

    state_size = 29
    goal_size = 2
    action_size = 8
    goal_indices = (0, 1)
    healthy_z = (0.2, 1.0)

    def __init__(self, layout: Layout | None = None, *, episode_length: int = 1000, goal_threshold: float = 0.5):
        mujoco, _ = import_mujoco()
        self.name = "ant" if layout is None else f"ant_{layout.name}"
        model = mujoco.MjModel.from_xml_string(ant_xml(layout))
        super().__init__(model, layout, CELL_SIZE, episode_length=episode_length, goal_threshold=goal_threshold)

    def _open_goal(self, key):
        angle = jax.random.uniform(key, (), jnp.float32, 0.0, 2 * jnp.pi)
        return GOAL_DISTANCE * jnp.stack([jnp.cos(angle), jnp.sin(angle)])

    def _observe(self, data):
        return jnp.concatenate([data.qpos, data.qvel]).astype(jnp.float32)
