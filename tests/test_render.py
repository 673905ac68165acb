"""deepcrl render: videos of a trained policy's evaluation episodes.

- A tiny point-maze run trained through the command line renders to an MP4 and a GIF that read back
  with the expected number of frames and size, and the agent moves.
- MuJoCo tasks (ant_u_maze, arm_reach) render through the library with a zero policy: a playable
  video with the expected frames and the goal marker (magenta) in it. The ant's episode is the library's
  compiled rollout; the arm's is stepped in plain MuJoCo from the task's own start and evaluation goal
  (the same arrays, without compiling a second MJX program). These tests skip, with the
  reason, when no OpenGL backend works on the machine (docs/rendering.md says what to install).
- Bad input: one `deepcrl: error:` line, exit code 2, nothing written.
- Writing is atomic; the GIF is downsampled in size and frame rate; a missing OpenGL backend is one
  line naming the packages to install.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageSequence

from cli_helpers import assert_one_error_line, run_main
from conftest import SMALL_RUN
from deepcrl import cli, render
from deepcrl.envs import make_env
from deepcrl.errors import ConfigError

# Reading an MP4 back starts ffmpeg, and JAX warns about any fork; the child execs at once.
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")

STEPS = 20  # --max-steps of the command-line renders
SIZE = 96


def _flags(config: dict) -> list[str]:
    out = []
    for name, value in config.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + name.replace("_", "-"))
        elif value is not None:
            out += [flag, str(value)]
    return out


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A one-epoch run of the shared small config (its programs come from the session's compile cache)."""
    config = dict(SMALL_RUN, total_env_steps=SMALL_RUN["num_envs"] * SMALL_RUN["unroll_length"], num_evals=1, tensorboard=False, seed=3)
    run_dir = tmp_path_factory.mktemp("render") / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(["train", *_flags(config), "--run-dir", str(run_dir)])
    assert code == 0, err.getvalue()[-3000:]
    return run_dir


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _mp4_frames(path: Path) -> np.ndarray:
    return np.stack(imageio.mimread(path, format="FFMPEG", memtest=False))


def _gif(path: Path) -> tuple[list[np.ndarray], int]:
    """(frames as RGB arrays, total duration in ms) of a GIF."""
    with Image.open(path) as img:
        frames, total = [], 0
        for frame in ImageSequence.Iterator(img):
            total += frame.info.get("duration", 0)
            frames.append(np.asarray(frame.convert("RGB")))
    return frames, total


def _magenta(frames: np.ndarray) -> np.ndarray:
    """Per frame, how many pixels have the goal marker's colour (magenta: red and blue high, green low)."""
    f = np.asarray(frames).astype(int)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return ((r > 120) & (b > 100) & (g < 0.6 * np.minimum(r, b))).sum(axis=(-2, -1))


# ----------------------------------------------------------------------------------------------
# (a) a point-maze run, through the command line
# ----------------------------------------------------------------------------------------------


