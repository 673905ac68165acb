"""The task protocol every deepcrl environment implements.

A task is a pair of pure functions over an `EnvState` pytree, so that thousands of copies can be
`vmap`ped and stepped inside a jitted `lax.scan`:

    state = env.reset(key)              # a fresh start and a fresh goal
    state = env.step(state, action)     # one step; sets `terminated` / `truncated`, never resets
    obs   = env.observation(state)      # concat(state observation, goal): what the policy sees

Goals are a slice of the state observation (`goal_indices`), so any visited state can serve as a
relabelled goal. The environment's success signal is only used for evaluation, never for learning.

`step_autoreset` adds the automatic reset used for data collection: whenever an episode ends the
environment is reset with a new key, which draws a **new goal** (the reference code kept each
environment's first goal for the whole run).
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EnvState:
    physics: Any  # task-specific pytree (the point mass: position and velocity)
    obs: jax.Array  # [state_size] observation of the state, without the goal
    goal: jax.Array  # [goal_size] the commanded goal
    distance: jax.Array  # [] distance between the achieved goal slice and the goal
    success: jax.Array  # [] float32, 1.0 when distance < goal_threshold
    terminated: jax.Array  # [] float32, 1.0 when the episode ended by failure (a fall, ...)
    truncated: jax.Array  # [] float32, 1.0 when the episode reached episode_length
    step: jax.Array  # [] int32, steps taken in this episode
    key: jax.Array  # PRNG key this environment uses for its next reset


class Env(abc.ABC):
    """A goal-conditioned task. Subclasses set the sizes below and implement reset / eval_reset / step."""

    name: str  # e.g. "point_u_maze"
    state_size: int  # size of EnvState.obs
    goal_size: int  # size of the goal (= len(goal_indices))
    action_size: int  # actions live in [-1, 1]^action_size
    episode_length: int  # steps before truncation
    goal_threshold: float  # success when the goal slice is within this distance of the goal
    goal_indices: tuple[int, ...]  # which entries of EnvState.obs form the achieved goal

    @property
    def obs_size(self) -> int:
        """Size of what the policy sees: concat(state observation, goal)."""
        return self.state_size + self.goal_size

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> EnvState:
        """A training episode: start and goal drawn from the training distributions."""

    @abc.abstractmethod
    def eval_reset(self, key: jax.Array) -> EnvState:
        """An evaluation episode: start at the layout's start cells, goal in its far (evaluation) goal cells."""

    @abc.abstractmethod
    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """Advance one step. Sets terminated / truncated; never resets."""

    def achieved_goal(self, obs: jax.Array) -> jax.Array:
        """The goal slice of a state observation (works on batches: [..., state_size] -> [..., goal_size])."""
        return obs[..., jnp.asarray(self.goal_indices)]

    def observation(self, state: EnvState) -> jax.Array:
        """What the policy sees: concat(state observation, goal)."""
        return jnp.concatenate([state.obs, state.goal], axis=-1)


def with_goal(env: Env, state: EnvState, goal: jax.Array) -> EnvState:
    """`state` commanded towards another goal: its distance and success recomputed for `goal`."""
    distance = jnp.linalg.norm(env.achieved_goal(state.obs) - goal, axis=-1)
    return state.replace(goal=goal, distance=distance, success=(distance < env.goal_threshold).astype(jnp.float32))


def step_autoreset(
    env: Env, state: EnvState, action: jax.Array, chain_goals: bool = False, keep_first_goal: bool = False
) -> tuple[EnvState, EnvState]:
    """Step one environment and reset it (with a fresh goal) if the episode ended.

    `chain_goals` (ours, not the paper's; `--chain-goals`): an episode that reaches its goal goes on
    towards a fresh goal from the training distribution (the goal of the reset drawn at this step), so
    one episode strings several goals together instead of resting at the first.
    `keep_first_goal` (`--keep-first-goal`, the reference code's defect, for comparison): the reset keeps
    the episode's goal (a fresh start only), so every environment pursues its very first goal all run.

    Returns (state to continue from, the stepped state before any reset). The second one carries the
    true next observation, the success flag and the done flags of the step just taken.
    """
    stepped = env.step(state, action)
    done = jnp.maximum(stepped.terminated, stepped.truncated) > 0
    reset_key, carry_key = jax.random.split(stepped.key)
    fresh = env.reset(reset_key)
    if keep_first_goal:
        fresh = with_goal(env, fresh, stepped.goal)
    continued = stepped.replace(key=carry_key)
    if chain_goals:
        rechained = with_goal(env, continued, fresh.goal)
        continued = jax.tree_util.tree_map(lambda r, c: jnp.where(stepped.success > 0, r, c), rechained, continued)
    nxt = jax.tree_util.tree_map(lambda r, c: jnp.where(done, r, c), fresh, continued)
    return nxt, stepped
