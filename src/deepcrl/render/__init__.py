"""Videos of a trained policy's evaluation episodes: `deepcrl render RUN_DIR` (docs/rendering.md).

    data = rollout(env, policy, key, num_episodes=2, max_steps=200)      # jitted; host numpy arrays
    frames = episode_frames(env, data, width=480, height=480)            # an iterator of RGB frames
    paths = write_videos(frames, Path("videos/eval"), ("mp4", "gif"), fps=30)

or all of it from a run directory: `render_run(RUN_DIR, ...)`, which is what `deepcrl render` calls.

Episodes are the evaluation episodes of `deepcrl eval` (the paper's evaluation protocol): start in the layout's start
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

The package: `gl` (OpenGL backends and contexts for MuJoCo), `mujoco_frames`, `maze` (point mazes:
`draw_maze`, `PointFrames`), `video` (MP4 and GIF writing), `common` (colours, checks, captions).

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

from pathlib import Path
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.base import Env
from deepcrl.errors import ConfigError
from deepcrl.evaluate import run_episodes
from deepcrl.render.common import AGENT_RGB, GOAL_RGB, MAX_SIDE, MIN_SIDE, TEXT_MIN_SIZE, caption, check_int, check_size, quiet_fork
from deepcrl.render.gl import RenderBackendError, gl_backend
from deepcrl.render.maze import PointFrames, draw_maze
from deepcrl.render.mujoco_frames import FREE_CAMERA, MujocoFrames
from deepcrl.render.video import FORMATS, GIF_MAX_FPS, GIF_MAX_SIDE, MAX_FPS, Written, check_format, gif_step, output_stem, write_videos

Policy = Callable[[jax.Array], jax.Array]  # [N, obs_size] -> [N, action_size]

__all__ = [
    "AGENT_RGB",
    "FORMATS",
    "FREE_CAMERA",
    "GIF_MAX_FPS",
    "GIF_MAX_SIDE",
    "GOAL_RGB",
    "MAX_FPS",
    "MAX_SIDE",
    "MIN_SIDE",
    "MujocoFrames",
    "PointFrames",
    "RenderBackendError",
    "TEXT_MIN_SIZE",
    "Written",
    "caption",
    "check_format",
    "check_int",
    "check_size",
    "draw_maze",
    "drawn_mask",
    "episode_frames",
    "frame_count",
    "frame_renderer",
    "gif_step",
    "gl_backend",
    "output_stem",
    "quiet_fork",
    "render_run",
    "rollout",
    "write_videos",
]


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
# Frames of a rollout
# ----------------------------------------------------------------------------------------------


def frame_renderer(env: Env, width: int, height: int, camera: str | None = None):
    """A MujocoFrames or PointFrames for `env` (raises ConfigError / RenderBackendError up front)."""
    width, height = check_size(width, height)
    if _is_mujoco(env):
        return MujocoFrames(env, width, height, camera)
    if _is_point(env):
        if camera is not None:
            raise ConfigError(
                f"camera={camera!r} is not allowed with env {env.name!r}: point mazes are drawn from above with matplotlib; leave --camera out"
            )
        return PointFrames(env, width, height)
    raise ConfigError(f"env {getattr(env, 'name', type(env).__name__)!r} cannot be rendered: only point mazes and MuJoCo tasks can")


def episode_frames(
    env: Env, data: dict[str, np.ndarray], *, width: int = 480, height: int = 480, camera: str | None = None, renderer=None
) -> Iterator[np.ndarray]:
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
# A whole run: `deepcrl render RUN_DIR`
# ----------------------------------------------------------------------------------------------


def _run_seed(config, run_seed: int | None) -> int | None:
    seeds = range(config.seed, config.seed + config.num_seeds)
    if run_seed is not None and run_seed not in seeds:
        have = f"seed {seeds.start}" if len(seeds) == 1 else f"seeds {seeds.start} .. {seeds.stop - 1}"
        raise ConfigError(f"run_seed={run_seed!r} is not a seed of this run: it trained {have}")
    return run_seed


def render_run(
    run_dir: str | Path,
    *,
    episodes: int = 2,
    seed: int = 0,
    run_seed: int | None = None,
    max_steps: int | None = None,
    width: int = 480,
    height: int = 480,
    fps: int = 30,
    format: str = "both",
    out: str | Path | None = None,
    camera: str | None = None,
) -> tuple[list[Written], dict]:
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
