"""Videos of a trained policy's evaluation episodes: `deepcrl render RUN_DIR` (docs/rendering.md).

    data = rollout(env, policy, key, num_episodes=2, max_steps=200)      # jitted; host numpy arrays
    frames = episode_frames(env, data, width=480, height=480)            # an iterator of RGB frames
    paths = write_videos(frames, Path("videos/eval"), ("mp4", "gif"), fps=30)

or all of it from a run directory: `render_run(RUN_DIR, ...)`, which is what `deepcrl render` calls.

Episodes are the evaluation episodes of `deepcrl eval` (paper.md §7): start in the layout's start
cells, goal in its far goal cells, deterministic actions tanh(mean). They play one after another in
one video; a video of an episode of T steps has T + 1 frames (the start, then one per step), and an
episode that ends by failure (a fall) is drawn up to and including the step that ended it. The goal
is a magenta disc/sphere of the success radius (`goal_threshold`) with an opaque dot at its centre.

- Point mazes are drawn with matplotlib (Agg): walls grey, the agent a blue square of its size, its
  path so far a line. The picture shows the world from above with y upwards, so row 0 of the layout
  file is at the bottom (the same view as the MuJoCo mazes from above).
- MuJoCo tasks are drawn with MuJoCo's own OpenGL renderer. The camera is a model camera
  (`camera="track"`, ...) or "free": a free camera fitted, per episode, to everything the robot
  visits and the goal. Default: "free" for the ant and humanoid (open field and mazes), the model's
  first camera for the other tasks (the arm's "front"), else "free".

OpenGL without a display (MuJoCo tasks only). MuJoCo reads the `MUJOCO_GL` environment variable
once, when `mujoco` is first imported (mujoco 4.0: `mujoco/rendering/classic/gl_context.py`), and on
Linux without it falls back to GLFW, which needs a display. This module therefore makes its own GL
context and does not depend on what mujoco chose at import:

- `MUJOCO_GL` set (egl, osmesa, glfw): that backend is used, nothing else is tried.
- Not set: egl, then osmesa (or only the one `PYOPENGL_PLATFORM` names), each tried first in a
  short subprocess: PyOpenGL binds its platform once per process and a broken driver can crash the
  process, so a failed try must not happen here. The first that renders is used and written into
  `MUJOCO_GL` for the rest of the process (and its children).
- None works: `RenderBackendError`, one line naming the packages to install. Debian/Ubuntu:
  `libegl1 libegl-mesa0 libgl1-mesa-dri` for EGL (Mesa's software renderer llvmpipe without a GPU; on
  a GPU machine the NVIDIA driver ships its own EGL) or `libosmesa6` for OSMesa.

Writing: MP4 (H.264, libx264, yuv420p so that browsers play it; needs even frame sizes) through the
ffmpeg binary that imageio-ffmpeg ships, and GIF through Pillow at most `GIF_MAX_SIDE` pixels wide
or high and at most `GIF_MAX_FPS` frames per second (every k-th frame, each shown k times as long;
Pillow also merges consecutive identical frames into one longer frame). Files are written under a
temporary name in the output folder and renamed into place at the end, so an interrupted render
never leaves a half-written video (nor an empty folder it created).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import math
import os
import platform
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.base import Env
from deepcrl.evaluate import run_episodes
from deepcrl.errors import ConfigError, RunError

FORMATS = ("mp4", "gif", "both")
MIN_SIDE, MAX_SIDE = 16, 4096
MAX_FPS = 120
GIF_MAX_SIDE = 320  # GIF frames are scaled down to at most this many pixels on their longer side
GIF_MAX_FPS = 15  # and keep every k-th frame, k = ceil(fps / GIF_MAX_FPS)
GOAL_RGB = (0.95, 0.1, 0.85)  # magenta: no task uses it
AGENT_RGB = (0.15, 0.35, 0.85)
TEXT_MIN_SIZE = (256, 160)  # (width, height): smaller MuJoCo frames get no text overlay (point mazes: half of it)
FREE_CAMERA = "free"
FREE_ELEVATION = -60.0  # degrees; azimuth 90: x to the right, y up the screen
FREE_ELEVATION_MAZE = -80.0  # steeper in mazes, so that walls hide little of the corridors
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software")  # GL_RENDERER names of CPU rasterisers

Policy = Callable[[jax.Array], jax.Array]  # [N, obs_size] -> [N, action_size]


class RenderBackendError(RunError):
    """No OpenGL backend for MuJoCo's renderer works in this process. One line: what was tried, what to install."""


