"""The arm's geometry, its regions of starts and goals, and its MJCF text (the tasks are in arm.py)."""

from __future__ import annotations

import math

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
BINPICK = {False: (BIN_A, 0.07, (0.17, 0.6), 0.005), True: (BIN_A, 0.15, BIN_B, 0.15)}
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
        <body name="link3" pos="0 0 {UPPER_ARM[0]}" euler="0 0 {HELD["j3"]}" gravcomp="1">
          <geom type="capsule" fromto="0 0 0 0 0 {UPPER_ARM[1]}" size="0.04"/>
          <body name="link4" pos="0 0 {UPPER_ARM[1]}" gravcomp="1">
            <joint name="j4" {pitch}/>
            <geom type="capsule" fromto="0 0 0 0 0 {FOREARM[0]}" size="0.038"/>
            <body name="link5" pos="0 0 {FOREARM[0]}" euler="0 0 {HELD["j5"]}" gravcomp="1">
              <geom type="capsule" fromto="0 0 0 0 0 {FOREARM[1]}" size="0.034"/>
              <body name="link6" pos="0 0 {FOREARM[1]}" gravcomp="1">
                <joint name="j6" {pitch}/>
                <geom name="wrist" type="sphere" size="0.035"/>
                <geom type="capsule" fromto="0 0 0 0 0 {WRIST_TO_HAND}" size="0.028"/>
                <body name="hand" pos="0 0 {WRIST_TO_HAND}" euler="0 0 {HELD["j7"]}" gravcomp="1">
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
            pairs.append(
                f'<pair geom1="{f}" geom2="cube" condim="{PAD_CONDIM}" friction="{_fmt(PAD_FRICTION, PAD_FRICTION)} 0.01 0.0001 0.0001" solimp="{PAD_SOLIMP}"/>'
            )
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
        f'<position name="gripper" joint="finger_a" kp="{GRIP_KP}" ctrlrange="0 {FINGER_TRAVEL}" forcerange="-{GRIP_FORCE} {GRIP_FORCE}"/>'
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
