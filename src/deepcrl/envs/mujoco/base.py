"""Goal-conditioned tasks on MuJoCo MJX: the shared machinery.

A `MjxTask` owns a compiled `mujoco.MjModel` (for rendering and CPU checks) and its MJX copy (for
stepping inside jitted, vmapped programs). `EnvState.physics` is the `mjx.Data` of the simulation.
Subclasses say how a state is observed, where episodes start, where goals come from and when an
episode fails; this class does the rest (action scaling, frame skipping, success, truncation).

Why MJX and not Brax: Brax's MJX pipeline is a thin wrapper over the same `mujoco.mjx` calls, its
other pipelines (spring, positional, generalized) are marked unmaintained, and on this CPU Brax's
ant ran at the same speed with either pipeline (docs/tasks.md, benchmarks/env_throughput.py).
"""

from __future__ import annotations

import abc
import contextlib
import io

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs.base import Env, EnvState
from deepcrl.errors import ConfigError


# The floor's checker texture and the maze walls' material of the locomotion scenes (ant, humanoid).
FLOOR_ASSETS = """<asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.1 0.15 0.2" width="512" height="512"/>
    <material name="grid" texture="grid" texrepeat="1 1" texuniform="true" reflectance="0.2"/>
    <material name="wall" rgba="0.7 0.7 0.7 1"/>
  </asset>"""


def mjcf_header(model: str, *, angle: str, option: str, joint: str, geom: str, flags: str = 'eulerdamp="disable"') -> str:
    """The opening of every task's MJCF: the model's name, compiler, MJX-friendly solver options (one
    solver iteration, four line-search iterations, the given `flags`) and the joint and geom defaults.
    `option`: the <option> attributes before the iteration counts (timestep, solver, gravity)."""
    return f"""<mujoco model="deepcrl_{model}">
  <compiler angle="{angle}" inertiafromgeom="true"/>
  <option {option} iterations="1" ls_iterations="4">
    <flag {flags}/>
  </option>
  <default>
    <joint {joint}/>
    <geom {geom}/>
  </default>"""


def mjcf_footer(actuators: str) -> str:
    """The closing of a task's MJCF after its last worldbody element: the actuators, then the end tags."""
    return f"""  </worldbody>
  <actuator>{actuators}</actuator>
</mujoco>
"""


def import_mujoco():
    """Import mujoco and mujoco.mjx, without mjx's printed notice that the optional Warp backend is missing."""
    with contextlib.redirect_stdout(io.StringIO()):
        import mujoco
        from mujoco import mjx
    return mujoco, mjx


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}={value!r} is not allowed: need an integer >= 1")
    return int(value)


def check_positive_float(name: str, value) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(float(value)) or float(value) <= 0:
        raise ConfigError(f"{name}={value!r} is not allowed: need a finite number > 0")
    return float(value)


