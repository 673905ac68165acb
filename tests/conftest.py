"""Shared test setup: a per-session JAX compilation cache and the small training config the
training and command-line tests share.

Compiling a training epoch costs tens of seconds on a small CPU, while running a tiny one costs
milliseconds. Every test that builds a `Trainer` therefore uses the same network and batch shapes
(`SMALL_RUN`), and a persistent compilation cache in a fresh temporary folder (shared by the xdist
workers and handed to the `deepcrl` subprocesses through the environment) lets the second and later
builds reuse the first compile. The cache only skips identical compiles; it is created empty for
every session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import pytest

_CACHE_DIR: str | None = None

# One small, fast-learning run on the open arena (about 1,200 SGD steps). Every field that shapes the
# compiled programs is spelled out here so that tuning the library's defaults never changes these tests.
SMALL_RUN: dict = dict(
    env="point_open",
    layout=None,
    episode_length=50,
    max_speed=0.5,
    goal_threshold=0.5,
    train_starts="free",
    train_goals="free",
    depth=4,
    actor_depth=None,
    critic_depth=None,
    width=32,
    actor_width=None,
    critic_width=None,
    repr_dim=64,
    layer_norm=True,
    activation="swish",
    residual=True,
    network_unroll=0,
    energy="l2",
    contrastive_loss="fwd_infonce",
    logsumexp_penalty=0.1,
    entropy_scale=0.5,
    actor_lr=1e-3,
    critic_lr=1e-3,
    alpha_lr=1e-3,
    num_envs=16,
    unroll_length=25,
    updates_per_epoch=20,
    batch_size=128,
    buffer_size=200,
    prefill_steps=50,
    gamma=0.99,
    total_env_steps=16 * 25 * 60,
    num_evals=3,
    num_eval_envs=64,
    seed=0,
    progress=False,
    tensorboard=True,
)


_CACHE_ENV = "DEEPCRL_TEST_JAX_CACHE"  # the session's cache folder, handed from the pytest process to its xdist workers
_OWN_CACHE = False


def pytest_configure(config):
    global _CACHE_DIR, _OWN_CACHE
    # Property tests draw the same examples on every run (and keep no example database), so a run of
    # the suite is repeatable: a property that can fail is found by widening max_examples, not by luck.
    from hypothesis import settings

    settings.register_profile("deepcrl", derandomize=True, database=None)
    settings.load_profile("deepcrl")
    # One cache for the whole session: made by the first pytest process, inherited by the xdist workers
    # it starts (and by the deepcrl subprocesses), so a program compiled on one worker is read by the other.
    _CACHE_DIR = os.environ.get(_CACHE_ENV)
    if not _CACHE_DIR or not os.path.isdir(_CACHE_DIR):
        _CACHE_DIR, _OWN_CACHE = tempfile.mkdtemp(prefix="deepcrl-test-jax-cache-"), True
    settings = {
        _CACHE_ENV: _CACHE_DIR,
        "JAX_COMPILATION_CACHE_DIR": _CACHE_DIR,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
    }
    os.environ.update(settings)  # read by jax when it is imported, here and in subprocesses
    import jax

    jax.config.update("jax_compilation_cache_dir", _CACHE_DIR)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


# The MuJoCo tasks' groups hold the suite's longest work (one MJX compile each, 30-200 s on a small CPU;
# the arm's binpick-hard task is the longest): they are handed to the xdist workers first, the other
# groups next, and the quick tests last, so that the quick ones fill in whichever worker is free at the
# end instead of the compiles collected last running one after another on one worker.
LONGEST_FIRST = ("arm_binpick_hard",)


def _rank(item) -> tuple[int, int]:
    from deepcrl.envs import MUJOCO_TASK_NAMES

    marker = item.get_closest_marker("xdist_group")
    group = None if marker is None else (marker.args[0] if marker.args else marker.kwargs.get("name"))
    if group in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(group))
    if group in MUJOCO_TASK_NAMES or group == "ant":
        return (1, 0)
    return (2, 0) if group is not None else (3, 0)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_rank)  # stable: the order within each rank is the collection order


def pytest_unconfigure(config):
    if _CACHE_DIR is not None and _OWN_CACHE:
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)
        os.environ.pop(_CACHE_ENV, None)


@contextlib.contextmanager
def fast_compiles():
    """Programs compiled inside skip XLA's slower optimisations (backend level 0, no expensive LLVM
    passes): for programs that run a few times, for milliseconds, where compiling is the cost. Not for
    learning runs, whose thousands of steps run slower so compiled; and a run resumed must be compiled
    like the run it resumes (the two compile to different roundings)."""
    import jax

    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture
def compile_fast():
    """`fast_compiles` for one test."""
    with fast_compiles():
        yield


@pytest.fixture(scope="session")
def small_run() -> dict:
    """Keyword arguments of the shared small `Config` (a fresh copy for each caller)."""
    return dict(SMALL_RUN)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current directory, so that a default runs/ folder written by mistake would show."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd
