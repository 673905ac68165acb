"""The paper's MuJoCo tasks (the paper's tasks), stepped with MJX.

Every task implements the `deepcrl.envs.Env` protocol, so the trainer, evaluation, checkpoints and the
command line work on them unchanged. Modules are imported on first use (MuJoCo is a large import).

| family | tasks | module |
|---|---|---|
| ant | ant, ant_<layout> (u_maze, u4_maze, u5_maze, big_maze, hardest_maze), ant + maze:PATH | ant.py |
| humanoid | humanoid, humanoid_<layout> (u_maze, big_maze, hardest_maze), humanoid + maze:PATH | humanoid.py |
| arm | arm_reach, arm_push_easy, arm_push_hard, arm_binpick_easy, arm_binpick_hard | arm.py |
| small checks | reacher, pusher | reacher.py, pusher.py |
"""

from __future__ import annotations

import importlib

# task name -> (module, class, keyword arguments). Locomotion tasks also take a layout.
LOCOMOTION = {"ant": ("ant", "Ant"), "humanoid": ("humanoid", "Humanoid")}
MAZE_LAYOUTS = {"ant": ("u_maze", "u4_maze", "u5_maze", "big_maze", "hardest_maze"), "humanoid": ("u_maze", "big_maze", "hardest_maze")}
OTHER_TASKS: dict[str, tuple[str, str, dict]] = {
    "arm_reach": ("arm", "ArmReach", {}),
    "arm_push_easy": ("arm", "ArmPush", {"hard": False}),
    "arm_push_hard": ("arm", "ArmPush", {"hard": True}),
    "arm_binpick_easy": ("arm", "ArmBinpick", {"hard": False}),
    "arm_binpick_hard": ("arm", "ArmBinpick", {"hard": True}),
    "reacher": ("reacher", "Reacher", {}),
    "pusher": ("pusher", "Pusher", {}),
}
MUJOCO_TASK_NAMES: tuple[str, ...] = tuple(
    [n for fam in LOCOMOTION for n in (fam, *(f"{fam}_{lay}" for lay in MAZE_LAYOUTS[fam]))] + list(OTHER_TASKS)
)


def task_class(module: str, cls: str):
    return getattr(importlib.import_module(f"deepcrl.envs.mujoco.{module}"), cls)