# ----------------------------------------------------------------------------------------------
# Checks of user-supplied values
# ----------------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value, low: int, high: int | None = None, *, even: bool = False, why: str = "") -> int:
    ok = _is_int(value) and value >= low and (high is None or value <= high) and (not even or value % 2 == 0)
    if not ok:
        need = f"an {'even ' if even else ''}integer >= {low}" + ("" if high is None else f" and <= {high}")
        raise ConfigError(f"{name}={value!r} is not allowed: need {need}{why}")
    return int(value)


def check_format(fmt: str) -> tuple[str, ...]:
    """The formats that `fmt` ("mp4", "gif" or "both") writes."""
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not allowed: choose one of {', '.join(FORMATS)}")
    return ("mp4", "gif") if fmt == "both" else (fmt,)


def check_size(width, height) -> tuple[int, int]:
    why = " (H.264 in yuv420p, the MP4 browsers play, needs even sizes)"
    return (check_int("width", width, MIN_SIDE, MAX_SIDE, even=True, why=why),
            check_int("height", height, MIN_SIDE, MAX_SIDE, even=True, why=why))


def output_stem(out: str | Path, formats: Sequence[str]) -> Path:
    """The path without suffix that the videos get (PATH.mp4, PATH.gif). A suffix .mp4 or .gif on
    `out` is dropped when it is one of the formats written; another video suffix is an error."""
    path = Path(out)
    if str(out).strip() == "" or path.name in ("", ".", ".."):
        raise ConfigError(f"out={str(out)!r} is not allowed: need a file path without suffix, e.g. videos/eval (writes videos/eval.mp4 and .gif)")
    suffix = path.suffix.lower()
    if suffix in (".mp4", ".gif"):
        if suffix[1:] not in formats:
            raise ConfigError(f"out={str(out)!r} does not match format={'+'.join(formats)}: give the path without suffix, or --format {suffix[1:]}")
        path = path.with_suffix("")
    for fmt in formats:
        target = path.with_name(f"{path.name}.{fmt}")
        if target.is_dir():
            raise ConfigError(f"out={str(out)!r} is not allowed: {str(target)!r} is a folder")
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"out={str(out)!r} is not allowed: {str(parent)!r} is a file, not a folder")
            break
    return path


# ----------------------------------------------------------------------------------------------
# Episodes
# ----------------------------------------------------------------------------------------------


def _is_mujoco(env: Env) -> bool:
    return hasattr(env, "mj_model")


def _is_point(env: Env) -> bool:
    from deepcrl.envs.point_maze import PointMaze

    return isinstance(env, PointMaze)