@pytest.mark.xdist_group("render_point_run")
def test_cli_render_point_run(trained_run, tmp_path, capsys):
    out = tmp_path / "videos" / "eval"
    code, stdout, err = run_main(
        [
            "render",
            str(trained_run),
            "--episodes",
            "2",
            "--max-steps",
            str(STEPS),
            "--width",
            str(SIZE),
            "--height",
            str(SIZE),
            "--fps",
            "10",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    mp4, gif = out.with_suffix(".mp4"), out.with_suffix(".gif")
    assert str(mp4) in stdout and str(gif) in stdout
    assert _files(tmp_path) == ["videos", "videos/eval.gif", "videos/eval.mp4"]  # no temporary files left
    expected = 2 * (STEPS + 1)  # the point maze never terminates: start + one frame per step, per episode
    frames = _mp4_frames(mp4)
    assert frames.shape == (expected, SIZE, SIZE, 3)
    assert mp4.stat().st_size > 1000 and gif.stat().st_size > 1000
    # The agent moves (the policy is deterministic but not zero): frames within an episode differ.
    assert np.abs(frames[0].astype(int) - frames[STEPS].astype(int)).max() > 100
    assert len({f.tobytes() for f in frames}) > 5
    assert _magenta(frames).min() > 0  # the goal is drawn in every frame
    # GIF at 10 fps keeps every frame (identical consecutive frames may merge into longer ones).
    gif_frames, duration = _gif(gif)
    assert 2 <= len(gif_frames) <= expected and gif_frames[0].shape == (SIZE, SIZE, 3)
    assert duration == expected * 100


@pytest.mark.xdist_group("render_point_run")
def test_cli_render_default_out_and_one_format(trained_run, capsys):
    videos = trained_run / "videos"
    code, stdout, err = run_main(
        ["render", str(trained_run), "--episodes", "1", "--max-steps", "5", "--width", "64", "--height", "48", "--format", "mp4"], capsys
    )
    assert code == 0, err
    assert _files(videos) == ["eval.mp4"]
    assert str(videos / "eval.mp4") in stdout
    assert _mp4_frames(videos / "eval.mp4").shape == (6, 48, 64, 3)


def test_point_maze_frames_show_walls_goal_and_agent():
    env = make_env("point_u_maze", episode_length=30)
    data = render.rollout(env, lambda obs: jnp.full((obs.shape[0], 2), 0.8), jax.random.PRNGKey(1), 2, 10)
    assert data["pos"].shape == (2, 11, 2) and data["goal"].shape == (2, 11, 2) and data["drawn"].all()
    frames = np.stack(list(render.episode_frames(env, data, width=160, height=120)))
    assert frames.shape == (22, 120, 160, 3) and frames.dtype == np.uint8
    assert (_magenta(frames) > 0).all()
    agent = (np.abs(frames.astype(int) - np.array([round(255 * c) for c in render.AGENT_RGB])).max(-1) < 20).sum(axis=(1, 2))
    assert (agent > 0).all()
    walls = (np.abs(frames.astype(int) - round(0.45 * 255)).max(-1) < 3).sum(axis=(1, 2))
    assert (walls > 0.1 * 120 * 160).all()  # the u-maze is walls for about a third of its area


# ----------------------------------------------------------------------------------------------
# (b) MuJoCo tasks, through the library
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gl_backend() -> str:
    try:
        return render.gl_backend()
    except render.RenderBackendError as e:
        pytest.skip(f"no OpenGL backend for MuJoCo rendering on this machine: {e}")


def _task(name: str):
    try:
        return make_env(name)
    except (ImportError, AttributeError) as e:  # a task module that is not written yet
        pytest.skip(f"task {name!r} is not importable yet: {type(e).__name__}: {e}")


def _plain_mujoco_rollout(env, steps: int) -> dict[str, np.ndarray]:
    """`render.rollout`'s arrays for one zero-action episode, stepped in plain MuJoCo (the task's model)
    from the task's own start and evaluation goal."""
    import mujoco

    k_start, k_goal = jax.random.split(jax.random.PRNGKey(0))
    qpos, qvel = (np.asarray(x, np.float64) for x in env._start(k_start))
    goal = np.asarray(env._eval_goal(k_goal), np.float32)
    model = env.mj_model
    d = mujoco.MjData(model)
    d.qpos[:], d.qvel[:] = qpos, qvel
    d.ctrl[:] = np.asarray(env._ctrl_mid)  # the zero action
    mujoco.mj_forward(model, d)
    qposes = [d.qpos.copy()]
    for _ in range(steps):
        mujoco.mj_step(model, d, env.n_frames)
        qposes.append(d.qpos.copy())
    zeros = np.zeros((1, steps + 1), np.float32)
    return dict(
        qpos=np.asarray(qposes, np.float32)[None],
        goal=np.broadcast_to(goal, (1, steps + 1, goal.size)),
        distance=zeros,
        success=zeros,
        terminated=zeros,
        truncated=zeros,
        drawn=np.ones((1, steps + 1), bool),
    )


@pytest.mark.parametrize("name", ["ant_u_maze", "arm_reach"])
def test_mujoco_task_video(name, gl_backend, tmp_path, monkeypatch, compile_fast):
    env = _task(name)
    steps = 10
    if name == "arm_reach":
        assert env.mj_model.nmocap == 0
        data = _plain_mujoco_rollout(env, steps)
    else:
        zero = lambda obs: jnp.zeros((obs.shape[0], env.action_size), jnp.float32)  # noqa: E731
        data = render.rollout(env, zero, jax.random.PRNGKey(0), 1, steps)
    assert data["qpos"].shape == (1, steps + 1, env.mj_model.nq)
    expected = render.frame_count(data)
    assert expected == steps + 1  # a zero policy does not fall within 10 steps
    written = render.write_videos(render.episode_frames(env, data, width=128, height=96), tmp_path / name, ("mp4", "gif"), fps=10)
    assert [w.path.name for w in written] == [f"{name}.mp4", f"{name}.gif"]
    assert all(w.bytes > 1000 and w.frames == expected for w in written)
    frames = _mp4_frames(tmp_path / f"{name}.mp4")
    assert frames.shape == (expected, 96, 128, 3)
    assert frames.std() > 10  # a picture, not a blank frame
    assert (_magenta(frames) >= 5).all(), _magenta(frames)  # the goal marker, in every frame
    gif_frames, duration = _gif(tmp_path / f"{name}.gif")
    assert gif_frames[0].shape == (96, 128, 3) and duration == expected * 100
    # Control: drawn in grey, the marker's colour is gone, so the pixels above were the marker.
    monkeypatch.setattr(render.mujoco_frames, "GOAL_RGB", (0.5, 0.5, 0.5))
    grey = np.stack(list(render.episode_frames(env, data, width=128, height=96)))
    assert _magenta(grey).max() <= 1


def test_mujoco_cameras(gl_backend):
    ant = _task("ant_u_maze")
    assert "track" in render.MujocoFrames.camera_names(ant.mj_model)
    assert render.MujocoFrames.resolve_camera(ant, None) == render.FREE_CAMERA  # mazes: fit robot and goal
    assert render.MujocoFrames.resolve_camera(ant, "track") == "track"
    with pytest.raises(ConfigError, match=r"camera='top'.*free, track"):
        render.MujocoFrames.resolve_camera(ant, "top")
    with pytest.raises(ConfigError, match="camera='top'"):
        render.frame_renderer(make_env("point_u_maze"), 64, 64, camera="top")


# ----------------------------------------------------------------------------------------------
# (c) bad input
# ----------------------------------------------------------------------------------------------

BAD = {
    "negative_episodes": (["--episodes", "-1"], ["--episodes -1"]),
    "zero_episodes": (["--episodes", "0"], ["--episodes 0"]),
    "episodes_not_int": (["--episodes", "two"], ["--episodes", "'two'"]),
    "unknown_format": (["--format", "webm"], ["'webm'", "mp4, gif, both"]),
    "odd_width": (["--width", "95"], ["--width 95", "even"]),
    "tiny_height": (["--height", "8"], ["--height 8"]),
    "zero_fps": (["--fps", "0"], ["--fps 0"]),
    "negative_seed": (["--seed", "-1"], ["--seed -1"]),
    "max_steps_zero": (["--max-steps", "0"], ["--max-steps 0"]),
    "max_steps_past_episode": (["--max-steps", "51"], ["--max-steps 51", "50"]),
    "run_seed_not_in_run": (["--run-seed", "4"], ["--run-seed 4", "seed 3"]),
    "camera_on_point_maze": (["--camera", "track"], ["--camera 'track'"]),
    "out_suffix_other_format": (["--format", "mp4", "--out", "OUT/eval.gif"], ["eval.gif", "--format mp4"]),
    "unknown_flag": (["--colour", "red"], ["--colour"]),
}


@pytest.mark.xdist_group("render_point_run")
@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_bad_input(case, trained_run, tmp_path, capsys):
    args, names = BAD[case]
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out" / "eval")]
    before = _files(trained_run)
    code, stdout, err = run_main(["render", str(trained_run), *args], capsys)
    assert_one_error_line(code, err, *names)
    assert stdout == ""
    assert _files(trained_run) == before and not (tmp_path / "out").exists()


def test_cli_missing_run(tmp_path, capsys):
    missing = tmp_path / "no_run"
    code, _, err = run_main(["render", str(missing)], capsys)
    assert_one_error_line(code, err, str(missing))
    (tmp_path / "empty").mkdir()
    code, _, err = run_main(["render", str(tmp_path / "empty")], capsys)
    assert_one_error_line(code, err, "no checkpoint", "empty")
    assert _files(tmp_path) == ["empty"]
    code, _, err = run_main(["render"], capsys)
    assert_one_error_line(code, err, "deepcrl render")


# ----------------------------------------------------------------------------------------------
# Writing and backends
# ----------------------------------------------------------------------------------------------


def _moving_square(n: int, size: int = 480):
    for i in range(n):
        frame = np.zeros((size, size, 3), np.uint8)
        frame[:, :, 2] = 60
        x = 10 + 4 * i
        frame[100:140, x : x + 40] = (250, 200, 0)
        yield frame


def test_write_is_atomic(tmp_path):
    def broken():
        yield from _moving_square(3, 64)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render.write_videos(broken(), tmp_path / "new" / "deeper" / "eval", ("mp4", "gif"), fps=30)
    assert _files(tmp_path) == []  # no video, no temporary file, no folder it created
    (tmp_path / "eval.mp4").write_bytes(b"an older video")
    with pytest.raises(KeyboardInterrupt):
        render.write_videos(broken(), tmp_path / "eval", ("mp4",), fps=30)
    assert _files(tmp_path) == ["eval.mp4"] and (tmp_path / "eval.mp4").read_bytes() == b"an older video"


def test_gif_is_downsampled(tmp_path):
    written = render.write_videos(_moving_square(31), tmp_path / "v", ("gif", "mp4"), fps=30)
    assert {w.format: w.frames for w in written} == {"gif": 31, "mp4": 31}
    frames, duration = _gif(tmp_path / "v.gif")
    step = render.gif_step(30)
    assert step == 2 and len(frames) == 16  # every second frame: 15 fps
    assert frames[0].shape == (render.GIF_MAX_SIDE, render.GIF_MAX_SIDE, 3)
    assert duration == 16 * 70  # 2 frames at 30 fps: 66.7 ms, stored in whole centiseconds
    # Frames put back together from the GIF's delta rectangles match the originals, shrunk.
    last = np.asarray(Image.fromarray(list(_moving_square(31))[30]).resize((320, 320), Image.Resampling.BOX))
    assert np.abs(frames[-1].astype(int) - last.astype(int)).mean() < 3
    assert _mp4_frames(tmp_path / "v.mp4").shape == (31, 480, 480, 3)


def test_drawn_mask_stops_after_the_end():
    terminated = np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0]], np.float32)
    truncated = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]], np.float32)
    drawn = render.drawn_mask(terminated, truncated)
    assert drawn.tolist() == [[True, True, True, False, False], [True, True, True, True, False], [True, True, False, False, False]]
    assert render.frame_count({"drawn": drawn}) == 3 + 4 + 2


