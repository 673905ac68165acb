"""Goal-conditioned tasks: the `Env` protocol, maze layouts, the point-mass maze and the MuJoCo tasks.

env = make_env("point_u_maze")                       # a built-in layout
env = make_env("point", layout="maze:my_maze.txt")   # a user's ASCII maze
env = make_env("ant_big_maze")                       # the paper's tasks (envs/mujoco)
env = make_env("ant", layout="maze:my_maze.txt")     # an ant in a user's maze
"""

from __future__ import annotations

import inspect

from deepcrl.envs.base import Env, EnvState, step_autoreset
from deepcrl.envs.layouts import LAYOUT_NAMES, Layout, get_layout, parse_layout
from deepcrl.envs.mujoco import LOCOMOTION, MUJOCO_TASK_NAMES, OTHER_TASKS, task_class
from deepcrl.envs.point_maze import PointMaze
from deepcrl.errors import ConfigError

__all__ = [
    "Env",
    "EnvState",
    "step_autoreset",
    "make_env",
    "get_layout",
    "parse_layout",
    "Layout",
    "PointMaze",
    "LAYOUT_NAMES",
    "ENV_NAMES",
    "POINT_ENV_NAMES",
    "MUJOCO_TASK_NAMES",
]

DEFAULT_LAYOUT = "u_maze"
POINT_ENV_NAMES: tuple[str, ...] = ("point",) + tuple(f"point_{n}" for n in LAYOUT_NAMES)
ENV_NAMES: tuple[str, ...] = POINT_ENV_NAMES + MUJOCO_TASK_NAMES


def _keyword_options(cls) -> tuple[str, ...]:
    return tuple(n for n, p in inspect.signature(cls.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY)


_POINT_OPTIONS = _keyword_options(PointMaze)


def _split_name(name: str, layout: str | None, family: str, default: str | None) -> str | None:
    """The layout spec of `family` or `family_<layout>`, checking it against an explicit `layout`."""
    if name == family:
        return default if layout is None else layout
    named = name[len(family) + 1 :]
    if layout is not None and layout != named:
        raise ConfigError(
            f"layout={layout!r} conflicts with env {name!r}, which names layout {named!r}: pass layout only with env {family!r}"
        )
    return named


def make_env(name: str, layout: str | None = None, **kwargs) -> Env:
    """Build a task by name.

    `point` is the point-mass maze on `layout` (a built-in layout name or `maze:PATH`, default
    "u_maze"); `point_<layout>` is shorthand for a built-in layout. `ant` and `humanoid` run in the
    open field, or in `layout` when one is given; `ant_<layout>` / `humanoid_<layout>` name the
    paper's mazes. Keyword arguments go to the task's class; a keyword set to None means the task's
    default (so one config can describe every task).
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if isinstance(name, str) and name in MUJOCO_TASK_NAMES:
        return _make_mujoco(name, layout, kwargs)
    if name == "point":
        layout_spec = DEFAULT_LAYOUT if layout is None else layout
    elif isinstance(name, str) and name.startswith("point_") and name[len("point_") :] in LAYOUT_NAMES:
        layout_spec = name[len("point_") :]
        if layout is not None and layout != layout_spec:
            raise ConfigError(
                f"layout={layout!r} conflicts with env {name!r}, which names layout {layout_spec!r}: pass layout only with env 'point'"
            )
    else:
        raise ConfigError(f"unknown env {name!r}: allowed are {', '.join(ENV_NAMES)}")
    unknown = sorted(set(kwargs) - set(_POINT_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} for env {name!r}: allowed are {', '.join(_POINT_OPTIONS)}")
    return PointMaze(get_layout(layout_spec), **kwargs)


def _make_mujoco(name: str, layout: str | None, kwargs: dict) -> Env:
    family = name.split("_")[0]
    if family in LOCOMOTION:
        cls = task_class(*LOCOMOTION[family])
        spec = _split_name(name, layout, family, None)
        args, fixed = ((None if spec is None else get_layout(spec)),), {}
    else:
        if layout is not None:
            raise ConfigError(f"layout={layout!r} is not allowed with env {name!r}: only point, ant and humanoid take a layout")
        module, cls_name, fixed = OTHER_TASKS[name]
        cls, args = task_class(module, cls_name), ()
    options = _keyword_options(cls)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ConfigError(f"option {unknown[0]!r} does not apply to env {name!r}: it takes {', '.join(options)}")
    return cls(*args, **fixed, **kwargs)