def rollout(env: Env, policy: Policy, key: jax.Array, num_episodes: int, max_steps: int | None = None) -> dict[str, np.ndarray]:
    """Run `num_episodes` evaluation episodes of `max_steps` steps (default: the whole episode), jitted.

    `policy` maps a batch of observations [N, obs_size] to actions [N, action_size]; a
    `jax.tree_util.Partial` is passed into the jitted program as an argument (its arrays are not
    baked into the program as constants). Returns host arrays with leading axes [episode, T + 1]
    (the start, then the state after each step):

    - "qpos" [, "mocap_pos", "mocap_quat"] (MuJoCo tasks) or "pos" (point mazes): what frames need
    - "goal", "distance", "success", "terminated", "truncated"
    - "drawn": bool, False for the frames after the step that ended the episode
    """
    num_episodes = check_int("episodes", num_episodes, 1)
    max_steps = env.episode_length if max_steps is None else check_int("max_steps", max_steps, 1, env.episode_length)
    mujoco_task = _is_mujoco(env)
    if not mujoco_task and not _is_point(env):
        raise ConfigError(f"env {getattr(env, 'name', type(env).__name__)!r} cannot be rendered: only point mazes and MuJoCo tasks can")
    nmocap = env.mj_model.nmocap if mujoco_task else 0

    def record(states):
        out = {
            "goal": states.goal,
            "distance": states.distance,
            "success": states.success,
            "terminated": states.terminated,
            "truncated": states.truncated,
        }
        if mujoco_task:
            out["qpos"] = states.physics.qpos
            if nmocap:
                out["mocap_pos"], out["mocap_quat"] = states.physics.mocap_pos, states.physics.mocap_quat
        else:
            out["pos"] = states.physics.pos
        return out

    def run(policy, key):
        start, _, _, steps = run_episodes(env, policy, key, num_episodes, max_steps, record=record)
        first = record(start)  # [E, ...]; steps are [T, E, ...]
        return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[:, None], jnp.swapaxes(b, 0, 1)], axis=1), first, steps)

    if not isinstance(policy, jax.tree_util.Partial):
        policy = jax.tree_util.Partial(policy)
    data = jax.device_get(jax.jit(run)(policy, key))
    data = {k: np.asarray(v) for k, v in data.items()}
    data["drawn"] = drawn_mask(data["terminated"], data["truncated"])
    return data