def test_run_seed_must_be_in_the_run():
    from types import SimpleNamespace

    three = SimpleNamespace(seed=5, num_seeds=3)
    assert render._run_seed(three, None) is None and render._run_seed(three, 7) == 7
    with pytest.raises(ConfigError, match=r"run_seed=8 .* seeds 5 \.\. 7"):
        render._run_seed(three, 8)
    with pytest.raises(ConfigError, match=r"run_seed=0 .* seed 5$"):
        render._run_seed(SimpleNamespace(seed=5, num_seeds=1), 0)


def test_output_stem():
    assert render.output_stem("a/b/eval", ("mp4", "gif")) == Path("a/b/eval")
    assert render.output_stem("a/b/eval.mp4", ("mp4",)) == Path("a/b/eval")
    assert render.output_stem("a/b/eval.gif", ("mp4", "gif")) == Path("a/b/eval")
    with pytest.raises(ConfigError, match="format=mp4"):
        render.output_stem("eval.gif", ("mp4",))
    with pytest.raises(ConfigError, match="out=''"):
        render.output_stem("", ("mp4",))


def test_no_gl_backend_is_one_line(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.setattr(render.gl, "_chosen_backend", None)
    monkeypatch.setattr(render.gl.platform, "system", lambda: "Linux")
    tried = []
    monkeypatch.setattr(render.gl, "_probe", lambda backend: tried.append(backend) or f"lib{backend}.so: cannot open shared object file")
    with pytest.raises(render.RenderBackendError) as info:
        render.gl_backend()
    message = str(info.value)
    assert tried == ["egl", "osmesa"]
    assert "\n" not in message and "libosmesa6" in message and "libegl1" in message and "MUJOCO_GL=egl" in message
    monkeypatch.setenv("MUJOCO_GL", "vulkan")
    with pytest.raises(render.RenderBackendError, match="MUJOCO_GL='vulkan'"):
        render.gl_backend()


def test_cli_backend_error_exit(monkeypatch, capsys):
    """A RenderBackendError (a RunError) from the command line: one line, exit code 1."""

    def no_gl(*args, **kwargs):
        raise render.RenderBackendError("no OpenGL backend for MuJoCo rendering works here; install libegl1")

    monkeypatch.setattr(render, "render_run", no_gl)
    code, _, err = run_main(["render", "somewhere"], capsys)
    assert code == 1 and err.splitlines() == ["deepcrl: error: no OpenGL backend for MuJoCo rendering works here; install libegl1"]
