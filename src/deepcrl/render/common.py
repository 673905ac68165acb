"""What the renderers and the writers share: colours, sizes, checks of user-supplied values, captions."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from deepcrl.errors import ConfigError

MIN_SIDE, MAX_SIDE = 16, 4096  # frame sides in pixels
GOAL_RGB = (0.95, 0.1, 0.85)  # magenta: no task uses it
AGENT_RGB = (0.15, 0.35, 0.85)
TEXT_MIN_SIZE = (256, 160)  # (width, height): smaller MuJoCo frames get no text overlay (point mazes: half of it)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value, low: int, high: int | None = None, *, even: bool = False, why: str = "") -> int:
    ok = _is_int(value) and value >= low and (high is None or value <= high) and (not even or value % 2 == 0)
    if not ok:
        need = f"an {'even ' if even else ''}integer >= {low}" + ("" if high is None else f" and <= {high}")
        raise ConfigError(f"{name}={value!r} is not allowed: need {need}{why}")
    return int(value)


def check_size(width, height) -> tuple[int, int]:
    why = " (H.264 in yuv420p, the MP4 browsers play, needs even sizes)"
    return (
        check_int("width", width, MIN_SIDE, MAX_SIDE, even=True, why=why),
        check_int("height", height, MIN_SIDE, MAX_SIDE, even=True, why=why),
    )


@contextlib.contextmanager
def quiet_fork():
    """Starting a subprocess (ffmpeg, a GL probe) from a process with JAX makes JAX warn that os.fork()
    is unsafe with threads; the child execs at once, so the warning does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def caption(data: dict, e: int, t: int) -> tuple[str, str]:
    """Two lines of text for frame t of episode e: where in the video, and how close to the goal."""
    status = "at goal" if data["success"][e, t] > 0 else f"distance {data['distance'][e, t]:.2f}"
    if data["terminated"][e, t] > 0:
        status += ", failed"
    return f"episode {e + 1}/{data['drawn'].shape[0]}  step {t}", status
