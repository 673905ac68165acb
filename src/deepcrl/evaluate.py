"""Evaluation: the policy on many evaluation episodes at once; deterministic by default.

Each evaluation environment starts at the layout's start cells with a goal in its far (evaluation)
goal cells (the paper's protocol) and runs one whole episode with no resets. `run_episodes` is the one
evaluation rollout: `make_evaluate` reduces it to metrics, `deepcrl render` records its states for
videos (render.rollout). Reported by `make_evaluate`:

- `eval/time_at_goal`: steps per episode within the success threshold (the paper's metric)
- `eval/time_at_goal_frac`: time at goal divided by the episode length
- `eval/success`: fraction of episodes that ever came within the threshold
- `eval/success_at_end`: fraction of episodes that end within the threshold
- `eval/final_distance`, `eval/min_distance`: distance to the goal at the end, and the closest approach
- `eval/survived`: fraction of episodes that did not end by failure (a fall)
- `eval/success_d<K>`, `eval/time_at_goal_d<K>`: with `--eval-max-goal-cells M` (point mazes), the same
  over the episodes whose start and goal cells lie K = 1..M cells apart along the corridors
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from deepcrl.envs.base import Env, EnvState

Policy = Callable[..., jax.Array]  # [N, obs_size] -> [N, action_size] (and a key, for a stochastic policy)


def evaluation_policy(agent: Any, params: dict[str, Any], samples: int) -> Policy:
    """The policy evaluation runs (`--eval-action-samples`): obs -> tanh(mean) when `samples` is 0, else
    (obs, key) -> one policy sample (1) or the best of `samples` policy samples by the critic (>= 2).
    `params`: the agent state's `export()`."""
    if samples == 0:
        return lambda obs: agent.act(params["actor_params"], obs, deterministic=True)
    return lambda obs, key: agent.select_action(params, obs, key, samples)


def run_episodes(
    env: Env,
    policy: Policy,
    key: jax.Array,
    num_episodes: int,
    num_steps: int | None = None,
    *,
    policy_takes_key: bool = False,
    record: Callable[[EnvState], Any] | None = None,
):
    """`num_episodes` evaluation episodes of `num_steps` steps (default: the whole episode), traceable.

    `policy_takes_key`: the policy is stochastic, `(obs, key) -> action`, and gets a fresh key each step;
    the episodes' starts and goals then come from the first half of `key`. `record(states)`, if given,
    is kept after every step.

    Returns (start states, final states, stats, records): stats are per episode, `alive` (1.0 until a
    failure), `time_at_goal` (steps within the threshold while alive), `ever` (reached it while alive),
    `min_distance` (closest approach while alive); records are [num_steps, num_episodes, ...] or None.
    """
    num_steps = env.episode_length if num_steps is None else num_steps
    step_keys = None
    if policy_takes_key:
        key, action_key = jax.random.split(key)
        step_keys = jax.random.split(action_key, num_steps)
    start = jax.vmap(env.eval_reset)(jax.random.split(key, num_episodes))
    stepping = jax.vmap(env.step)

    def one_step(carry, step_key):
        states, (alive, time_at_goal, ever, min_dist) = carry
        obs = jax.vmap(env.observation)(states)
        actions = policy(obs, step_key) if policy_takes_key else policy(obs)
        states = stepping(states, actions)
        time_at_goal = time_at_goal + states.success * alive
        ever = jnp.maximum(ever, states.success * alive)
        min_dist = jnp.where(alive > 0, jnp.minimum(min_dist, states.distance), min_dist)
        alive = alive * (1.0 - states.terminated)
        return (states, (alive, time_at_goal, ever, min_dist)), (None if record is None else record(states))

    zeros = jnp.zeros((num_episodes,), jnp.float32)
    init = (start, (jnp.ones((num_episodes,), jnp.float32), zeros, zeros, start.distance))
    (final, (alive, time_at_goal, ever, min_dist)), records = jax.lax.scan(one_step, init, step_keys, length=num_steps)
    stats = {"alive": alive, "time_at_goal": time_at_goal, "ever": ever, "min_distance": min_dist}
    return start, final, stats, records


def make_evaluate(env: Env, num_envs: int, policy_takes_key: bool = False) -> Callable[[Policy, jax.Array], dict[str, jax.Array]]:
    """A pure function (policy, key) -> metrics over `num_envs` whole evaluation episodes; jit it with the
    policy's parameters closed over or passed in. `policy_takes_key`: see `run_episodes`."""

    def evaluate(policy: Policy, key: jax.Array) -> dict[str, jax.Array]:
        start, final, stats, _ = run_episodes(env, policy, key, num_envs, policy_takes_key=policy_takes_key)
        return {
            **_by_distance(env, start, stats),
            "eval/time_at_goal": jnp.mean(stats["time_at_goal"]),
            "eval/time_at_goal_frac": jnp.mean(stats["time_at_goal"]) / env.episode_length,
            "eval/success": jnp.mean(stats["ever"]),
            "eval/success_at_end": jnp.mean(final.success),
            "eval/final_distance": jnp.mean(final.distance),
            "eval/min_distance": jnp.mean(stats["min_distance"]),
            "eval/survived": jnp.mean(stats["alive"]),
        }

    return evaluate


def _by_distance(env: Env, start: EnvState, stats: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """A task that evaluates on start/goal pairs at several path distances (`eval_distances`, e.g. the
    point maze's `--eval-max-goal-cells`): success and time at goal per distance, `eval/success_d<K>`
    (the mean over the episodes whose start and goal cells lie K cells apart; NaN if none did)."""
    distances = getattr(env, "eval_distances", None)
    if not distances:
        return {}
    d = jax.vmap(env.path_distance)(start)
    out = {}
    for k in distances:
        mask = (d == k).astype(jnp.float32)
        count = jnp.sum(mask)
        out[f"eval/success_d{k}"] = jnp.where(count > 0, jnp.sum(stats["ever"] * mask) / jnp.maximum(count, 1.0), jnp.nan)
        out[f"eval/time_at_goal_d{k}"] = jnp.where(count > 0, jnp.sum(stats["time_at_goal"] * mask) / jnp.maximum(count, 1.0), jnp.nan)
    return out