class MjxTask(Env):
    """A goal-conditioned MuJoCo task stepped with MJX.

    Subclasses set `name`, `state_size`, `goal_size`, `action_size`, `goal_indices`, build the model
    (`mj_model`) and implement `_observe`, `_start`, `_train_goal`, `_eval_goal` and optionally
    `_failed`. Actions in [-1, 1] are mapped linearly onto each actuator's control range.
    """

    n_frames: int = 5  # physics steps per environment step

    def __init__(self, mj_model, *, episode_length: int, goal_threshold: float):
        _, mjx = import_mujoco()
        self.mj_model = mj_model
        self.mjx_model = mjx.put_model(mj_model, impl="jax")
        self.episode_length = check_positive_int("episode_length", episode_length)
        self.goal_threshold = check_positive_float("goal_threshold", goal_threshold)
        if mj_model.nu != self.action_size:
            raise AssertionError(f"{self.name}: model has {mj_model.nu} actuators, task says {self.action_size}")
        lo, hi = mj_model.actuator_ctrlrange[:, 0], mj_model.actuator_ctrlrange[:, 1]
        self._ctrl_mid = jnp.asarray((hi + lo) / 2, jnp.float32)
        self._ctrl_half = jnp.asarray((hi - lo) / 2, jnp.float32)
        self._init_qpos = jnp.asarray(mj_model.qpos0, jnp.float32)

    @property
    def dt(self) -> float:
        """Seconds of simulated time per environment step."""
        return float(self.mj_model.opt.timestep) * self.n_frames

    # ------------------------------------------------------------------ what subclasses provide
    @abc.abstractmethod
    def _observe(self, data) -> jax.Array:
        """The state observation [state_size] of an mjx.Data."""

    @abc.abstractmethod
    def _start(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(qpos, qvel) of a new episode."""

    @abc.abstractmethod
    def _train_goal(self, key: jax.Array) -> jax.Array:
        """A training goal [goal_size]."""

    def _eval_goal(self, key: jax.Array) -> jax.Array:
        """An evaluation goal [goal_size] (default: the training distribution)."""
        return self._train_goal(key)

    def _failed(self, data, obs: jax.Array) -> jax.Array:
        """bool [], True when the episode ends by failure (a fall). Default: never."""
        return jnp.zeros((), bool)

    def _place_goal(self, qpos: jax.Array, goal: jax.Array) -> jax.Array:
        """Hook for tasks whose goal is part of the simulation (default: it is not)."""
        return qpos

    # ------------------------------------------------------------------ the Env protocol
    def _state(self, key, data, goal, step) -> EnvState:
        obs = self._observe(data)
        distance = jnp.linalg.norm(self.achieved_goal(obs) - goal)
        zero = jnp.zeros((), jnp.float32)
        return EnvState(
            physics=data,
            obs=obs,
            goal=goal,
            distance=distance,
            success=(distance < self.goal_threshold).astype(jnp.float32),
            terminated=zero,
            truncated=zero,
            step=step,
            key=key,
        )

    def _reset(self, key: jax.Array, evaluation: bool) -> EnvState:
        _, mjx = import_mujoco()
        next_key, k_start, k_goal = jax.random.split(key, 3)
        goal = (self._eval_goal if evaluation else self._train_goal)(k_goal).astype(jnp.float32)
        qpos, qvel = self._start(k_start)  # training and evaluation episodes start alike
        qpos = self._place_goal(qpos, goal)
        data = mjx.make_data(self.mjx_model).replace(qpos=qpos, qvel=qvel)
        data = mjx.forward(self.mjx_model, data)
        return self._state(next_key, data, goal, jnp.zeros((), jnp.int32))

    def reset(self, key: jax.Array) -> EnvState:
        return self._reset(key, evaluation=False)

    def eval_reset(self, key: jax.Array) -> EnvState:
        return self._reset(key, evaluation=True)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        _, mjx = import_mujoco()
        action = jnp.clip(jnp.nan_to_num(jnp.asarray(action, jnp.float32)), -1.0, 1.0)
        data = state.physics.replace(ctrl=self._ctrl_mid + self._ctrl_half * action)
        data = jax.lax.fori_loop(0, self.n_frames, lambda _, d: mjx.step(self.mjx_model, d), data)
        obs = self._observe(data)
        distance = jnp.linalg.norm(self.achieved_goal(obs) - state.goal)
        failed = self._failed(data, obs) | ~jnp.all(jnp.isfinite(obs))
        step = state.step + 1
        return state.replace(
            physics=data,
            obs=jnp.nan_to_num(obs),
            distance=distance,
            success=(distance < self.goal_threshold).astype(jnp.float32),
            terminated=failed.astype(jnp.float32),
            truncated=(step >= self.episode_length).astype(jnp.float32),
            step=step,
        )

    def goal_marker(self, goal) -> np.ndarray:
        """Where to draw a goal in the world (x, y, z), for rendering. Default: the goal itself, with
        z = 0 for planar goals."""
        goal = np.asarray(goal, np.float64).reshape(-1)
        return np.concatenate([goal, np.zeros(3 - goal.size)]) if goal.size < 3 else goal[:3]
