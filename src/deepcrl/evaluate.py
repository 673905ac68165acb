"""Evaluation: the policy on many evaluation episodes at once (paper.md §7); deterministic by default.

Each evaluation environment starts at the layout's start cells with a goal in its far (evaluation)
goal cells and runs one whole episode with actions tanh(mean) and no resets. Reported:

- `eval/time_at_goal`: steps per episode within the success threshold (the paper's metric)
- `eval/success`: fraction of episodes that ever came within the threshold
- `eval/success_at_end`: fraction of episodes that end within the threshold
- `eval/final_distance`, `eval/min_distance`: distance to the goal at the end, and the closest approach
- `eval/time_at_goal_frac`: time at goal divided by the episode length
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from deepcrl.envs.base import Env

Policy = Callable[..., jax.Array]  # [N, obs_size] -> [N, action_size] (and a key, for a stochastic policy)


def make_evaluate(env: Env, num_envs: int, policy_takes_key: bool = False) -> Callable[[Policy, jax.Array], dict[str, jax.Array]]:
    """A pure function (policy, key) -> metrics; jit it with the policy's parameters closed over or passed in.

    `policy_takes_key`: the policy is stochastic, `(obs, key) -> action`, and gets a fresh key each step
    (a sampled or best-of-K policy, `--eval-action-samples`); the episodes' starts and goals then come
    from the first half of `key`.
    """

    def evaluate(policy: Policy, key: jax.Array) -> dict[str, jax.Array]:
        if policy_takes_key:
            key, action_key = jax.random.split(key)
            step_keys = jax.random.split(action_key, env.episode_length)
        else:
            step_keys = None
        states = jax.vmap(env.eval_reset)(jax.random.split(key, num_envs))
        stepping = jax.vmap(env.step)

        def one_step(carry, step_key):
            states, alive, time_at_goal, ever, min_dist = carry
            obs = jax.vmap(env.observation)(states)
            actions = policy(obs, step_key) if policy_takes_key else policy(obs)
            states = stepping(states, actions)
            time_at_goal = time_at_goal + states.success * alive
            ever = jnp.maximum(ever, states.success * alive)
            min_dist = jnp.where(alive > 0, jnp.minimum(min_dist, states.distance), min_dist)
            alive = alive * (1.0 - states.terminated)
            return (states, alive, time_at_goal, ever, min_dist), None

        zeros = jnp.zeros((num_envs,), jnp.float32)
        init = (states, jnp.ones((num_envs,), jnp.float32), zeros, zeros, states.distance)
        (states, alive, time_at_goal, ever, min_dist), _ = jax.lax.scan(one_step, init, step_keys, length=env.episode_length)
        return {
            "eval/time_at_goal": jnp.mean(time_at_goal),
            "eval/time_at_goal_frac": jnp.mean(time_at_goal) / env.episode_length,
            "eval/success": jnp.mean(ever),
            "eval/success_at_end": jnp.mean(states.success),
            "eval/final_distance": jnp.mean(states.distance),
            "eval/min_distance": jnp.mean(min_dist),
            "eval/survived": jnp.mean(alive),
        }

    return evaluate