def drawn_mask(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """bool [episode, T + 1]: frame t is drawn when no step before t ended the episode."""
    done = np.maximum(terminated, truncated) > 0
    drawn = np.ones_like(done)
    drawn[:, 1:] = np.cumprod(~done[:, :-1], axis=1).astype(bool)
    return drawn


def frame_count(data: dict[str, np.ndarray]) -> int:
    """How many frames `episode_frames` draws for a rollout."""
    return int(data["drawn"].sum())


# ----------------------------------------------------------------------------------------------
# OpenGL backends for MuJoCo
# ----------------------------------------------------------------------------------------------

_BACKEND_MODULES = {"egl": "mujoco.egl", "osmesa": "mujoco.osmesa", "glfw": "mujoco.glfw", "glx": "mujoco.glfw", "cgl": "mujoco.cgl"}
_INSTALL_HINT = (
    "install an OpenGL backend: on Debian/Ubuntu `apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` (EGL; "
    "a GPU machine's NVIDIA driver ships its own) or `apt-get install libosmesa6` (OSMesa, software), "
    "or set MUJOCO_GL to a backend that works here (egl, osmesa, glfw with a display)"
)
_PROBE = r"""
import contextlib, importlib, io, os, sys
backend, module = sys.argv[1], sys.argv[2]
with contextlib.redirect_stdout(io.StringIO()):
    import mujoco
ctx = importlib.import_module(module).GLContext(16, 16)
ctx.make_current()
model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><light pos="0 0 2"/><geom size="0.5"/></worldbody></mujoco>')
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
scene, cam = mujoco.MjvScene(model, maxgeom=100), mujoco.MjvCamera()
mujoco.mjv_updateScene(model, data, mujoco.MjvOption(), None, cam, mujoco.mjtCatBit.mjCAT_ALL, scene)
rect = mujoco.MjrRect(0, 0, 16, 16)
mujoco.mjr_render(rect, scene, con)
import numpy as np
pixels = np.zeros((16, 16, 3), np.uint8)
mujoco.mjr_readPixels(pixels, None, rect, con)
print("deepcrl-gl-ok")
"""

_chosen_backend: str | None = None


def _probe(backend: str, timeout: float = 120.0) -> str | None:
    """None when `backend` renders in a fresh subprocess, else the reason it does not (one short line)."""
    env = dict(os.environ, MUJOCO_GL=backend)
    if backend in ("egl", "osmesa"):
        env["PYOPENGL_PLATFORM"] = backend
    try:
        with _quiet_fork():
            proc = subprocess.run([sys.executable, "-c", _PROBE, backend, _BACKEND_MODULES[backend]], env=env,
                                  capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:g} s"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    if proc.returncode == 0 and "deepcrl-gl-ok" in proc.stdout:
        return None
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit code {proc.returncode}"
    return reason if len(reason) <= 160 else reason[:157] + "..."


def gl_backend() -> str:
    """The OpenGL backend MuJoCo frames are rendered with: MUJOCO_GL if set, else the first of egl,
    osmesa that works (tried in subprocesses); raises RenderBackendError when none does."""
    global _chosen_backend
    wanted = os.environ.get("MUJOCO_GL", "").strip().lower()
    if _chosen_backend is not None and wanted in ("", _chosen_backend):
        return _chosen_backend
    if wanted:
        if wanted not in _BACKEND_MODULES:
            raise RenderBackendError(f"MUJOCO_GL={wanted!r} cannot render: choose one of egl, osmesa, glfw (or unset it to choose automatically)")
        _chosen_backend = wanted
        return wanted
    if platform.system() == "Darwin":
        candidates = ["cgl", "glfw"]
    elif platform.system() != "Linux":
        candidates = ["glfw"]
    else:
        pyopengl = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
        candidates = [pyopengl] if pyopengl in ("egl", "osmesa") else ["egl", "osmesa"]
    failures = []
    for backend in candidates:
        reason = _probe(backend)
        if reason is None:
            _chosen_backend = backend
            os.environ["MUJOCO_GL"] = backend
            return backend
        failures.append(f"MUJOCO_GL={backend}: {reason}")
    raise RenderBackendError(f"no OpenGL backend for MuJoCo rendering works here (tried {'; '.join(failures)}); {_INSTALL_HINT}")


def _gl_context(width: int, height: int):
    """A current OpenGL context of the chosen backend (made here, whatever mujoco chose at import)."""
    backend = gl_backend()
    try:
        module = importlib.import_module(_BACKEND_MODULES[backend])
        ctx = module.GLContext(width, height)
        ctx.make_current()
    except Exception as e:  # ImportError (PYOPENGL_PLATFORM set otherwise, library missing), EGL/GLFW errors
        text = " ".join(f"{type(e).__name__}: {e}".split())
        raise RenderBackendError(f"MUJOCO_GL={backend} cannot render here ({text[:200]}); {_INSTALL_HINT}") from None
    return ctx


def _gl_renderer_name() -> str:
    """GL_RENDERER of the current context ("llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H100/PCIe/SSE2", ...)."""
    try:
        from OpenGL import GL

        name = GL.glGetString(GL.GL_RENDERER)
        return name.decode(errors="replace") if isinstance(name, bytes) else str(name or "")
    except Exception:  # PyOpenGL missing or no function pointers: keep the default (full) quality
        return ""


@contextlib.contextmanager
def _quiet_fork():
    """Starting a subprocess (ffmpeg, a GL probe) from a process with JAX makes JAX warn that os.fork()
    is unsafe with threads; the child execs at once, so the warning does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


# ----------------------------------------------------------------------------------------------
# Frames
# ----------------------------------------------------------------------------------------------


def _caption(data: dict, e: int, t: int) -> tuple[str, str]:
    """Two lines of text for frame t of episode e: where in the video, and how close to the goal."""
    status = "at goal" if data["success"][e, t] > 0 else f"distance {data['distance'][e, t]:.2f}"
    if data["terminated"][e, t] > 0:
        status += ", failed"
    return f"episode {e + 1}/{data['drawn'].shape[0]}  step {t}", status


class MujocoFrames:
    """Frames of a MuJoCo task, drawn offscreen with MuJoCo's OpenGL renderer."""

    def __init__(self, env, width: int, height: int, camera: str | None = None):
        import mujoco

        self.mujoco = mujoco
        self.env = env
        self.width, self.height = width, height
        self.model = copy.deepcopy(env.mj_model)  # a copy: the offscreen buffer is resized
        self.model.vis.global_.offwidth = max(width, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(height, self.model.vis.global_.offheight)
        self.camera = self.resolve_camera(env, camera)
        self._ctx = _gl_context(width, height)
        scale = mujoco.mjtFontScale.mjFONTSCALE_150 if min(width, height) >= 400 else mujoco.mjtFontScale.mjFONTSCALE_100
        self._text = width >= TEXT_MIN_SIZE[0] and height >= TEXT_MIN_SIZE[1]
        self._con = mujoco.MjrContext(self.model, scale.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._con)
        self._scene = mujoco.MjvScene(self.model, maxgeom=max(1000, 4 * self.model.ngeom + 100))
        self._option = mujoco.MjvOption()
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._data = mujoco.MjData(self.model)
        self._pixels = np.empty((height, width, 3), np.uint8)
        self.gl_renderer = _gl_renderer_name()
        if any(name in self.gl_renderer.lower() for name in SOFTWARE_RENDERERS):
            # A CPU rasteriser (Mesa llvmpipe: EGL or OSMesa without a GPU) spends most of a frame on
            # shadows (about 90 -> 20 ms at 480x480 on 2 cores); a GPU draws them for free.
            self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False

    @staticmethod
    def camera_names(model) -> list[str]:
        import mujoco

        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        return [n for n in names if n]

    @classmethod
    def resolve_camera(cls, env, camera: str | None) -> str:
        """The camera to use: FREE_CAMERA or a model camera's name; ConfigError for an unknown name."""
        names = cls.camera_names(env.mj_model)
        if camera is None:
            if hasattr(env, "layout") or not names:  # locomotion (open and mazes): fit robot and goal
                return FREE_CAMERA
            return names[0]
        if camera != FREE_CAMERA and camera not in names:
            allowed = ", ".join([FREE_CAMERA, *names])
            raise ConfigError(f"camera={camera!r} is not a camera of {env.name}: choose one of {allowed}")
        return camera

    def _set_state(self, data: dict, e: int, t: int) -> None:
        d = self._data
        d.qpos[:] = data["qpos"][e, t]
        if "mocap_pos" in data:
            d.mocap_pos[:] = data["mocap_pos"][e, t]
            d.mocap_quat[:] = data["mocap_quat"][e, t]
        self.mujoco.mj_forward(self.model, d)

    def _mjv_camera(self, data: dict, e: int, steps: np.ndarray):
        mujoco = self.mujoco
        cam = mujoco.MjvCamera()
        if self.camera != FREE_CAMERA:
            cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
            cam.fixedcamid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera)
            return cam
        # A free camera fitted to every body position of the episode and the goal marker.
        points = [self.env.goal_marker(data["goal"][e, 0])[None]]
        for t in steps:
            self._set_state(data, e, t)
            points.append(np.array(self._data.xpos[1:]))
        points = np.concatenate(points)
        lo, hi = points.min(0), points.max(0)
        span = float(np.max(hi[:2] - lo[:2]))
        maze = getattr(self.env, "layout", None) is not None
        margin = max(0.15 * span, 2 * float(self.env.goal_threshold), 0.3, 0.5 * float(getattr(self.env, "cell_size", 0.0)) if maze else 0.0)
        half = span / 2 + margin
        fovy = math.radians(float(self.model.vis.global_.fovy))
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = (lo + hi) / 2
        cam.distance = 1.1 * half / math.tan(fovy / 2) * max(1.0, self.height / self.width)  # fovy is vertical
        cam.azimuth = 90.0
        cam.elevation = FREE_ELEVATION_MAZE if maze else FREE_ELEVATION
        return cam

    def _add_sphere(self, pos, radius: float, rgba) -> None:
        scene = self._scene
        if scene.ngeom >= scene.maxgeom:
            return
        geom = scene.geoms[scene.ngeom]
        self.mujoco.mjv_initGeom(geom, self.mujoco.mjtGeom.mjGEOM_SPHERE, np.array([radius, 0.0, 0.0]),
                                 np.asarray(pos, np.float64), np.eye(3).ravel(), np.asarray(rgba, np.float32))
        geom.emission = 0.4
        scene.ngeom += 1

    def episode(self, data: dict, e: int) -> Iterator[np.ndarray]:
        mujoco = self.mujoco
        steps = np.flatnonzero(data["drawn"][e])
        cam = self._mjv_camera(data, e, steps)
        goal = self.env.goal_marker(data["goal"][e, 0])
        radius = float(self.env.goal_threshold)
        for t in steps:
            self._set_state(data, e, t)
            self._ctx.make_current()
            mujoco.mjv_updateScene(self.model, self._data, self._option, None, cam, mujoco.mjtCatBit.mjCAT_ALL, self._scene)
            self._add_sphere(goal, radius, (*GOAL_RGB, 0.35))
            self._add_sphere(goal, 0.3 * radius, (*GOAL_RGB, 1.0))
            mujoco.mjr_render(self._rect, self._scene, self._con)
            if self._text:
                top, bottom = _caption(data, e, int(t))
                mujoco.mjr_overlay(mujoco.mjtFont.mjFONT_NORMAL, mujoco.mjtGridPos.mjGRID_TOPLEFT, self._rect, top, bottom, self._con)
            mujoco.mjr_readPixels(self._pixels, None, self._rect, self._con)
            yield np.flipud(self._pixels).copy()

    def close(self) -> None:
        if self._con is not None:
            self._ctx.make_current()
            self._con.free()
            self._con = None
        if self._ctx is not None:
            self._ctx.free()
            self._ctx = None


class PointFrames:
    """Frames of a point-mass maze, drawn with matplotlib (Agg, no display)."""

    def __init__(self, env, width: int, height: int):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Circle, Rectangle

        self.env = env
        self.width, self.height = width, height
        dpi = 100
        fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
        self._canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        layout, cs = env.layout, float(env.cell_size)
        walls = np.asarray(layout.wall_array, bool)
        image = np.where(walls[..., None], 0.45, 0.96) * np.ones(3)
        extent = (0.0, layout.width * cs, 0.0, layout.height * cs)
        ax.imshow(image, extent=extent, origin="lower", interpolation="nearest")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal", adjustable="box", anchor="C")
        r, thr = float(env.radius), float(env.goal_threshold)
        self._goal = ax.add_patch(Circle((0, 0), thr, facecolor=(*GOAL_RGB, 0.3), edgecolor=GOAL_RGB, linewidth=1.5, zorder=2))
        self._goal_dot = ax.add_patch(Circle((0, 0), min(0.3 * thr, 0.15 * cs), facecolor=GOAL_RGB, edgecolor="none", zorder=3))
        self._path = ax.add_line(Line2D([], [], color=(*AGENT_RGB, 0.6), linewidth=max(1.0, height / 240), zorder=4))
        self._agent = ax.add_patch(Rectangle((0, 0), 2 * r, 2 * r, facecolor=AGENT_RGB, edgecolor="black", linewidth=0.5, zorder=5))
        self._text = None
        if width >= TEXT_MIN_SIZE[0] // 2 and height >= TEXT_MIN_SIZE[1] // 2:
            self._text = ax.text(0.01, 0.99, "", transform=ax.transAxes, va="top", ha="left", fontsize=max(4.0, min(width, height) / 40),
                                 family="monospace", zorder=6, bbox=dict(facecolor="white", alpha=0.7, edgecolor="none", pad=2))

    def _pixels(self) -> np.ndarray:
        self._canvas.draw()
        rgb = np.asarray(self._canvas.buffer_rgba())[..., :3]
        if rgb.shape[:2] != (self.height, self.width):  # a figure size that rounded to one pixel less
            out = np.full((self.height, self.width, 3), 255, np.uint8)
            h, w = min(self.height, rgb.shape[0]), min(self.width, rgb.shape[1])
            out[:h, :w] = rgb[:h, :w]
            return out
        return rgb.copy()

    def episode(self, data: dict, e: int) -> Iterator[np.ndarray]:
        steps = np.flatnonzero(data["drawn"][e])
        pos = data["pos"][e]
        goal = tuple(float(v) for v in data["goal"][e, 0])
        self._goal.center = goal
        self._goal_dot.center = goal
        r = float(self.env.radius)
        for t in steps:
            self._path.set_data(pos[: t + 1, 0], pos[: t + 1, 1])
            self._agent.set_xy((pos[t, 0] - r, pos[t, 1] - r))
            if self._text is not None:
                self._text.set_text("\n".join(_caption(data, e, int(t))))
            yield self._pixels()

    def close(self) -> None:
        pass


def frame_renderer(env: Env, width: int, height: int, camera: str | None = None):
    """A MujocoFrames or PointFrames for `env` (raises ConfigError / RenderBackendError up front)."""
    width, height = check_size(width, height)
    if _is_mujoco(env):
        return MujocoFrames(env, width, height, camera)
    if _is_point(env):
        if camera is not None:
            raise ConfigError(f"camera={camera!r} is not allowed with env {env.name!r}: point mazes are drawn from above with matplotlib; leave --camera out")
        return PointFrames(env, width, height)
    raise ConfigError(f"env {getattr(env, 'name', type(env).__name__)!r} cannot be rendered: only point mazes and MuJoCo tasks can")


def episode_frames(env: Env, data: dict[str, np.ndarray], *, width: int = 480, height: int = 480,
                   camera: str | None = None, renderer=None) -> Iterator[np.ndarray]:
    """The RGB frames [height, width, 3] uint8 of every episode of a rollout, one episode after another."""
    own = renderer is None
    renderer = frame_renderer(env, width, height, camera) if own else renderer
    try:
        for e in range(data["drawn"].shape[0]):
            yield from renderer.episode(data, e)
    finally:
        if own:
            renderer.close()


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def gif_step(fps: int) -> int:
    """Every how many frames the GIF keeps one."""
    return max(1, math.ceil(fps / GIF_MAX_FPS))


def _gif_frame(frame: np.ndarray, palette=None):
    """A GIF frame: scaled to at most GIF_MAX_SIDE, 8-bit colour. The first frame's palette (median cut)
    serves every frame: the scene hardly changes colour, and a shared palette lets Pillow store each
    frame as the small rectangle that changed (GIFs about 2.5x smaller than with a palette per frame)."""
    from PIL import Image

    img = Image.fromarray(frame)
    h, w = frame.shape[:2]
    scale = min(1.0, GIF_MAX_SIDE / max(h, w))
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    if palette is None:
        return img.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return img.quantize(palette=palette, dither=Image.Dither.NONE)


@dataclass
class Written:
    path: Path
    format: str
    frames: int  # frames given to the writer (a GIF holds fewer: every gif_step-th, identical ones merged)
    width: int
    height: int
    bytes: int = field(default=0)


def write_videos(frames: Iterable[np.ndarray], stem: str | Path, formats: Sequence[str], fps: int) -> list[Written]:
    """Write the frames as STEM.mp4 and/or STEM.gif, atomically; returns what was written."""
    import imageio.v2 as imageio

    formats = tuple(formats)
    for fmt in formats:
        check_format(fmt)
    fps = check_int("fps", fps, 1, MAX_FPS)
    stem = Path(stem)
    created = [p for p in [stem.parent, *stem.parent.parents] if not p.exists()]
    stem.parent.mkdir(parents=True, exist_ok=True)
    temps: dict[str, Path] = {}
    writer = None
    try:
        for fmt in formats:
            fd, name = tempfile.mkstemp(prefix=f".{stem.name}-", suffix=f".{fmt}", dir=stem.parent)
            os.close(fd)
            os.chmod(name, 0o644)
            temps[fmt] = Path(name)
        if "mp4" in temps:
            writer = imageio.get_writer(temps["mp4"], format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                        quality=6, macro_block_size=2, ffmpeg_log_level="error",
                                        output_params=["-movflags", "+faststart"])
        gif, step, count, size = [], gif_step(fps), 0, None
        for frame in frames:
            frame = np.ascontiguousarray(frame, np.uint8)
            if size is None:
                size = frame.shape[:2]
            if writer is not None:
                with _quiet_fork() if count == 0 else contextlib.nullcontext():  # ffmpeg starts with the first frame
                    writer.append_data(frame)
            if "gif" in temps and count % step == 0:
                gif.append(_gif_frame(frame, gif[0] if gif else None))
            count += 1
        if count == 0:
            raise ConfigError("no frames to write: the rollout drew none")
        if writer is not None:
            writer.close()
            writer = None
        if gif:
            duration = 10 * max(2, round(100 * step / fps))  # whole centiseconds, as GIF stores them; >= 20 ms, as browsers play them
            gif[0].save(temps["gif"], format="GIF", save_all=True, append_images=gif[1:], duration=duration, loop=0)
        written = []
        for fmt, tmp in temps.items():
            final = stem.with_name(f"{stem.name}.{fmt}")
            os.replace(tmp, final)
            written.append(Written(final, fmt, count, int(size[1]), int(size[0]), final.stat().st_size))
        return written
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        for folder in created:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                break
        raise


# ----------------------------------------------------------------------------------------------
# A whole run: `deepcrl render RUN_DIR`
# ----------------------------------------------------------------------------------------------


def _run_seed(config, run_seed: int | None) -> int | None:
    seeds = range(config.seed, config.seed + config.num_seeds)
    if run_seed is not None and run_seed not in seeds:
        have = f"seed {seeds.start}" if len(seeds) == 1 else f"seeds {seeds.start} .. {seeds.stop - 1}"
        raise ConfigError(f"run_seed={run_seed!r} is not a seed of this run: it trained {have}")
    return run_seed


def render_run(run_dir: str | Path, *, episodes: int = 2, seed: int = 0, run_seed: int | None = None,
               max_steps: int | None = None, width: int = 480, height: int = 480, fps: int = 30,
               format: str = "both", out: str | Path | None = None, camera: str | None = None) -> tuple[list[Written], dict]:
    """Render a run's evaluation episodes with its checkpoint's policy. Every value is checked (and the
    OpenGL backend found) before anything is computed or written. Returns (files written, rollout)."""
    from deepcrl.checkpoints import load_policy_checkpoint, seed_payload

    episodes = check_int("episodes", episodes, 1)
    seed = check_int("seed", seed, 0, 2**32 - 1)
    if run_seed is not None:
        check_int("run_seed", run_seed, 0, 2**32 - 1)
    if max_steps is not None:
        check_int("max_steps", max_steps, 1)
    width, height = check_size(width, height)
    fps = check_int("fps", fps, 1, MAX_FPS)
    formats = check_format(format)
    if not Path(run_dir).is_dir():
        raise ConfigError(f"run directory {str(run_dir)!r} does not exist: give the folder of a run written by deepcrl train")
    stem = output_stem(Path(run_dir) / "videos" / "eval" if out is None else out, formats)
    config, env, agent, payload = load_policy_checkpoint(run_dir)
    params = seed_payload(config, payload, _run_seed(config, run_seed))["actor_params"]
    if max_steps is not None:
        check_int("max_steps", max_steps, 1, env.episode_length, why=f" (the episode length of {env.name})")
    renderer = frame_renderer(env, width, height, camera)  # unknown camera, no OpenGL: fail before the rollout
    try:
        policy = jax.tree_util.Partial(lambda p, obs: agent.act(p, obs, deterministic=True), params)
        data = rollout(env, policy, jax.random.PRNGKey(seed), episodes, max_steps)
        written = write_videos(episode_frames(env, data, renderer=renderer), stem, formats, fps)
    finally:
        renderer.close()
    return written, data
