"""Evaluation: the deterministic policy on many evaluation episodes at once (paper.md §7).

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

Policy = Callable[[jax.Array], jax.Array]  # [N, obs_size] -> [N, action_size]


def make_evaluate(env: Env, num_envs: int) -> Callable[[Policy, jax.Array], dict[str, jax.Array]]:
    """A pure function (policy, key) -> metrics; jit it with the policy's parameters closed over or passed in."""

    def evaluate(policy: Policy, key: jax.Array) -> dict[str, jax.Array]:
        states = jax.vmap(env.eval_reset)(jax.random.split(key, num_envs))
        stepping = jax.vmap(env.step)

        def one_step(carry, _):
            states, alive, time_at_goal, ever, min_dist = carry
            actions = policy(jax.vmap(env.observation)(states))
            states = stepping(states, actions)
            time_at_goal = time_at_goal + states.success * alive
            ever = jnp.maximum(ever, states.success * alive)
            min_dist = jnp.where(alive > 0, jnp.minimum(min_dist, states.distance), min_dist)
            alive = alive * (1.0 - states.terminated)
            return (states, alive, time_at_goal, ever, min_dist), None

        zeros = jnp.zeros((num_envs,), jnp.float32)
        init = (states, jnp.ones((num_envs,), jnp.float32), zeros, zeros, states.distance)
        (states, alive, time_at_goal, ever, min_dist), _ = jax.lax.scan(one_step, init, None, length=env.episode_length)
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
