"""The trajectory replay buffer and hindsight goal relabelling, on the device.

Storage is time-major, `[capacity, num_envs, ...]`, a FIFO ring per environment: each collection
writes `unroll_length` consecutive steps of every environment. Every step records the state
observation, the action, the goal slice of the *next* state (before any automatic reset) and the id of
the episode it belongs to, so trajectories can be told apart without storing boundaries.

Relabelling (the paper's reference code): for a transition at step i, the goal is the achieved goal of the state at
step i + k of the same episode, with P(k) proportional to gamma^(k-1) for k = 1..n, where n is the
number of next-states of that episode still in the buffer (a geometric law truncated at the end of the
trajectory and renormalised, as in the reference code). The episode's last buffered step is found by a
binary search over the (monotone) episode ids, and k is drawn by inverting the truncated geometric CDF:
O(batch x log capacity) work and O(batch) memory. The reference code builds an episode_length x
episode_length matrix per sampled environment instead, and cuts trajectories at its sampling window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Transition:
    obs: jax.Array  # [..., state_size] state observation at step t (no goal)
    action: jax.Array  # [..., action_size] action taken at step t
    next_achieved: jax.Array  # [..., goal_size] goal slice of the state at t + 1 (before any reset)
    episode_id: jax.Array  # [...] int32, unique per environment and episode
    # Stored only for TD agents (SAC, TD3; None otherwise):
    goal: jax.Array | None = None  # [..., goal_size] the goal the environment commanded at step t
    next_obs: jax.Array | None = None  # [..., state_size] state observation at t + 1 (before any reset)
    terminated: jax.Array | None = None  # [...] float32, 1.0 when the episode ended by failure at t + 1


@struct.dataclass
class ReplayBuffer:
    data: Transition  # every leaf [capacity, num_envs, ...]
    insert_pos: jax.Array  # [] int32, next row to write
    count: jax.Array  # [] int32, rows holding data (<= capacity)

    @property
    def capacity(self) -> int:
        return self.data.episode_id.shape[0]

    @property
    def num_envs(self) -> int:
        return self.data.episode_id.shape[1]


@struct.dataclass
class TDBatch:
    obs: jax.Array  # [B, state_size]
    action: jax.Array  # [B, action_size]
    goal: jax.Array  # [B, goal_size] the commanded goal, or (relabelled rows) a future achieved goal
    next_obs: jax.Array  # [B, state_size] the next state (the true one, also at the end of an episode)
    reward: jax.Array  # [B] reward of the transition for `goal` (goal_reward)
    terminal: jax.Array  # [B] 1.0 where the TD target must not bootstrap (failure, or goal reached with goal_terminal)
    relabelled: jax.Array  # [B] float32, 1.0 where the goal was relabelled (HER)


@struct.dataclass
class Batch:
    obs: jax.Array  # [B, state_size]
    action: jax.Array  # [B, action_size]
    goal: jax.Array  # [B, goal_size] relabelled goal: achieved goal of a future state, same episode
    offset: jax.Array  # [B] int32, k: how many steps ahead the goal state lies (>= 1)


def init_buffer(capacity: int, num_envs: int, state_size: int, action_size: int, goal_size: int, td: bool = False) -> ReplayBuffer:
    """An empty buffer; `td=True` also stores commanded goals, next states and terminal flags (SAC, TD3)."""
    data = Transition(
        obs=jnp.zeros((capacity, num_envs, state_size), jnp.float32),
        action=jnp.zeros((capacity, num_envs, action_size), jnp.float32),
        next_achieved=jnp.zeros((capacity, num_envs, goal_size), jnp.float32),
        episode_id=jnp.full((capacity, num_envs), -1, jnp.int32),
    )
    if td:
        data = data.replace(
            goal=jnp.zeros((capacity, num_envs, goal_size), jnp.float32),
            next_obs=jnp.zeros((capacity, num_envs, state_size), jnp.float32),
            terminated=jnp.zeros((capacity, num_envs), jnp.float32),
        )
    return ReplayBuffer(data=data, insert_pos=jnp.int32(0), count=jnp.int32(0))


def insert(buffer: ReplayBuffer, chunk: Transition) -> ReplayBuffer:
    """Append a [steps, num_envs, ...] chunk of consecutive steps, overwriting the oldest rows."""
    steps = chunk.episode_id.shape[0]
    rows = (buffer.insert_pos + jnp.arange(steps)) % buffer.capacity
    data = jax.tree_util.tree_map(lambda store, new: store.at[rows].set(new.astype(store.dtype)), buffer.data, chunk)
    return ReplayBuffer(
        data=data, insert_pos=(buffer.insert_pos + steps) % buffer.capacity, count=jnp.minimum(buffer.count + steps, buffer.capacity)
    )


def truncated_geometric(key: jax.Array, gamma: float, n: jax.Array) -> jax.Array:
    """Draw k in {1..n} with P(k) proportional to gamma^(k-1), by inverting the CDF (vectorised over n)."""
    u = jax.random.uniform(key, n.shape, minval=0.0, maxval=1.0)
    log_gamma = math.log(gamma)
    tail = jnp.exp(n.astype(jnp.float32) * log_gamma)  # gamma^n
    k = 1 + jnp.floor(jnp.log1p(-u * (1.0 - tail)) / log_gamma).astype(jnp.int32)
    return jnp.clip(k, 1, n)


def _sample_rows(buffer: ReplayBuffer, env_key: jax.Array, row_key: jax.Array, batch_size: int):
    """Uniform (environment, row) pairs over the buffer, and for each how many next-states of its
    episode are buffered from it on (>= 1). Returns (env, chron, n_future, row) with `row(c)` mapping a
    chronological index (0 = oldest row held) to a storage row."""
    capacity = buffer.capacity
    env = jax.random.randint(env_key, (batch_size,), 0, buffer.num_envs)
    chron = jax.random.randint(row_key, (batch_size,), 0, buffer.count)
    oldest = (buffer.insert_pos - buffer.count) % capacity

    def row(c):
        return (oldest + c) % capacity

    ids = buffer.data.episode_id
    own_id = ids[row(chron), env]

    # Binary search for the last buffered step of the same episode: the largest c' >= chron with
    # ids[c'] == own_id (ids never decrease along time within an environment).
    lo, hi = chron, jnp.full_like(chron, buffer.count - 1)

    def search(_, bounds):
        lo, hi = bounds
        mid = (lo + hi + 1) // 2
        same = ids[row(mid), env] == own_id
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid - 1)

    iterations = max(1, math.ceil(math.log2(capacity + 1)))
    last, _ = jax.lax.fori_loop(0, iterations, search, (lo, hi))
    return env, chron, last - chron + 1, row


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int, gamma: float) -> Batch:
    """A batch of transitions, uniform over the buffer, each with a relabelled future goal."""
    env_key, row_key, offset_key = jax.random.split(key, 3)
    env, chron, n_future, row = _sample_rows(buffer, env_key, row_key, batch_size)
    offset = truncated_geometric(offset_key, gamma, n_future)
    goal_rows = row(chron + offset - 1)
    return Batch(
        obs=buffer.data.obs[row(chron), env],
        action=buffer.data.action[row(chron), env],
        goal=buffer.data.next_achieved[goal_rows, env],
        offset=offset,
    )


REWARD_KINDS = ("sparse", "dense")


def goal_reward(next_achieved: jax.Array, goal: jax.Array, threshold: float, kind: str = "sparse") -> tuple[jax.Array, jax.Array]:
    """(reward, reached) of transitions ending in `next_achieved` for `goal`. [..] each.

    reached: the next state's goal slice lies within `threshold` (L2) of the goal, the tasks' success
    test. sparse: reward = reached (1.0 or 0.0). dense: reward = minus that L2 distance.
    """
    distance = jnp.linalg.norm(next_achieved - goal, axis=-1)
    reached = (distance < threshold).astype(jnp.float32)
    if kind == "sparse":
        return reached, reached
    if kind == "dense":
        return -distance, reached
    raise ValueError(f"reward kind {kind!r}; allowed: {', '.join(REWARD_KINDS)}")


def sample_td(
    buffer: ReplayBuffer,
    key: jax.Array,
    batch_size: int,
    *,
    her_fraction: float,
    threshold: float,
    reward: str = "sparse",
    goal_terminal: bool = False,
) -> TDBatch:
    """A batch of transitions for TD learning, uniform over the buffer (needs a buffer made with td=True).

    Hindsight relabelling, the 'future' strategy of HER (Andrychowicz et al. 2017): each row, with
    probability `her_fraction`, replaces its commanded goal by the achieved goal of a state drawn
    uniformly from the later states of the same episode still in the buffer (s_{t+1} .. the last).
    Reward and termination are then computed from the row's goal (goal_reward): a failure recorded by
    the environment always ends the return; reaching the goal ends it too when `goal_terminal`.
    """
    env_key, row_key, offset_key, her_key = jax.random.split(key, 4)
    env, chron, n_future, row = _sample_rows(buffer, env_key, row_key, batch_size)
    data = buffer.data
    here = row(chron)
    offset = jax.random.randint(offset_key, (batch_size,), 1, n_future + 1)  # uniform over 1 .. n_future
    future_goal = data.next_achieved[row(chron + offset - 1), env]
    relabel = jax.random.uniform(her_key, (batch_size,)) < her_fraction
    goal = jnp.where(relabel[:, None], future_goal, data.goal[here, env])
    next_achieved = data.next_achieved[here, env]
    rewards, reached = goal_reward(next_achieved, goal, threshold, reward)
    terminal = data.terminated[here, env]
    if goal_terminal:
        terminal = jnp.maximum(terminal, reached)
    return TDBatch(
        obs=data.obs[here, env],
        action=data.action[here, env],
        goal=goal,
        next_obs=data.next_obs[here, env],
        reward=rewards,
        terminal=terminal,
        relabelled=relabel.astype(jnp.float32),
    )


# ----------------------------------------------------------------------------------------------
# Samplers: what an agent consumes (agents/base.py, `Agent.make_sampler`)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FutureGoalSampler:
    """Batches of (state, action, future goal) (`sample`), for CRL and GCBC."""

    gamma: float  # relabelling: future-goal offset ~ Geometric(1 - gamma), truncated at the trajectory's end

    def __call__(self, buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> tuple[Batch, dict[str, jax.Array]]:
        batch = sample(buffer, key, batch_size, self.gamma)
        return batch, {"replay/goal_offset": jnp.mean(batch.offset.astype(jnp.float32))}


@dataclass(frozen=True)
class TDSampler:
    """Batches of TD transitions with rewards (`sample_td`), HER when her_fraction > 0, for SAC and TD3."""

    her_fraction: float  # fraction of rows whose goal is relabelled (0: no HER)
    threshold: float  # the task's success radius: sparse rewards and goal_terminal
    reward: str = "sparse"  # one of REWARD_KINDS
    goal_terminal: bool = False  # reaching the goal ends the TD return

    def __call__(self, buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> tuple[TDBatch, dict[str, jax.Array]]:
        batch = sample_td(
            buffer,
            key,
            batch_size,
            her_fraction=self.her_fraction,
            threshold=self.threshold,
            reward=self.reward,
            goal_terminal=self.goal_terminal,
        )
        return batch, {
            "replay/reward": jnp.mean(batch.reward),
            "replay/terminal": jnp.mean(batch.terminal),
            "replay/relabelled": jnp.mean(batch.relabelled),
        }
