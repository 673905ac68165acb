"""Goal-conditioned tasks: the `Env` protocol, maze layouts and the point-mass maze.

    env = make_env("point_u_maze")                       # a built-in layout
    env = make_env("point", layout="maze:my_maze.txt")   # a user's ASCII maze
"""

from __future__ import annotations

import inspect

from deepcrl.envs.base import Env, EnvState, step_autoreset
from deepcrl.envs.layouts import LAYOUT_NAMES, Layout, get_layout, parse_layout
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
]

DEFAULT_LAYOUT = "u_maze"
ENV_NAMES: tuple[str, ...] = ("point",) + tuple(f"point_{n}" for n in LAYOUT_NAMES)
_POINT_OPTIONS = tuple(
    n for n, p in inspect.signature(PointMaze.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY
)


def make_env(name: str, layout: str | None = None, **kwargs) -> Env:
    """Build a task by name.

    `point` is the point-mass maze on `layout` (a built-in layout name or `maze:PATH`, default
    "u_maze"); `point_<layout>` is shorthand for a built-in layout. Keyword arguments go to `PointMaze`.
    """
    if name == "point":
        layout_spec = DEFAULT_LAYOUT if layout is None else layout
    elif isinstance(name, str) and name.startswith("point_") and name[len("point_") :] in LAYOUT_NAMES:
        layout_spec = name[len("point_") :]
        if layout is not None and layout != layout_spec:
            raise ConfigError(
                f"layout={layout!r} conflicts with env {name!r}, which names layout {layout_spec!r}: "
                f"pass layout only with env 'point'"
            )
    else:
        raise ConfigError(f"unknown env {name!r}: allowed are {', '.join(ENV_NAMES)}")
    unknown = sorted(set(kwargs) - set(_POINT_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for env {name!r}: allowed are {', '.join(_POINT_OPTIONS)}"
        )
    return PointMaze(get_layout(layout_spec), **kwargs)
